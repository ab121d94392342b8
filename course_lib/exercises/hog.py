"""Checker for the HOG chapter's exercise: the orientation histogram of one cell (Dalal and Triggs 2005).

The student writes ``cell_histogram(grad_rows, grad_cols, orientations)``: given the gradients of
one cell (two ``H x W`` float arrays, rows pointing down), return the ``orientations`` bins where

* each pixel votes with its gradient magnitude ``hypot(g_row, g_col)``;
* the orientation is unsigned, ``atan2(g_row, g_col)`` in degrees modulo 180;
* bin ``i`` is centred on ``(i + 0.5) * 180 / orientations`` and a vote is shared linearly between
  the two nearest centres, wrapping around (a 5 degree gradient votes for the last bin too);
* the votes are summed (no division by the number of pixels).

Reference: ``course_lib.classical.hog.orientation_votes`` (the library's ``cell_histograms``
divides the same sum by the cell area, as scikit-image does).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course_lib.classical.hog import orientation_votes
from course_lib.exercises.base import (
    Case,
    CheckResult,
    Exercise,
    Mistake,
    compare_float_lists,
    run_exercise,
    to_float_list,
)


def reference_cell_histogram(grad_rows, grad_cols, orientations=9) -> np.ndarray:
    """The expected answer: ``ndarray[orientations]``."""
    grad_rows, grad_cols = np.asarray(grad_rows, dtype=float), np.asarray(grad_cols, dtype=float)
    low, high, weight_low, weight_high = orientation_votes(grad_rows, grad_cols, orientations)
    histogram = np.bincount(low.ravel(), weight_low.ravel(), minlength=orientations)
    return histogram + np.bincount(high.ravel(), weight_high.ravel(), minlength=orientations)


def _variant(grad_rows, grad_cols, orientations=9, signed=False, interpolate=True, magnitude=True,
             centres="middle", wrap=True, mean=False, swap=False):
    """The histogram with switches that reproduce the typical mistakes."""
    g_row, g_col = np.asarray(grad_rows, dtype=float).ravel(), np.asarray(grad_cols, dtype=float).ravel()
    if swap:
        g_row, g_col = g_col, g_row
    span = 360.0 if signed else 180.0
    angle = np.rad2deg(np.arctan2(g_row, g_col)) % span
    votes = np.hypot(g_row, g_col) if magnitude else (np.hypot(g_row, g_col) > 0).astype(float)
    width = span / orientations
    histogram = np.zeros(orientations)
    if not interpolate:
        np.add.at(histogram, np.minimum((angle // width).astype(int), orientations - 1), votes)
    else:
        position = angle / width - (0.5 if centres == "middle" else 0.0)
        low = np.floor(position).astype(int)
        fraction = position - low
        for bins, weights in ((low, 1 - fraction), (low + 1, fraction)):
            inside = (bins >= 0) & (bins < orientations)
            if wrap:
                np.add.at(histogram, bins % orientations, weights * votes)
            else:
                np.add.at(histogram, bins[inside], (weights * votes)[inside])
    return histogram / (g_row.size if mean else 1)


def _cell(*pixels: tuple[float, float], size: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Gradient arrays of a ``size x size`` cell whose first pixels have the given (g_row, g_col)."""
    grad_rows, grad_cols = np.zeros(size * size), np.zeros(size * size)
    for index, (g_row, g_col) in enumerate(pixels):
        grad_rows[index], grad_cols[index] = g_row, g_col
    return grad_rows.reshape(size, size), grad_cols.reshape(size, size)


def _polar(magnitude: float, degrees: float) -> tuple[float, float]:
    radians = np.deg2rad(degrees)
    return float(magnitude * np.sin(radians)), float(magnitude * np.cos(radians))  # (g_row, g_col)


_RNG = np.random.default_rng(0)
_RANDOM_CELL = (np.round(_RNG.normal(size=(8, 8)), 2), np.round(_RNG.normal(size=(8, 8)), 2))

CELL_HISTOGRAM = Exercise(
    name="cell_histogram",
    signature="cell_histogram(grad_rows, grad_cols, orientations) -> array of `orientations` floats",
    reference=reference_cell_histogram,
    cases=[
        Case("one gradient on a bin centre (30 deg)", (*_cell(_polar(2.0, 30)), 9),
             hint="30 deg is the centre of bin 1 (20-40 deg): all of the magnitude 2 goes there."),
        Case("one gradient between two centres (40 deg)", (*_cell(_polar(2.0, 40)), 9),
             hint="40 deg is halfway between the centres 30 and 50: 1 to bin 1, 1 to bin 2."),
        Case("two gradients of different strength", (*_cell(_polar(1.0, 90), _polar(3.0, 130)), 9),
             hint="each pixel votes with its magnitude hypot(g_row, g_col), not with 1."),
        Case("a gradient pointing the other way (210 deg)", (*_cell(_polar(1.0, 210)), 9),
             hint="HOG is unsigned: 210 deg is the same edge as 30 deg (angle % 180)."),
        Case("near 0 deg: the vote wraps around", (*_cell(_polar(1.0, 5)), 9),
             hint="5 deg lies between the centre of the last bin (170 = -10) and of bin 0 (10): "
             "0.25 to bin 8 and 0.75 to bin 0."),
        Case("an 8 x 8 cell of random gradients", (*_RANDOM_CELL, 9)),
        Case("six bins", (*_RANDOM_CELL, 6), hint="the bin width is 180 / orientations."),
        Case("a flat cell", (np.zeros((8, 8)), np.zeros((8, 8)), 9),
             hint="no gradient: every bin is 0 (no division by zero, no NaN)."),
    ],
    normalize=to_float_list,
    compare=lambda got, expected: compare_float_lists(got, expected, atol=1e-6),
    mistakes=[
        Mistake("HOG uses unsigned orientations: take the angle modulo 180 degrees, not 360.",
                lambda r, c, n=9: _variant(r, c, n, signed=True)),
        Mistake("share each vote between the two nearest bin centres (linear interpolation), do not "
                "give it all to one bin.", lambda r, c, n=9: _variant(r, c, n, interpolate=False)),
        Mistake("each pixel votes with its gradient magnitude hypot(g_row, g_col), not with 1.",
                lambda r, c, n=9: _variant(r, c, n, magnitude=False)),
        Mistake("bin i is centred on (i + 0.5) * 180 / n (10, 30, ... for 9 bins), not on i * 180 / n.",
                lambda r, c, n=9: _variant(r, c, n, centres="edges")),
        Mistake("the bins wrap around: a vote past the last centre goes to bin 0, and one before "
                "bin 0's centre to the last bin (use % orientations).",
                lambda r, c, n=9: _variant(r, c, n, wrap=False)),
        Mistake("sum the votes; do not divide by the number of pixels.",
                lambda r, c, n=9: _variant(r, c, n, mean=True)),
        Mistake("the angle is np.arctan2(grad_rows, grad_cols): y (rows) first, then x (columns).",
                lambda r, c, n=9: _variant(r, c, n, swap=True)),
    ],
    start_hint="magnitude = np.hypot(grad_rows, grad_cols); angle = np.degrees(np.arctan2(grad_rows, "
    "grad_cols)) % 180; position = angle / (180 / n) - 0.5; share each magnitude between bins "
    "floor(position) % n and (floor(position) + 1) % n.",
)


def check_cell_histogram(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(grad_rows, grad_cols, orientations)``: the orientation histogram of one HOG cell.

    Unsigned orientations (modulo 180 degrees), magnitude-weighted votes shared linearly between the
    two nearest bin centres ``(i + 0.5) * 180 / orientations`` with wrap-around, summed. Cases: a
    vote on a centre, between centres, two magnitudes, a reversed gradient, the wrap at 0 degrees,
    a random 8 x 8 cell with 9 and 6 bins, a flat cell.
    """
    return run_exercise(CELL_HISTOGRAM, fn, verbose=verbose)
