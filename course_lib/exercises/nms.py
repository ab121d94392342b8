"""Checker for the NMS exercise of notebook 02: greedy ``nms(boxes, scores, iou_threshold)``.

``check_nms`` runs the student's function on the cases below, compares it with
``course_lib.nms.nms`` (torchvision's rule and order) and prints the first failure with a hint.
``_nms_variant`` reproduces the typical wrong answers (forgetting to sort by score, removing at
IoU equal to the threshold, letting removed boxes suppress, ...), so the checker can tell *which*
mistake was made.
"""

from __future__ import annotations

from typing import Any

import torch

from course_lib.boxes import box_iou
from course_lib.exercises.base import (
    Case,
    CheckResult,
    Exercise,
    Mistake,
    run_exercise,
    to_index_list,
)
from course_lib.nms import nms


def _nms_variant(boxes, scores, iou_threshold, order="score", remove_if="gt", only_kept_suppress=True,
                 one_round=False, output="score"):
    """Greedy NMS written plainly, with switches that reproduce the typical mistakes."""
    n = len(scores)
    keys = {"score": lambda i: (-float(scores[i]), i), "score_last_tie": lambda i: (-float(scores[i]), -i),
            "ascending": lambda i: (float(scores[i]), i), "index": lambda i: i}[order]
    remaining = sorted(range(n), key=keys)
    ious = box_iou(boxes.double(), boxes.double()) if n else None
    comparisons = {"gt": lambda iou: iou > iou_threshold, "ge": lambda iou: iou >= iou_threshold,
                   "lt": lambda iou: iou < iou_threshold, "never": lambda iou: False}
    keep, removed = [], set()
    for step, i in enumerate(remaining):
        if i in removed and only_kept_suppress:
            continue
        if i not in removed:
            keep.append(i)
        if one_round and step > 0:
            continue
        removed |= {j for j in remaining if j != i and comparisons[remove_if](float(ious[i, j]))}
    return sorted(keep) if output == "index" else keep


def _tensor(rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


# Two objects, each found by a cluster of boxes; the best box of the second cluster comes last.
_TWO_CLUSTERS = _tensor([[10, 10, 50, 50], [12, 8, 52, 48], [60, 60, 100, 90],
                         [8, 12, 48, 52], [62, 58, 98, 92]])
# A -> B -> C: A overlaps B, B overlaps C, A and C apart. Only kept boxes suppress, so C stays.
_CHAIN = _tensor([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]])
_IDENTICAL = _tensor([[5, 5, 25, 25]] * 3)
_TOUCHING_AND_OVERLAPPING = _tensor([[0, 0, 10, 10], [10, 0, 20, 10], [2, 2, 12, 12]])
_HALF = _tensor([[0, 0, 4, 1], [0, 0, 2, 1]])  # IoU exactly 0.5

NMS = Exercise(
    name="nms",
    signature="nms(boxes, scores, iou_threshold) -> kept indices",
    reference=nms,
    cases=[
        Case("two objects, two clusters of boxes",
             (_TWO_CLUSTERS, torch.tensor([0.9, 0.8, 0.6, 0.7, 0.95]), 0.5)),
        Case("a chain: A overlaps B, B overlaps C", (_CHAIN, torch.tensor([0.9, 0.8, 0.7]), 0.3),
             hint="only kept boxes suppress others: once B is removed by A, B cannot remove C."),
        Case("identical boxes", (_IDENTICAL, torch.tensor([0.5, 0.9, 0.7]), 0.5),
             hint="identical boxes have IoU 1: only the best one stays."),
        Case("equal scores (ties)", (_TWO_CLUSTERS, torch.full((5,), 0.5), 0.5),
             hint="on equal scores the lower index comes first (a stable sort)."),
        Case("threshold 0", (_TOUCHING_AND_OVERLAPPING, torch.tensor([0.9, 0.8, 0.7]), 0.0),
             hint="at threshold 0 every overlapping box goes, but boxes with IoU exactly 0 stay: "
             "remove when IoU > iou_threshold, strictly."),
        Case("threshold 1", (_IDENTICAL, torch.tensor([0.5, 0.9, 0.7]), 1.0),
             hint="remove only when IoU > iou_threshold: at 1.0 even identical boxes (IoU 1) stay."),
        Case("IoU exactly at the threshold", (_HALF, torch.tensor([0.9, 0.8]), 0.5),
             hint="remove when IoU > iou_threshold, strictly, as torchvision.ops.nms does."),
        Case("one box", (_tensor([[1, 2, 3, 4]]), torch.tensor([0.3]), 0.5)),
        Case("no boxes", (_tensor([]), torch.zeros(0), 0.5),
             hint="with no boxes, return an empty list (or an empty tensor)."),
    ],
    normalize=to_index_list,
    compare=lambda got, expected: _compare_kept(got, expected),
    mistakes=[
        Mistake("nothing was removed: after keeping the best box, drop every remaining box whose IoU "
                "with it is > iou_threshold.", lambda b, s, t: _nms_variant(b, s, t, remove_if="never")),
        Mistake("remove the boxes whose IoU is > iou_threshold (the duplicates of the kept box), "
                "not the ones below it.", lambda b, s, t: _nms_variant(b, s, t, remove_if="lt")),
        Mistake("remove when IoU > iou_threshold, strictly (torchvision's rule): a box with IoU exactly "
                "equal to the threshold stays.", lambda b, s, t: _nms_variant(b, s, t, remove_if="ge")),
        Mistake("sort the boxes by decreasing score first: step 1 selects the highest score.",
                lambda b, s, t: _nms_variant(b, s, t, order="index")),
        Mistake("sort by *decreasing* score (descending=True): the best box is selected first.",
                lambda b, s, t: _nms_variant(b, s, t, order="ascending")),
        Mistake("a box that was already removed must not remove others: skip removed boxes.",
                lambda b, s, t: _nms_variant(b, s, t, only_kept_suppress=False)),
        Mistake("repeat steps 2-4: after the first box, the next highest remaining box also removes "
                "its duplicates.", lambda b, s, t: _nms_variant(b, s, t, one_round=True)),
        Mistake("on equal scores keep the lower index first: use a stable sort, e.g. "
                "torch.argsort(scores, descending=True, stable=True).",
                lambda b, s, t: _nms_variant(b, s, t, order="score_last_tie")),
        Mistake("return the kept indices by decreasing score (torchvision's order), not sorted by index.",
                lambda b, s, t: _nms_variant(b, s, t, output="index")),
    ],
    start_hint="order = indices sorted by decreasing score; while order is not empty: keep i = order[0], "
    "then drop i and every index whose IoU with box i is > iou_threshold.",
    timeout_hint="each pass of your loop must remove the selected index (and its duplicates) from the "
    "remaining ones, or the loop never ends.",
)


def _compare_kept(got: list[int], expected: list[int]) -> str | None:
    if got == expected:
        return None
    if sorted(got) == sorted(expected):
        return "the right boxes, in another order"
    extra, missing = sorted(set(got) - set(expected)), sorted(set(expected) - set(got))
    notes = [f"kept {extra}, which should be removed"] * bool(extra)
    notes += [f"removed {missing}, which should be kept"] * bool(missing)
    return "; ".join(notes) or "a box is listed twice"


def check_nms(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(boxes, scores, iou_threshold)``, greedy non-maximum suppression.

    ``boxes`` is a float ``Tensor[N, 4]`` (xyxy), ``scores`` a ``Tensor[N]``; ``fn`` returns the kept
    indices (a list or an int tensor) by decreasing score, ties by lower index, removing a box when
    its IoU with a kept box is > ``iou_threshold`` -- torchvision's rule. Reference:
    ``course_lib.nms.nms``. Cases: two clusters, a chain, ties, identical boxes, thresholds 0 and 1,
    IoU exactly at the threshold, one box, no boxes.
    """
    return run_exercise(NMS, fn, verbose=verbose)
