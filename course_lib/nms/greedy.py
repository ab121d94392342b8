"""Greedy non-maximum suppression, as the lecture teaches it.

A detector proposes many overlapping boxes per object. NMS keeps one box per object in five steps:

1. sort the boxes by score;
2. select the highest-scoring remaining box and keep it;
3. compute its IoU with the remaining boxes;
4. remove those whose IoU is above the threshold;
5. repeat from step 2 until no box remains.

``nms`` is that loop, ``batched_nms`` runs it per category, and ``nms_steps`` records each pass of
the loop for the notebook's animation. They return what ``torchvision.ops.nms`` and
``batched_nms`` return, index for index. Models call ``course_lib.nms.fast``, the same algorithm
rearranged to do its work in a few large tensor ops; tests check the two equal.

A box is removed when its IoU with a kept box is strictly greater than ``iou_threshold``, as in
torchvision; the lecture's slide says ">=", which differs only for an IoU exactly on the threshold.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from course_lib._checks import check_boxes, check_number, check_scores, check_tensor
from course_lib.boxes import box_iou, upcast_boxes


def check_nms_args(boxes: Tensor, scores: Tensor, iou_threshold: float) -> None:
    """Check the arguments every NMS takes; raise ``ValueError``/``TypeError`` if one is wrong.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes, finite, with ``x2 >= x1`` and ``y2 >= y1``.
        scores (Tensor[N]): a finite score per box.
        iou_threshold: a number in [0, 1].
    """
    check_boxes(boxes, allow_degenerate=False)
    check_scores(scores, boxes.shape[0])
    check_number(iou_threshold, "iou_threshold", low=0.0, high=1.0)


def check_batched_nms_args(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> None:
    """``check_nms_args``, and ``idxs`` must be an integer ``Tensor[N]`` (one category per box)."""
    check_nms_args(boxes, scores, iou_threshold)
    check_tensor(idxs, "idxs")
    if idxs.shape != scores.shape or idxs.is_floating_point() or idxs.dtype == torch.bool:
        raise ValueError(
            f"idxs: expected an integer Tensor[{boxes.shape[0]}], got shape {tuple(idxs.shape)}, {idxs.dtype}"
        )


@functools.lru_cache(maxsize=64)
def threshold_as(iou_threshold: float, dtype: torch.dtype) -> float:
    """The largest value of ``dtype`` not above ``iou_threshold``: ``iou > it`` is ``iou > iou_threshold``.

    torchvision's C++ kernel compares a float32 IoU with a double threshold. torch would round the
    threshold to the nearest float32 instead (0.1 becomes 0.10000000149), and so keep a box whose
    IoU is that float, which torchvision removes. Rounding down gives, for every IoU of ``dtype``,
    the answer of the comparison in double.

    Args:
        iou_threshold: the threshold, a Python float (a double).
        dtype: the floating-point dtype of the IoUs it will be compared with.

    Returns:
        The threshold as a Python float whose value ``dtype`` represents exactly.
    """
    threshold = torch.tensor(iou_threshold, dtype=torch.float64).to(dtype)
    if threshold.item() > iou_threshold:  # rounded up: step one value of dtype down
        threshold = torch.nextafter(threshold, torch.tensor(-1.0, dtype=dtype))
    return threshold.item()


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression, in the lecture's five steps, as ``torchvision.ops.nms``.

    Each pass keeps the best box left and computes one row of IoUs, so the loop costs
    ``O(N * K)`` IoUs for ``K`` kept boxes. ``course_lib.nms.fast_nms`` gives the same result faster.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes.
        scores (Tensor[N]): a score per box.
        iou_threshold: discard boxes whose IoU with a kept box is ``> iou_threshold``, in [0, 1].

    Returns:
        Tensor[K]: int64 indices of the kept boxes, by decreasing score; equal scores are taken in
        the order of their index (a stable sort), as torchvision's CPU kernel does.
    """
    check_nms_args(boxes, scores, iou_threshold)
    boxes = upcast_boxes(boxes)  # float16 is compared in float32, where box_iou computes it
    # In the IoUs' dtype, rounded down: "iou > threshold" then answers as torchvision's test in double.
    threshold = threshold_as(iou_threshold, boxes.dtype)
    # (1) Sort by score, best first; equal scores stay in the order of their index.
    remaining = torch.sort(scores, descending=True, stable=True).indices  # (N,)
    keep = []
    while remaining.numel():  # (5) repeat until no box remains
        # (2) Select the highest-scoring remaining box and keep it.
        best, remaining = remaining[0], remaining[1:]  # (), (R,)
        keep.append(int(best))
        # (3) Its IoU with every remaining box.
        ious = box_iou(boxes[best][None], boxes[remaining])[0]  # (R,)
        # (4) Remove the boxes that overlap it too much.
        overlaps_too_much = ious > threshold  # (R,)
        remaining = remaining[~overlaps_too_much]  # (R',)
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each category: boxes with different ``idxs`` never suppress each other.

    Run ``nms`` on the boxes of each category, then merge the kept boxes by score. torchvision
    does the same above 1000 boxes on CPU; below, it shifts each category's boxes apart by an
    offset and runs one ``nms``. That trick is wrong for negative coordinates (two categories can
    then overlap), and an IoU computed on shifted coordinates may round differently in its last
    bit; ``course_lib.nms.fast_batched_nms`` reproduces it exactly.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes.
        scores (Tensor[N]): a score per box.
        idxs (Tensor[N]): integer category of each box.
        iou_threshold: discard boxes whose IoU with a kept box of its category is ``> iou_threshold``.

    Returns:
        Tensor[K]: int64 indices of the kept boxes, by decreasing score (ties by lower index).
    """
    check_batched_nms_args(boxes, scores, idxs, iou_threshold)
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    keep = []
    for category in idxs.unique():
        members = torch.nonzero(idxs == category)[:, 0]  # (M,) this category's boxes
        keep.append(members[nms(boxes[members], scores[members], iou_threshold)])  # (K_c,)
    keep = torch.cat(keep).sort().values  # (K,) by index, so that the stable sort puts ties in index order
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]  # (K,)


def nms_steps(boxes: Tensor, scores: Tensor, iou_threshold: float) -> list[dict[str, Tensor | int]]:
    """Greedy NMS one step at a time, recording each step (for the notebook's animation).

    The loop of ``nms``, which also records what each pass saw. The ``selected`` boxes of the
    steps, in order, are ``nms(boxes, scores, iou_threshold)``.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes.
        scores (Tensor[N]): a score per box.
        iou_threshold: remove boxes whose IoU with the selected box is ``> iou_threshold``.

    Returns:
        One dict per step: ``"selected"`` (int, index of the box kept), ``"candidates"``
        (LongTensor[R], the other remaining boxes by decreasing score), ``"ious"`` (Tensor[R], their
        IoU with the selected box; 0 between two boxes of zero area), ``"removed"`` (LongTensor,
        those over the threshold) and ``"remaining"`` (LongTensor, those left for the next step).
    """
    check_nms_args(boxes, scores, iou_threshold)
    boxes = upcast_boxes(boxes)
    threshold = threshold_as(iou_threshold, boxes.dtype)
    remaining = torch.sort(scores, descending=True, stable=True).indices  # (N,)
    steps = []
    while remaining.numel():
        selected, candidates = remaining[0], remaining[1:]  # (), (R,)
        ious = box_iou(boxes[selected][None], boxes[candidates])[0]  # (R,)
        over = ious > threshold  # (R,)
        remaining = candidates[~over]
        steps.append(
            {
                "selected": int(selected),
                "candidates": candidates,
                "ious": ious,
                "removed": candidates[over],
                "remaining": remaining,
            }
        )
    return steps
