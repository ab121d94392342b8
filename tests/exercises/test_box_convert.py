"""Tests of the box-conversion checker: it passes correct solutions and catches typical mistakes with a hint.

The wrong answers below are written the way students write them (not through the checker's own
``_*_variant`` helpers), so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import pytest
import torch

from course_lib.boxes import box_convert
from course_lib.exercises import check_box_convert
from course_lib.exercises.box_convert import BOX_CONVERT
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def good_convert(box):
    x1, y1, x2, y2 = box
    return [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]


CORRECT = [
    good_convert,
    lambda box: box_convert(torch.tensor([box]), "xyxy", "cxcywh")[0],
]

MISTAKES = [
    (lambda b: [(b[2] - b[0]) / 2, (b[3] - b[1]) / 2, b[2] - b[0], b[3] - b[1]], "not half the width"),
    (lambda b: [b[0], b[1], b[2] - b[0], b[3] - b[1]], "the xywh format"),
    (lambda b: [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2], b[3]], "not the corner x2, y2"),
]


@pytest.mark.parametrize("solution", CORRECT)
def test_check_box_convert_passes_a_correct_solution(solution, capsys):
    assert_passes(check_box_convert, solution, capsys)


@pytest.mark.parametrize("wrong, hint", MISTAKES, ids=lambda x: getattr(x, "__name__", None))
def test_check_box_convert_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_box_convert, wrong, hint, capsys)


def test_every_known_box_convert_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(BOX_CONVERT)
