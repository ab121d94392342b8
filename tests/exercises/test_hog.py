"""Tests of the HOG cell-histogram checker: correct solutions pass, typical mistakes are caught with a hint.

The wrong answers are written the way students write them (loops over pixels), not through the
checker's own ``_variant``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib.classical.hog import cell_histograms, image_gradients
from course_lib.exercises.hog import CELL_HISTOGRAM, check_cell_histogram, reference_cell_histogram


def student_histogram(grad_rows, grad_cols, orientations=9, *, unsigned=True, interpolate=True,
                      use_magnitude=True, centre_offset=0.5, wrap=True, divide=False, swap=False):
    histogram = [0.0] * orientations
    span = 180.0 if unsigned else 360.0
    width = span / orientations
    pixels = list(zip(np.ravel(grad_rows), np.ravel(grad_cols), strict=True))
    for g_row, g_col in pixels:
        magnitude = math.hypot(g_row, g_col)
        angle = math.degrees(math.atan2(g_col, g_row) if swap else math.atan2(g_row, g_col)) % span
        vote = magnitude if use_magnitude else (1.0 if magnitude > 0 else 0.0)
        if not interpolate:
            histogram[min(int(angle // width), orientations - 1)] += vote
            continue
        position = angle / width - centre_offset
        low = math.floor(position)
        share = position - low
        for index, weight in ((low, 1 - share), (low + 1, share)):
            if wrap:
                histogram[index % orientations] += weight * vote
            elif 0 <= index < orientations:
                histogram[index] += weight * vote
    return [value / len(pixels) for value in histogram] if divide else histogram


def stub(grad_rows, grad_cols, orientations=9):
    raise NotImplementedError


@pytest.mark.parametrize("solution", [student_histogram, reference_cell_histogram,
                                      lambda r, c, n: np.asarray(student_histogram(r, c, n))])
def test_correct_solutions_pass(solution, capsys):
    result = check_cell_histogram(solution)
    assert result and result.num_cases == len(CELL_HISTOGRAM.cases)
    assert "All 8 cases passed" in capsys.readouterr().out


def test_reference_agrees_with_the_library():
    image = np.random.default_rng(0).random((8, 8))  # one cell
    g_row, g_col = image_gradients(image)
    expected = cell_histograms(image, 9, (8, 8))[0, 0] * 64  # the library divides by the cell area
    np.testing.assert_allclose(reference_cell_histogram(g_row, g_col, 9), expected, atol=1e-12)


MISTAKES = [
    (dict(unsigned=False), "unsigned orientations"),
    (dict(interpolate=False), "linear interpolation"),
    (dict(use_magnitude=False), "gradient magnitude"),
    (dict(centre_offset=0.0), "(i + 0.5) * 180 / n"),
    (dict(wrap=False), "wrap around"),
    (dict(divide=True), "do not divide"),
    (dict(swap=True), "y (rows) first"),
]


@pytest.mark.parametrize("options, hint", MISTAKES, ids=[hint for _, hint in MISTAKES])
def test_each_mistake_is_caught_with_its_hint(options, hint, capsys):
    result = check_cell_histogram(lambda r, c, n: student_histogram(r, c, n, **options))
    assert not result
    assert hint in capsys.readouterr().out


def test_stub_and_crash_and_wrong_type(capsys):
    assert not check_cell_histogram(stub)
    assert "not attempted yet" in capsys.readouterr().out
    assert not check_cell_histogram(lambda r, c, n: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert not check_cell_histogram(lambda r, c, n: "histogram")
    assert not check_cell_histogram(lambda r, c, n: [0.0] * (n + 1))
    assert "expected 9 numbers" in capsys.readouterr().out
