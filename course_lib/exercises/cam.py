"""Checkers for the explanation chapter's class-activation-map exercises: Grad-CAM's weights and CAM's map.

* ``check_grad_cam_weights(fn)``: ``fn(gradients) -> Tensor[K]``, ``gradients`` the class score's
  gradient with respect to a layer's K feature maps, a ``Tensor[K, h, w]``; the answer is one weight
  per channel, the gradient averaged over the h x w positions (Eq. 1 of Selvaraju et al. 2017,
  "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization")::

      alpha_k = 1 / (h w) * sum_ij d y / d A_k[i, j]        gradients.mean(dim=(1, 2))

  The weights are signed: Grad-CAM's ReLU comes later, on the weighted sum of the maps (Eq. 2).
  Reference: what ``course_lib.visualization.cam.grad_cam_parts`` does with the recorded gradient.
* ``check_cam_from_weights(fn)``: ``fn(features, fc_weight, class_index) -> Tensor[h, w]``,
  ``features`` the last feature map of a GAP network, a ``Tensor[K, h, w]``, and ``fc_weight`` its
  linear layer's ``Tensor[num_classes, K]``; the answer is class ``c``'s map (Eq. 2 of Zhou et al.
  2016, "Learning Deep Features for Discriminative Localization")::

      M_c = sum_k w_ck f_k        fc_weight[c] is the row of class c, one weight per channel

  No ReLU, no normalization, no bias: the mean of ``M_c`` plus the bias is the class score.
  Reference: ``course_lib.visualization.cam.weighted_channels``, as ``cam`` uses it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise
from course_lib.visualization.cam import weighted_channels


def _to_tensor(value: Any, expected: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.as_tensor(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected a {expected}, got {type(value).__name__}")
    return value.detach().to(torch.float64)


def _first_difference(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    wrong = ~torch.isclose(got, expected, rtol=1e-5, atol=1e-6)  # NaN never close
    if not wrong.any():
        return None
    index = tuple(int(v) for v in wrong.nonzero()[0])
    return f"first difference at {index if len(index) != 1 else index[0]}"


def _random(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- Grad-CAM's weights


def reference_grad_cam_weights(gradients: torch.Tensor) -> torch.Tensor:
    """The expected answer: ``Tensor[K]``, each channel's gradient averaged over its positions."""
    return gradients.mean(dim=(1, 2))  # (K,)


def _compare_weights(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    if got.shape != expected.shape:
        note = f"expected shape {tuple(expected.shape)}, one weight per channel, got {tuple(got.shape)}"
        if got.dim() == 2:
            note += ": average over the positions (dims 1 and 2), not over the channels (dim 0)"
        return note
    return _first_difference(got, expected)


GRAD_CAM_WEIGHTS = Exercise(
    name="grad_cam_weights",
    signature="grad_cam_weights(gradients) -> Tensor[K]",
    reference=reference_grad_cam_weights,
    cases=[
        Case("two channels of 2 x 2, by hand",
             (torch.tensor([[[1.0, -1.0], [2.0, 0.0]], [[-1.0, -2.0], [-3.0, 2.0]]]),),
             hint="channel 0: (1 - 1 + 2 + 0) / 4 = 0.5; channel 1: (-1 - 2 - 3 + 2) / 4 = -1.0."),
        Case("four channels of 3 x 4", (_random((4, 3, 4), seed=0),),
             hint="gradients is (K, h, w): average each channel over its h x w positions, dims 1 and 2."),
        Case("a 7 x 7 map (a ResNet's last layer)", (_random((5, 7, 7), seed=1),),
             hint="one weight per channel: gradients.mean(dim=(1, 2))."),
        Case("one position (h = w = 1)", (_random((3, 1, 1), seed=2),),
             hint="with one position each weight is that position's gradient."),
        Case("every gradient negative", (-_random((2, 3, 3), seed=3).abs(),),
             hint="the weights are signed: a channel whose growth lowers the score gets a negative weight."),
        Case("no channel (K = 0)", (torch.zeros(0, 3, 3),),
             hint="no channel in, no weight out: an empty Tensor[0]."),
    ],
    normalize=lambda value: _to_tensor(value, "Tensor[K], one weight per channel"),
    compare=_compare_weights,
    mistakes=[
        Mistake("alpha_k is the mean of the gradient over the positions (Eq. 1 divides by Z = h w), "
                "not the sum.", lambda g: g.sum(dim=(1, 2))),
        Mistake("average the gradient as it is: the ReLU of Grad-CAM comes after the weighted sum of the "
                "maps (Eq. 2), not on the gradients.", lambda g: g.clamp(min=0).mean(dim=(1, 2))),
        Mistake("the weights are signed: Grad-CAM's ReLU acts on the weighted sum of the maps (Eq. 2), "
                "not on the weights.", lambda g: g.mean(dim=(1, 2)).clamp(min=0)),
        Mistake("gradients is (K, h, w): average over the positions, dims 1 and 2, not over the channels.",
                lambda g: g.mean(dim=0)),
        Mistake("gradients is (K, h, w), channels first: average over dims 1 and 2, not 0 and 1.",
                lambda g: g.mean(dim=(0, 1))),
        Mistake("average the signed gradient, not its absolute value: a negative gradient means the "
                "channel lowers the score.", lambda g: g.abs().mean(dim=(1, 2))),
    ],
    start_hint="gradients is (K, h, w): gradients.mean(dim=(1, 2)) averages each channel over its positions.",
)


def check_grad_cam_weights(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(gradients) -> Tensor[K]``: Grad-CAM's channel weights (Eq. 1 of Selvaraju et al. 2017).

    ``gradients`` is a ``Tensor[K, h, w]``, d y / d A. Reference: ``gradients.mean(dim=(1, 2))``.
    """
    return run_exercise(GRAD_CAM_WEIGHTS, fn, verbose=verbose)


# --------------------------------------------------------------------------- CAM's map


def reference_cam_from_weights(features: torch.Tensor, fc_weight: torch.Tensor,
                               class_index: int) -> torch.Tensor:
    """The expected answer: ``Tensor[h, w]``, ``sum_k fc_weight[class_index, k] * features[k]``."""
    return weighted_channels(features[None], fc_weight[class_index][None])[0]  # (h, w)


def _cam_variant(features, fc_weight, class_index, weights="row", reduce="sum", after=None):
    """CAM's map with switches that reproduce the typical mistakes."""
    w = fc_weight[class_index] if weights == "row" else fc_weight[:, class_index]  # (K,)
    weighted = w[:, None, None] * features  # (K, h, w)
    cam = weighted.sum(dim=0) if reduce == "sum" else weighted.mean(dim=0)  # (h, w)
    if after == "relu":
        return cam.clamp(min=0)
    if after == "min-max":
        return (cam - cam.min()) / (cam.max() - cam.min())
    if after == "max":
        return cam / cam.max()
    return cam


def _compare_maps(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    if got.shape != expected.shape:
        return f"expected shape {tuple(expected.shape)}, the feature map's h x w, got {tuple(got.shape)}"
    note = _first_difference(got, expected)
    offset = got - expected  # (h, w)
    if note is not None and offset.numel() > 1 and torch.allclose(offset, offset.flatten()[0], atol=1e-5):
        note += (f": every position is off by the same {float(offset.flatten()[0]):.4g}, as if a bias was "
                 "added; CAM's map has no bias term")
    return note


CAM_FROM_WEIGHTS = Exercise(
    name="cam_from_weights",
    signature="cam_from_weights(features, fc_weight, class_index) -> Tensor[h, w]",
    reference=reference_cam_from_weights,
    cases=[
        Case("two channels, two classes, by hand",
             (torch.tensor([[[1.0, 0.0], [2.0, -1.0]], [[0.0, 1.0], [1.0, 1.0]]]),
              torch.tensor([[1.0, 1.0], [2.0, -1.0]]), 1),
             hint="class 1's weights are the row fc_weight[1] = [2, -1]: M = 2 * f_0 - f_1 = "
             "[[2, -1], [3, -3]]."),
        Case("as many classes as channels", (_random((3, 2, 3), seed=0), _random((3, 3), seed=1), 2),
             hint="fc_weight is (num_classes, K): class c's weights are the row fc_weight[c], one per "
             "channel."),
        Case("eight channels, four classes", (_random((8, 4, 5), seed=2), _random((4, 8), seed=3), 0),
             hint="M_c = sum over the K channels of fc_weight[c, k] * features[k], a (h, w) map."),
        Case("one channel", (_random((1, 3, 3), seed=4), _random((2, 1), seed=5), 1),
             hint="with one channel the map is fc_weight[c, 0] * features[0]."),
        Case("one position (h = w = 1)", (_random((4, 1, 1), seed=6), _random((3, 4), seed=7), 2),
             hint="the map is one number, the dot product of fc_weight[c] and the K features."),
        Case("no channel (K = 0)", (torch.zeros(0, 3, 3), torch.zeros(2, 0), 1),
             hint="a sum over no channel is 0 at every position: a (h, w) map of zeros."),
    ],
    normalize=lambda value: _to_tensor(value, "Tensor[h, w], one map"),
    compare=_compare_maps,
    mistakes=[
        Mistake("fc_weight is (num_classes, K): class c's weights are its row fc_weight[c], not the column "
                "fc_weight[:, c].", lambda f, w, c: _cam_variant(f, w, c, weights="column")),
        Mistake("CAM's map is signed: no ReLU (Eq. 2 of Zhou et al.; the ReLU is Grad-CAM's).",
                lambda f, w, c: _cam_variant(f, w, c, after="relu")),
        Mistake("return the map as it is: no normalization to [0, 1] (only the figure rescales it).",
                lambda f, w, c: _cam_variant(f, w, c, after="min-max")),
        Mistake("return the map as it is: no division by its maximum (only the figure rescales it).",
                lambda f, w, c: _cam_variant(f, w, c, after="max")),
        Mistake("M_c is the sum over the channels of w_ck f_k, not the mean.",
                lambda f, w, c: _cam_variant(f, w, c, reduce="mean")),
    ],
    start_hint="fc_weight[class_index] holds one weight per channel, (K,): multiply each channel of "
    "features by its weight (w[:, None, None] * features) and sum over the channels (dim 0).",
)


def check_cam_from_weights(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(features, fc_weight, class_index) -> Tensor[h, w]``: CAM's map (Eq. 2 of Zhou et al. 2016).

    ``features`` is a ``Tensor[K, h, w]``, ``fc_weight`` a ``Tensor[num_classes, K]``. The answer is
    ``sum_k fc_weight[class_index, k] * features[k]``: no ReLU, no normalization, no bias.
    Reference: ``course_lib.visualization.cam.weighted_channels``.
    """
    return run_exercise(CAM_FROM_WEIGHTS, fn, verbose=verbose)
