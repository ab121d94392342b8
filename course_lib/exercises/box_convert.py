"""Checker for the box-conversion exercise of notebook 00: ``xyxy_to_cxcywh(box)``.

``check_box_convert`` runs the student's function on the cases below, compares it with
``course_lib.boxes.box_convert`` and prints the first failure with a hint. ``_cxcywh_variant``
reproduces the typical wrong answers (half the width as the centre, the corner as the size, ...),
so the checker can tell *which* mistake was made.
"""

from __future__ import annotations

from typing import Any

import torch

from course_lib.boxes import box_convert
from course_lib.exercises.base import (
    Case,
    CheckResult,
    Exercise,
    Mistake,
    compare_float_lists,
    run_exercise,
    to_float_list,
)


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
