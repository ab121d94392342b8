"""COCO's IoU and greedy matching, for every image and category at once (numpy).

pycocotools matches detections to ground truth with three nested Python loops (detections,
IoU thresholds, ground-truth boxes), once per image, category and area range. The rule is
greedy, so the loop over detections (best score first) must stay sequential; this module
runs that one loop and does everything else -- all images and categories ("groups"), all
area ranges and all IoU thresholds -- as array operations. Step ``r`` matches the ``r``-th
best detection of every group at once.

Used by :mod:`course_lib.metrics.cocoeval`; the rules are restated in :mod:`course_lib.metrics`.
"""

from __future__ import annotations

import numpy as np

# The parameters of pycocotools' ``Params.setDetParams``, built the same way so that every
# float is bit-identical (np.arange would give 0.7500000000000001 instead of 0.75).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RANGES = np.array([[0.0, 1e5**2], [0.0, 32.0**2], [32.0**2, 96.0**2], [96.0**2, 1e5**2]])
AREA_NAMES = ("all", "small", "medium", "large")
MAX_DETS = (1, 10, 100)


def coco_iou(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of ``xywh`` boxes with COCO's crowd rule, bit-identical to pycocotools' ``bbIou``.

    For a crowd ground truth the union is the detection's own area, so a detection that lies
    inside a crowd region scores 1 however large the region is.

    Args:
        dets (ndarray[..., D, 4]): detection boxes, ``xywh``, float64.
        gts (ndarray[..., G, 4]): ground-truth boxes, ``xywh``, float64.
        crowd (ndarray[..., G]): True for crowd ground truth (``iscrowd``).

    Returns:
        ndarray[..., D, G]: IoU in ``[0, 1]``, 0 where the boxes do not overlap.
    """
    dx, dy, dw, dh = (dets[..., :, None, i] for i in range(4))  # each (..., D, 1)
    gx, gy, gw, gh = (gts[..., None, :, i] for i in range(4))  # each (..., 1, G)
    # Same operations in the same order as the C code, so thresholds see the same floats.
    inter_w = np.minimum(dx + dw, gx + gw) - np.maximum(dx, gx)  # (..., D, G)
    inter_h = np.minimum(dy + dh, gy + gh) - np.maximum(dy, gy)
    inter = np.where((inter_w > 0) & (inter_h > 0), inter_w * inter_h, 0.0)
    det_area, gt_area = dw * dh, gw * gh
    union = np.where(crowd[..., None, :], det_area, det_area + gt_area - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def greedy_match(
    det_boxes: np.ndarray,
    det_group: np.ndarray,
    det_rank: np.ndarray,
    gt_boxes: np.ndarray,
    gt_real: np.ndarray,
    gt_crowd: np.ndarray,
    gt_ignore: np.ndarray,
    iou_thresholds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Match detections to ground truth greedily, as pycocotools' ``evaluateImg``.

    Per group (one image and one category), area range and IoU threshold ``t``, detections
    are taken best score first. Each one takes, among the ground truths with IoU >= ``t``
    that are still free (a crowd region is never used up), the one with the highest IoU
    (ties: the later one). Ground truths that count (not ignored) are preferred: an ignored
    one (crowd, or outside the area range) is taken only when no counted one qualifies.

    Legend: N detections, P groups, G ground truths per group (padded), A area ranges,
    T IoU thresholds.

    Args:
        det_boxes (ndarray[N, 4]): ``xywh`` detection boxes.
        det_group (ndarray[N]): the group of each detection (index into the gt arrays).
        det_rank (ndarray[N]): rank of each detection by score within its group, 0 = best;
            a group has exactly one detection of each rank below its number of detections.
        gt_boxes (ndarray[P, G, 4]): ``xywh`` ground truth, padded with anything.
        gt_real (ndarray[P, G]): False on padding.
        gt_crowd (ndarray[P, G]): ``iscrowd``.
        gt_ignore (ndarray[P, A, G]): the ground truth does not count in that area range.
        iou_thresholds (ndarray[T]): the IoU a match needs.

    Returns:
        ``(matched, matched_ignored)``, both bool ``ndarray[N, A, T]``: whether the detection
        found a ground truth, and whether that ground truth was an ignored one.
    """
    num_groups, num_areas, G = gt_ignore.shape
    T = len(iou_thresholds)
    taken = np.zeros((num_groups, num_areas, T, G), dtype=bool)  # gt already used
    matched = np.zeros((len(det_rank), num_areas, T), dtype=bool)
    matched_ignored = np.zeros_like(matched)
    slots = np.arange(G)
    by_rank = np.argsort(det_rank, kind="stable")
    starts = np.searchsorted(det_rank[by_rank], np.arange(det_rank.max(initial=-1) + 2))
    for rank in range(len(starts) - 1):
        dets = by_rank[starts[rank] : starts[rank + 1]]  # (n,): one detection per group
        groups = det_group[dets]
        iou = coco_iou(det_boxes[dets, None], gt_boxes[groups], gt_crowd[groups])[:, 0]  # (n, G)
        iou = np.where(gt_real[groups], iou, -1.0)
        crowd = gt_crowd[groups][:, None, None, :]  # (n, 1, 1, G)
        ignored = gt_ignore[groups][:, :, None, :]  # (n, A, 1, G)
        free = ~taken[groups] | crowd  # (n, A, T, G)
        ok = free & (iou[:, None, None, :] >= iou_thresholds[:, None])  # (n, A, T, G)
        counted_ok = (ok & ~ignored).any(-1, keepdims=True)  # (n, A, T, 1)
        ok &= ~(counted_ok & ignored)  # counted ground truth first
        candidate_iou = np.where(ok, iou[:, None, None, :], -np.inf)
        best = G - 1 - np.argmax(candidate_iou[..., ::-1], axis=-1)  # (n, A, T), ties -> last
        chosen = ok.any(-1, keepdims=True) & (slots == best[..., None])  # (n, A, T, G) one-hot
        matched[dets] = chosen.any(-1)
        matched_ignored[dets] = (chosen & ignored).any(-1)
        taken[groups] |= chosen
    return matched, matched_ignored
