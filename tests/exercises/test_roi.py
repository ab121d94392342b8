"""Tests of the RoI max pooling checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's ``_variant``),
so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.ops

from course_lib.exercises import CheckResult, check_roi_max_pool
from course_lib.exercises import base as exercises_base
from course_lib.exercises.roi import ROI_MAX_POOL


def round_half_away(value: float) -> int:
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def student_pool(feature_map, roi, output_size, to_cell=round_half_away, plus_one=1, reduce="max",
                 int_bins=False, clip=True):
    """A loop-by-loop RoI max pooling, the way the notebook's exercise asks for it."""
    C, H, W = feature_map.shape
    h, w = output_size
    x1, y1, x2, y2 = (to_cell(float(v)) for v in roi)
    rows, cols = max(y2 - y1 + plus_one, 1), max(x2 - x1 + plus_one, 1)
    out = torch.zeros(C, h, w)
    for i in range(h):
        for j in range(w):
            if int_bins:
                r0, r1 = y1 + i * (rows // h), y1 + (i + 1) * (rows // h)
                c0, c1 = x1 + j * (cols // w), x1 + (j + 1) * (cols // w)
            else:
                r0, r1 = y1 + math.floor(i * rows / h), y1 + math.ceil((i + 1) * rows / h)
                c0, c1 = x1 + math.floor(j * cols / w), x1 + math.ceil((j + 1) * cols / w)
            if clip:
                r0, r1 = min(max(r0, 0), H), min(max(r1, 0), H)
                c0, c1 = min(max(c0, 0), W), min(max(c1, 0), W)
            region = feature_map[:, r0:r1, c0:c1]
            if region.numel() > 0:
                out[:, i, j] = region.amax(dim=(1, 2)) if reduce == "max" else region.mean(dim=(1, 2))
    return out


def torchvision_pool(feature_map, roi, output_size):
    boxes = torch.tensor([[0.0, *[float(v) for v in roi]]])
    return torchvision.ops.roi_pool(feature_map[None], boxes, output_size)[0]


@pytest.mark.parametrize("solution", [student_pool, torchvision_pool,
                                      lambda f, r, s: student_pool(f, r, s).numpy()])
def test_checker_passes_a_correct_solution(solution, capsys):
    result = check_roi_max_pool(solution)
    assert result and result.failures == []
    assert f"All {result.num_cases} cases passed" in capsys.readouterr().out


WRONG = [
    (lambda f, r, s: student_pool(f, r, s, reduce="mean"), "not the mean"),
    (lambda f, r, s: student_pool(f, r, s, plus_one=0), "x2 - x1 + 1 columns"),
    (lambda f, r, s: student_pool(f, r, s, to_cell=math.floor), "do not floor them"),
    (lambda f, r, s: student_pool(f, r, s, to_cell=round), "Python's round()"),
    (lambda f, r, s: student_pool(f, r, s, int_bins=True), "integer division"),
    (lambda f, r, s: student_pool(f, r, s, clip=False), "clip each bin to the map"),
]


@pytest.mark.parametrize("wrong, hint", WRONG)
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    result = check_roi_max_pool(wrong)
    out = capsys.readouterr().out
    assert not result
    assert hint in out, f"expected the hint {hint!r} in:\n{out}"
    assert "expected:" in out and "got:" in out


def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint():
    for mistake in ROI_MAX_POOL.mistakes:
        result = exercises_base.run_exercise(ROI_MAX_POOL, mistake.wrong, verbose=False)
        assert not result, f"no case catches the mistake {mistake.hint!r}"
        assert any(mistake.hint in failure for failure in result.failures), mistake.hint


def test_the_cases_agree_with_torchvision():
    for case in ROI_MAX_POOL.cases:
        expected = torchvision_pool(*case.args)
        torch.testing.assert_close(ROI_MAX_POOL.reference(*case.args), expected)


def test_stub_reports_not_implemented_without_raising(capsys):
    def roi_max_pool(feature_map, roi, output_size):
        raise NotImplementedError  # your code

    result = check_roi_max_pool(roi_max_pool)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "not attempted yet" in out and "Hint:" in out and "Traceback" not in out


def test_wrong_shape_is_explained(capsys):
    result = check_roi_max_pool(lambda f, r, s: student_pool(f, r, s)[0])
    out = capsys.readouterr().out
    assert not result and "expected a Tensor[C, h, w], got shape" in out


def test_student_exception_is_reported_as_a_message(capsys):
    result = check_roi_max_pool(lambda f, r, s: f[:, 100:, :].amax(dim=(1, 2)))
    out = capsys.readouterr().out
    assert not result and "raised" in out and "Hint:" in out
