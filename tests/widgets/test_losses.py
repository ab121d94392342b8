"""Tests for course_lib.widgets.losses: focal_loss_shares, its gradient, the curve and FocalLossExplorer."""

import math

import pytest
import torch
import torchvision.ops

from course_lib.widgets.losses import (
    GROUPS,
    FocalLossExplorer,
    focal_loss_curve,
    focal_loss_gradient,
    focal_loss_shares,
)
from tests.widgets.redraw import differs_from_a_full_redraw

# An easy negative (p = 0.0067), a hard negative (p = 0.5) and a positive (p = 0.5).
HAND_LOGITS = torch.tensor([-5.0, 0.0, 0.0])
HAND_TARGETS = torch.tensor([0.0, 0.0, 1.0])


def _anchors(seed=0, negatives=3000, positives=30):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.cat([torch.randn(negatives, generator=generator) * 1.5 - 4,
                        torch.randn(positives, generator=generator) + 0.5])
    return logits, torch.cat([torch.zeros(negatives), torch.ones(positives)])


# --- focal_loss_shares ------------------------------------------------------------------------
def test_focal_loss_shares_hand_computed():
    ce = focal_loss_shares(HAND_LOGITS, HAND_TARGETS, alpha=None, gamma=0.0)
    easy = math.log1p(math.exp(-5))  # -log(1 - sigmoid(-5)) = 0.006715
    assert ce["loss"].tolist() == pytest.approx([easy, math.log(2), math.log(2)])
    assert ce["counts"] == {"easy negatives": 1, "hard negatives": 1, "positives": 1}
    total = easy + 2 * math.log(2)
    assert ce["loss_shares"]["easy negatives"] == pytest.approx(easy / total)
    assert ce["loss_shares"]["hard negatives"] == pytest.approx(math.log(2) / total)
    # Cross entropy's gradient is |p - y|: 0.0067, 0.5, 0.5.
    p = 1 / (1 + math.exp(5))
    assert ce["gradient"].tolist() == pytest.approx([p, 0.5, 0.5])
    assert ce["gradient_shares"]["positives"] == pytest.approx(0.5 / (1 + p))
    # gamma = 2, alpha = 0.25 at p_t = 0.5: FL = alpha_t * 0.25 * log 2,
    # |dFL/dx| = alpha_t * 0.25 * (0.5 + log 2).
    focal = focal_loss_shares(HAND_LOGITS, HAND_TARGETS, alpha=0.25, gamma=2.0)
    assert focal["loss"][1:].tolist() == pytest.approx([0.75 * 0.25 * math.log(2), 0.25 * 0.25 * math.log(2)])
    assert focal["gradient"][1:].tolist() == pytest.approx([0.75 * 0.25 * (0.5 + math.log(2)),
                                                           0.25 * 0.25 * (0.5 + math.log(2))])
    assert focal["loss_shares"]["easy negatives"] < 1e-5 < ce["loss_shares"]["easy negatives"]


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [None, 0.25, 0.75])
def test_loss_and_gradient_match_torchvision_and_autograd(gamma, alpha):
    logits, targets = _anchors(seed=int(gamma * 10) + (0 if alpha is None else int(alpha * 100)))
    view = focal_loss_shares(logits, targets, alpha, gamma)
    inputs = logits.double().requires_grad_()
    reference = torchvision.ops.sigmoid_focal_loss(inputs, targets.double(), -1 if alpha is None else alpha,
                                                   gamma)
    reference.sum().backward()
    torch.testing.assert_close(view["loss"], reference.detach())
    torch.testing.assert_close(view["gradient"], inputs.grad.abs())
    assert sum(view["loss_shares"].values()) == pytest.approx(1.0)
    assert sum(view["gradient_shares"].values()) == pytest.approx(1.0)
    assert sum(view["counts"].values()) == len(logits)


def test_focusing_moves_the_loss_off_the_easy_negatives():
    logits, targets = _anchors()
    easy_shares = [focal_loss_shares(logits, targets, None, gamma)["loss_shares"]["easy negatives"]
                   for gamma in (0.0, 1.0, 2.0, 5.0)]
    assert easy_shares == sorted(easy_shares, reverse=True) and easy_shares[-1] < easy_shares[0] / 100


def test_easy_threshold_splits_the_negatives():
    logits, targets = _anchors()
    probabilities = torch.sigmoid(logits.double())
    for threshold in (0.01, 0.1, 0.5):
        view = focal_loss_shares(logits, targets, 0.25, 2.0, easy_threshold=threshold)
        assert view["counts"]["easy negatives"] == int(((targets == 0) & (probabilities < threshold)).sum())
        assert torch.equal(view["groups"]["positives"], targets == 1)


def test_gradient_is_finite_where_the_sigmoid_saturates():
    # p_t rounds to 1: autograd through (1 - p_t) ** 0.5 would give NaN.
    gradient = focal_loss_gradient(torch.tensor([40.0, -40.0, 0.0]), torch.tensor([1.0, 0.0, 1.0]), None, 0.5)
    assert torch.isfinite(gradient).all() and gradient[:2].max() < 1e-15 and gradient[2] > 0.1


def test_empty_and_one_group_inputs():
    empty = focal_loss_shares(torch.zeros(0), torch.zeros(0), 0.25, 2.0)
    assert empty["total_loss"] == 0.0 and set(empty["loss_shares"].values()) == {0.0}
    assert empty["counts"] == dict.fromkeys(GROUPS, 0)
    positives = focal_loss_shares(torch.tensor([1.0, -1.0]), torch.tensor([True, True]), 0.25, 2.0)
    assert positives["loss_shares"] == {"easy negatives": 0.0, "hard negatives": 0.0, "positives": 1.0}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"targets": torch.tensor([0.0, 0.5, 1.0])}, ValueError, "targets: expected values 0 or 1"),
        ({"targets": torch.zeros(2)}, ValueError,
         r"targets: expected the shape of logits \(3,\), got \(2,\)"),
        ({"logits": torch.tensor([0, 1, 2])}, TypeError, "logits: expected floating-point logits"),
        ({"logits": torch.tensor([0.0, math.nan, 1.0])}, ValueError, "logits: expected finite values"),
        ({"alpha": 1.5}, ValueError, r"alpha: expected a value in \[0.0, 1.0\], got 1.5"),
        ({"gamma": -1.0}, ValueError, r"gamma: expected a value in \[0.0, inf\], got -1.0"),
        ({"easy_threshold": 2.0}, ValueError, r"easy_threshold: expected a value in \[0.0, 1.0\]"),
    ],
)
def test_focal_loss_shares_rejects_bad_input(kwargs, error, match):
    arguments = {"logits": HAND_LOGITS, "targets": HAND_TARGETS, "alpha": 0.25, "gamma": 2.0, **kwargs}
    with pytest.raises(error, match=match):
        focal_loss_shares(**arguments)


def test_focal_loss_curve():
    p_t, curve = focal_loss_curve(2.0, num_points=3, low=0.5)
    assert p_t.tolist() == [0.5, 0.75, 1.0]
    assert curve.tolist() == pytest.approx([0.25 * math.log(2), -(0.25**2) * math.log(0.75), 0.0])
    p_t, cross_entropy = focal_loss_curve(0.0)
    torch.testing.assert_close(cross_entropy, -torch.log(p_t))
    with pytest.raises(ValueError, match=r"gamma: expected a value in \[0.0, inf\]"):
        focal_loss_curve(-0.5)


# --- FocalLossExplorer ------------------------------------------------------------------------
def test_explorer_follows_its_controls():
    logits, targets = _anchors()
    explorer = FocalLossExplorer(logits, targets)
    controls = explorer.controls
    assert (controls["gamma"].min, controls["gamma"].max, controls["gamma"].value) == (0.0, 5.0, 2.0)
    assert (controls["alpha"].min, controls["alpha"].max, controls["alpha"].value) == (0.05, 0.95, 0.25)
    assert explorer.result["loss_shares"] == focal_loss_shares(logits, targets, 0.25, 2.0)["loss_shares"]
    controls["use_alpha"].value = False
    controls["gamma"].value = 0.0
    expected = focal_loss_shares(logits, targets, None, 0.0)
    assert explorer.result["alpha"] is None
    assert explorer.result["gradient_shares"] == expected["gradient_shares"]
    assert "γ 0.0, no α" in explorer.status.value
    assert f"{expected['loss_shares']['easy negatives']:.0%} of the loss" in explorer.status.value
    controls["gamma"].value = 5.0
    assert explorer.result["loss_shares"]["easy negatives"] < expected["loss_shares"]["easy negatives"]
    torch.testing.assert_close(explorer.result["curve"], focal_loss_curve(5.0)[1])
    controls["use_alpha"].value = True
    controls["alpha"].value = 0.95
    assert explorer.result["alpha"] == 0.95
    explorer.close()


def test_explorer_renders_at_every_extreme():
    logits, targets = _anchors(negatives=500, positives=5)
    explorer = FocalLossExplorer(logits, targets)
    assert explorer.figure.dpi >= 100
    for name, values in (("gamma", (0.0, 5.0)), ("alpha", (0.05, 0.95)), ("use_alpha", (False, True))):
        for value in values:
            explorer.controls[name].value = value
            assert explorer.png.startswith(b"\x89PNG") and explorer.status.value
    texts = [explorer.axes[0].title, explorer.axes[1].title, explorer.axes[1].xaxis.label,
             explorer.axes[0].yaxis.label, *explorer.axes[1].get_legend().get_texts()]
    assert min(text.get_fontsize() for text in texts) >= 11
    explorer.close()
    no_positives = FocalLossExplorer(torch.zeros(0), torch.zeros(0))
    assert no_positives.png.startswith(b"\x89PNG")
    no_positives.close()


def test_explorer_rejects_bad_input():
    with pytest.raises(ValueError, match="targets: expected the shape of logits"):
        FocalLossExplorer(torch.zeros(3), torch.zeros(2))


def test_a_redraw_over_the_kept_background_matches_a_full_redraw():
    explorer = FocalLossExplorer(*_anchors(negatives=500, positives=10))
    explorer.controls["gamma"].value = 0.5
    explorer.controls["use_alpha"].value = False
    assert differs_from_a_full_redraw(explorer) < 0.002
    explorer.close()
