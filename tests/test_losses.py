"""sigmoid_focal_loss against torchvision.ops.sigmoid_focal_loss (values and gradients) and its formula."""

import math

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss as reference

from course_lib.losses import sigmoid_focal_loss

SETTINGS = [(0.25, 2.0), (0.25, 0.0), (0.5, 1.0), (-1.0, 2.0), (0.75, 5.0), (0.25, 0.5)]


def _inputs(seed, shape=(64, 6), dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    logits = 4 * torch.randn(shape, generator=generator, dtype=dtype)
    targets = (torch.rand(shape, generator=generator) < 0.2).to(dtype)
    return logits, targets


@pytest.mark.parametrize("alpha, gamma", SETTINGS)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_torchvision_with_gradients(seed, alpha, gamma, reduction):
    logits, targets = _inputs(seed)
    ours_in = logits.clone().requires_grad_()
    ref_in = logits.clone().requires_grad_()
    ours = sigmoid_focal_loss(ours_in, targets, alpha, gamma, reduction)
    expected = reference(ref_in, targets, alpha, gamma, reduction)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)
    ours.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=1e-9, atol=1e-12)


def test_float32_and_soft_targets_equal_torchvision():
    logits, _ = _inputs(3, dtype=torch.float32)
    soft = torch.rand(logits.shape, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(sigmoid_focal_loss(logits, soft), reference(logits, soft))


def test_ties_and_extreme_logits_stay_finite():
    # equal logits (ties), zero logits (p = 0.5) and logits far out in both directions
    logits = torch.tensor([0.0, 0.0, 2.0, 2.0, 80.0, -80.0, 80.0, -80.0], dtype=torch.float64)
    targets = torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    ours = sigmoid_focal_loss(logits, targets)
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, reference(logits, targets))
    assert ours[2] == ours[3]
    # a confidently wrong prediction keeps almost its whole cross entropy: 80 nats, weighted
    assert ours[6].item() == pytest.approx(0.75 * 80, rel=1e-6)


def test_formula_by_hand():
    # p = sigmoid(0) = 0.5 for a positive: 0.25 * 0.5**2 * log 2
    loss = sigmoid_focal_loss(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
    assert loss.item() == pytest.approx(0.25 * 0.25 * math.log(2))


def test_gamma_zero_no_alpha_is_cross_entropy():
    logits, targets = _inputs(5)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets, alpha=-1, gamma=0), expected)


def test_easy_examples_are_weighted_down():
    # an easy negative (p = 0.01) loses far more of its cross entropy than a hard one (p = 0.9)
    logits = torch.tensor([math.log(0.01 / 0.99), math.log(0.9 / 0.1)], dtype=torch.float64)
    targets = torch.zeros(2, dtype=torch.float64)
    focal = sigmoid_focal_loss(logits, targets, alpha=-1)
    ratio = focal / sigmoid_focal_loss(logits, targets, alpha=-1, gamma=0)
    torch.testing.assert_close(ratio, torch.tensor([0.01**2, 0.9**2], dtype=torch.float64))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_empty_input(reduction):
    empty = torch.zeros((0, 6))
    loss = sigmoid_focal_loss(empty, empty, reduction=reduction)
    assert not torch.isnan(loss).any()
    if reduction == "none":
        assert loss.shape == (0, 6)
    else:
        assert loss.item() == 0


@pytest.mark.parametrize("kwargs, error, message", [
    ({"inputs": [0.0]}, TypeError, "inputs"),
    ({"targets": None}, TypeError, "targets"),
    ({"inputs": torch.zeros(3, dtype=torch.long)}, TypeError, "floating"),
    ({"targets": torch.zeros(4)}, ValueError, "shape"),
    ({"alpha": 1.0}, ValueError, "alpha"),
    ({"gamma": -1.0}, ValueError, "gamma"),
    ({"gamma": float("nan")}, ValueError, "gamma"),
    ({"reduction": "max"}, ValueError, "reduction"),
])
def test_bad_input(kwargs, error, message):
    arguments = {"inputs": torch.zeros(3), "targets": torch.zeros(3)} | kwargs
    with pytest.raises(error, match=message):
        sigmoid_focal_loss(**arguments)
