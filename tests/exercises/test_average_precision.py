"""Tests of the average-precision checker: it passes correct solutions and catches typical mistakes.

The wrong answers below are written the way students write them (not through the checker's own
``_*_variant`` helpers), so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.exercises import check_ap
from course_lib.exercises.average_precision import AP
from course_lib.metrics import average_precision
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def good_ap(precision, recall):
    precision, recall = np.asarray(precision, dtype=float), np.asarray(recall, dtype=float)
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    total = 0.0
    for level in np.linspace(0, 1, 101):
        reached = np.nonzero(recall >= level)[0]
        total += envelope[reached[0]] if len(reached) else 0.0
    return total / 101


CORRECT = [
    good_ap,
    lambda p, r: average_precision(p, r, method="coco101"),
]


def ap_raw_precision(precision, recall):  # 101 levels, but no envelope
    precision, recall = np.asarray(precision), np.asarray(recall)
    values = [precision[np.argmax(recall >= level)] if (recall >= level).any() else 0.0
              for level in np.linspace(0, 1, 101)]
    return float(np.mean(values))


def ap_raw_area(precision, recall):
    precision, recall = np.asarray(precision), np.asarray(recall)
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def ap_with_grid(levels):
    def ap(precision, recall):
        precision, recall = np.asarray(precision), np.asarray(recall)
        if len(precision) == 0:
            return 0.0
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        index = np.searchsorted(recall, levels, side="left")
        return float(sum(envelope[i] for i in index if i < len(envelope)) / len(levels))

    return ap


def ap_all_points(precision, recall):
    precision, recall = np.asarray(precision), np.asarray(recall)
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    return float(np.sum(np.diff(recall, prepend=0.0) * envelope))


MISTAKES = [
    (ap_raw_precision, "take the precision envelope first"),
    (ap_raw_area, "area under the raw curve"),
    (ap_all_points, "all-points area"),
    (ap_with_grid(np.linspace(0, 1, 11)), "not Pascal VOC 2007's 11"),
    (ap_with_grid(np.linspace(0, 1, 100)), "not 100"),
    (ap_with_grid(np.arange(0, 1, 0.01)), "include the level 1.0"),
]


@pytest.mark.parametrize("solution", CORRECT)
def test_check_ap_passes_a_correct_solution(solution, capsys):
    assert_passes(check_ap, solution, capsys)


@pytest.mark.parametrize("wrong, hint", MISTAKES, ids=lambda x: getattr(x, "__name__", None))
def test_check_ap_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_ap, wrong, hint, capsys)


def test_every_known_ap_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(AP)
