"""Tests of the NMS checker: it passes correct solutions and catches typical mistakes with a hint.

The wrong answers below are written the way students write them (not through the checker's own
``_*_variant`` helpers), so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.exercises import check_nms
from course_lib.exercises.nms import NMS
from course_lib.nms import nms
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def iou(box_a, box_b):  # a student's IoU of two xyxy boxes, as in notebook 01
    width = max(0.0, min(box_a[2], box_b[2]) - max(box_a[0], box_b[0]))
    height = max(0.0, min(box_a[3], box_b[3]) - max(box_a[1], box_b[1]))
    inter = width * height
    area_a = (box_a[2] - box_a[0]) * (box_a[3] - box_a[1])
    area_b = (box_b[2] - box_b[0]) * (box_b[3] - box_b[1])
    return inter / (area_a + area_b - inter)


def row_iou(boxes, i, j):
    return iou(boxes[i].tolist(), boxes[j].tolist())


def good_nms(boxes, scores, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    keep = []
    while order:
        best, order = order[0], order[1:]
        keep.append(best)
        order = [i for i in order if row_iou(boxes, best, i) <= iou_threshold]
    return keep


CORRECT = [
    good_nms,
    nms,
    lambda b, s, t: np.array(good_nms(b, s, t)),
]


def nms_never_removes(boxes, scores, iou_threshold):
    return torch.argsort(scores, descending=True, stable=True)


def _greedy(boxes, scores, iou_threshold, order, remove):
    keep = []
    while order:
        best, order = order[0], order[1:]
        keep.append(best)
        order = [i for i in order if not remove(row_iou(boxes, best, i), iou_threshold)]
    return keep


def nms_removes_at_equal_iou(boxes, scores, iou_threshold):  # the lecture's "IoU >= 50%"
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    return _greedy(boxes, scores, iou_threshold, order, lambda iou, t: iou >= t)


def nms_removes_the_wrong_side(boxes, scores, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    return _greedy(boxes, scores, iou_threshold, order, lambda iou, t: iou < t)


def nms_not_sorted(boxes, scores, iou_threshold):
    return _greedy(boxes, scores, iou_threshold, list(range(len(scores))), lambda iou, t: iou > t)


def nms_ascending(boxes, scores, iou_threshold):
    order = torch.argsort(scores, stable=True).tolist()
    return _greedy(boxes, scores, iou_threshold, order, lambda iou, t: iou > t)


def nms_removed_boxes_still_suppress(boxes, scores, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    removed = set()
    for rank, i in enumerate(order):  # i suppresses even when i itself was removed
        for j in order[rank + 1 :]:
            if row_iou(boxes, i, j) > iou_threshold:
                removed.add(j)
    return [i for i in order if i not in removed]


def nms_one_round(boxes, scores, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    if not order:
        return []
    best = order[0]
    return [best] + [i for i in order[1:] if row_iou(boxes, best, i) <= iou_threshold]


def nms_index_order(boxes, scores, iou_threshold):
    return sorted(good_nms(boxes, scores, iou_threshold))


def nms_unstable_ties(boxes, scores, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), -i))
    return _greedy(boxes, scores, iou_threshold, order, lambda iou, t: iou > t)


MISTAKES = [
    (nms_never_removes, "nothing was removed"),
    (nms_removes_at_equal_iou, "IoU exactly equal to the threshold stays"),
    (nms_removes_the_wrong_side, "not the ones below it"),
    (nms_not_sorted, "sort the boxes by decreasing score first"),
    (nms_ascending, "*decreasing* score"),
    (nms_removed_boxes_still_suppress, "already removed must not remove others"),
    (nms_one_round, "repeat steps 2-4"),
    (nms_index_order, "not sorted by index"),
    (nms_unstable_ties, "stable sort"),
]


@pytest.mark.parametrize("solution", CORRECT)
def test_check_nms_passes_a_correct_solution(solution, capsys):
    assert_passes(check_nms, solution, capsys)


@pytest.mark.parametrize("wrong, hint", MISTAKES, ids=lambda x: getattr(x, "__name__", None))
def test_check_nms_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_nms, wrong, hint, capsys)


def test_every_known_nms_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(NMS)


def test_nms_difference_is_described(capsys):
    check_nms(nms_never_removes)
    assert "which should be removed" in capsys.readouterr().out
    check_nms(nms_index_order)
    assert "the right boxes, in another order" in capsys.readouterr().out
