"""Tests of the anchor-labelling checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's ``_variant``),
so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection._utils import Matcher

from course_lib.anchors import label_anchors
from course_lib.boxes import box_iou
from course_lib.exercises import CheckResult, check_label_anchors
from course_lib.exercises import base as exercises_base
from course_lib.exercises.anchors import LABEL_ANCHORS


def student_labels(anchors, gt_boxes, low_quality=True, strict_positive=False, negative_le=False,
                   empty_label=0):
    """Plain Python loops over anchors and boxes, as a student would write them."""
    labels = []
    if len(gt_boxes) == 0:
        return torch.tensor([empty_label] * len(anchors))
    iou = box_iou(anchors, gt_boxes).tolist()  # N lists of M
    best_anchor_iou = [max(iou[n][m] for n in range(len(anchors))) for m in range(len(gt_boxes))]
    for row in iou:
        best = max(row)
        positive = best > 0.7 if strict_positive else best >= 0.7
        negative = best <= 0.3 if negative_le else best < 0.3
        label = 1 if positive else 0 if negative else -1
        if low_quality and any(row[m] == best_anchor_iou[m] > 0 for m in range(len(row))):
            label = 1
        labels.append(label)
    return torch.tensor(labels)


def labels_box_by_box(anchors, gt_boxes):
    """Each ground-truth box overwrites the labels of the previous one."""
    labels = torch.full((len(anchors),), -1)
    if len(gt_boxes) == 0:
        return labels.zero_()
    iou = box_iou(anchors, gt_boxes)
    for m in range(len(gt_boxes)):
        labels[iou[:, m] < 0.3] = 0
        labels[iou[:, m] >= 0.7] = 1
    for m in range(len(gt_boxes)):
        labels[iou[:, m] == iou[:, m].max()] = 1
    return labels


def torchvision_labels(anchors, gt_boxes):
    if len(gt_boxes) == 0:
        return torch.zeros(len(anchors), dtype=torch.int64)
    matches = Matcher(0.7, 0.3, allow_low_quality_matches=True)(box_iou(gt_boxes, anchors))
    return torch.where(matches >= 0, 1, torch.where(matches == Matcher.BELOW_LOW_THRESHOLD, 0, -1))


@pytest.mark.parametrize("solution", [student_labels, torchvision_labels,
                                      lambda a, g: label_anchors(a, g)[0],
                                      lambda a, g: student_labels(a, g).tolist()])
def test_checker_passes_a_correct_solution(solution, capsys):
    result = check_label_anchors(solution)
    assert result and result.failures == []
    assert f"All {result.num_cases} cases passed" in capsys.readouterr().out


WRONG = [
    (lambda a, g: student_labels(a, g, low_quality=False), "even below 0.7"),
    (lambda a, g: student_labels(a, g, strict_positive=True), "an IoU of exactly 0.7 is positive"),
    (lambda a, g: student_labels(a, g, negative_le=True), "an IoU of exactly 0.3 is ignored"),
    (labels_box_by_box, "not box by box"),
    (lambda a, g: student_labels(a, g, empty_label=-1), "not ignored (-1)"),
]


@pytest.mark.parametrize("wrong, hint", WRONG)
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    result = check_label_anchors(wrong)
    out = capsys.readouterr().out
    assert not result
    assert hint in out, f"expected the hint {hint!r} in:\n{out}"
    assert "expected:" in out and "got:" in out


def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint():
    for mistake in LABEL_ANCHORS.mistakes:
        result = exercises_base.run_exercise(LABEL_ANCHORS, mistake.wrong, verbose=False)
        assert not result, f"no case catches the mistake {mistake.hint!r}"
        assert any(mistake.hint in failure for failure in result.failures), mistake.hint


def test_thresholds_case_has_iou_exactly_on_the_thresholds():
    anchors, gt_boxes = LABEL_ANCHORS.cases[1].args
    best = box_iou(anchors, gt_boxes).max(dim=1).values
    assert best.tolist()[:3] == [0.7, 1.0, 0.3]  # exactly the Python floats 0.7 and 0.3


def test_no_ground_truth_crash_is_reported_with_the_hint(capsys):
    result = check_label_anchors(lambda a, g: (box_iou(a, g).max(dim=1).values >= 0.7).long())
    out = capsys.readouterr().out
    assert not result and "label_anchors: case 1 of 5 failed" in out
    assert any("raised" in failure and "every anchor is background" in failure for failure in result.failures)


def test_stub_reports_not_implemented_without_raising(capsys):
    def label(anchors, gt_boxes):
        raise NotImplementedError  # your code

    result = check_label_anchors(label)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "not attempted yet" in out and "Hint:" in out and "Traceback" not in out


def test_wrong_number_of_labels_is_explained(capsys):
    result = check_label_anchors(lambda a, g: torch.zeros(len(a) + 1, dtype=torch.int64))
    assert not result and "one per anchor" in capsys.readouterr().out
