"""SCOUTER: a classifier whose class scores *are* its explanations (Li et al., ICCV 2021).

SCOUTER ("Slot Attention-based Classifier for Explainable Image Recognition") replaces the
fully-connected classifier by an **xSlot** module, a variant of slot attention (Locatello et al.
2020) with one slot per class:

1. the backbone's feature map, through a 1x1 convolution and a ReLU, gives ``F'`` (``N = h * w``
   tokens of ``d`` channels); a sine position embedding ``P`` is added for the keys only;
2. for ``T`` iterations (the xSlot module, Sec. 3 of the paper)::

       Q = q(w)                      queries of the n slots w, Tensor[n, d]
       K = k(F' + P)                 keys of the N tokens, Tensor[N, d]
       A = sigmoid(Q K^T / sqrt(d))  attention, Tensor[n, N], each entry in (0, 1)
       U = A F' / N                  each slot's attention-weighted features, Tensor[n, d]
       w = GRU(U, w)                 the slot update

3. the **xClassifier** (Sec. 3) sums each slot's ``U`` over its channels, with no weights::

       logit_i = lambda * sum_c U_ic = lambda / N * sum_j A_ij * (sum_c F'_jc)

   so class ``i``'s score is the evidence its attention map ``A_i`` covers, and ``A_i`` (an
   ``h x w`` map) is the explanation. ``lambda_`` is the +1 / -1 switch (the authors' code calls
   it ``loss_status``; their area-loss weight is ``lambda_value``, here ``area_weight``). As
   ``F' >= 0``, with ``lambda = +1`` (SCOUTER+) a class scores high by attending to evidence
   *for* it; with ``lambda = -1`` (SCOUTER-) the true class is the one whose slot finds the least
   evidence, and the other slots attend to what speaks *against* their class.

The attention is a sigmoid, not slot attention's softmax over slots: slots do not compete for a
token, each class may claim or ignore any region on its own.

Departures from the paper, and from the authors' code (github.com/wbw520/scouter,
``sloter/utils/slot_attention.py``), all documented here:

* the authors' code rescales each slot's row of ``Q K^T`` by ``(sum over all) / (sum over the
  row's tokens)`` before the sigmoid, which the paper's equations do not show; it divides by a sum that can
  cross zero, so it is left out. Their code also uses ``q = identity``; here ``q`` is an MLP as in
  the paper.
* the code divides ``U`` by ``d``; here by ``N`` ("normalized over tokens": ``U`` is a mean over
  the image, whatever its size). With ``d = N = 64`` (an 8 x 8 map) the two are the same.
* the slots start from learned embeddings (the code samples them once from a Gaussian, then
  learns them), so an image always gets the same explanation.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib._checks import check_number, check_tensor
from course_lib.data import CLASSES
from course_lib.models.backbone import ShapesBackbone
from course_lib.models.transformer import MLP, sine_positions

__all__ = ["Scouter", "SlotAttention", "scouter_loss"]


class SlotAttention(nn.Module):
    """SCOUTER's xSlot module: one slot per class, sigmoid attention, GRU updates (Sec. 3 of the paper).

    Args:
        num_slots: ``n``, the number of slots (one per class).
        dim: ``d``, the channels of the tokens and of the slots.
        iterations: ``T``, the rounds of attention and update (3 in the authors' code).
    """

    def __init__(self, num_slots: int, dim: int, iterations: int = 3) -> None:
        super().__init__()
        check_number(num_slots, "num_slots", low=1, integer=True)
        check_number(dim, "dim", low=1, integer=True)
        check_number(iterations, "iterations", low=1, integer=True)
        self.num_slots, self.dim, self.iterations = num_slots, dim, iterations
        self.initial_slots = nn.Parameter(torch.randn(num_slots, dim))  # w^(0), learned
        self.q = MLP(dim, dim, dim, layers=2)
        self.k = MLP(dim, dim, dim, layers=2)
        self.gru = nn.GRUCell(dim, dim)

    def attend(self, slots: Tensor, keys: Tensor) -> Tensor:
        """The xSlot attention, ``A = sigmoid(q(w) K^T / sqrt(d))``.

        Args:
            slots (Tensor[B, n, d]): ``w``.
            keys (Tensor[B, N, d]): ``K = k(F' + P)``.

        Returns:
            Tensor[B, n, N], each entry in (0, 1).
        """
        queries = self.q(slots)  # (B, n, d)
        return torch.sigmoid(queries @ keys.transpose(1, 2) / math.sqrt(self.dim))  # (B, n, N)

    @staticmethod
    def updates(attention: Tensor, features: Tensor) -> Tensor:
        """``U = A F' / N``, each slot's mean of the features weighted by its attention.

        Args:
            attention (Tensor[B, n, N]): in [0, 1].
            features (Tensor[B, N, d]): ``F'``, the values.

        Returns:
            Tensor[B, n, d].
        """
        return attention @ features / max(1, features.shape[1])  # (B, n, d)

    def forward(self, features: Tensor, positions: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run ``T`` rounds of attention and GRU updates.

        Args:
            features (Tensor[B, N, d]): the tokens ``F'`` (the values).
            positions (Tensor[N, d] or Tensor[B, N, d], optional): added to the features for the
                keys only, so that where a token is steers the attention but not the evidence.

        Returns:
            ``(slots Tensor[B, n, d], attention Tensor[B, n, N])``: the slots after the last update
            and the attention of the last round, the one whose ``U`` makes the class scores.
        """
        B, N, d = _check_tokens(features, self.dim)  # batch, tokens, channels
        if positions is not None:
            check_tensor(positions, "positions")
            if positions.dim() not in (2, 3) or positions.shape[-2:] != (N, d):
                raise ValueError(
                    f"positions: expected a Tensor[{N}, {d}], got shape {tuple(positions.shape)}"
                )
        keys_in = features if positions is None else features + positions  # (B, N, d)
        keys = self.k(keys_in)  # (B, N, d)
        slots = self.initial_slots.expand(B, -1, -1)  # (B, n, d)
        attention = features.new_zeros(B, self.num_slots, N)
        for _ in range(self.iterations):
            attention = self.attend(slots, keys)  # (B, n, N)
            update = self.updates(attention, features)  # (B, n, d)
            slots = self.gru(update.reshape(-1, d), slots.reshape(-1, d))  # (B * n, d)
            slots = slots.reshape(B, self.num_slots, d)  # (B, n, d)
        return slots, attention


def _check_tokens(features: Tensor, dim: int) -> tuple[int, int, int]:
    check_tensor(features, "features")
    if features.dim() != 3 or features.shape[2] != dim:
        raise ValueError(f"features: expected a Tensor[B, N, {dim}], got shape {tuple(features.shape)}")
    if not features.is_floating_point():
        raise TypeError(f"features: expected a floating-point tensor, got dtype {features.dtype}")
    return tuple(features.shape)


class Scouter(nn.Module):
    """SCOUTER on the course's ``ShapesBackbone``: one slot, one score and one explanation per class.

    The slots read the backbone's stride-8 map: 8 x 8 for a 64-px crop, where a shape of 10-30 px
    covers a few cells, so an explanation can be told apart from its background; the stride-16 map
    (4 x 4) would make each cell a quarter of the image's side.

    Args:
        lambda_: +1 for SCOUTER+ (positive explanations: "why this class"), -1 for SCOUTER-
            (negative: "why not this class").
        classes: the class of each slot and output (default the five shapes, no background:
            output ``k`` scores ``CLASSES[k + 1]``).
        dim: ``d``, the channels of the tokens and slots.
        iterations: ``T``, the xSlot rounds.

    Attributes:
        attention: after a forward pass, the attention maps of that batch (detached),
            Tensor[B, n, h, w]; ``None`` before.
    """

    def __init__(
        self, lambda_: int = 1, classes: tuple[str, ...] = CLASSES[1:], dim: int = 64, iterations: int = 3
    ) -> None:
        super().__init__()
        if lambda_ not in (1, -1) or isinstance(lambda_, bool):
            raise ValueError(f"lambda_: expected +1 (SCOUTER+) or -1 (SCOUTER-), got {lambda_!r}")
        check_number(dim, "dim", low=4, integer=True)
        if dim % 4:
            raise ValueError(f"dim: expected a multiple of 4 (sine positions), got {dim}")
        self.lambda_ = int(lambda_)
        self.classes = tuple(classes)
        self.num_classes = len(self.classes)
        self.backbone = ShapesBackbone()  # stage16 and its classifier stay, unused, so that
        # ``shapes_backbone``'s weights load as they are
        self.project = nn.Conv2d(self.backbone.out_channels["stride8"], dim, kernel_size=1)
        self.slot_attention = SlotAttention(self.num_classes, dim, iterations)
        self.attention: Tensor | None = None

    def explain(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Class scores and the explanation of every class.

        Args:
            images (Tensor[B, 3, H, W]): in [0, 1].

        Returns:
            ``(logits Tensor[B, n], attention Tensor[B, n, h, w])`` with ``h, w = ceil(H / 8),
            ceil(W / 8)``; ``logits[b, i] = lambda * sum_c U_ic`` (the xClassifier).
        """
        check_tensor(images, "images")
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images: expected a Tensor[B, 3, H, W], got shape {tuple(images.shape)}")
        return self.explain_features(self.feature_map(images))

    def feature_map(self, images: Tensor) -> Tensor:
        """The backbone's stride-8 map that the slots read, Tensor[B, 128, ceil(H / 8), ceil(W / 8)]."""
        backbone = self.backbone
        return backbone.stage8(backbone.stage4(backbone.stem(images)))

    def explain_features(self, feature_map: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`explain` from the backbone's stride-8 map (Tensor[B, 128, h, w]) on."""
        check_tensor(feature_map, "feature_map")
        if feature_map.dim() != 4:
            shape = tuple(feature_map.shape)
            raise ValueError(f"feature_map: expected a Tensor[B, C, h, w], got shape {shape}")
        B, _, h, w = feature_map.shape  # batch, channels, height, width
        tokens = F.relu(self.project(feature_map)).flatten(2).transpose(1, 2)  # (B, N, d), F' >= 0
        positions = sine_positions(h, w, tokens.shape[2], device=feature_map.device)  # (N, d)
        _, attention = self.slot_attention(tokens, positions)  # (B, n, N)
        evidence = SlotAttention.updates(attention, tokens).sum(dim=2)  # (B, n)
        return self.lambda_ * evidence, attention.reshape(B, self.num_classes, h, w)  # (B, n), (B, n, h, w)

    def forward(self, images: Tensor) -> Tensor:
        """Class scores (logits), Tensor[B, n]; the explanations are kept in ``self.attention``."""
        logits, attention = self.explain(images)
        self.attention = attention.detach()
        return logits


def scouter_loss(logits: Tensor, labels: Tensor, attention: Tensor, area_weight: float) -> dict[str, Tensor]:
    """The SCOUTER loss (Sec. 3): cross entropy plus the area loss, which keeps explanations small.

    ``area = area_weight * mean(A)``: the paper sums ``A`` over slots and tokens; like the
    authors' code we divide that sum by ``B * n * N``, so the term is the fraction of the map the
    explanations light up and a weight means the same on any map size and batch.

    Args:
        logits (Tensor[B, n]): class scores.
        labels (Tensor[B]): int64 output indices in ``[0, n)``.
        attention (Tensor[B, n, h, w] or Tensor[B, n, N]): the attention maps, in [0, 1].
        area_weight: ``λ`` of the paper, >= 0; larger gives smaller explanations.

    Returns:
        ``{"classification": Tensor[], "area": Tensor[]}`` (the area already weighted); both 0
        for an empty batch.
    """
    for value, name in ((logits, "logits"), (labels, "labels"), (attention, "attention")):
        check_tensor(value, name)
    check_number(area_weight, "area_weight", low=0)
    if logits.dim() != 2:
        raise ValueError(f"logits: expected a Tensor[B, n], got shape {tuple(logits.shape)}")
    B, n = logits.shape  # batch, classes
    if labels.shape != (B,) or labels.is_floating_point():
        raise ValueError(f"labels: expected an integer Tensor[{B}], got {labels.dtype} {tuple(labels.shape)}")
    if attention.dim() not in (3, 4) or attention.shape[:2] != (B, n):
        raise ValueError(f"attention: expected a Tensor[{B}, {n}, h, w], got shape {tuple(attention.shape)}")
    if B == 0:
        zero = logits.sum() * 0.0  # keeps the graph, never NaN
        return {"classification": zero, "area": zero.clone()}
    if labels.min() < 0 or labels.max() >= n:
        raise ValueError(f"labels: expected values in [0, {n - 1}], got {labels.tolist()}")
    return {"classification": F.cross_entropy(logits, labels), "area": area_weight * attention.mean()}
