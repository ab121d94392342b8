"""Checker for the SSD chapter's exercise: matching default boxes to the objects.

The student writes ``match_default_boxes(default_boxes, gt_boxes, gt_labels, iou_threshold=0.5)``:
``default_boxes`` a ``Tensor[N, 4]``, ``gt_boxes`` a ``Tensor[M, 4]`` (both ``xyxy``),
``gt_labels`` a ``Tensor[M]`` int64 of classes ``1..K``; the answer is the ``Tensor[N]`` int64 class
each default box must predict, ``0`` for background. The rule of SSD (Liu et al. 2016, Sec. 2.2,
"Matching strategy"):

* each default box looks at its *best* object (highest IoU; the first one on ties);
* it takes that object's label when the IoU is >= ``iou_threshold`` (0.5 in the paper);
* each object also claims its best default box(es) (ties included), even below the threshold, so
  that a tiny object still has a positive;
* every other default box, and every box of an image without objects, is background: 0.

A default box that an object claims below the threshold takes the label of *its own* best object
(torchvision's ``Matcher``). Where another object overlaps it more, the paper would give it the
claiming object's label instead; no case below tells the two apart, so both pass.

Reference: ``course_lib.models.ssd.match_default_boxes(...)[0]``.
"""

from __future__ import annotations

from typing import Any

import torch

from course_lib.boxes import box_iou
from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise, to_index_list
from course_lib.models.ssd import match_default_boxes


def reference_match_default_boxes(default_boxes, gt_boxes, gt_labels, iou_threshold=0.5) -> torch.Tensor:
    """The expected answer: ``Tensor[N]`` int64 classes, 0 for background."""
    return match_default_boxes(default_boxes, gt_boxes, gt_labels, iou_threshold)[0]


def _variant(default_boxes, gt_boxes, gt_labels, iou_threshold=0.5, best_per_object=True, positive="ge",
             output="label", shift=0, threshold=None, claimed_by="own"):
    """The matching with switches that reproduce the typical mistakes."""
    threshold = iou_threshold if threshold is None else threshold
    num_boxes = default_boxes.shape[0]
    classes = torch.zeros(num_boxes, dtype=torch.int64)
    if gt_boxes.shape[0] == 0:
        return classes
    iou = box_iou(default_boxes, gt_boxes)  # (N, M)
    best_iou, best_object = iou.max(dim=1)  # (N,), (N,)
    positive = {"ge": best_iou >= threshold, "gt": best_iou > threshold}[positive]  # (N,)
    owner = best_object.clone()
    if best_per_object:
        best_for_each_object = iou.max(dim=0).values  # (M,)
        is_best = (iou == best_for_each_object) & (best_for_each_object > 0)  # (N, M)
        claimed = is_best.any(dim=1) & ~positive
        if claimed_by == "claimer":  # the paper's reading: the object that claims the box gives its label
            owner[claimed] = is_best[claimed].int().argmax(dim=1)
        positive = positive | claimed
    values = {"label": gt_labels[owner].to(torch.int64) + shift, "index": owner}[output]
    classes[positive] = values[positive]
    return classes


def _boxes(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def _labels(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


def _compare(got: list[int], expected: list[int]) -> str | None:
    if len(got) != len(expected):
        return f"expected {len(expected)} classes (one per default box), got {len(got)}"
    wrong = [i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e]
    if not wrong:
        return None
    first = wrong[0]
    return f"default box {first}: expected {expected[first]}, got {got[first]}"


# A 4 x 4 grid of 10-px default boxes over a 40-px image (the first row: 0 to 3, left to right).
_GRID = _boxes([[x, y, x + 10, y + 10] for y in range(0, 40, 10) for x in range(0, 40, 10)])
# Default box 1 is the object itself (IoU 1); default box 0 overlaps it with IoU 50 / 100 = 0.5 exactly,
# in float32 too; default box 2 with 40 / 100 = 0.4, below.
_EXACTLY_HALF = (_boxes([[0, 0, 10, 5], [0, 0, 10, 10], [0, 0, 10, 4], [20, 20, 30, 30]]),
                 _boxes([[0, 0, 10, 10]]), _labels([2]))

MATCH_DEFAULT_BOXES = Exercise(
    name="match_default_boxes",
    signature="match_default_boxes(default_boxes, gt_boxes, gt_labels, iou_threshold=0.5) -> Tensor[N] "
    "classes",
    reference=reference_match_default_boxes,
    cases=[
        Case("two objects on a grid of default boxes",
             (_GRID, _boxes([[0, 0, 10, 10], [22, 21, 32, 31]]), _labels([3, 1]), 0.5),
             hint="a default box with IoU >= 0.5 with its best object takes that object's label "
             "(gt_labels[best]); the others are background, 0."),
        Case("IoU exactly 0.5", (*_EXACTLY_HALF, 0.5),
             hint="IoU >= iou_threshold is a match: an IoU of exactly 0.5 gives the object's label."),
        Case("a tiny object, best IoU below 0.5",
             (_GRID, _boxes([[12, 12, 16, 16], [20, 0, 40, 10]]), _labels([2, 1]), 0.5),
             hint="each object also takes its best default box, even below the threshold: the 4-px "
             "object overlaps default box 5 with IoU 0.16 only, yet box 5 is class 2."),
        Case("ties: two default boxes equally best for an object",
             (_GRID, _boxes([[5, 0, 15, 10], [30, 30, 40, 40]]), _labels([4, 2]), 0.5),
             hint="the 10-px object straddles default boxes 0 and 1 (IoU 1/3 each): both are its best, "
             "so both take its label."),
        Case("a default box between two objects",
             (_boxes([[0, 0, 10, 10], [0, 0, 10, 6], [0, 4, 10, 10], [30, 30, 40, 40]]),
              _boxes([[0, 0, 10, 6], [0, 4, 10, 10]]), _labels([2, 3]), 0.5),
             hint="default box 0 overlaps both objects with IoU 0.6: on a tie it takes the first object "
             "(the lower index, as argmax does), class 2."),
        Case("another threshold", (*_EXACTLY_HALF, 0.35),
             hint="use the iou_threshold argument: at 0.35 default box 2 (IoU 0.4) also matches."),
        Case("no objects", (_GRID[:5], _boxes([]), _labels([]), 0.5),
             hint="an image without objects: every default box is background, a Tensor[N] of zeros "
             "(a max over zero objects raises, so test len(gt_boxes) == 0 first)."),
    ],
    normalize=to_index_list,
    compare=_compare,
    mistakes=[
        Mistake("each object also takes its best default box(es), even below the threshold (SSD's first "
                "matching step), so that a small object is not left without a positive.",
                lambda *a: _variant(*a, best_per_object=False)),
        Mistake("a match means IoU >= iou_threshold: an IoU of exactly 0.5 is a match.",
                lambda *a: _variant(*a, positive="gt")),
        Mistake("the answer is the matched object's class, gt_labels[index], not the object's index.",
                lambda *a: _variant(*a, output="index")),
        Mistake("gt_labels are already 1..K (0 is background and no object has it): use them as they are, "
                "without adding or subtracting 1.", lambda *a: _variant(*a, shift=1)),
        Mistake("gt_labels are already 1..K (0 is background and no object has it): use them as they are, "
                "without adding or subtracting 1.", lambda *a: _variant(*a, shift=-1)),
        Mistake("use the iou_threshold argument, not a fixed 0.5.", lambda *a: _variant(*a, threshold=0.5)),
    ],
    start_hint="iou = box_iou(default_boxes, gt_boxes); best_iou, best = iou.max(dim=1); "
    "positive = best_iou >= iou_threshold; positive |= (iou == iou.max(dim=0).values).any(dim=1); "
    "classes = torch.where(positive, gt_labels[best], 0).",
)


def check_match_default_boxes(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(default_boxes, gt_boxes, gt_labels, iou_threshold) -> Tensor[N]``: SSD's matching.

    A default box takes the label of its best object when their IoU is >= ``iou_threshold``, or when
    it is that object's best default box; 0 (background) otherwise, and without objects.
    Reference: ``course_lib.models.ssd.match_default_boxes(...)[0]``.
    """
    return run_exercise(MATCH_DEFAULT_BOXES, fn, verbose=verbose)
