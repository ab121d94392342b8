"""Tests of the IoU checker: it passes correct solutions and catches typical mistakes with a hint.

The wrong answers below are written the way students write them (not through the checker's own
``_*_variant`` helpers), so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import pytest
import torch

from course_lib.boxes import box_iou
from course_lib.exercises import check_iou
from course_lib.exercises.iou import IOU
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def good_iou(box_a, box_b):
    width = max(0.0, min(box_a[2], box_b[2]) - max(box_a[0], box_b[0]))
    height = max(0.0, min(box_a[3], box_b[3]) - max(box_a[1], box_b[1]))
    inter = width * height
    area_a = (box_a[2] - box_a[0]) * (box_a[3] - box_a[1])
    area_b = (box_b[2] - box_b[0]) * (box_b[3] - box_b[1])
    return inter / (area_a + area_b - inter)


CORRECT = [
    good_iou,
    lambda a, b: box_iou(torch.tensor([a]), torch.tensor([b]))[0, 0],  # a tensor answer
]


def _iou_parts(a, b, clamp=True):
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if clamp:
        width, height = max(width, 0), max(height, 0)
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    return width * height, area_a, area_b


def iou_over_sum(a, b):
    inter, area_a, area_b = _iou_parts(a, b)
    return inter / (area_a + area_b)


def iou_over_area_a(a, b):
    inter, area_a, _ = _iou_parts(a, b)
    return inter / area_a


def iou_without_clamp(a, b):
    inter, area_a, area_b = _iou_parts(a, b, clamp=False)
    return inter / (area_a + area_b - inter)


def iou_clamp_product(a, b):
    inter, area_a, area_b = _iou_parts(a, b, clamp=False)
    inter = max(inter, 0)
    return inter / (area_a + area_b - inter)


def iou_plus_one(a, b):
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    area_a, area_b = (a[2] - a[0] + 1) * (a[3] - a[1] + 1), (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return width * height / (area_a + area_b - width * height)


def iou_xywh(a, b):
    return good_iou([a[0], a[1], a[0] + a[2], a[1] + a[3]], [b[0], b[1], b[0] + b[2], b[1] + b[3]])


MISTAKES = [
    (iou_over_sum, "counts the overlap twice"),
    (iou_over_area_a, "not by the area of box_a alone"),
    (lambda a, b: _iou_parts(a, b)[0] / min(_iou_parts(a, b)[1:]), "not by the area of the smaller box"),
    (iou_without_clamp, "clamp the intersection's width and height at 0"),
    (iou_clamp_product, "clamp the width and the height separately"),
    (iou_plus_one, "no +1"),
    (iou_xywh, "not (x, y, width, height)"),
]


@pytest.mark.parametrize("solution", CORRECT)
def test_check_iou_passes_a_correct_solution(solution, capsys):
    assert_passes(check_iou, solution, capsys)


@pytest.mark.parametrize("wrong, hint", MISTAKES, ids=lambda x: getattr(x, "__name__", None))
def test_check_iou_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_iou, wrong, hint, capsys)


def test_every_known_iou_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(IOU)
