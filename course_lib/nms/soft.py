"""Soft-NMS: lower the scores of overlapping boxes instead of removing them.

Bodla et al. 2017, "Soft-NMS -- Improving Object Detection With One Line of Code". Greedy NMS
(``course_lib.nms.greedy``) removes every box that overlaps a kept box too much, and with it a
second object standing behind the first; Soft-NMS only lowers such a box's score, by how much it
overlaps, so the second object can still be found.
"""

from __future__ import annotations

import torch
from torch import Tensor

from course_lib._checks import check_choice, check_number
from course_lib.boxes import box_iou
from course_lib.nms.greedy import check_nms_args


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
    method: str = "gaussian",
) -> tuple[Tensor, Tensor]:
    """Soft-NMS (Bodla et al. 2017, Algorithm 1).

    Instead of removing the boxes that overlap the selected box ``M``, lower their scores, so that a
    second object hidden behind the first can still be found:

    * ``"linear"`` (Eq. 2): ``s_i <- s_i * (1 - IoU(M, b_i))`` if ``IoU(M, b_i) >= iou_threshold``,
      else unchanged. (The authors' code tests ``>``; we follow the paper.)
    * ``"gaussian"`` (Eq. 3): ``s_i <- s_i * exp(-IoU(M, b_i)^2 / sigma)`` for every box;
      ``iou_threshold`` is not used.

    Boxes whose score falls below ``score_threshold`` are discarded. Each step costs one IoU row,
    so the whole is O(N * K); meant for the few hundred boxes of one image.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes.
        scores (Tensor[N]): a score per box (non-negative, as probabilities).
        iou_threshold: ``N_t`` of the linear method, in [0, 1].
        sigma: spread of the Gaussian penalty, > 0.
        score_threshold: boxes whose decayed score is below it are dropped.
        method: ``"gaussian"`` or ``"linear"``.

    Returns:
        ``(keep, new_scores)``: Tensor[K] int64 indices of the kept boxes in the order they were
        selected (by decreasing new score; ties by lower index) and Tensor[K] their decayed scores.
    """
    check_nms_args(boxes, scores, iou_threshold)
    check_number(sigma, "sigma", low=0.0)
    if sigma == 0:
        raise ValueError(f"sigma: expected a positive number, got {sigma!r}")
    check_number(score_threshold, "score_threshold")
    check_choice(method, ("gaussian", "linear"), "method")
    current = scores.to(torch.promote_types(scores.dtype, torch.float32), copy=True)  # (N,) decayed scores
    remaining = torch.nonzero(current >= score_threshold)[:, 0]  # (R,) candidates
    keep, new_scores = [], []
    while remaining.numel():
        best = int(torch.argmax(current[remaining]))  # the first maximum: lower index wins ties
        selected = remaining[best]
        keep.append(selected)
        new_scores.append(current[selected])
        remaining = torch.cat((remaining[:best], remaining[best + 1 :]))  # (R - 1,)
        ious = box_iou(boxes[selected][None], boxes[remaining])[0]  # (R - 1,) 0, not NaN, for empty boxes
        if method == "linear":
            decay = torch.where(ious >= iou_threshold, 1 - ious, 1.0)  # (R - 1,)
        else:
            decay = torch.exp(-(ious * ious) / sigma)  # (R - 1,)
        current[remaining] *= decay.to(current.dtype)
        remaining = remaining[current[remaining] >= score_threshold]
    if not keep:
        return torch.empty(0, dtype=torch.int64, device=boxes.device), current[:0]
    return torch.stack(keep), torch.stack(new_scores)
