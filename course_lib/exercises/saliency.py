"""Checker for the explanation chapter's first exercise: the saliency map from the input's gradient.

The student writes ``saliency_from_gradient(gradient)``: ``gradient`` the class score's gradient
with respect to a batch of images, a ``Tensor[B, C, H, W]``; the answer is one map per image, a
``Tensor[B, H, W]`` (Simonyan et al. 2014, "Deep Inside Convolutional Networks", Sec. 3.1)::

    M[b, i, j] = max_c |d S / d I[b, c, i, j]|        gradient.abs().amax(dim=1)

The absolute value comes first: a pixel whose change moves the score down matters as much as one
that moves it up, and the colour channel that matters most speaks for the pixel. The magnitude is
kept as it is (not squared, not summed over the channels).

Reference: what ``course_lib.visualization.saliency.saliency`` does with the gradient of
``input_gradient``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise


def reference_saliency_from_gradient(gradient: torch.Tensor) -> torch.Tensor:
    """The expected answer: ``Tensor[B, H, W]``, ``max_c |gradient|``."""
    return gradient.abs().amax(dim=1)  # (B, H, W)


def _to_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, tuple) and hasattr(value, "indices"):  # what tensor.max(dim=1) returns
        raise TypeError("expected a Tensor[B, H, W], got (values, indices): tensor.max(dim=1) returns both, "
                        "take .values or use tensor.amax(dim=1)")
    if isinstance(value, np.ndarray):
        value = torch.as_tensor(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected a Tensor[B, H, W], got {type(value).__name__}")
    return value.detach().to(torch.float64)


def _compare(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    if got.shape != expected.shape:
        note = f"expected shape {tuple(expected.shape)}, one map per image, got {tuple(got.shape)}"
        if got.dim() == 4 and got.shape[1] == 1:
            note += ": drop the channel dimension (no keepdim=True)"
        elif got.dim() == 3 and got.shape[0] != expected.shape[0]:
            note += ": reduce over the channels, dim=1 (dim 0 is the batch)"
        return note
    wrong = ~torch.isclose(got, expected, rtol=1e-5, atol=1e-6)  # NaN never close
    if not wrong.any():
        return None
    b, y, x = (int(v) for v in wrong.nonzero()[0])
    return f"first difference at image {b}, pixel ({y}, {x})"


def _random_case(shape: tuple[int, int, int, int], seed: int) -> tuple:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=generator),)


# Every pixel has a different channel with the largest |value|, a negative one at (0, 0) and (0, 1), and
# all three channels are negative at (1, 0): every mistake below gives its own answer.
_BY_HAND = torch.tensor([[[[0.5, -2.0, 0.1], [-0.3, 1.0, -0.2]],
                          [[-1.5, 1.0, 0.2], [-0.6, 0.0, 0.4]],
                          [[0.25, 0.5, -0.3], [-0.1, -1.0, 0.0]]]])  # (1, 3, 2, 3)

SALIENCY_FROM_GRADIENT = Exercise(
    name="saliency_from_gradient",
    signature="saliency_from_gradient(gradient) -> Tensor[B, H, W]",
    reference=reference_saliency_from_gradient,
    cases=[
        Case("one image, three channels, by hand", (_BY_HAND,),
             hint="at pixel (0, 0) the channels hold 0.5, -1.5 and 0.25: their absolute values are 0.5, 1.5 "
             "and 0.25, so the saliency is 1.5."),
        Case("a batch of two colour images", _random_case((2, 3, 4, 5), seed=0),
             hint="one map per image: reduce over the channels only (dim=1), keep the batch."),
        Case("one channel (a grey image)", _random_case((2, 1, 3, 4), seed=1),
             hint="with one channel the saliency is the gradient's absolute value."),
        Case("opposite gradients, and no gradient at all",
             (torch.tensor([[[[0.7, 0.0], [-0.2, 0.0]], [[-0.7, 0.0], [0.2, 0.0]]]]),),
             hint="+0.7 and -0.7 both have magnitude 0.7; a zero gradient gives a saliency of 0."),
        Case("no image (B = 0)", (torch.zeros(0, 3, 4, 5),),
             hint="no image in, no map out: an empty Tensor[0, H, W] (torch.zeros(0, H, W))."),
    ],
    normalize=_to_tensor,
    compare=_compare,
    mistakes=[
        Mistake("take the absolute value of the gradient: a large negative gradient matters as much as a "
                "large positive one (max_c |g|, not max_c g).", lambda g: g.amax(dim=1)),
        Mistake("the absolute value comes first, then the maximum over the channels: max_c |g|, not "
                "|max_c g| (where every channel is negative, max_c g is the smallest magnitude).",
                lambda g: g.amax(dim=1).abs()),
        Mistake("the saliency is the maximum over the channels of |g| (amax), not the mean.",
                lambda g: g.abs().mean(dim=1)),
        Mistake("the saliency is the maximum over the channels of |g| (amax), not the sum.",
                lambda g: g.abs().sum(dim=1)),
        Mistake("the saliency is the magnitude |g|, not its square.", lambda g: g.pow(2).amax(dim=1)),
    ],
    start_hint="gradient.abs() makes every value a magnitude; .amax(dim=1) keeps the largest over the "
    "channels (dim 1 of Tensor[B, C, H, W]).",
)


def check_saliency_from_gradient(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(gradient) -> Tensor[B, H, W]``: the saliency map, ``max_c |gradient|`` (Sec. 3.1).

    ``gradient`` is a ``Tensor[B, C, H, W]``, the score's gradient with respect to the images.
    Reference: ``gradient.abs().amax(dim=1)``, as in ``course_lib.visualization.saliency.saliency``.
    """
    return run_exercise(SALIENCY_FROM_GRADIENT, fn, verbose=verbose)
