"""Checker for the selective search exercise (notebook 04): merge two regions.

When hierarchical grouping joins regions ``a`` and ``b`` (Uijlings et al. 2013, Eq. 2), the new
region's histogram is the size-weighted average of the two, ``(size_a * hist_a + size_b * hist_b) /
(size_a + size_b)``, its size is ``size_a + size_b`` and its box the union of the two boxes. The
histograms are propagated this way instead of being recomputed from the pixels.

A region is a dict ``{"hist": 1-D array summing to 1, "size": pixels, "box": [x1, y1, x2, y2]}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from course_lib.exercises.base import (
    Case,
    CheckResult,
    Exercise,
    Mistake,
    run_exercise,
    to_float,
    to_float_list,
)


def _region(hist, size, box) -> dict:
    return {"hist": np.asarray(hist, dtype=np.float64), "size": size, "box": list(box)}


def _merged(a: dict, b: dict, hist: str = "weighted", size: str = "sum", box: str = "union") -> dict:
    """The reference merge (defaults), or one of the typical wrong ones."""
    hist_a, hist_b = np.asarray(a["hist"], float), np.asarray(b["hist"], float)
    size_a, size_b = a["size"], b["size"]
    merged_hist = {
        "weighted": (size_a * hist_a + size_b * hist_b) / (size_a + size_b),
        "plain": (hist_a + hist_b) / 2,
        "unnormalized": size_a * hist_a + size_b * hist_b,
        "swapped": (size_b * hist_a + size_a * hist_b) / (size_a + size_b),
        "sum": hist_a + hist_b,
    }[hist]
    merged_size = {"sum": size_a + size_b, "max": max(size_a, size_b), "mean": (size_a + size_b) / 2}[size]
    low, high = (min, max) if box == "union" else (max, min)
    merged_box = [low(a["box"][0], b["box"][0]), low(a["box"][1], b["box"][1]),
                  high(a["box"][2], b["box"][2]), high(a["box"][3], b["box"][3])]
    return {"hist": merged_hist, "size": merged_size, "box": merged_box}


def _normalize(value: Any) -> tuple[list[float], float, list[float]]:
    if not isinstance(value, dict) or not {"hist", "size", "box"} <= set(value):
        kind = type(value).__name__
        raise TypeError(f"expected a dict with keys 'hist', 'size' and 'box', got {kind}")
    hist = value["hist"]
    if isinstance(hist, torch.Tensor | np.ndarray):
        hist = hist.reshape(-1).tolist()
    box = to_float_list(value["box"])
    if len(box) != 4:
        raise TypeError(f"expected a box of 4 numbers, got {len(box)}")
    return to_float_list(hist), to_float(value["size"]), box


def _compare(got, expected, atol: float = 1e-6) -> str | None:
    hist, size, box = got
    expected_hist, expected_size, expected_box = expected
    if len(hist) != len(expected_hist):
        return f"expected a histogram of {len(expected_hist)} bins, got {len(hist)}"
    notes = []
    if any(abs(g - e) > atol for g, e in zip(hist, expected_hist, strict=True)):
        notes.append("the histogram differs")
    if abs(size - expected_size) > atol:
        notes.append("the size differs")
    if any(abs(g - e) > atol for g, e in zip(box, expected_box, strict=True)):
        notes.append("the box differs")
    return "; ".join(notes) if notes else None


MERGE_REGIONS = Exercise(
    name="merge_regions",
    signature="merge_regions(region_a, region_b) -> {'hist': ..., 'size': ..., 'box': [x1, y1, x2, y2]}",
    reference=_merged,
    cases=[
        Case("two regions of the same size", (_region([1.0, 0.0], 10, [0, 0, 5, 2]),
                                              _region([0.0, 1.0], 10, [5, 0, 10, 2]))),
        Case("a big region and a small one", (_region([0.5, 0.5, 0.0], 30, [0, 0, 6, 5]),
                                              _region([0.0, 0.0, 1.0], 10, [6, 1, 8, 6])),
             hint="each histogram counts in proportion to its region's number of pixels."),
        Case("a box inside the other", (_region([0.2, 0.3, 0.5], 8, [2, 2, 4, 6]),
                                        _region([0.6, 0.4, 0.0], 92, [0, 0, 10, 10]))),
        Case("regions side by side vertically", (_region([0.25, 0.25, 0.25, 0.25], 3, [4, 0, 7, 1]),
                                                 _region([1.0, 0.0, 0.0, 0.0], 1, [4, 1, 5, 2]))),
    ],
    normalize=_normalize,
    compare=_compare,
    mistakes=[
        Mistake("weight each histogram by its region's size: (size_a * hist_a + size_b * hist_b) / "
                "(size_a + size_b); a plain average lets a tiny region count as much as a big one.",
                lambda a, b: _merged(a, b, hist="plain")),
        Mistake("divide the weighted sum by size_a + size_b, so that the merged histogram sums to 1 again.",
                lambda a, b: _merged(a, b, hist="unnormalized")),
        Mistake("adding the two histograms gives counts that sum to 2; use the size-weighted average.",
                lambda a, b: _merged(a, b, hist="sum")),
        Mistake("each histogram is weighted by its own region's size, not by the other's.",
                lambda a, b: _merged(a, b, hist="swapped")),
        Mistake("the merged region has every pixel of both: its size is size_a + size_b, not the max.",
                lambda a, b: _merged(a, b, size="max")),
        Mistake("the merged region has every pixel of both: its size is size_a + size_b, not the mean.",
                lambda a, b: _merged(a, b, size="mean")),
        Mistake("the merged box must hold both boxes: the min of x1, y1 and the max of x2, y2 (a union, "
                "not an intersection).", lambda a, b: _merged(a, b, box="intersection")),
    ],
    start_hint="the new size is the sum of the sizes; the new histogram weights each histogram by its size.",
)


def check_merge_regions(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(region_a, region_b) -> region`` (Eq. 2 of Uijlings et al. 2013).

    Regions are dicts ``{"hist": 1-D array, "size": number, "box": [x1, y1, x2, y2]}``; the answer's
    ``hist`` may be a list, an array or a tensor.
    """
    return run_exercise(MERGE_REGIONS, fn, verbose=verbose)
