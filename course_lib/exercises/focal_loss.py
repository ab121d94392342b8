"""Checker for the RetinaNet chapter's exercise: the focal loss of each logit.

The student writes ``focal_loss(logits, targets, alpha=0.25, gamma=2.0)``: ``logits`` a float
tensor of any shape (before the sigmoid), ``targets`` the same shape of 0 / 1; the answer is the
loss of each element, the same shape (no reduction). Eq. 5 of Lin et al. 2017, "Focal Loss for Dense
Object Detection"::

    p = sigmoid(logits)
    p_t = p where the target is 1, 1 - p where it is 0          (the probability of the right class)
    alpha_t = alpha where the target is 1, 1 - alpha where it is 0
    FL = -alpha_t * (1 - p_t) ** gamma * log(p_t)

``(1 - p_t) ** gamma`` turns down the loss of the easy examples (``p_t`` near 1), the hundred
thousand background anchors a one-stage detector sees, so that the few hard ones lead the gradient.
``-log(p_t)`` is the binary cross entropy: computed from the logits
(``F.binary_cross_entropy_with_logits``) it stays finite where ``log(sigmoid(100))`` or
``log(1 - sigmoid(100))`` underflows to ``log(0)`` in float32.

Reference: ``course_lib.losses.sigmoid_focal_loss(logits, targets, alpha, gamma)`` (torchvision's
``sigmoid_focal_loss``, ``reduction="none"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise
from course_lib.losses import sigmoid_focal_loss


def reference_focal_loss(logits, targets, alpha=0.25, gamma=2.0) -> torch.Tensor:
    """The expected answer: the loss of each element, the shape of ``logits``."""
    return sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="none")


def _variant(logits, targets, alpha=0.25, gamma=2.0, weight="alpha_t", modulating="p_t", log="stable",
             power="power"):
    """The focal loss with switches that reproduce the typical mistakes (float32, as a student's)."""
    targets = targets.to(logits.dtype)
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    if log == "stable":
        cross_entropy = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    elif log == "naive":  # log of the sigmoid: log(0) = -inf at extreme logits, and 0 * -inf = nan
        cross_entropy = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p))
    else:  # "clamped": F.binary_cross_entropy on probabilities clamps each log at -100
        cross_entropy = F.binary_cross_entropy(p, targets, reduction="none")
    base = {"p_t": 1 - p_t, "p": 1 - p}[modulating]
    modulation = base**gamma if power == "power" else base * gamma
    alpha_t = {"alpha_t": alpha * targets + (1 - alpha) * (1 - targets), "alpha": torch.full_like(p, alpha),
               "swapped": (1 - alpha) * targets + alpha * (1 - targets)}[weight]
    return alpha_t * modulation * cross_entropy


def _to_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, np.ndarray | list | tuple):
        value = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected a Tensor of losses, one per logit, got {type(value).__name__}")
    return value.detach().to(torch.float64)


def _compare(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    if got.shape != expected.shape:
        return (f"expected shape {tuple(expected.shape)} (one loss per logit, no sum or mean), "
                f"got {tuple(got.shape)}")
    # float32's precision. NaN equals NaN only so that a known mistake that gives NaN is recognized: the
    # expected answer is always finite.
    wrong = ~torch.isclose(got, expected, rtol=1e-4, atol=1e-6, equal_nan=True)
    if not wrong.any():
        return None
    index = tuple(int(v) for v in wrong.nonzero()[0])
    return f"first difference at {index if len(index) != 1 else index[0]}"


def _case(logits, targets, alpha=0.25, gamma=2.0) -> tuple:
    logits, targets = torch.tensor(logits, dtype=torch.float32), torch.tensor(targets, dtype=torch.float32)
    return logits, targets, alpha, gamma


def _random_case(shape: tuple[int, ...], seed: int, alpha: float, gamma: float) -> tuple:
    """Seeded logits like a detector's (mostly negative) and sparse positive targets."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=generator) * 3 - 1
    targets = (torch.rand(shape, generator=generator) < 0.2).float()
    return logits, targets, alpha, gamma


FOCAL_LOSS = Exercise(
    name="focal_loss",
    signature="focal_loss(logits, targets, alpha=0.25, gamma=2.0) -> Tensor (one loss per element)",
    reference=reference_focal_loss,
    cases=[
        Case("one positive and one negative, logit 0", _case([0.0, 0.0], [1.0, 0.0]),
             hint="at logit 0, p = p_t = 0.5 for both: FL = alpha_t * 0.5**2 * log(2), "
             "0.25 * 0.25 * 0.693 for the positive, 0.75 * 0.25 * 0.693 for the negative."),
        Case("easy and hard examples", _case([3.0, -3.0, -2.0, 2.0], [1.0, 0.0, 1.0, 0.0]),
             hint="p_t is the probability of the *right* class: p for a positive, 1 - p for a negative. "
             "The first two are easy (p_t = 0.95), the last two hard (p_t = 0.12)."),
        Case("gamma 0: the alpha-weighted cross entropy", _case([1.5, -0.5, 0.5], [1.0, 1.0, 0.0], gamma=0.0),
             hint="gamma = 0 turns the focusing off: (1 - p_t) ** 0 = 1, and FL = -alpha_t * log(p_t)."),
        Case("alpha 0.5, gamma 1", _case([1.0, -1.0, 0.3], [0.0, 1.0, 1.0], alpha=0.5, gamma=1.0),
             hint="use the alpha and gamma arguments, not 0.25 and 2."),
        Case("extreme logits: ±100", _case([100.0, -100.0, 100.0, -100.0], [1.0, 0.0, 0.0, 1.0]),
             hint="the right answer is finite: 0 for the two confident right answers, 0.75 * 100 = 75 and "
             "0.25 * 100 = 25 for the two confident wrong ones. Compute -log(p_t) from the logits with "
             "F.binary_cross_entropy_with_logits(logits, targets, reduction='none'): log(1 - sigmoid(100)) "
             "is log(0) in float32."),
        Case("a detector's class logits (anchors x classes)",
             _random_case((6, 3), seed=0, alpha=0.25, gamma=2.0)),
        Case("beyond the clamp of F.binary_cross_entropy: ±150", _case([150.0, -150.0], [0.0, 1.0]),
             hint="the right answer is 0.75 * 150 = 112.5 and 0.25 * 150 = 37.5."),
        Case("no logits", _case([], []),
             hint="no logits in, no losses out: an empty tensor of the same shape."),
    ],
    normalize=_to_tensor,
    compare=_compare,
    mistakes=[
        Mistake("alpha weighs the positives only: the negatives (target 0) get 1 - alpha, "
                "alpha_t = alpha * targets + (1 - alpha) * (1 - targets).",
                lambda *a: _variant(*a, weight="alpha")),
        Mistake("alpha weighs the positives (target 1) and 1 - alpha the negatives, not the other way round.",
                lambda *a: _variant(*a, weight="swapped")),
        Mistake("the modulating factor is (1 - p_t) ** gamma, with p_t = p for a positive and 1 - p for a "
                "negative: (1 - p) ** gamma makes a confident negative hard.",
                lambda *a: _variant(*a, modulating="p")),
        Mistake("gamma is a power: (1 - p_t) ** gamma, not (1 - p_t) * gamma.",
                lambda *a: _variant(*a, power="times")),
        Mistake("log(sigmoid(x)) underflows to log(0) = -inf at extreme logits (and 0 * -inf is nan): "
                "compute -log(p_t) from the logits, "
                "F.binary_cross_entropy_with_logits(logits, targets, reduction='none').",
                lambda *a: _variant(*a, log="naive")),
        Mistake("F.binary_cross_entropy on probabilities clamps each log at -100, so a logit of 150 loses "
                "its loss: use F.binary_cross_entropy_with_logits on the logits.",
                lambda *a: _variant(*a, log="clamped")),
    ],
    start_hint="p = torch.sigmoid(logits); ce = F.binary_cross_entropy_with_logits(logits, targets, "
    "reduction='none'); p_t = p * targets + (1 - p) * (1 - targets); alpha_t = alpha * targets + (1 - alpha) "
    "* (1 - targets); return alpha_t * (1 - p_t) ** gamma * ce.",
)


def check_focal_loss(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(logits, targets, alpha, gamma) -> Tensor``: RetinaNet's focal loss, per element (Eq. 5).

    ``FL = -alpha_t (1 - p_t) ** gamma log(p_t)``, with ``p_t`` and ``alpha_t`` those of the target's
    class; finite at logits of ±100. Reference: ``course_lib.losses.sigmoid_focal_loss`` with
    ``reduction="none"``.
    """
    return run_exercise(FOCAL_LOSS, fn, verbose=verbose)
