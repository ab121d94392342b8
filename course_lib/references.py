"""Adapters to the reference libraries, and the random inputs they are compared on.

Tests, benchmarks and notebooks compare ``course_lib`` with the libraries practitioners use. The
glue that each comparison needs (pycocotools' quiet, copy-safe evaluation; OpenCV's selective
search in our box format; seeded random boxes) lives here, once, so that a test and a benchmark
measure the very same thing. Nothing in ``course_lib`` below this module imports it.
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import torch
from torch import Tensor

from course_lib._checks import check_choice


def random_boxes(
    num_boxes: int,
    generator: torch.Generator,
    corner_range: float = 100.0,
    min_side: float = 0.0,
    side_range: float = 100.0,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Seeded random ``xyxy`` boxes: top-left corners uniform in ``[0, corner_range)``, sides in
    ``[min_side, min_side + side_range)``. The defaults are torchvision's NMS tests' boxes (heavy,
    unstructured overlap).

    Returns:
        Tensor[N, 4] of ``dtype``.
    """
    corners = torch.rand(num_boxes, 2, generator=generator, dtype=torch.float64) * corner_range  # (N, 2)
    sides = min_side + torch.rand(num_boxes, 2, generator=generator, dtype=torch.float64) * side_range
    return torch.cat((corners, corners + sides), dim=1).to(dtype)  # (N, 4)


def clustered_boxes(num_boxes: int, generator: torch.Generator) -> Tensor:
    """A detector's raw output before NMS: jittered copies of one box per object (50 per object).

    Returns:
        Tensor[N, 4] float32 ``xyxy``.
    """
    num_objects = max(1, num_boxes // 50)
    centres = torch.rand(num_objects, 2, generator=generator) * 800  # (O, 2)
    sizes = 16 + torch.rand(num_objects, 2, generator=generator) * 200  # (O, 2)
    owner = torch.randint(0, num_objects, (num_boxes,), generator=generator)  # (N,)
    jitter = torch.randn(num_boxes, 2, generator=generator)  # (N, 2)
    centre = centres[owner] + 0.1 * sizes[owner] * jitter  # (N, 2)
    scale = (1 + 0.15 * torch.randn(num_boxes, 2, generator=generator)).clamp(min=0.3)  # (N, 2)
    size = sizes[owner] * scale  # (N, 2)
    return torch.cat((centre - size / 2, centre + size / 2), dim=1)  # (N, 4)


def pycocotools_eval(coco_gt: dict, coco_dt: list[dict], iou_thresholds=None):
    """pycocotools' ``COCOeval`` (bbox) run on copies of the json, its printing silenced.

    ``loadRes`` writes into the detection dicts, so both are deep-copied first. With
    ``iou_thresholds`` the evaluation is matched and accumulated at those thresholds only (no
    summary, which assumes the standard ten).

    Returns:
        The evaluated ``COCOeval``: ``.stats`` (standard thresholds), ``.eval["precision"]``, ...
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(coco_gt)
        coco.createIndex()
        result = COCOeval(coco, coco.loadRes(copy.deepcopy(coco_dt)), "bbox")
        if iou_thresholds is not None:
            result.params.iouThrs = np.array(iou_thresholds, dtype=float)
        result.evaluate()
        result.accumulate()
        if iou_thresholds is None:
            result.summarize()
    return result


def pycocotools_stats(coco_gt: dict, coco_dt: list[dict]) -> np.ndarray:
    """The 12 numbers of ``COCOeval.stats`` (AP, AP50, ..., ARl), as ``coco_evaluate`` returns them."""
    return pycocotools_eval(coco_gt, coco_dt).stats


OPENCV_MODES = ("single", "fast", "quality")


def opencv_selective_search(image: np.ndarray, mode: str = "fast") -> Tensor:
    """OpenCV's selective search (``cv2.ximgproc``) as ``Tensor[N, 4]`` float32 ``xyxy``, in its order.

    OpenCV takes BGR and returns ``x, y, w, h``; its ranking uses an unseeded ``rand()``, so the
    order changes from run to run (the set of boxes does not).

    Args:
        image: ``np.ndarray[H, W, 3]`` uint8 RGB.
        mode: ``"single"``, ``"fast"`` or ``"quality"``.
    """
    import cv2

    check_choice(mode, OPENCV_MODES, "mode")
    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(np.ascontiguousarray(image[:, :, ::-1]))
    if mode == "fast":
        search.switchToSelectiveSearchFast()
    elif mode == "quality":
        search.switchToSelectiveSearchQuality()
    else:
        search.switchToSingleStrategy()
    rects = search.process().astype(np.float32).reshape(-1, 4)  # (N, 4) x, y, w, h
    rects[:, 2:] += rects[:, :2]
    return torch.from_numpy(rects)  # (N, 4) xyxy


def captum_occlusion(
    model,
    images: Tensor,
    target,
    window: int,
    stride: int,
    baseline: float = 0.0,
    perturbations_per_eval: int = 1,
) -> Tensor:
    """Captum's ``Occlusion`` with a square ``window`` over every channel: Tensor[B, H, W].

    Captum returns the map once per channel (the window covers them all); channel 0 is returned.
    ``perturbations_per_eval=1`` is Captum's default: one forward pass per window position.
    """
    from captum.attr import Occlusion

    C = images.shape[1]  # channels
    attribution = Occlusion(model).attribute(
        images,
        target=target,
        sliding_window_shapes=(C, window, window),
        strides=(C, stride, stride),
        baselines=baseline,
        perturbations_per_eval=perturbations_per_eval,
    )  # (B, C, H, W)
    return attribution[:, 0]  # (B, H, W)


def captum_grad_cam(model, layer: str, images: Tensor, target) -> Tensor:
    """Captum's ``LayerGradCam`` (ReLU on) at ``layer``, upsampled bilinearly to the input size.

    Returns:
        Tensor[B, H, W].
    """
    from captum.attr import LayerAttribution, LayerGradCam

    module = dict(model.named_modules())[layer]
    method = LayerGradCam(model, module)
    maps = method.attribute(images, target=target, relu_attributions=True)  # (B, 1, h, w)
    return LayerAttribution.interpolate(maps, tuple(images.shape[-2:]), "bilinear")[:, 0]  # (B, H, W)


def pytorch_grad_cam(model, layer: str, images: Tensor, classes: Tensor, method: str = "GradCAM") -> Tensor:
    """pytorch-grad-cam's ``GradCAM`` (or ``HiResCAM``, ...) for one class per image: Tensor[B, H, W].

    Each map is min-max normalized at the layer's resolution, then resized with OpenCV's bilinear
    ``cv2.resize``: compare it with :func:`min_max` of ours.
    """
    import pytorch_grad_cam as library
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    module = dict(model.named_modules())[layer]
    with getattr(library, method)(model=model, target_layers=[module]) as method:
        maps = method(images, targets=[ClassifierOutputTarget(int(label)) for label in classes])
    return torch.from_numpy(np.ascontiguousarray(maps))  # (B, H, W)


def min_max(maps: Tensor) -> Tensor:
    """Each map of Tensor[B, H, W] scaled to [0, 1] (a constant map becomes 0), as figures show them."""
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = maps.amax(dim=(1, 2), keepdim=True) - low
    return (maps - low) / span.clamp(min=torch.finfo(maps.dtype).tiny)
