"""How good is a list of ranked proposals? Recall and (mean) average best overlap.

Section 4 of Uijlings et al., "Selective Search for Object Recognition", IJCV 2013: the *best
overlap* of a ground-truth box is its largest IoU with any proposal; *recall* at IoU ``t`` is the
fraction of ground-truth boxes whose best overlap is ``>= t``; the *ABO* of a class is the mean best
overlap of its boxes, and *MABO* the mean ABO over classes. Both are measured on the first ``n``
proposals for growing ``n``, since a detector only looks at the top of the list.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from course_lib._checks import check_boxes, check_number, check_tensor
from course_lib.boxes import box_iou

DEFAULT_COUNTS = (10, 50, 100, 200, 500, 1000, 2000)


def best_overlaps(proposals: Tensor, gt_boxes: Tensor, counts: Sequence[int] = DEFAULT_COUNTS) -> Tensor:
    """Best IoU of each ground-truth box with the first ``n`` proposals, for each ``n`` in ``counts``.

    Args:
        proposals (Tensor[N, 4]): xyxy proposals, best-ranked first.
        gt_boxes (Tensor[G, 4]): xyxy ground-truth boxes.
        counts: numbers of proposals; a count above ``N`` uses all ``N``.

    Returns:
        Tensor[len(counts), G] float32; 0 where there is no proposal.
    """
    check_boxes(proposals, "proposals")
    check_boxes(gt_boxes, "gt_boxes")
    counts = _check_counts(counts)
    if len(proposals) == 0 or len(gt_boxes) == 0:
        return torch.zeros(len(counts), len(gt_boxes), device=gt_boxes.device)
    overlaps = box_iou(proposals.float(), gt_boxes.float())  # (N, G)
    running_best = overlaps.cummax(dim=0).values  # (N, G): best of the first i + 1 proposals
    rows = torch.tensor([min(count, len(proposals)) - 1 for count in counts], device=proposals.device)
    best = running_best[rows]  # (len(counts), G)
    best[torch.tensor([count == 0 for count in counts], device=best.device)] = 0
    return best


def proposal_recall(
    proposals: Tensor | Sequence[Tensor],
    gt_boxes: Tensor | Sequence[Tensor],
    iou_threshold: float = 0.5,
    counts: Sequence[int] = DEFAULT_COUNTS,
) -> dict[int, float]:
    """Fraction of ground-truth boxes covered (IoU >= ``iou_threshold``) by the first ``n`` proposals.

    Args:
        proposals: ``Tensor[N, 4]`` for one image, or a list with one tensor per image.
        gt_boxes: ``Tensor[G, 4]`` for one image, or a list with one tensor per image.
        iou_threshold: the overlap that counts as found (0.5 in the paper).
        counts: numbers of proposals.

    Returns:
        ``{n: recall}`` over all ground-truth boxes of all images; 0.0 when there are none.
    """
    check_number(iou_threshold, "iou_threshold", low=0, high=1)
    best = _all_best_overlaps(proposals, gt_boxes, counts)  # (len(counts), G_total)
    if best.shape[1] == 0:
        return {int(count): 0.0 for count in counts}
    recall = (best >= iou_threshold).float().mean(dim=1)
    return {int(count): float(value) for count, value in zip(counts, recall, strict=True)}


def mabo(
    proposals: Tensor | Sequence[Tensor],
    gt_boxes: Tensor | Sequence[Tensor],
    labels: Tensor | Sequence[Tensor] | None = None,
    counts: Sequence[int] = DEFAULT_COUNTS,
) -> dict[int, float]:
    """Mean average best overlap of the first ``n`` proposals (Section 4 of Uijlings et al. 2013).

    Args:
        proposals: ``Tensor[N, 4]`` for one image, or a list with one tensor per image.
        gt_boxes: ``Tensor[G, 4]`` for one image, or a list with one tensor per image.
        labels: the class of each ground-truth box (same nesting as ``gt_boxes``). With labels, the
            average best overlap is taken per class and then averaged over classes (the paper's
            MABO); without, over all boxes (ABO).
        counts: numbers of proposals.

    Returns:
        ``{n: mabo}``; 0.0 when there is no ground truth.
    """
    best = _all_best_overlaps(proposals, gt_boxes, counts)  # (len(counts), G_total)
    if best.shape[1] == 0:
        return {int(count): 0.0 for count in counts}
    if labels is None:
        values = best.mean(dim=1)
    else:
        labels = _as_list(labels, "labels")
        flat = torch.cat([check_tensor(item, "labels").reshape(-1) for item in labels]) if labels else None
        if flat is None or len(flat) != best.shape[1]:
            raise ValueError(f"labels: expected one label per ground-truth box ({best.shape[1]}), got "
                             f"{0 if flat is None else len(flat)}")
        classes = flat.unique()
        values = torch.stack([best[:, flat == label].mean(dim=1) for label in classes]).mean(dim=0)
    return {int(count): float(value) for count, value in zip(counts, values, strict=True)}


def _all_best_overlaps(proposals, gt_boxes, counts) -> Tensor:
    proposals, gt_boxes = _as_list(proposals, "proposals"), _as_list(gt_boxes, "gt_boxes")
    if len(proposals) != len(gt_boxes):
        raise ValueError(f"expected as many proposal lists as ground-truth lists, got {len(proposals)} "
                         f"and {len(gt_boxes)}")
    counts = _check_counts(counts)
    parts = [best_overlaps(p, g, counts) for p, g in zip(proposals, gt_boxes, strict=True)]
    return torch.cat(parts, dim=1) if parts else torch.zeros(len(counts), 0)


def _as_list(value, name: str) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    raise TypeError(f"{name}: expected a Tensor or a list of Tensors, got {type(value).__name__}")


def _check_counts(counts) -> tuple[int, ...]:
    if isinstance(counts, int) or not isinstance(counts, Sequence) or not counts:
        raise TypeError(f"counts: expected a non-empty sequence of ints, got {counts!r}")
    for count in counts:
        check_number(count, "counts", low=0, integer=True)
    return tuple(counts)
