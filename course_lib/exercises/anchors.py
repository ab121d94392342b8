"""Checker for the Faster R-CNN chapter's exercise: label anchors with the 0.7 / 0.3 rule.

The student writes ``label_anchors(anchors, gt_boxes)``: ``anchors`` a ``Tensor[N, 4]``,
``gt_boxes`` a ``Tensor[M, 4]`` (both ``xyxy``, float64); the answer is a ``Tensor[N]`` of int64 labels, the
rule of Faster R-CNN's RPN (Ren et al. 2015, Sec. 3.1.2) and torchvision's ``Matcher``:

* each anchor looks at its *best* ground-truth box (highest IoU);
* 1 (object) when that IoU is >= 0.7; 0 (background) when it is < 0.3; -1 (ignored) in between;
* also 1: for each ground-truth box, the anchor(s) with the highest IoU with it (ties included),
  even below 0.7, so that every object has a positive anchor;
* no ground-truth box at all: every anchor is background (0).

Reference: ``course_lib.anchors.label_anchors(anchors, gt_boxes)[0]``.
"""

from __future__ import annotations

from typing import Any

import torch

from course_lib.anchors import label_anchors
from course_lib.boxes import box_iou
from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise, to_index_list


def reference_label_anchors(anchors, gt_boxes) -> torch.Tensor:
    """The expected answer: ``Tensor[N]`` int64 of 1 / 0 / -1."""
    return label_anchors(anchors, gt_boxes)[0]


def _variant(anchors, gt_boxes, low_quality=True, positive="ge", negative="lt", per_gt=False,
             no_gt="background"):
    """The labelling with switches that reproduce the typical mistakes."""
    num_anchors = anchors.shape[0]
    if gt_boxes.shape[0] == 0:
        return torch.full((num_anchors,), {"background": 0, "ignored": -1}[no_gt], dtype=torch.int64)
    iou = box_iou(anchors, gt_boxes)  # (N, M)
    is_positive = {"ge": lambda v: v >= 0.7, "gt": lambda v: v > 0.7}[positive]
    is_negative = {"lt": lambda v: v < 0.3, "le": lambda v: v <= 0.3}[negative]
    labels = torch.full((num_anchors,), -1, dtype=torch.int64)
    if per_gt:  # one ground-truth box after the other: the last one decides
        for column in iou.T:
            labels[is_negative(column)] = 0
            labels[is_positive(column)] = 1
    else:
        best = iou.max(dim=1).values  # (N,)
        labels[is_negative(best)] = 0
        labels[is_positive(best)] = 1
    if low_quality:
        best_for_each_gt = iou.max(dim=0).values  # (M,)
        labels[((iou == best_for_each_gt) & (best_for_each_gt > 0)).any(dim=1)] = 1
    return labels


def _boxes(rows) -> torch.Tensor:
    # float64, so that the IoUs 70 / 100 and 30 / 100 are the very numbers 0.7 and 0.3 of Python.
    return torch.tensor(rows, dtype=torch.float64).reshape(-1, 4)


def _compare(got: list[int], expected: list[int]) -> str | None:
    if len(got) != len(expected):
        return f"expected {len(expected)} labels (one per anchor), got {len(got)}"
    wrong = [i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e]
    if not wrong:
        return None
    first = wrong[0]
    return f"anchor {first}: expected {expected[first]}, got {got[first]}"


# The ground-truth boxes below have an anchor equal to them (IoU 1), so that the low-quality rule
# does not hide the thresholds: anchor 0 has IoU exactly 0.7, anchor 2 exactly 0.3.
_THRESHOLDS = (
    _boxes([[0, 0, 10, 10], [0, 0, 10, 7], [20, 0, 30, 10], [20, 0, 30, 3], [50, 50, 60, 60]]),
    _boxes([[0, 0, 10, 7], [20, 0, 30, 3]]),
)

LABEL_ANCHORS = Exercise(
    name="label_anchors",
    signature="label_anchors(anchors, gt_boxes) -> Tensor[N] of 1 / 0 / -1",
    reference=reference_label_anchors,
    cases=[
        Case("clear positives, negatives and ignored anchors",
             (_boxes([[0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10], [40, 40, 50, 50], [0, 0, 10, 10]]),
              _boxes([[0, 0, 10, 10], [40, 40, 50, 50]])),
             hint="best IoU >= 0.7: 1; < 0.3: 0; in between: -1."),
        Case("IoU exactly 0.7 and exactly 0.3", _THRESHOLDS,
             hint="0.7 is positive (IoU >= 0.7) and 0.3 is ignored (negative only when IoU < 0.3)."),
        Case("an object whose best anchor is below 0.7",
             (_boxes([[0, 0, 10, 6], [0, 4, 10, 10], [0, 0, 10, 4], [30, 30, 40, 40]]),
              _boxes([[0, 0, 10, 10]])),
             hint="the anchor(s) with the highest IoU with a ground-truth box are positive, even "
             "below 0.7 (here two anchors tie at 0.6)."),
        Case("two objects: each anchor looks at its best one",
             (_boxes([[0, 0, 10, 9], [0, 0, 10, 10], [30, 0, 40, 10], [30, 0, 40, 8], [15, 0, 25, 10]]),
              _boxes([[0, 0, 10, 10], [30, 0, 40, 10]])),
             hint="an anchor's label comes from its best ground-truth box (the max over boxes of the IoU)."),
        Case("no ground-truth box", (_boxes([[0, 0, 10, 10], [5, 5, 20, 20], [30, 30, 40, 40]]), _boxes([])),
             hint="with no ground-truth box, every anchor is background: 0."),
    ],
    normalize=to_index_list,
    compare=_compare,
    mistakes=[
        Mistake("also label 1 the anchor(s) with the highest IoU with each ground-truth box, even below "
                "0.7 (Faster R-CNN's rule (i), torchvision's allow_low_quality_matches).",
                lambda a, g: _variant(a, g, low_quality=False)),
        Mistake("positive means IoU >= 0.7: an IoU of exactly 0.7 is positive.",
                lambda a, g: _variant(a, g, positive="gt")),
        Mistake("negative means IoU < 0.3, strictly: an IoU of exactly 0.3 is ignored (-1).",
                lambda a, g: _variant(a, g, negative="le")),
        Mistake("label each anchor from its best ground-truth box (iou.max over the boxes), not box by box: "
                "a later box with IoU < 0.3 must not turn an earlier positive into 0.",
                lambda a, g: _variant(a, g, per_gt=True)),
        Mistake("label each anchor from its best ground-truth box (iou.max over the boxes), not box by box: "
                "a later box with IoU < 0.3 must not turn an earlier positive into 0.",
                lambda a, g: _variant(a, g, per_gt=True, low_quality=False)),
        Mistake("with no ground-truth box every anchor is background (0), not ignored (-1).",
                lambda a, g: _variant(a, g, no_gt="ignored")),
    ],
    start_hint="iou = IoU of every (anchor, gt box) pair, (N, M); best = iou.max(dim=1).values; labels "
    "start at -1; 0 where best < 0.3; 1 where best >= 0.7; then 1 for each gt box's best anchor(s).",
)


def check_label_anchors(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(anchors, gt_boxes) -> Tensor[N]`` of 1 / 0 / -1: the RPN's anchor labels.

    ``anchors`` is a float64 ``Tensor[N, 4]``, ``gt_boxes`` a ``Tensor[M, 4]`` (``xyxy``, M may be 0).
    Rule (Faster R-CNN, Sec. 3.1.2): 1 when the anchor's best IoU is >= 0.7, 0 when it is < 0.3,
    -1 in between, and 1 for each ground-truth box's best anchor(s); all 0 without ground truth.
    Reference: ``course_lib.anchors.label_anchors(anchors, gt_boxes)[0]``.
    """
    return run_exercise(LABEL_ANCHORS, fn, verbose=verbose)
