"""Explorer for CenterNet (chapter 13): objects as the peaks of a heatmap, and no NMS.

CenterNet predicts, on a stride-4 map, one heatmap per class, high where an object's centre is,
and at each point the box's size and the centre's sub-cell offset (Zhou, Wang & Krähenbühl 2019,
"Objects as Points", Sec. 3 and 4). A detection is a *peak*: a pixel equal to the maximum of its
3 x 3 neighbourhood (a max pooling, which replaces NMS) whose score passes a threshold; its box is
``((x + offset_x) * stride ± width / 2, (y + offset_y) * stride ± height / 2)``.
``centernet_view`` computes the heatmap shown, the peaks and their boxes from one image's raw
output; ``CenterNetExplorer`` draws the image with the boxes and the class's heatmap with its peaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from torch import Tensor

from course_lib._checks import check_boxes, check_number, check_pair, check_tensor
from course_lib.boxes import box_iou, clip_boxes_to_image
from course_lib.data import CLASSES, NUM_CLASSES
from course_lib.models.centernet import CenterNet, heatmap_peaks
from course_lib.plotting import class_color, draw_boxes, show_image
from course_lib.widgets.base import WIDE_LABEL, Explorer, outline_boxes, plural
from course_lib.widgets.yolo import check_scenes

ALL_CLASSES = -1  # the class dropdown's value for "all classes" (the heatmap's maximum over classes)
HEATMAP_CMAP = "magma"  # dark 0, bright 1: the peaks stand out
TITLE_SIZE = 12  # points, at 100 dpi: readable on a projector
MAX_TAGS = 8  # box tags are the slowest text to draw: the best few only (the scores sort the boxes)


def centernet_view(
    outputs: dict[str, Tensor],
    image_size: tuple[int, int],
    class_index: int | None,
    threshold: float,
    stride: int = 4,
) -> dict[str, Any]:
    """The heatmap shown, its peaks above ``threshold`` and their decoded boxes, for one image.

    Decoding as ``CenterNet.forward`` in eval mode (Sec. 4 of Zhou et al. 2019): the sigmoid of the
    heatmap logits, the peaks of each class's map (3 x 3 max pooling, :func:`heatmap_peaks`) with a
    score strictly above ``threshold``, and at each peak ``(x, y)`` the box of centre
    ``((x + offset_x) * stride, (y + offset_y) * stride)`` and sides ``size``, clipped to the image.
    Unlike the model, which keeps its ``max_detections`` best peaks, every peak above the threshold
    is kept here.

    Args:
        outputs: one image's raw output, ``heatmap`` logits Tensor[K, h, w], ``size`` and ``offset``
            Tensor[2, h, w] (``CenterNet.predict(images)[0]``, indexed by image).
        image_size: ``(height, width)`` of the image, to clip the boxes to.
        class_index: a class in ``0..K-1``, or None for all classes (the heatmap shown is then the
            maximum over the classes; the peaks are still those of each class's own map).
        threshold: in [0, 1].
        stride: input pixels per map cell.

    Returns:
        dict with ``heatmap`` (Tensor[h, w], in [0, 1]), ``scores`` (Tensor[P], best first, ties by
        class, row, column), ``classes`` (int64 Tensor[P] in ``0..K-1``), ``ys``, ``xs`` (int64
        Tensor[P], map cells), ``boxes`` (Tensor[P, 4] ``xyxy`` pixels), ``labels`` (``classes + 1``),
        ``num_peaks`` (P), ``class_index``, ``threshold``, ``stride``.
    """
    if not isinstance(outputs, dict) or not {"heatmap", "size", "offset"} <= set(outputs):
        raise ValueError(f"outputs: expected a dict with 'heatmap', 'size' and 'offset', got {outputs!r:.60}")
    logits = check_tensor(outputs["heatmap"], "outputs['heatmap']")
    if logits.dim() != 3 or 0 in logits.shape:
        raise ValueError(f"outputs['heatmap']: expected a non-empty Tensor[K, h, w], got shape "
                         f"{tuple(logits.shape)}")
    K, h, w = logits.shape  # classes, map height, map width
    for name in ("size", "offset"):
        check_tensor(outputs[name], f"outputs[{name!r}]")
        if outputs[name].shape != (2, h, w):
            raise ValueError(f"outputs[{name!r}]: expected a Tensor[2, {h}, {w}], got shape "
                             f"{tuple(outputs[name].shape)}")
    image_size = check_pair(image_size, "image_size", low=1)
    if class_index is not None:
        check_number(class_index, "class_index", 0, K - 1, integer=True)
    check_number(threshold, "threshold", 0.0, 1.0)
    check_number(stride, "stride", 1, integer=True)
    heat = torch.sigmoid(logits.detach().float().cpu())  # (K, h, w)
    size, offset = outputs["size"].detach().float().cpu(), outputs["offset"].detach().float().cpu()
    scores, classes, ys, xs = heatmap_peaks(heat, k=heat.numel())  # (K*h*w,) each, best first
    keep = scores > threshold  # strictly, as the model's score_thresh
    if class_index is not None:
        keep &= classes == class_index
    scores, classes, ys, xs = scores[keep], classes[keep], ys[keep], xs[keep]  # (P,) each
    # The same operations as CenterNet.forward, so that the boxes are the model's to the bit.
    centre_x = (xs + offset[0, ys, xs]) * stride  # (P,)
    centre_y = (ys + offset[1, ys, xs]) * stride
    half_w, half_h = size[:, ys, xs] / 2  # (P,), (P,)
    boxes = torch.stack((centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h), dim=1)
    boxes = clip_boxes_to_image(boxes, image_size)  # (P, 4)
    shown = heat.max(dim=0).values if class_index is None else heat[class_index]  # (h, w)
    return {
        "heatmap": shown,
        "scores": scores,
        "classes": classes,
        "ys": ys,
        "xs": xs,
        "boxes": boxes,
        "labels": classes + 1,
        "num_peaks": int(keep.sum()),
        "class_index": class_index,
        "threshold": float(threshold),
        "stride": stride,
    }


def matched_objects(
    boxes: Tensor, labels: Tensor, gt_boxes: Tensor, gt_labels: Tensor, iou_threshold: float = 0.5
) -> Tensor:
    """Which objects a box of the same class covers at IoU >= ``iou_threshold`` (PASCAL's criterion).

    Not a one-to-one matching (as AP's): two objects may be covered by one box. A box with a
    negative side (the size head can predict one, and ``CenterNet.forward`` keeps it) covers
    nothing. Returns bool Tensor[M], one per ground-truth box; all False without boxes.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` detections; labels (Tensor[N]) their classes.
        gt_boxes (Tensor[M, 4]): ``xyxy`` objects; gt_labels (Tensor[M]) their classes.
    """
    check_boxes(boxes, "boxes")
    check_boxes(gt_boxes, "gt_boxes")
    check_number(iou_threshold, "iou_threshold", 0.0, 1.0)
    proper = (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])  # (N,)
    boxes, labels = boxes[proper], labels[proper]
    if len(boxes) == 0 or len(gt_boxes) == 0:
        return torch.zeros(len(gt_boxes), dtype=torch.bool)
    same_class = gt_labels.cpu()[:, None] == labels.cpu()[None, :]  # (M, N)
    iou = box_iou(gt_boxes.float().cpu(), boxes.float().cpu())  # (M, N)
    return ((iou >= iou_threshold) & same_class).any(dim=1)  # (M,)


class CenterNetExplorer(Explorer):
    """Choose a scene, a class and a threshold; see CenterNet's heatmap, its peaks and their boxes.

    Left: the image, the ground truth (thin, dashed, in its class colour) and the boxes decoded at
    the peaks above the threshold (in the class colour, tagged with the score). Right: the class's
    heatmap (sigmoid, colours from 0 to 1; "all classes": the maximum over classes) over the faint
    image, and its peaks above the threshold (rings in the class colour), or the image
    and the peaks only.

    Controls: ``scene``, ``class_index`` (a dropdown; -1 for all classes), ``threshold`` and
    ``heatmap`` (show the heatmap, or the peaks only). The model runs once per scene (cached);
    the other controls only redraw.

    Args:
        model: a :class:`~course_lib.models.centernet.CenterNet` in eval mode.
        scenes: ``(image Tensor[3, H, W], target {"boxes", "labels"})`` pairs: a list, or a dataset
            such as ``ShapeScenes.split("test")`` (read once, whole).
    """

    def __init__(self, model: CenterNet, scenes: Sequence[tuple[Tensor, dict]]) -> None:
        if not isinstance(model, CenterNet):
            raise TypeError(f"model: expected a course_lib.models.centernet.CenterNet, "
                            f"got {type(model).__name__}")
        if model.training:
            raise ValueError("model: expected a model in eval mode (call model.eval()), got training mode")
        if hasattr(scenes, "__len__") and hasattr(scenes, "__getitem__") and not isinstance(scenes, dict):
            scenes = [scenes[index] for index in range(len(scenes))]  # a list, or a dataset (ShapeScenes)
        if not isinstance(scenes, list) or not all(isinstance(pair, tuple | list) and len(pair) == 2
                                                   for pair in scenes):
            raise ValueError(f"scenes: expected a list of (image, target) pairs, got {scenes!r:.60}")
        self.images, self.targets = [image for image, _ in scenes], [target for _, target in scenes]
        check_scenes(self.images, self.targets)
        self.model = model
        self.class_names = tuple(CLASSES[1:]) if model.num_classes == NUM_CLASSES else tuple(
            f"class {k}" for k in range(1, model.num_classes + 1))
        self._outputs: dict[int, tuple[dict[str, Tensor], tuple[int, int]]] = {}
        options = [("all classes", ALL_CLASSES), *((name, k) for k, name in enumerate(self.class_names))]
        controls = {
            "scene": widgets.IntSlider(value=0, min=0, max=len(self.images) - 1, description="scene",
                                       continuous_update=True, style=WIDE_LABEL),
            "class_index": widgets.Dropdown(options=options, value=ALL_CLASSES, description="class",
                                            style=WIDE_LABEL),
            "threshold": widgets.FloatSlider(value=0.3, min=0.05, max=0.95, step=0.05,
                                             description="peak score >", readout_format=".2f",
                                             continuous_update=True, style=WIDE_LABEL),
            "heatmap": widgets.Checkbox(value=True, description="show the heatmap (else the peaks only)",
                                        indent=False),
        }
        caption = ("<div style='font-size: 0.9em'>left: ground truth (thin, dashed) and the boxes decoded at "
                   "the peaks (class colour, score) &nbsp; right: sigmoid heatmap, dark 0 to bright 1; "
                   "rings: peaks = pixels equal to the max of their 3 × 3 neighbourhood, score above the "
                   "threshold (CenterNet's NMS)</div>")
        super().__init__(controls, num_axes=2, figsize=(9.0, 4.6), dpi=100, caption=caption, palette=True,
                         margins={"left": 0.01, "right": 0.99, "bottom": 0.02, "top": 0.91, "wspace": 0.05})

    def model_output(self, index: int) -> tuple[dict[str, Tensor], tuple[int, int]]:
        """Scene ``index``'s raw output (``heatmap``, ``size``, ``offset``) and image size (run once)."""
        if index not in self._outputs:
            with torch.no_grad():
                outputs, sizes = self.model.predict([self.images[index]])  # each (1, ..., h, w)
            self._outputs[index] = ({name: value[0].cpu() for name, value in outputs.items()}, sizes[0])
        return self._outputs[index]

    def compute(self, scene: int, class_index: int, threshold: float, heatmap: bool) -> dict[str, Any]:
        outputs, image_size = self.model_output(scene)
        chosen = None if class_index == ALL_CLASSES else class_index
        view = centernet_view(outputs, image_size, chosen, round(threshold, 4), self.model.stride)
        target = self.targets[scene]
        gt_boxes, gt_labels = target["boxes"], target["labels"]
        if chosen is not None:
            mine = gt_labels == chosen + 1
            gt_boxes, gt_labels = gt_boxes[mine], gt_labels[mine]
        matched = matched_objects(view["boxes"], view["labels"], gt_boxes, gt_labels)
        return {**view, "scene": scene, "show_heatmap": heatmap, "num_objects": len(gt_boxes),
                "num_matched": int(matched.sum())}

    def background_key(self, result: dict[str, Any]) -> Any:
        return result["scene"], result["class_index"], result["show_heatmap"]  # the photo, truth, heatmap

    def draw_background(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, heat_ax = ax
        image = self.images[result["scene"]]
        show_image(image_ax, image)
        target = self.targets[result["scene"]]
        colors = [class_color(label) for label in target["labels"].tolist()]  # untagged: the boxes have tags
        draw_boxes(image_ax, target["boxes"], color=colors, linestyle="--", linewidth=1)
        picture = show_image(heat_ax, image)
        height, width = picture.get_array().shape[:2]
        if result["show_heatmap"]:
            picture.set_alpha(0.35)  # faint under the heatmap
            h, w = result["heatmap"].shape
            stride = result["stride"]
            # The map covers the padded input (a multiple of 32 pixels): crop the view to the image.
            heat_ax.imshow(result["heatmap"].numpy(), extent=(0, w * stride, h * stride, 0),
                           cmap=HEATMAP_CMAP, vmin=0.0, vmax=1.0, alpha=0.75, interpolation="nearest")
        for axes in (image_ax, heat_ax):
            axes.set_xlim(0, width)
            axes.set_ylim(height, 0)

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, heat_ax = ax
        labels = result["labels"].tolist()
        # The best MAX_TAGS boxes tagged, one rectangle each; the others (hundreds at a low threshold
        # of an untrained model) as one collection, which draws many times faster.
        draw_boxes(image_ax, result["boxes"][:MAX_TAGS], labels=labels[:MAX_TAGS],
                   scores=result["scores"][:MAX_TAGS].tolist(),
                   class_names=CLASSES if self.model.num_classes == NUM_CLASSES else None, linewidth=2.5)
        outline_boxes(image_ax, result["boxes"][MAX_TAGS:],
                      edgecolors=[class_color(k) for k in labels[MAX_TAGS:]], linewidths=1.5)
        if result["num_peaks"]:
            stride = result["stride"]
            centres_x = (result["xs"].float() + 0.5) * stride  # the centre of the peak's cell, in pixels
            centres_y = (result["ys"].float() + 0.5) * stride
            # Hollow rings in the class colour: the peak's own pixel stays visible inside.
            heat_ax.scatter(centres_x.numpy(), centres_y.numpy(), s=90, facecolors="none",
                            edgecolors=[class_color(k) for k in labels], linewidths=2, zorder=3)
        name = "all classes" if result["class_index"] is None else self.class_names[result["class_index"]]
        image_ax.set_title(f"scene {result['scene']} · {plural(result['num_peaks'], 'box', 'boxes')} · "
                           f"{result['num_matched']}/{result['num_objects']} objects found",
                           fontsize=TITLE_SIZE)
        heat_ax.set_title(f"heatmap of {name} · {plural(result['num_peaks'], 'peak')} > "
                          f"{result['threshold']:.2f}", fontsize=TITLE_SIZE)

    def summary(self, result: dict[str, Any]) -> str:
        name = "all classes" if result["class_index"] is None else self.class_names[result["class_index"]]
        objects = "object" if result["class_index"] is None else f"{name} object"
        return (f"scene {result['scene']}, {name}: {plural(result['num_peaks'], 'peak')} with score > "
                f"{result['threshold']:.2f}, so {plural(result['num_peaks'], 'box', 'boxes')} · "
                f"{result['num_matched']} of {plural(result['num_objects'], objects)} found by a box of "
                "its class at IoU ≥ 0.5")
