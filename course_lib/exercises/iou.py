"""Checker for the IoU exercise of notebook 01: ``iou(box_a, box_b)`` of two xyxy boxes.

``check_iou`` runs the student's function on the cases below, compares it with
``course_lib.boxes.box_iou`` and prints the first failure with a hint. ``_iou_variant`` reproduces
the typical wrong answers (dividing by the sum of the areas, clamping the product, the +1 of old
Pascal VOC code, ...), so the checker can tell *which* mistake was made.
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
    compare_floats,
    run_exercise,
    to_float,
)


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
