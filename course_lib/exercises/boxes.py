"""Checkers for the exercises of the box chapters (notebooks 00-02): box conversion, IoU, NMS, AP.

Each ``check_*`` takes the student's function, runs it on the cases below, compares with the
``course_lib`` reference and prints the first failure with a hint. The hints come from the
``_*_variant`` functions: each reproduces a typical wrong answer, so the checker can tell *which*
mistake was made (dividing by the sum of the areas, forgetting to sort by score, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from course_lib.boxes import box_convert, box_iou
from course_lib.exercises.base import (
    Case,
    CheckResult,
    Exercise,
    Mistake,
    compare_float_lists,
    compare_floats,
    run_exercise,
    to_float,
    to_float_list,
    to_index_list,
)
from course_lib.metrics import average_precision
from course_lib.nms import nms

# ----------------------------------------------------------------------------- box conversion


def _cxcywh_variant(box, center="mid", size="wh", order="xy"):
    x1, y1, x2, y2 = box
    cx, cy = {"mid": ((x1 + x2) / 2, (y1 + y2) / 2), "half": ((x2 - x1) / 2, (y2 - y1) / 2),
              "corner": (x1, y1)}[center]
    w, h = (x2 - x1, y2 - y1) if size == "wh" else (x2, y2)
    return [cx, cy, w, h] if order == "xy" else [cy, cx, h, w]


BOX_CONVERT = Exercise(
    name="xyxy_to_cxcywh",
    signature="xyxy_to_cxcywh(box) -> [cx, cy, w, h]",
    reference=lambda box: box_convert(torch.tensor([box], dtype=torch.float64), "xyxy", "cxcywh")[0],
    cases=[
        Case("a box at the origin", ([0.0, 0.0, 4.0, 2.0],)),
        Case("a box away from the origin", ([10.0, 20.0, 30.0, 60.0],),
             hint="the center is the midpoint of the corners: ((x1 + x2) / 2, (y1 + y2) / 2)."),
        Case("fractional coordinates", ([1.5, 2.5, 3.5, 7.5],)),
        Case("negative coordinates", ([-4.0, -2.0, 2.0, 2.0],)),
        Case("a box of width 0", ([5.0, 5.0, 5.0, 9.0],)),
    ],
    normalize=to_float_list,
    compare=compare_float_lists,
    mistakes=[
        Mistake("the center is the midpoint (x1 + x2) / 2, not half the width (x2 - x1) / 2.",
                lambda box: _cxcywh_variant(box, center="half")),
        Mistake("cxcywh starts with the center; (x1, y1, w, h) is the xywh format.",
                lambda box: _cxcywh_variant(box, center="corner")),
        Mistake("the width and height are x2 - x1 and y2 - y1, not the corner x2, y2.",
                lambda box: _cxcywh_variant(box, size="corner")),
        Mistake("the order is cx, cy, w, h: x before y.", lambda box: _cxcywh_variant(box, order="yx")),
    ],
    start_hint="unpack x1, y1, x2, y2 = box; the center is the midpoint, the size is the difference.",
)


def check_box_convert(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(box) -> [cx, cy, w, h]`` for one xyxy box given as 4 floats.

    Reference: ``course_lib.boxes.box_convert(boxes, "xyxy", "cxcywh")``.
    """
    return run_exercise(BOX_CONVERT, fn, verbose=verbose)


# ----------------------------------------------------------------------------- IoU


def _iou_reference(box_a, box_b) -> float:
    boxes = torch.tensor([box_a, box_b], dtype=torch.float64)
    return box_iou(boxes[:1], boxes[1:])[0, 0].item()


def _iou_variant(box_a, box_b, denominator="union", clamp="sides", plus_one=0.0, corners="inner",
                 fmt="xyxy"):
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = box_a, box_b
    if fmt == "xywh":
        ax2, ay2, bx2, by2 = ax1 + ax2, ay1 + ay2, bx1 + bx2, by1 + by2
    if corners == "inner":
        width, height = min(ax2, bx2) - max(ax1, bx1) + plus_one, min(ay2, by2) - max(ay1, by1) + plus_one
    else:  # "ordered": assumes box_a is the left and upper one
        width, height = ax2 - bx1 + plus_one, ay2 - by1 + plus_one
    if clamp == "sides":
        width, height = max(width, 0.0), max(height, 0.0)
    inter = width * height if clamp != "product" else max(width * height, 0.0)
    area_a = (ax2 - ax1 + plus_one) * (ay2 - ay1 + plus_one)
    area_b = (bx2 - bx1 + plus_one) * (by2 - by1 + plus_one)
    return inter / {"union": area_a + area_b - inter, "sum": area_a + area_b, "first": area_a,
                    "min": min(area_a, area_b)}[denominator]


IOU = Exercise(
    name="iou",
    signature="iou(box_a, box_b) -> float",
    reference=_iou_reference,
    cases=[
        Case("partial overlap, different sizes", ([0.0, 0.0, 4.0, 4.0], [3.0, 1.0, 5.0, 3.0]),
             hint="IoU = intersection / union, with union = area_a + area_b - intersection."),
        Case("identical boxes", ([1.0, 2.0, 5.0, 7.0], [1.0, 2.0, 5.0, 7.0]),
             hint="a box with itself: intersection = union, IoU = 1."),
        Case("box_b inside box_a", ([0.0, 0.0, 10.0, 10.0], [2.0, 2.0, 4.0, 6.0]),
             hint="when one box is inside the other, the intersection is the small box."),
        Case("box_a inside box_b", ([2.0, 2.0, 4.0, 6.0], [0.0, 0.0, 10.0, 10.0]),
             hint="IoU is symmetric: iou(a, b) == iou(b, a)."),
        Case("box_b up and to the left of box_a", ([2.0, 2.0, 6.0, 5.0], [0.0, 1.0, 3.0, 4.0]),
             hint="do not assume box_a is the left one: use max of the x1's and min of the x2's."),
        Case("disjoint, apart in x", ([0.0, 0.0, 2.0, 2.0], [3.0, 0.0, 5.0, 2.0]),
             hint="boxes that do not overlap have IoU 0."),
        Case("disjoint, apart in x and in y", ([0.0, 0.0, 2.0, 2.0], [3.0, 3.0, 5.0, 5.0]),
             hint="boxes that do not overlap have IoU 0."),
        Case("touching along an edge", ([0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 4.0, 2.0]),
             hint="boxes sharing only an edge have an intersection of width 0, so IoU 0."),
        Case("fractional coordinates", ([0.5, 1.5, 3.25, 4.0], [1.0, 0.0, 2.5, 5.5])),
    ],
    normalize=to_float,
    compare=compare_floats,
    mistakes=[
        Mistake("the denominator is the union, area_a + area_b - intersection: "
                "dividing by area_a + area_b counts the overlap twice.",
                lambda a, b: _iou_variant(a, b, denominator="sum")),
        Mistake("divide by the union of both boxes, not by the area of box_a alone "
                "(IoU is symmetric: iou(a, b) == iou(b, a)).",
                lambda a, b: _iou_variant(a, b, denominator="first")),
        Mistake("divide by the union, not by the area of the smaller box.",
                lambda a, b: _iou_variant(a, b, denominator="min")),
        Mistake("clamp the width and the height separately: when both are negative "
                "(boxes apart in x and in y) their product is positive.",
                lambda a, b: _iou_variant(a, b, clamp="product")),
        Mistake("clamp the intersection's width and height at 0, each one: "
                "max(0, min(ax2, bx2) - max(ax1, bx1)). Disjoint boxes have IoU 0, never below.",
                lambda a, b: _iou_variant(a, b, clamp="none")),
        Mistake("no +1: the course's coordinates are continuous, width = x2 - x1 "
                "(the +1 is the old Pascal VOC pixel-index convention).",
                lambda a, b: _iou_variant(a, b, plus_one=1.0)),
        Mistake("the intersection's corners are max of the x1's, max of the y1's, min of the x2's, "
                "min of the y2's; do not assume which box comes first.",
                lambda a, b: _iou_variant(a, b, corners="ordered")),
        Mistake("the boxes are xyxy (x1, y1, x2, y2: two corners), not (x, y, width, height).",
                lambda a, b: _iou_variant(a, b, fmt="xywh")),
    ],
    start_hint="the intersection is the rectangle max(x1), max(y1), min(x2), min(y2), its width and "
    "height clamped at 0; union = area_a + area_b - intersection; IoU = intersection / union.",
)


def check_iou(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(box_a, box_b) -> float``, the IoU of two xyxy boxes given as 4 floats each.

    Reference: ``course_lib.boxes.box_iou``. Cases: partial overlap, identical, contained,
    disjoint, touching (IoU 0), fractional coordinates.
    """
    return run_exercise(IOU, fn, verbose=verbose)


# ----------------------------------------------------------------------------- NMS


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


# ----------------------------------------------------------------------------- average precision


def _ap_variant(precision, recall, envelope="right", grid="coco", side="left", unreached="zero"):
    """AP from a PR curve, with switches that reproduce the typical mistakes."""
    p, r = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    if len(p) == 0:
        return 0.0
    if envelope == "right":
        p = np.maximum.accumulate(p[::-1])[::-1]  # the best precision at this recall or beyond
    elif envelope == "global":
        p = np.full_like(p, p.max())
    if grid == "area":
        return float(np.sum(np.diff(r, prepend=0.0) * p))
    levels = {"coco": np.linspace(0, 1, 101), "voc11": np.linspace(0, 1, 11),
              "linspace100": np.linspace(0, 1, 100), "no_endpoint": np.arange(100) / 100}[grid]
    index = np.searchsorted(r, levels, side=side)
    reached = index < len(p)
    values = p[index[reached]]
    if unreached == "skip":
        return float(values.mean()) if len(values) else 0.0
    return float(values.sum() / len(levels))


def _curve(hits: list[int], num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection (as ``metrics.precision_recall`` returns them),
    given whether each detection, best score first, is a true positive."""
    tp = np.cumsum(np.asarray(hits, dtype=np.float64))
    return tp / np.arange(1, len(hits) + 1), tp / num_gt


AP = Exercise(
    name="average_precision",
    signature="average_precision(precision, recall) -> float",
    reference=lambda precision, recall: average_precision(precision, recall, method="coco101"),
    cases=[
        Case("a perfect detector", _curve([1, 1, 1, 1], 4)),
        Case("a saw-tooth curve", _curve([1, 0, 1, 1, 0, 0, 1, 0, 1, 1], 6),
             hint="take the envelope (max precision to the right), then average it at recall "
             "levels 0, 0.01, ..., 1."),
        Case("recall stops at 0.5", _curve([1, 0, 1, 0, 1, 0, 0], 6),
             hint="recall levels above the last recall count as precision 0."),
        Case("recall exactly on a level", _curve([1, 0, 0, 1, 1], 4),
             hint="at recall level r use the first point whose recall is >= r."),
        Case("the first detection is wrong", _curve([0, 1, 1, 0, 1], 3)),
        Case("only false positives", _curve([0, 0, 0], 2), hint="no true positive: AP is 0."),
        Case("no detections", (np.zeros(0), np.zeros(0)),
             hint="with no detections, return 0.0 (not nan, not an error)."),
    ],
    normalize=to_float,
    compare=compare_floats,
    mistakes=[
        Mistake("take the precision envelope first: at each point use the highest precision at that "
                "recall or beyond, p_interp[i] = max(precision[i:]).",
                lambda p, r: _ap_variant(p, r, envelope="none")),
        Mistake("that is the area under the raw curve; COCO takes the envelope (max precision to the "
                "right) and averages it at 101 recall levels 0, 0.01, ..., 1.",
                lambda p, r: _ap_variant(p, r, envelope="none", grid="area")),
        Mistake("that is the all-points area (Pascal VOC 2010+); COCO averages the envelope at the 101 "
                "recall levels np.linspace(0, 1, 101) instead.", lambda p, r: _ap_variant(p, r, grid="area")),
        Mistake("COCO uses 101 recall levels, np.linspace(0, 1, 101), not Pascal VOC 2007's 11.",
                lambda p, r: _ap_variant(p, r, grid="voc11")),
        Mistake("the grid has 101 levels 0, 0.01, ..., 1.00: np.linspace(0, 1, 101), not 100.",
                lambda p, r: _ap_variant(p, r, grid="linspace100")),
        Mistake("include the level 1.0: 0, 0.01, ..., 1.00 is 101 levels (np.linspace(0, 1, 101)).",
                lambda p, r: _ap_variant(p, r, grid="no_endpoint")),
        Mistake("at recall level r use the first point with recall >= r "
                "(np.searchsorted(recall, levels, side='left')), not > r.",
                lambda p, r: _ap_variant(p, r, side="right")),
        Mistake("levels the detector never reaches count as precision 0: divide by 101, always.",
                lambda p, r: _ap_variant(p, r, unreached="skip")),
        Mistake("the envelope looks to the right only (higher recall): max(precision[i:]), "
                "not the max over the whole curve.", lambda p, r: _ap_variant(p, r, envelope="global")),
    ],
    start_hint="1. envelope: p_interp[i] = max(precision[i:]); 2. for each level r in "
    "np.linspace(0, 1, 101) take p_interp at the first i with recall[i] >= r (0 if none); "
    "3. return the mean of the 101 values.",
)


def check_ap(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(precision, recall) -> float``: COCO's 101-point interpolated average precision.

    ``precision`` and ``recall`` are float arrays of length D (numpy, as
    ``course_lib.metrics.precision_recall`` returns them): the values after each of D detections
    sorted by decreasing score (recall never decreases). COCO's rule (as in pycocotools): take the
    envelope ``p_interp[i] = max(precision[i:])``, read it at the recall levels 0, 0.01, ..., 1 (at
    the first point with recall >= level, 0 where recall never gets there) and average the 101
    values. Reference: ``course_lib.metrics.average_precision(precision, recall, method="coco101")``.
    """
    return run_exercise(AP, fn, verbose=verbose)
