"""Tests of the checker framework (course_lib.exercises.base), driven through the course's checkers.

A checker never raises, reports a student's exception or wrong type as a message, stops a loop that
never ends, prints only the first failure, and keeps its cases intact whatever the student does.
A failing case prints its inputs as Python source that, pasted back into a cell, rebuilds the case
(same values, same types and dtypes); under a notebook cell a result shows nothing after its report.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import torch
from IPython.core.formatters import DisplayFormatter

import course_lib.exercises
from course_lib.boxes import box_iou
from course_lib.exercises import CheckResult, Exercise, check_ap, check_iou, check_nms, run_exercise
from course_lib.exercises import base as exercises_base
from course_lib.exercises.iou import IOU
from course_lib.nms import nms
from tests.exercises.checks import assert_same, paste


def iou(box_a, box_b):
    return float(box_iou(box_a[None].double(), box_b[None].double())[0, 0])


def reference_iou(box_a, box_b):
    return box_iou(torch.tensor([box_a]), torch.tensor([box_b]))[0, 0]


def test_stub_reports_not_implemented_without_raising(capsys):
    def iou(box_a, box_b):
        raise NotImplementedError  # your code

    result = check_iou(iou)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "iou: not attempted yet (replace the `raise NotImplementedError` with your code)." in out
    assert "Hint:" in out and "Traceback" not in out


def test_student_exception_is_reported_as_a_message(capsys):
    result = check_nms(lambda boxes, scores, iou_threshold: boxes[0] / 0 + scores[10])
    out = capsys.readouterr().out
    assert not result
    assert "raised IndexError" in out and "case 1 of" in out


def test_wrong_return_type_is_explained(capsys):
    result = check_iou(lambda a, b: "0.5")
    assert not result
    out = capsys.readouterr().out
    assert "expected a number, got str" in out and "Hint: iou(box_a, box_b) -> float" in out


def test_a_loop_that_never_ends_is_stopped(monkeypatch, capsys):
    monkeypatch.setattr(exercises_base, "TIME_LIMIT_SECONDS", 0.2)

    def nms_forgets_to_drop(boxes, scores, iou_threshold):
        order, keep = sorted(range(len(scores)), key=lambda i: -float(scores[i])), []
        while order:
            keep.append(order[0])
            order = [i for i in order if iou(boxes[order[0]], boxes[i]) <= iou_threshold or i == order[0]]
        return keep

    result = check_nms(nms_forgets_to_drop)
    out = capsys.readouterr().out
    assert not result and "did not return within 0.2 s" in out and "never ends" in out
    assert len(result.failures) == 1  # it stops at the first case that hangs


def test_not_a_function_is_reported(capsys):
    assert not check_ap(0.5)
    assert "expected a function average_precision(precision, recall)" in capsys.readouterr().out


def test_first_failure_only_is_printed_and_the_rest_counted(capsys):
    result = check_iou(lambda a, b: 0.123)
    out = capsys.readouterr().out
    assert len(result.failures) == result.num_cases == len(IOU.cases)
    assert out.count("Hint:") == 1 and f"{result.num_cases - 1} other cases also fail" in out
    assert "Hint: IoU = intersection / union" in out  # no known mistake explains 0.123: the case's own hint


def test_verbose_false_prints_nothing(capsys):
    assert not check_iou(lambda a, b: 0.5, verbose=False)
    assert check_iou(reference_iou, verbose=False)
    assert capsys.readouterr().out == ""


def test_student_cannot_change_the_cases_by_mutating_inputs(capsys):
    def nms_that_mutates(boxes, scores, iou_threshold):
        keep = nms(boxes, scores, iou_threshold).tolist()
        boxes.zero_()
        scores.fill_(1.0)
        return keep

    assert check_nms(nms_that_mutates)
    assert check_nms(nms)  # the cases are intact for the next student


def test_check_result_truthiness_and_repr():
    assert CheckResult(True, [], 3) and not CheckResult(False, ["x"], 3)
    assert repr(CheckResult(False, ["x"], 3)) == "CheckResult(passed=False, 1 failure)"
    assert repr(CheckResult(False, ["x", "y"], 3)) == "CheckResult(passed=False, 2 failures)"
    assert repr(CheckResult(True, [], 3)) == "CheckResult(passed=True, 3 cases)"


def every_exercise() -> list[Exercise]:
    """Every :class:`Exercise` defined in a module of ``course_lib.exercises``."""
    found = {}
    for info in pkgutil.iter_modules(course_lib.exercises.__path__):
        module = importlib.import_module(f"course_lib.exercises.{info.name}")
        found.update({value.name: value for value in vars(module).values() if isinstance(value, Exercise)})
    return [found[name] for name in sorted(found)]


# ----------------------------------------------------------------------------- printed cases


def test_float_case_inputs_print_as_floats_regression(capsys):
    # The bug: nms's float boxes printed as tensor([[10, 10, 50, 50], ...]); pasted back they became
    # int64 boxes that course_lib rejects. Now they print as floats and paste back as float32.
    check_nms(lambda boxes, scores, iou_threshold: [0])
    call = capsys.readouterr().out.splitlines()[1].strip()
    assert call.startswith("nms(torch.tensor([[10.0, 10.0, 50.0, 50.0], [12.0, 8.0, 52.0, 48.0],")
    boxes, scores, threshold = paste(f"({call[len('nms('):-1]},)")
    assert boxes.dtype == torch.float32 and scores.dtype == torch.float32 and threshold == 0.5


@pytest.mark.parametrize("exercise", every_exercise(), ids=lambda exercise: exercise.name)
def test_every_printed_case_pastes_back_into_the_same_case(exercise):
    def crashes(*args):
        raise ValueError("wrong on purpose")

    result = run_exercise(exercise, crashes, verbose=False)
    assert len(result.failures) == len(exercise.cases)  # every case failed and printed its call
    for case, failure in zip(exercise.cases, result.failures, strict=True):
        call = failure.splitlines()[1].strip()
        assert call.startswith(f"{exercise.name}(") and call.endswith(")"), call
        assert_same(paste(f"({call[len(exercise.name) + 1:-1]},)"), tuple(case.args), case.name)


def test_answers_keep_their_decimal_point(capsys):
    check_iou(lambda box_a, box_b: 1)
    assert "got:      1.0" in capsys.readouterr().out


# ----------------------------------------------------------------------------- under a notebook cell


def test_a_printed_result_shows_nothing_more_under_its_cell(capsys):
    # What IPython (and so a notebook) shows for the last line of a cell: no stray CheckResult(...).
    for result in (check_iou(lambda a, b: 0.5), check_iou(reference_iou)):
        capsys.readouterr()
        assert DisplayFormatter().format(result) == ({}, {})
        assert capsys.readouterr().out == ""


def test_a_silent_result_shows_its_report_under_its_cell(capsys):
    result = check_iou(lambda a, b: 0.5, verbose=False)
    assert capsys.readouterr().out == ""
    assert DisplayFormatter().format(result) == ({}, {})
    out = capsys.readouterr().out
    assert out == result.report() + "\n" and out.startswith("✗ iou: case 1 of 9 failed")


def test_report_is_what_the_checker_prints(capsys):
    for fn in (lambda a, b: 0.5, reference_iou, lambda a, b: 1 / 0):
        result = check_iou(fn)
        assert capsys.readouterr().out == result.report() + "\n"
    assert CheckResult(True, [], 3).report() == "✓ All 3 cases passed."
    assert CheckResult(False, ["x", "y"], 3).report() == "x\n  (1 other case also fails; fix this one first.)"
