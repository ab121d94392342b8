"""What an explanation explains: the one score per image that every attribution method differentiates.

Every method of the chapter (saliency, deconvnet, guided backprop, occlusion, CAM, Grad-CAM) asks
the same question of a network: *which parts of the input make this score high?* The ``target``
says which score, as in Captum:

* an ``int``: that output of a classifier, for every image (``model(images)[:, target]``);
* a sequence or ``Tensor[B]`` of ints: one class per image (each crop's own label);
* a callable: from the model's output to ``Tensor[B]``, one scalar per image. This is how an
  explanation reaches any head, as the Grad-CAM paper says: :func:`detection_score` picks one
  detection of a detector's output.

Inputs follow the models: a classifier takes ``Tensor[B, C, H, W]``; a detector of the course
takes a list of ``Tensor[3, H, W]`` (torchvision's convention), so a list of images is passed to
the model as a list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from course_lib._checks import check_boxes, check_tensor
from course_lib.boxes import box_iou

Target = int | Sequence[int] | Tensor | Callable[[Any], Tensor]


def as_batch(images: Any) -> Tensor:
    """``images`` as one ``Tensor[B, C, H, W]``: a 4-d tensor, or a list of same-sized ``Tensor[C, H, W]``.

    Raises:
        TypeError / ValueError: naming what was expected and what came.
    """
    if isinstance(images, Tensor):
        if images.dim() != 4:
            raise ValueError(f"images: expected a Tensor[B, C, H, W], got shape {tuple(images.shape)}")
        batch = images
    elif isinstance(images, Sequence) and not isinstance(images, str):
        for index, image in enumerate(images):
            check_tensor(image, f"images[{index}]")
            if image.dim() != 3:
                raise ValueError(
                    f"images[{index}]: expected a Tensor[C, H, W], got shape {tuple(image.shape)}"
                )
            if image.shape != images[0].shape:
                raise ValueError(
                    f"images[{index}]: expected the size of images[0], {tuple(images[0].shape)}, "
                    f"got {tuple(image.shape)}"
                )
        batch = torch.stack(list(images)) if len(images) else torch.zeros(0, 3, 0, 0)
    else:
        raise TypeError(
            f"images: expected a Tensor[B, C, H, W] or a list of Tensor[C, H, W], got {type(images).__name__}"
        )
    if not batch.is_floating_point():
        raise TypeError(f"images: expected a float tensor, got dtype {batch.dtype}")
    return batch


def run_model(model: nn.Module, batch: Tensor, as_list: bool) -> Any:
    """``model(batch)``, or ``model(list(batch))`` for a model that takes a list (a detector)."""
    return model(list(batch)) if as_list else model(batch)


def target_scores(outputs: Any, target: Target, batch_size: int) -> Tensor:
    """The score to explain, one per image, from the model's ``outputs``.

    Args:
        outputs: what the model returned (``Tensor[B, K]`` for a classifier).
        target: a class index, one class index per image, or a callable ``outputs -> Tensor[B]``.
        batch_size: B, the number of images.

    Returns:
        Tensor[B], still attached to the graph.
    """
    if callable(target) and not isinstance(target, Tensor):
        scores = target(outputs)
        if not isinstance(scores, Tensor) or scores.shape != (batch_size,):
            shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
            raise ValueError(f"target: expected the callable to return a Tensor[{batch_size}], got {shape}")
        return scores
    if not isinstance(outputs, Tensor) or outputs.dim() != 2 or outputs.shape[0] != batch_size:
        got = tuple(outputs.shape) if isinstance(outputs, Tensor) else type(outputs).__name__
        raise ValueError(
            f"target: a class index needs outputs Tensor[{batch_size}, K]; got {got} "
            "(pass a callable from the output to one score per image)"
        )
    classes = class_indices(target, batch_size, outputs.shape[1]).to(outputs.device)  # (B,)
    return outputs.gather(1, classes[:, None])[:, 0]  # (B,)


def class_indices(target: Any, batch_size: int, num_classes: int | None = None) -> Tensor:
    """``target`` (an int, or one int per image) as ``Tensor[B]`` int64, each checked against K if given."""
    if isinstance(target, bool) or not isinstance(target, int | Sequence | Tensor):
        raise TypeError(
            "target: expected a class index, one class index per image, or a callable, "
            f"got {type(target).__name__}"
        )
    if isinstance(target, int):
        classes = torch.full((batch_size,), target, dtype=torch.int64)
    else:
        empty = isinstance(target, Sequence) and len(target) == 0
        classes = torch.zeros(0, dtype=torch.int64) if empty else torch.as_tensor(target)
        if classes.is_floating_point() or classes.dtype == torch.bool:
            raise TypeError(f"target: expected integer class indices, got dtype {classes.dtype}")
        if classes.dim() == 0:
            classes = classes.expand(batch_size)
        if classes.shape != (batch_size,):
            raise ValueError(
                f"target: expected one class per image, {batch_size}, got shape {tuple(classes.shape)}"
            )
        classes = classes.long()
    if num_classes is not None and classes.numel() and (classes.min() < 0 or classes.max() >= num_classes):
        raise ValueError(f"target: expected class indices in [0, {num_classes - 1}], got {classes.tolist()}")
    return classes


def detection_score(boxes: Tensor, labels: Sequence[int] | Tensor, iou_threshold: float = 0.5) -> Callable:
    """A target for a detector: the score of the detection that matches a chosen box, per image.

    The detections are recomputed on every forward pass, so the chosen one is found again by what it
    is, not by its index: among the detections with the same label, the one of highest IoU with
    ``boxes[i]``, if that IoU is at least ``iou_threshold`` (pytorch-grad-cam's
    ``FasterRCNNBoxScoreTarget`` sums every such detection's score; here one detection is
    explained). An image where none matches scores 0, still attached to the graph, so its map is 0.

    Args:
        boxes: Tensor[B, 4] xyxy, the chosen detection of each image (usually taken from a first
            run of the detector).
        labels: Tensor[B], the chosen detections' classes.
        iou_threshold: how closely a detection must overlap the chosen box.

    Returns:
        A callable from the detector's output (a list of B dicts) to Tensor[B].
    """
    check_boxes(boxes, "boxes")
    labels = torch.as_tensor(labels).reshape(-1)
    if labels.shape[0] != boxes.shape[0]:
        raise ValueError(f"labels: expected one label per box, {boxes.shape[0]}, got {labels.shape[0]}")

    def score(outputs: list[dict[str, Tensor]]) -> Tensor:
        if not isinstance(outputs, list | tuple) or len(outputs) != boxes.shape[0]:
            raise ValueError(f"target: expected a detector's output, a list of {boxes.shape[0]} dicts")
        per_image = []
        for output, box, label in zip(outputs, boxes, labels, strict=True):
            same = output["labels"] == label  # (N,)
            overlaps = box_iou(box[None].to(output["boxes"]), output["boxes"].detach())[0]  # (N,)
            overlaps = torch.where(same, overlaps, torch.full_like(overlaps, -1.0))
            if overlaps.numel() and overlaps.max() >= iou_threshold:
                per_image.append(output["scores"][overlaps.argmax()])
            else:
                per_image.append(output["scores"].sum() * 0.0)
        return torch.stack(per_image)  # (B,)

    return score
