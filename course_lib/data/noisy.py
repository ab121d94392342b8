"""Noisy detections around ground-truth boxes: a stand-in for a detector's raw output.

NMS and AP need a detector's output before any clean-up: several overlapping, scored boxes per
object. ``noisy_detections`` makes one from the ground truth alone, deterministically, so notebooks
01 (matching and AP) and 02 (NMS) and their tests can show both before any detector is trained.
"""

from __future__ import annotations

import torch
from torch import Tensor

from course_lib._checks import check_boxes, check_number
from course_lib.boxes import box_iou


def noisy_detections(
    gt_boxes: Tensor, boxes_per_object: int = 6, jitter: float = 0.1, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """A detector's raw output for NMS demos: several jittered, scored copies of each object's box.

    Copy ``k`` of a box has its centre moved and its size scaled by Gaussian noise of standard
    deviation ``jitter`` (relative to the box size; the first copy gets a fifth of it), and a score
    that grows with its IoU with the true box, as a trained detector's would. Deterministic.

    Args:
        gt_boxes (Tensor[M, 4]): ``xyxy`` boxes of the objects.
        boxes_per_object: copies per object (K).
        jitter: relative noise, >= 0.
        seed: seed of the noise.

    Returns:
        ``(boxes, scores)``: Tensor[M * K, 4] ``xyxy`` boxes (object after object) and Tensor[M * K]
        scores in (0, 1).
    """
    check_boxes(gt_boxes, "gt_boxes", allow_degenerate=False)
    check_number(boxes_per_object, "boxes_per_object", 1, integer=True)
    check_number(jitter, "jitter", 0.0)
    generator = torch.Generator().manual_seed(seed)
    num_objects, K = gt_boxes.shape[0], boxes_per_object
    gt_boxes = gt_boxes.float()
    centers = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2  # (M, 2)
    sizes = (gt_boxes[:, 2:] - gt_boxes[:, :2]).clamp(min=1.0)  # (M, 2)
    noise = torch.randn(num_objects, K, 4, generator=generator) * jitter  # (M, K, 4)
    noise[:, 0] /= 5  # one good detection per object
    new_centers = centers[:, None] + noise[..., :2] * sizes[:, None]  # (M, K, 2)
    new_sizes = sizes[:, None] * noise[..., 2:].exp()  # (M, K, 2)
    boxes = torch.cat([new_centers - new_sizes / 2, new_centers + new_sizes / 2], dim=-1)  # (M, K, 4)
    ious = torch.zeros(num_objects, K)  # (M, K) IoU of each copy with its own object
    for m in range(num_objects):
        ious[m] = box_iou(boxes[m], gt_boxes[m, None])[:, 0]
    confidence = torch.rand(num_objects, K, generator=generator) * 0.2 + 0.75  # (M, K)
    scores = (confidence * (0.3 + 0.7 * ious)).clamp(0.01, 0.99)  # (M, K)
    return boxes.reshape(-1, 4), scores.reshape(-1)
