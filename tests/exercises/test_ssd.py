"""Tests of the SSD matching checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's ``_variant``),
so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection._utils import Matcher

from course_lib.boxes import box_iou
from course_lib.exercises import CheckResult, check_match_default_boxes
from course_lib.exercises.ssd import MATCH_DEFAULT_BOXES, reference_match_default_boxes
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def student_match(default_boxes, gt_boxes, gt_labels, iou_threshold=0.5, best_per_object=True, strict=False,
                  use_index=False, shift=0, fixed_threshold=False, claimer_label=False):
    """Plain Python loops over default boxes and objects, as a student would write them."""
    if len(gt_boxes) == 0:
        return torch.zeros(len(default_boxes), dtype=torch.int64)
    threshold = 0.5 if fixed_threshold else iou_threshold
    iou = box_iou(default_boxes, gt_boxes).tolist()  # N lists of M
    classes = []
    for row in iou:
        best = max(range(len(row)), key=lambda m: row[m])  # the first object on ties
        matched = row[best] > threshold if strict else row[best] >= threshold
        value = best if use_index else int(gt_labels[best]) + shift
        classes.append(value if matched else 0)
    if best_per_object:
        for m in range(len(gt_boxes)):
            column = [row[m] for row in iou]
            for n, value in enumerate(column):
                if value == max(column) > 0 and classes[n] == 0:
                    owner = m if claimer_label else max(range(len(iou[n])), key=lambda k: iou[n][k])
                    classes[n] = owner if use_index else int(gt_labels[owner]) + shift
    return torch.tensor(classes)


def torchvision_match(default_boxes, gt_boxes, gt_labels, iou_threshold=0.5):
    if len(gt_boxes) == 0:
        return torch.zeros(len(default_boxes), dtype=torch.int64)
    matcher = Matcher(iou_threshold, iou_threshold, allow_low_quality_matches=True)
    matches = matcher(box_iou(gt_boxes, default_boxes))  # (N,), -1 below the threshold
    return torch.where(matches >= 0, gt_labels[matches.clamp(min=0)], 0)


@pytest.mark.parametrize("solution", [student_match, torchvision_match, reference_match_default_boxes,
                                      lambda *a: student_match(*a, claimer_label=True),
                                      lambda *a: student_match(*a).tolist()],
                         ids=["loops", "torchvision", "reference", "paper's label for claimed boxes", "list"])
def test_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_match_default_boxes, solution, capsys)


MISTAKES = [
    (lambda *a: student_match(*a, best_per_object=False), "each object also takes its best default box"),
    (lambda *a: student_match(*a, strict=True), "an IoU of exactly 0.5 is a match"),
    (lambda *a: student_match(*a, use_index=True), "not the object's index"),
    (lambda *a: student_match(*a, shift=1), "without adding or subtracting 1"),
    (lambda *a: student_match(*a, shift=-1), "without adding or subtracting 1"),
    (lambda *a: student_match(*a, fixed_threshold=True), "use the iou_threshold argument"),
]


@pytest.mark.parametrize("wrong, hint", MISTAKES)
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_match_default_boxes, wrong, hint, capsys)


def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(MATCH_DEFAULT_BOXES)


def test_reference_by_hand_on_the_exact_threshold_case():
    default_boxes = torch.tensor([[0.0, 0, 10, 5], [0, 0, 10, 10], [0, 0, 10, 4], [20, 20, 30, 30]])
    gt_boxes, gt_labels = torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([2])
    assert box_iou(default_boxes, gt_boxes)[:3, 0].tolist() == [0.5, 1.0, 0.4000000059604645]
    assert reference_match_default_boxes(default_boxes, gt_boxes, gt_labels).tolist() == [2, 2, 0, 0]
    assert reference_match_default_boxes(default_boxes, gt_boxes, gt_labels, 0.35).tolist() == [2, 2, 2, 0]


def test_cases_cover_no_objects_a_tiny_object_the_exact_threshold_and_ties():
    cases = {case.name: case.args for case in MATCH_DEFAULT_BOXES.cases}
    assert any(len(gt_boxes) == 0 for _, gt_boxes, _, _ in cases.values())
    default_boxes, gt_boxes, _, _ = cases["a tiny object, best IoU below 0.5"]
    assert box_iou(default_boxes, gt_boxes)[:, 0].max() < 0.5
    default_boxes, gt_boxes, _, threshold = cases["IoU exactly 0.5"]
    assert (box_iou(default_boxes, gt_boxes) == threshold).any()
    default_boxes, gt_boxes, _, _ = cases["ties: two default boxes equally best for an object"]
    column = box_iou(default_boxes, gt_boxes)[:, 0]
    assert int((column == column.max()).sum()) == 2


def test_no_objects_crash_is_reported_with_the_hint(capsys):
    def crashes_without_objects(default_boxes, gt_boxes, gt_labels, iou_threshold=0.5):
        best_iou, best = box_iou(default_boxes, gt_boxes).max(dim=1)
        return torch.where(best_iou >= iou_threshold, gt_labels[best], 0)

    result = check_match_default_boxes(crashes_without_objects)
    assert not result and "Traceback" not in capsys.readouterr().out
    no_objects = [failure for failure in result.failures if "case 7 of 7 failed (no objects)" in failure]
    assert len(no_objects) == 1 and "raised" in no_objects[0]
    assert "every default box is background" in no_objects[0]


def test_wrong_number_of_classes_is_explained(capsys):
    result = check_match_default_boxes(lambda d, g, l, t=0.5: torch.zeros(len(d) + 1, dtype=torch.int64))
    assert not result and "one per default box" in capsys.readouterr().out


def test_stub_reports_not_implemented_without_raising(capsys):
    def match_default_boxes(default_boxes, gt_boxes, gt_labels, iou_threshold=0.5):
        raise NotImplementedError  # your code

    result = check_match_default_boxes(match_default_boxes)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "not attempted yet" in out and "Hint:" in out and "Traceback" not in out
