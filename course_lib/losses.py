"""Losses shared by the one-stage detectors: the focal loss of RetinaNet (Lin et al., 2017).

Cross entropy gives every anchor a loss, and a one-stage detector has tens of thousands of anchors
per image, almost all easy background. Their small losses add up to more than the few objects'
large ones, and their gradient decides the training. The focal loss multiplies the cross entropy of
each prediction by ``(1 - p_t) ** gamma``, where ``p_t`` is the probability given to the right
answer: an easy example (``p_t`` near 1) is weighted down to almost nothing, a hard one keeps its
loss. ``alpha`` weighs the positives against the negatives as well::

    p_t     = p          if the target is 1, else 1 - p
    alpha_t = alpha      if the target is 1, else 1 - alpha
    FL(p_t) = -alpha_t * (1 - p_t) ** gamma * log(p_t)

With ``gamma = 0`` and ``alpha < 0`` (no weighting) it is the binary cross entropy. The signature
and the defaults (``alpha = 0.25, gamma = 2``, the paper's best pair) are those of
:func:`torchvision.ops.sigmoid_focal_loss`, which the tests compare with, gradients included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

REDUCTIONS = ("none", "mean", "sum")


def sigmoid_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> Tensor:
    """The focal loss of each logit against its binary target (RetinaNet, Lin et al. 2017, eq. 5).

    Args:
        inputs (Tensor): logits of any shape (before the sigmoid), floating point.
        targets (Tensor): the same shape, 1 for the positive class and 0 for the negative
            (soft targets in [0, 1] are accepted, as in torchvision).
        alpha: weight of the positives in (0, 1); the negatives get ``1 - alpha``. A negative
            value turns the weighting off.
        gamma: focusing parameter, >= 0; 0 gives the (alpha-weighted) cross entropy.
        reduction: ``"none"`` (one loss per element), ``"mean"`` or ``"sum"``.

    Returns:
        The loss: the shape of ``inputs`` for ``"none"``, a scalar otherwise (the mean of an empty
        input is 0, not NaN).

    Raises:
        TypeError: ``inputs`` or ``targets`` is not a tensor, or ``inputs`` is not floating point.
        ValueError: shapes differ, ``alpha`` is not below 1, ``gamma`` is negative or not finite,
            or ``reduction`` is unknown.
    """
    for name, value in (("inputs", inputs), ("targets", targets)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if not inputs.is_floating_point():
        raise TypeError(f"inputs: expected floating-point logits, got {inputs.dtype}")
    if inputs.shape != targets.shape:
        raise ValueError(
            f"targets: expected the shape of inputs {tuple(inputs.shape)}, got {tuple(targets.shape)}"
        )
    if not alpha < 1:
        raise ValueError(f"alpha: expected a value below 1 (negative: no weighting), got {alpha}")
    if not (gamma >= 0 and gamma != float("inf")):
        raise ValueError(f"gamma: expected a finite value >= 0, got {gamma}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")

    targets = targets.to(inputs.dtype)
    p = torch.sigmoid(inputs)
    # log(p_t) computed from the logits, stable for large |inputs| (log of a sigmoid would not be)
    cross_entropy = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = cross_entropy * (1 - p_t) ** gamma
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss

    if reduction == "mean":
        return loss.mean() if loss.numel() else loss.sum()
    if reduction == "sum":
        return loss.sum()
    return loss


def generalized_box_iou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7
) -> Tensor:
    """``1 - GIoU`` of each *pair* ``boxes1[i], boxes2[i]`` (Rezatofighi et al. 2019), differentiable.

    DETR's box loss on its matched pairs. :func:`course_lib.boxes.generalized_box_iou` compares
    every box with every other and works in place for speed (no gradient); this one compares row
    with row, out of place, with torchvision's signature and its ``eps`` guard
    (:func:`torchvision.ops.generalized_box_iou_loss`, which the tests compare with).

    Args:
        boxes1, boxes2: Tensor[N, 4] ``xyxy``, the same N.
        reduction: ``"none"`` (Tensor[N]), ``"mean"`` or ``"sum"``.
        eps: added to the union and the enclosing area, so that degenerate boxes give no NaN.
    """
    if boxes1.shape != boxes2.shape or boxes1.dim() != 2 or boxes1.shape[-1] != 4:
        raise ValueError(
            "boxes2: expected two Tensor[N, 4] of one shape, "
            f"got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}"
        )
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    inter = (torch.minimum(x2, x2g) - torch.maximum(x1, x1g)).clamp(min=0) * (
        torch.minimum(y2, y2g) - torch.maximum(y1, y1g)
    ).clamp(min=0)  # (N,)
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    iou = inter / (union + eps)
    enclosing = (torch.maximum(x2, x2g) - torch.minimum(x1, x1g)) * (
        torch.maximum(y2, y2g) - torch.minimum(y1, y1g)
    )
    loss = 1 - (iou - (enclosing - union) / (enclosing + eps))  # (N,)
    if reduction == "mean":
        return loss.mean() if loss.numel() else loss.sum()
    if reduction == "sum":
        return loss.sum()
    return loss
