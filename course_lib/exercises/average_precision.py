"""Checker for the average-precision exercise of notebook 01: COCO's 101-point interpolated AP.

``check_ap`` runs the student's ``average_precision(precision, recall)`` on the cases below,
compares it with ``course_lib.metrics.average_precision(..., method="coco101")`` and prints the
first failure with a hint. ``_ap_variant`` reproduces the typical wrong answers (no envelope, 11 or
100 recall levels, the area under the curve, ...), so the checker can tell *which* mistake was made.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course_lib.exercises.base import (
    Case,
    CheckResult,
    Exercise,
    Mistake,
    compare_floats,
    run_exercise,
    to_float,
)
from course_lib.metrics import average_precision


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
