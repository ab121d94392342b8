"""Tests of the saliency checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's mistakes), so
these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from torch import nn

from course_lib.exercises import CheckResult
from course_lib.exercises.saliency import (
    SALIENCY_FROM_GRADIENT,
    check_saliency_from_gradient,
    reference_saliency_from_gradient,
)
from course_lib.visualization.saliency import input_gradient, saliency
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def loop_saliency(gradient):
    """Channel by channel, the way a student who distrusts amax writes it."""
    out = gradient[:, 0].abs()
    for channel in range(1, gradient.shape[1]):
        out = torch.maximum(out, gradient[:, channel].abs())
    return out


@pytest.mark.parametrize(
    "solution",
    [
        reference_saliency_from_gradient,
        lambda g: g.abs().max(dim=1).values,
        lambda g: torch.amax(torch.abs(g), 1),
        loop_saliency,
        lambda g: np.abs(g.numpy()).max(axis=1),
    ],
    ids=["reference", "max values", "torch functions", "loop", "numpy"],
)
def test_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_saliency_from_gradient, solution, capsys)


MISTAKES = [
    (lambda g: g.max(dim=1).values, "take the absolute value of the gradient"),
    (lambda g: g.max(dim=1).values.abs(), "the absolute value comes first"),
    (lambda g: g.abs().mean(dim=1), "(amax), not the mean"),
    (lambda g: g.abs().sum(dim=1), "(amax), not the sum"),
    (lambda g: (g**2).max(dim=1).values, "the magnitude |g|, not its square"),
]


@pytest.mark.parametrize("wrong, hint", MISTAKES, ids=["no abs", "abs after max", "mean", "sum", "squared"])
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_saliency_from_gradient, wrong, hint, capsys)


def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(SALIENCY_FROM_GRADIENT)


def test_reference_by_hand():
    gradient = torch.tensor([[[[0.5, -2.0]], [[-1.5, 1.0]], [[0.25, 0.5]]]])  # (1, 3, 1, 2)
    torch.testing.assert_close(reference_saliency_from_gradient(gradient), torch.tensor([[[1.5, 2.0]]]))
    assert reference_saliency_from_gradient(torch.zeros(0, 3, 4, 5)).shape == (0, 4, 5)


def tiny_classifier() -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3)]
    return nn.Sequential(*layers).eval()


def test_the_reference_on_the_input_gradient_is_the_library_saliency_and_captums():
    model, images = tiny_classifier(), torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    expected = reference_saliency_from_gradient(input_gradient(model, images, 2))
    torch.testing.assert_close(saliency(model, images, 2), expected)
    inputs = images.clone().requires_grad_(True)
    captum = Saliency(model).attribute(inputs, target=2, abs=True).amax(dim=1)  # Captum keeps the channels
    torch.testing.assert_close(captum, expected)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda g: g.abs().max(dim=1), "tensor.max(dim=1) returns both, take .values"),
        (lambda g: g.abs().amax(dim=1, keepdim=True), "drop the channel dimension (no keepdim=True)"),
        (lambda g: g.abs().amax(dim=0), "reduce over the channels, dim=1 (dim 0 is the batch)"),
        (lambda g: g.abs(), "one map per image, got (1, 3, 2, 3)"),
        (lambda g: float(g.abs().max()), "expected a Tensor[B, H, W], got float"),
    ],
    ids=["values and indices", "keepdim", "dim 0", "no reduction", "a float"],
)
def test_wrong_shapes_and_types_are_explained(wrong, message, capsys):
    result = check_saliency_from_gradient(wrong)
    out = capsys.readouterr().out
    assert not result and message in out, out


def test_stub_reports_not_implemented_without_raising(capsys):
    def saliency_from_gradient(gradient):
        raise NotImplementedError  # your code

    result = check_saliency_from_gradient(saliency_from_gradient)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "not attempted yet" in out and "Hint:" in out and "Traceback" not in out


def test_student_exception_is_reported_as_a_message(capsys):
    result = check_saliency_from_gradient(lambda gradient: gradient.abs().amax(dim=1).view(-1, 4))
    out = capsys.readouterr().out
    assert not result and "raised RuntimeError" in out and "Hint:" in out and "Traceback" not in out
