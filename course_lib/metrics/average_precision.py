"""Average precision one step at a time: match, precision-recall, area under the curve.

The teaching side of :mod:`course_lib.metrics` (which re-exports these functions): one image
or one class at a time, with plain arrays, so that a notebook can show each step. Chained,
``match_detections`` -> ``precision_recall`` -> ``average_precision(method="coco101")``
gives the AP that pycocotools reports for a single image and class without crowd regions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from course_lib._checks import check_boxes, check_choice, check_number, check_scores
from course_lib.metrics.matching import RECALL_THRESHOLDS


def _vector(value: Any, name: str, dtype: type) -> np.ndarray:
    """A 1-D numpy array from a tensor, array or list."""
    array = value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if dtype is bool and array.size and array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name}: expected booleans (or 0/1), got values {np.unique(array)[:5].tolist()}")
    try:
        array = array.astype(dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers, got dtype {array.dtype}") from None
    if dtype is float and not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite numbers, got NaN or inf")
    return array


def precision_recall(scores: Any, is_true_positive: Any, num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, best score first.

    ``precision[i] = TP_i / (i + 1)`` and ``recall[i] = TP_i / num_gt``, where ``TP_i`` counts
    the true positives among the ``i + 1`` best-scored detections.

    Args:
        scores (Tensor[N] or array): detection scores.
        is_true_positive (Tensor[N] or array): bool, e.g. from :func:`match_detections`.
        num_gt: number of ground-truth objects (>= 1; recall is undefined without any).

    Returns:
        ``(precision, recall)``: float64 ``ndarray[N]`` each, in order of decreasing score
        (ties keep the lower index first, like a stable sort).
    """
    scores = _vector(scores, "scores", float)
    is_true_positive = _vector(is_true_positive, "is_true_positive", bool)
    if len(is_true_positive) != len(scores):
        raise ValueError(f"is_true_positive: expected {len(scores)} values (one per score), "
                         f"got {len(is_true_positive)}")
    num_gt = int(num_gt) if isinstance(num_gt, np.integer) else num_gt
    check_number(num_gt, "num_gt", low=1, integer=True)
    if is_true_positive.sum() > num_gt:
        raise ValueError(f"is_true_positive: expected at most num_gt={num_gt} true positives, "
                         f"got {int(is_true_positive.sum())}")
    order = np.argsort(-scores, kind="stable")
    true_positives = np.cumsum(is_true_positive[order])  # (N,)
    precision = true_positives / np.arange(1, len(scores) + 1)
    return precision, true_positives / num_gt


def precision_envelope(precision: np.ndarray, axis: int = 0) -> np.ndarray:
    """Each precision replaced by the highest precision at the same or a later position.

    Along ``axis`` the detections go best first, so a later position is a higher recall: this is
    the monotone "envelope" that every AP definition reads (COCO, PASCAL VOC).

    Args:
        precision: an array of precisions, detections along ``axis``.
        axis: the axis of the detections.

    Returns:
        An array of the same shape, non-increasing along ``axis``.
    """
    flipped = np.flip(precision, axis=axis)
    return np.flip(np.maximum.accumulate(flipped, axis=axis), axis=axis)


def average_precision(precision: Any, recall: Any, method: str = "coco101") -> float:
    """Average precision: the area under a precision-recall curve, made monotone.

    Both methods first replace each precision by the highest precision at the same or a
    higher recall (the envelope), so that AP does not punish a curve for wiggling.

    * ``"coco101"``: mean of the envelope read at recall 0, 0.01, ..., 1 (the first point with
      recall >= r; 0 past the highest recall), as pycocotools' ``accumulate`` (Lin et al.
      2014). PASCAL VOC 2007 used the same idea with 11 points.
    * ``"all_points"``: exact area under the envelope, a sum of rectangles at every recall
      change, as the PASCAL VOC devkit since 2010 (Everingham et al. 2010, IJCV, Sec. 4.2).

    Args:
        precision (array[N]): precision after each detection, best score first.
        recall (array[N]): recall after each detection, non-decreasing.
        method: ``"coco101"`` or ``"all_points"``.

    Returns:
        AP in ``[0, 1]``; 0.0 for an empty curve.
    """
    check_choice(method, ("coco101", "all_points"), "method")
    precision = _vector(precision, "precision", float)
    recall = _vector(recall, "recall", float)
    if len(precision) != len(recall):
        raise ValueError(f"recall: expected {len(precision)} values (as precision), got {len(recall)}")
    if ((precision < 0) | (precision > 1)).any():
        low, high = precision.min(), precision.max()
        raise ValueError(f"precision: expected values in [0, 1], got min {low}, max {high}")
    if (np.diff(recall) < 0).any() or ((recall < 0) | (recall > 1)).any():
        raise ValueError(f"recall: expected non-decreasing values in [0, 1], got {recall.tolist()[:8]}...")
    if len(recall) == 0:
        return 0.0
    if method == "coco101":
        envelope = precision_envelope(precision)
        at = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")  # (101,)
        return float(np.where(at < len(recall), envelope[np.minimum(at, len(recall) - 1)], 0.0).mean())
    recall = np.concatenate([[0.0], recall, [1.0]])
    envelope = precision_envelope(np.concatenate([[0.0], precision, [0.0]]))
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * envelope[steps + 1]))


def match_detections(
    pred_boxes: Tensor, pred_scores: Tensor, gt_boxes: Tensor, iou_threshold: float
) -> Tensor:
    """Greedy matching of one image and one class, COCO's rule without crowd or area ranges.

    Predictions are visited by decreasing score (ties: lower index first). Each takes the
    ground-truth box with the highest IoU (ties: the later one, as pycocotools) among those
    not matched yet; it is a true positive if that IoU is >= ``iou_threshold``.

    Args:
        pred_boxes (Tensor[N, 4]): predicted boxes, ``xyxy``.
        pred_scores (Tensor[N]): their scores.
        gt_boxes (Tensor[M, 4]): ground-truth boxes, ``xyxy``.
        iou_threshold: the IoU a match needs, in ``[0, 1]``.

    Returns:
        Tensor[N] bool: ``is_true_positive`` of each prediction, in input order.
    """
    check_boxes(pred_boxes, "pred_boxes", allow_degenerate=False)
    check_scores(pred_scores, len(pred_boxes), "pred_scores")
    check_boxes(gt_boxes, "gt_boxes", allow_degenerate=False)
    check_number(iou_threshold, "iou_threshold", low=0.0, high=1.0)
    preds = pred_boxes.detach().cpu().double().numpy()  # (N, 4)
    gts = gt_boxes.detach().cpu().double().numpy()  # (M, 4)
    top_left = np.maximum(preds[:, None, :2], gts[None, :, :2])  # (N, M, 2)
    bottom_right = np.minimum(preds[:, None, 2:], gts[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)  # (N, M)
    area_pred, area_gt = np.prod(preds[:, 2:] - preds[:, :2], 1), np.prod(gts[:, 2:] - gts[:, :2], 1)
    union = area_pred[:, None] + area_gt[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)  # (N, M)

    is_true_positive = np.zeros(len(preds), dtype=bool)
    gt_taken = np.zeros(len(gts), dtype=bool)
    for i in np.argsort(-pred_scores.detach().cpu().double().numpy(), kind="stable"):
        candidates = np.where(gt_taken, -1.0, iou[i])  # a matched gt is out of the game
        if len(gts) == 0:
            break
        best = len(gts) - 1 - int(np.argmax(candidates[::-1]))  # ties -> the later gt
        if candidates[best] >= iou_threshold:
            is_true_positive[i], gt_taken[best] = True, True
    return torch.from_numpy(is_true_positive)
