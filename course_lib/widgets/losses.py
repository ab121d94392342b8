"""Explorer for the focal loss (chapter 12): who carries the loss and the gradient, easy or hard anchors?

A one-stage detector scores tens of thousands of anchors, almost all easy background. With the
cross entropy their many small losses add up to most of the total, and so does their gradient;
the focal loss ``FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t)`` weighs them down (Lin et al. 2017,
"Focal Loss for Dense Object Detection", Eq. 5 and Fig. 1, Sec. 3.2; ``course_lib.losses``).
``focal_loss_shares`` splits the loss and the gradient of one image's anchors between easy
negatives, hard negatives and positives; ``FocalLossExplorer`` shows the split as gamma and alpha
move, next to the loss curve of Fig. 1.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from torch import Tensor
from torch.nn import functional as F

from course_lib._checks import check_number, check_tensor
from course_lib.losses import sigmoid_focal_loss
from course_lib.widgets.base import WIDE_LABEL, Explorer, plural

GROUPS = ("easy negatives", "hard negatives", "positives")
GROUP_COLORS = {"easy negatives": "#56B4E9", "hard negatives": "#E69F00", "positives": "#009E73"}
EASY_THRESHOLD = 0.1  # a negative anchor is easy when its foreground probability is below this
TITLE_SIZE, LABEL_SIZE = 12, 11  # points, at 100 dpi: readable on a projector


def focal_loss_gradient(logits: Tensor, targets: Tensor, alpha: float | None, gamma: float) -> Tensor:
    """``|d FL / d logit|`` of each logit, in closed form (Appendix B of Lin et al. 2017).

    With ``p_t`` the probability of the right answer, ``d FL / d x = ±alpha_t (1 - p_t)^gamma
    (gamma p_t log(p_t) + p_t - 1)``: written with ``log(p_t)`` and ``1 - p_t`` taken from the
    logits (``logsigmoid``), so it stays finite where autograd through ``(1 - p_t)^gamma`` gives NaN
    (``p_t`` rounded to 1 with ``gamma < 1``).

    Args:
        logits (Tensor[N]): floating point; targets (Tensor[N]): 0 or 1.
        alpha: weight of the positives in (0, 1), the negatives get ``1 - alpha``; None: no weighting.
        gamma: >= 0.

    Returns:
        Tensor[N] float64, >= 0.
    """
    logits, targets = logits.double(), targets.double()
    signed = torch.where(targets > 0, logits, -logits)  # z: p_t = sigmoid(z)
    log_p_t = F.logsigmoid(signed)
    p_t, one_minus = torch.sigmoid(signed), torch.sigmoid(-signed)
    gradient = one_minus**gamma * (one_minus - gamma * p_t * log_p_t)
    if alpha is not None:
        gradient = torch.where(targets > 0, alpha, 1 - alpha) * gradient
    return gradient


def focal_loss_shares(
    logits: Tensor,
    targets: Tensor,
    alpha: float | None,
    gamma: float,
    easy_threshold: float = EASY_THRESHOLD,
) -> dict[str, Any]:
    """The focal loss and its gradient per anchor, and the share of each carried by three groups.

    The groups: *easy negatives*, target 0 and foreground probability ``p < easy_threshold``
    (0.1 by default: ``p_t > 0.9``, where Fig. 1 of the paper calls an example well classified);
    *hard negatives*, target 0 and ``p >= easy_threshold``; *positives*, target 1. A share is the
    group's sum over the total (0.0 when the total is 0).

    Args:
        logits (Tensor[N]): one logit per anchor (and class), any shape, flattened.
        targets (Tensor[N]): the same shape, 0 or 1 (bool accepted).
        alpha: weight of the positives in (0, 1), the negatives get ``1 - alpha``; None: no
            weighting (``sigmoid_focal_loss``'s ``alpha = -1``).
        gamma: the focusing parameter, >= 0 (0 with ``alpha=None`` is the cross entropy).
        easy_threshold: in (0, 1).

    Returns:
        dict with ``loss`` and ``gradient`` (Tensor[N] float64; the gradient is ``|d loss / d
        logit|``), ``probabilities`` (Tensor[N], the sigmoid of the logits), ``groups`` (name ->
        bool Tensor[N]), ``counts``, ``loss_shares``, ``gradient_shares`` (name -> float, in
        ``GROUPS`` order), ``total_loss``, ``total_gradient``, ``alpha``, ``gamma``,
        ``easy_threshold``.
    """
    check_tensor(logits, "logits")
    check_tensor(targets, "targets")
    if not logits.is_floating_point():
        raise TypeError(f"logits: expected floating-point logits, got {logits.dtype}")
    if targets.shape != logits.shape:
        raise ValueError(f"targets: expected the shape of logits {tuple(logits.shape)}, "
                         f"got {tuple(targets.shape)}")
    if not torch.isfinite(logits).all():
        raise ValueError("logits: expected finite values, got NaN or inf")
    if alpha is not None:
        check_number(alpha, "alpha", 0.0, 1.0)
    check_number(gamma, "gamma", 0.0)
    check_number(easy_threshold, "easy_threshold", 0.0, 1.0)
    logits = logits.detach().reshape(-1).double().cpu()
    targets = targets.detach().reshape(-1).double().cpu()
    if targets.numel() and not ((targets == 0) | (targets == 1)).all():
        raise ValueError(f"targets: expected values 0 or 1, got {sorted(set(targets.unique().tolist()))[:5]}")
    loss = sigmoid_focal_loss(logits, targets, -1.0 if alpha is None else alpha, gamma)  # (N,)
    gradient = focal_loss_gradient(logits, targets, alpha, gamma)  # (N,)
    probabilities = torch.sigmoid(logits)
    negative = targets == 0
    groups = {
        "easy negatives": negative & (probabilities < easy_threshold),
        "hard negatives": negative & (probabilities >= easy_threshold),
        "positives": ~negative,
    }
    total_loss, total_gradient = float(loss.sum()), float(gradient.sum())

    def share(values: Tensor, total: float, mask: Tensor) -> float:
        return float(values[mask].sum()) / total if total > 0 else 0.0

    return {
        "loss": loss,
        "gradient": gradient,
        "probabilities": probabilities,
        "groups": groups,
        "counts": {name: int(mask.sum()) for name, mask in groups.items()},
        "loss_shares": {name: share(loss, total_loss, mask) for name, mask in groups.items()},
        "gradient_shares": {name: share(gradient, total_gradient, mask) for name, mask in groups.items()},
        "total_loss": total_loss,
        "total_gradient": total_gradient,
        "alpha": alpha,
        "gamma": float(gamma),
        "easy_threshold": float(easy_threshold),
    }


def focal_loss_curve(gamma: float, num_points: int = 200, low: float = 0.01) -> tuple[Tensor, Tensor]:
    """``FL(p_t) = -(1 - p_t)^gamma log(p_t)`` for ``p_t`` from ``low`` to 1: Fig. 1 of Lin et al. 2017.

    Without alpha, as in the figure; ``gamma = 0`` is the cross entropy.

    Returns:
        ``(p_t Tensor[num_points], loss Tensor[num_points])``.
    """
    check_number(gamma, "gamma", 0.0)
    check_number(num_points, "num_points", 2, integer=True)
    check_number(low, "low", 1e-6, 1.0)
    p_t = torch.linspace(low, 1.0, num_points, dtype=torch.float64)
    return p_t, -((1 - p_t) ** gamma) * torch.log(p_t)


class FocalLossExplorer(Explorer):
    """Move gamma and alpha; see which anchors carry the loss and the gradient, and the loss curve.

    Left: two stacked bars, the share of the total loss and of the total gradient carried by the
    easy negatives (``p < 0.1``), the hard negatives and the positives. Right: ``FL(p_t)`` for the
    chosen gamma against the cross entropy (gamma 0), without alpha, as Fig. 1 of the paper.

    Controls: ``gamma`` (0 to 5), ``alpha`` (0.05 to 0.95) and ``use_alpha`` ("α-balanced"; off:
    no weighting).

    Args:
        logits (Tensor[N]): the class logits of one image's anchors (a trained RetinaNet's, say),
            any shape.
        targets (Tensor[N]): their binary targets (``RetinaNet.match``'s one-hot classes), the same
            shape; ignored anchors should be left out, as the loss leaves them out.
        easy_threshold: the probability below which a negative is easy.
    """

    def __init__(self, logits: Tensor, targets: Tensor, easy_threshold: float = EASY_THRESHOLD) -> None:
        focal_loss_shares(logits, targets, 0.25, 2.0, easy_threshold)  # checks the arguments
        self.logits, self.targets, self.easy_threshold = logits.detach(), targets.detach(), easy_threshold
        controls = {
            "gamma": widgets.FloatSlider(value=2.0, min=0.0, max=5.0, step=0.5, description="γ (gamma)",
                                         readout_format=".1f", continuous_update=True, style=WIDE_LABEL),
            "alpha": widgets.FloatSlider(value=0.25, min=0.05, max=0.95, step=0.05, description="α (alpha)",
                                         readout_format=".2f", continuous_update=True, style=WIDE_LABEL),
            "use_alpha": widgets.Checkbox(value=True, description="α-balanced", style=WIDE_LABEL),
        }
        caption = (f"<div style='font-size: 0.9em'>easy negatives: background anchors with p &lt; "
                   f"{easy_threshold:g} · hard negatives: background with p ≥ {easy_threshold:g} · "
                   "positives: objects · gradient: |∂ loss / ∂ logit| summed · γ = 0 without α: the "
                   f"cross entropy · dotted line: p_t = {1 - easy_threshold:g}, beyond it a negative is "
                   "easy</div>")
        super().__init__(controls, num_axes=2, figsize=(9.0, 4.2), dpi=100, caption=caption,
                         margins={"left": 0.11, "right": 0.98, "bottom": 0.13, "top": 0.9, "wspace": 0.3})

    def compute(self, gamma: float, alpha: float, use_alpha: bool) -> dict[str, Any]:
        view = focal_loss_shares(self.logits, self.targets, round(alpha, 4) if use_alpha else None,
                                 round(gamma, 4), self.easy_threshold)
        p_t, curve = focal_loss_curve(view["gamma"])
        return {**view, "p_t": p_t, "curve": curve}

    def background_key(self, result: dict[str, Any]) -> Any:
        return "axes"  # the axes, the cross entropy curve and the legend never change

    def draw_background(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        share_ax, curve_ax = ax
        share_ax.set_xlim(-0.6, 1.6)
        share_ax.set_ylim(0, 1)
        share_ax.set_xticks([0, 1], ["loss", "gradient"], fontsize=LABEL_SIZE)
        share_ax.set_yticks([0, 0.25, 0.5, 0.75, 1], ["0%", "25%", "50%", "75%", "100%"])
        share_ax.tick_params(labelsize=LABEL_SIZE)
        share_ax.set_ylabel("share of the total", fontsize=LABEL_SIZE)
        p_t, cross_entropy = focal_loss_curve(0.0)
        curve_ax.plot(p_t.numpy(), cross_entropy.numpy(), color="0.5", linestyle="--", label="CE (γ = 0)")
        curve_ax.plot([], [], color="#D55E00", label="FL, chosen γ")  # the legend's entry for draw's curve
        curve_ax.axvline(1 - self.easy_threshold, color="0.3", linestyle=":", linewidth=1.2)
        curve_ax.set_xlim(0, 1)
        curve_ax.set_ylim(0, float(cross_entropy.max()) * 1.05)
        curve_ax.tick_params(labelsize=LABEL_SIZE)
        curve_ax.set_xlabel("probability of the true class p_t", fontsize=LABEL_SIZE)
        curve_ax.set_ylabel("loss", fontsize=LABEL_SIZE)
        curve_ax.legend(loc="upper right", fontsize=LABEL_SIZE)

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        share_ax, curve_ax = ax
        bottoms = [0.0, 0.0]
        for name in GROUPS:
            heights = [result["loss_shares"][name], result["gradient_shares"][name]]
            share_ax.bar([0, 1], heights, bottom=bottoms, width=0.8, color=GROUP_COLORS[name], label=name)
            for x, (bottom, height) in enumerate(zip(bottoms, heights, strict=True)):
                if height >= 0.07:  # a label only where it fits inside its segment
                    share_ax.text(x, bottom + height / 2, f"{name.split()[0]} {height:.0%}", ha="center",
                                  va="center", fontsize=LABEL_SIZE)
            bottoms = [bottom + height for bottom, height in zip(bottoms, heights, strict=True)]
        curve_ax.plot(result["p_t"].numpy(), result["curve"].numpy(), color="#D55E00")
        alpha = "no α" if result["alpha"] is None else f"α = {result['alpha']:.2f}"
        share_ax.set_title(f"share of loss and gradient · γ = {result['gamma']:.1f}, {alpha}",
                           fontsize=TITLE_SIZE)
        curve_ax.set_title(f"FL(p_t) with γ = {result['gamma']:.1f} vs CE", fontsize=TITLE_SIZE)

    def summary(self, result: dict[str, Any]) -> str:
        parts = [f"{name} ({result['counts'][name]:,}): {result['loss_shares'][name]:.0%} of the loss, "
                 f"{result['gradient_shares'][name]:.0%} of the gradient" for name in GROUPS]
        alpha = "no α" if result["alpha"] is None else f"α {result['alpha']:.2f}"
        total = sum(result["counts"].values())
        return f"γ {result['gamma']:.1f}, {alpha}, {plural(total, 'logit')}: " + " · ".join(parts)
