"""Tests of the focal-loss checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's ``_variant``),
so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch.nn import functional as F

from course_lib.exercises import CheckResult, check_focal_loss
from course_lib.exercises.focal_loss import FOCAL_LOSS, reference_focal_loss
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def student_focal(logits, targets, alpha=0.25, gamma=2.0, alpha_for="positives", use_p_t=True,
                  power=True, log="with_logits"):
    """The focal loss the way the notebook's exercise asks for it, with the switches a student gets wrong."""
    p = torch.sigmoid(logits)
    if log == "with_logits":
        ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    elif log == "naive":
        ce = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p))
    else:
        ce = F.binary_cross_entropy(p, targets, reduction="none")
    p_t = torch.where(targets == 1, p, 1 - p)
    factor = (1 - p_t) if use_p_t else (1 - p)
    factor = factor**gamma if power else factor * gamma
    alpha_t = {"positives": torch.where(targets == 1, alpha, 1 - alpha),
               "both": alpha,
               "negatives": torch.where(targets == 1, 1 - alpha, alpha)}[alpha_for]
    return alpha_t * factor * ce


def logsigmoid_focal(logits, targets, alpha=0.25, gamma=2.0):
    """-log(p_t) through F.logsigmoid, also stable: log(1 - sigmoid(x)) = logsigmoid(-x)."""
    log_p_t = torch.where(targets == 1, F.logsigmoid(logits), F.logsigmoid(-logits))
    p_t = log_p_t.exp()
    alpha_t = targets * alpha + (1 - targets) * (1 - alpha)
    return -alpha_t * (1 - p_t) ** gamma * log_p_t


def naive_log_p_t(logits, targets, alpha=0.25, gamma=2.0):
    """-log(p_t) of the probability: inf where p_t underflows to 0."""
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return -alpha_t * (1 - p_t) ** gamma * torch.log(p_t)


def torchvision_focal(logits, targets, alpha=0.25, gamma=2.0):
    return torchvision.ops.sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="none")


@pytest.mark.parametrize("solution", [student_focal, logsigmoid_focal, torchvision_focal,
                                      reference_focal_loss, lambda *a: student_focal(*a).double().numpy()],
                         ids=["bce with logits", "logsigmoid", "torchvision", "reference", "numpy"])
def test_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_focal_loss, solution, capsys)


MISTAKES = [
    (lambda *a: student_focal(*a, alpha_for="both"), "the negatives (target 0) get 1 - alpha"),
    (lambda *a: student_focal(*a, alpha_for="negatives"), "not the other way round"),
    (lambda *a: student_focal(*a, use_p_t=False), "(1 - p) ** gamma makes a confident negative hard"),
    (lambda *a: student_focal(*a, power=False), "gamma is a power"),
    (lambda *a: student_focal(*a, log="naive"), "log(sigmoid(x)) underflows to log(0)"),
    (naive_log_p_t, "F.binary_cross_entropy_with_logits(logits, targets, reduction='none')"),
    (lambda *a: student_focal(*a, log="clamped"), "clamps each log at -100"),
]


@pytest.mark.parametrize("wrong, hint", MISTAKES)
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_focal_loss, wrong, hint, capsys)


def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(FOCAL_LOSS)


def test_reference_by_hand():
    # Logit 0: p = p_t = 0.5, so FL = alpha_t * 0.25 * log 2 (alpha_t 0.25 for the positive, 0.75 for
    # the negative).
    got = reference_focal_loss(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(got, torch.tensor([0.25, 0.75]) * 0.25 * math.log(2))
    # Confidently wrong at logit 100: -log(p_t) = 100, (1 - p_t) ** 2 = 1.
    got = reference_focal_loss(torch.tensor([100.0, -100.0]), torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(got, torch.tensor([75.0, 25.0]))


def test_extreme_case_is_finite_for_the_reference_and_not_for_the_naive_log():
    case = next(case for case in FOCAL_LOSS.cases if case.name.startswith("extreme logits"))
    logits, targets = case.args[:2]
    assert set(logits.tolist()) == {100.0, -100.0} and logits.dtype == torch.float32
    assert torch.isfinite(reference_focal_loss(*case.args)).all()
    assert not torch.isfinite(student_focal(*case.args, log="naive")).all()
    assert not torch.isfinite(naive_log_p_t(*case.args)).all()


def test_every_case_agrees_with_torchvision():
    for case in FOCAL_LOSS.cases:
        torch.testing.assert_close(reference_focal_loss(*case.args), torchvision_focal(*case.args))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda *a: student_focal(*a).sum(), "no sum or mean"),
        (lambda *a: student_focal(*a).mean(), "no sum or mean"),
        (lambda *a: float(student_focal(*a).sum()), "expected a Tensor of losses, one per logit, got float"),
    ],
    ids=["sum", "mean", "a float"],
)
def test_reduced_answers_are_explained(wrong, message, capsys):
    result = check_focal_loss(wrong)
    out = capsys.readouterr().out
    assert not result and message in out, out


def test_stub_reports_not_implemented_without_raising(capsys):
    def focal_loss(logits, targets, alpha=0.25, gamma=2.0):
        raise NotImplementedError  # your code

    result = check_focal_loss(focal_loss)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "not attempted yet" in out and "Hint:" in out and "Traceback" not in out


def test_student_exception_is_reported_as_a_message(capsys):
    # The first case has 2 logits: no rows of 4.
    result = check_focal_loss(lambda logits, targets, alpha, gamma: logits.view(-1, 4))
    out = capsys.readouterr().out
    assert not result and "raised RuntimeError" in out and "Hint:" in out and "Traceback" not in out
