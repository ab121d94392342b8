"""Tests of the DETR matching-cost checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's ``_variant``),
so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.ops

from course_lib.exercises.base import CheckResult, run_exercise
from course_lib.exercises.detr import MATCHING_COST, check_matching_cost, reference_matching_cost
from course_lib.models.detr import matching_cost
from tests.exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def student_cost(logits, box, label, target_box, softmax=False, class_term="focal", l2=False, giou_sign=-1,
                 iou_only=False, corners=True, weights=(2.0, 5.0, 2.0)):
    """The cost the way the notebook asks for it, in torch, with the switches a student gets wrong."""
    p = (torch.softmax(logits, dim=0) if softmax else torch.sigmoid(logits))[label]
    positive = 0.25 * (1 - p) ** 2 * -torch.log(p + 1e-8)
    negative = 0.75 * p**2 * -torch.log(1 - p + 1e-8)
    cls = {"focal": positive - negative, "minus_p": -p, "positive_only": positive}[class_term]
    l1 = (box - target_box).pow(2).sum().sqrt() if l2 else (box - target_box).abs().sum()
    if corners:
        a = torch.cat([box[:2] - box[2:] / 2, box[:2] + box[2:] / 2])
        b = torch.cat([target_box[:2] - target_box[2:] / 2, target_box[:2] + target_box[2:] / 2])
    else:
        a, b = box, target_box
    inter = (torch.minimum(a[2:], b[2:]) - torch.maximum(a[:2], b[:2])).clamp(min=0).prod()
    union = (a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter
    enclosing = (torch.maximum(a[2:], b[2:]) - torch.minimum(a[:2], b[:2])).prod()
    giou = inter / union - (0 if iou_only else (enclosing - union) / enclosing)
    return (weights[0] * cls + weights[1] * l1 + giou_sign * weights[2] * giou).item()


def torchvision_cost(logits, box, label, target_box):
    """The same from torchvision's focal loss and GIoU: class = FL(matched) - FL(unmatched)."""
    x = logits[label : label + 1]
    focal = torchvision.ops.sigmoid_focal_loss
    cls = focal(x, torch.ones(1)) - focal(x, torch.zeros(1))
    corners = torchvision.ops.box_convert(torch.stack([box, target_box]), "cxcywh", "xyxy")
    giou = torchvision.ops.generalized_box_iou(corners[:1], corners[1:])[0, 0]
    return 2 * cls + 5 * (box - target_box).abs().sum() - 2 * giou  # a Tensor[1]: accepted as a number


def math_cost(logits, box, label, target_box):
    """Plain Python floats, one line per term."""
    p = 1 / (1 + math.exp(-float(logits[label])))
    cls = 0.25 * (1 - p) ** 2 * -math.log(p + 1e-8) - 0.75 * p**2 * -math.log(1 - p + 1e-8)
    (cx, cy, w, h), (tx, ty, tw, th) = box.tolist(), target_box.tolist()
    l1 = abs(cx - tx) + abs(cy - ty) + abs(w - tw) + abs(h - th)
    a = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    b = (tx - tw / 2, ty - th / 2, tx + tw / 2, ty + th / 2)
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = w * h + tw * th - inter
    enclosing = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return 2 * cls + 5 * l1 - 2 * (inter / union - (enclosing - union) / enclosing)


@pytest.mark.parametrize("solution", [student_cost, torchvision_cost, math_cost, reference_matching_cost],
                         ids=["torch", "torchvision", "math", "reference"])
def test_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_matching_cost, solution, capsys)


MISTAKES = [
    (lambda *a: student_cost(*a, class_term="minus_p"), "the class term is the focal cost, not -p"),
    (lambda *a: student_cost(*a, class_term="positive_only"), "the focal class cost has two parts"),
    (lambda *a: student_cost(*a, l2=True), "not the Euclidean (L2) distance"),
    (lambda *a: student_cost(*a, giou_sign=1), "the cost subtracts the GIoU"),
    (lambda *a: student_cost(*a, iou_only=True), "plain IoU is 0 for every pair of disjoint boxes"),
    (lambda *a: student_cost(*a, corners=False), "convert both boxes from (cx, cy, w, h) to corners"),
    (lambda *a: student_cost(*a, weights=(1, 1, 1)), "weigh the three terms"),
    (lambda *a: student_cost(*a, softmax=True), "not a softmax"),
]


@pytest.mark.parametrize("wrong, hint", MISTAKES, ids=["-p", "positive only", "L2", "+GIoU", "IoU",
                                                       "no corners", "no weights", "softmax"])
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_matching_cost, wrong, hint, capsys)


def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(MATCHING_COST)


def test_the_first_failure_of_each_known_mistake_shows_its_own_hint():
    for mistake in MATCHING_COST.mistakes:
        result = run_exercise(MATCHING_COST, mistake.wrong, verbose=False)
        assert mistake.hint in result.failures[0], mistake.hint


def test_reference_by_hand():
    # logit 0: p = 1/2, class = 0.25 * 0.25 * log 2 - 0.75 * 0.25 * log 2 = -log(2) / 8.
    # Boxes (0.5, 0.5, 0.2, 0.2) and (0.6, 0.5, 0.2, 0.2): L1 = 0.1; corners [0.4, 0.6] and [0.5, 0.7]
    # in x, [0.4, 0.6] in y: IoU = 0.02 / 0.06 = 1/3, enclosing 0.3 x 0.2 = 0.06 = the union: GIoU = 1/3.
    logits = torch.tensor([0.0, 3.0])
    box, target = torch.tensor([0.5, 0.5, 0.2, 0.2]), torch.tensor([0.6, 0.5, 0.2, 0.2])
    expected = 2 * -math.log(2) / 8 + 5 * 0.1 - 2 / 3
    assert reference_matching_cost(logits, box, 0, target) == pytest.approx(expected, abs=1e-5)
    # Apart by 0.4 in x: IoU 0, enclosing 0.6 x 0.2 = 0.12, union 0.08: GIoU = -1/3.
    far = torch.tensor([0.9, 0.5, 0.2, 0.2])
    expected_far = 2 * -math.log(2) / 8 + 5 * 0.4 + 2 / 3
    assert reference_matching_cost(logits, box, 0, far) == pytest.approx(expected_far, abs=1e-5)


def test_every_case_agrees_with_torchvision_and_the_models_cost_matrix():
    generator = torch.Generator().manual_seed(0)
    for case in MATCHING_COST.cases:
        expected = reference_matching_cost(*case.args)
        assert float(torchvision_cost(*case.args)) == pytest.approx(expected, abs=2e-4)
    # One entry of the matrix is the cost of that pair: the exercise is the model's matching cost.
    logits, boxes = torch.randn(6, 5, generator=generator), 0.2 + 0.3 * torch.rand(6, 4, generator=generator)
    labels, targets = torch.tensor([4, 0, 2]), 0.2 + 0.3 * torch.rand(3, 4, generator=generator)
    matrix = matching_cost(logits, boxes, labels, targets)
    for i in range(6):
        for j in range(3):
            assert math_cost(logits[i], boxes[i], int(labels[j]), targets[j]) == pytest.approx(
                float(matrix[i, j]), abs=1e-4)


def test_cases_cover_the_perfect_box_disjoint_boxes_and_a_near_certain_class():
    names = {case.name: case.args for case in MATCHING_COST.cases}
    logits, box, label, target = names["the perfect box"]
    assert torch.equal(box, target)
    logits, box, label, target = names["disjoint boxes"]
    corners = torchvision.ops.box_convert(torch.stack([box, target]), "cxcywh", "xyxy")
    assert float(torchvision.ops.generalized_box_iou(corners[:1], corners[1:])) < 0
    logits, box, label, target = names["a near-certain class"]
    assert torch.sigmoid(logits[label]) > 0.99
    assert len({case.args[0].shape[0] for case in MATCHING_COST.cases}) > 1  # not always 5 classes


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda *a: torch.full((2,), student_cost(*a)), "expected one number, got an array of shape (2,)"),
        (lambda *a: str(student_cost(*a)), "expected a number, got str"),
        (lambda *a: None, "expected a number, got NoneType"),
    ],
    ids=["two numbers", "a string", "None"],
)
def test_wrong_types_are_explained(wrong, message, capsys):
    result = check_matching_cost(wrong)
    out = capsys.readouterr().out
    assert not result and message in out, out


def test_a_nan_is_never_right(capsys):
    result = check_matching_cost(lambda *a: float("nan"))
    assert not result and "not a finite number" in capsys.readouterr().out


def test_stub_reports_not_implemented_without_raising(capsys):
    def matching_cost_stub(logits, box, label, target_box):
        raise NotImplementedError  # your code

    result = check_matching_cost(matching_cost_stub)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "not attempted yet" in out and "Hint:" in out and "Traceback" not in out


def test_student_exception_is_reported_as_a_message(capsys):
    result = check_matching_cost(lambda logits, box, label, target_box: box.view(2, 3))  # 4 numbers, not 6
    out = capsys.readouterr().out
    assert not result and "raised RuntimeError" in out and "Hint:" in out and "Traceback" not in out


def test_not_a_function_is_explained(capsys):
    result = check_matching_cost(3.0)
    assert not result and "expected a function matching_cost(logits" in capsys.readouterr().out
