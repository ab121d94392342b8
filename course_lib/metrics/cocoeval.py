"""COCO bbox evaluation in numpy: read the json, match, accumulate, summarize.

The steps and their names follow pycocotools' ``COCOeval`` (``evaluate``, ``accumulate``,
``summarize``) so the two can be read side by side; the rules are explained in
:mod:`course_lib.metrics`, which is the public face of this module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from course_lib.metrics.average_precision import precision_envelope
from course_lib.metrics.matching import AREA_RANGES, IOU_THRESHOLDS, MAX_DETS, RECALL_THRESHOLDS, greedy_match

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


class Accumulated(NamedTuple):
    """pycocotools' ``eval["precision"]`` and ``eval["recall"]``, and the category ids of axis K."""

    precision: np.ndarray  # (T, R, K, A, M), -1 where the category has no counted ground truth
    recall: np.ndarray  # (T, K, A, M)
    category_ids: list


_REQUIRED = object()


def _column(records: Sequence[Any], key: str, what: str, default: Any = _REQUIRED) -> list:
    """``[r[key] for r in records]`` with an error that names the record at fault."""
    try:
        if default is _REQUIRED:
            return [r[key] for r in records]
        return [r.get(key, default) for r in records]
    except (KeyError, TypeError, AttributeError):
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise TypeError(f"{what}[{i}]: expected a dict, got {type(record).__name__}") from None
            if key not in record:
                raise ValueError(f"{what}[{i}]: expected a key {key!r}, got keys {sorted(record)}") from None
        raise


def _numbers(values: list, what: str, shape_text: str, ndim: int = 1) -> np.ndarray:
    """Finite float64 array from a list of numbers (``ndim=1``) or of 4-number boxes (2)."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected {shape_text} of numbers, got {values[:3]!r}...") from None
    if array.ndim != ndim and len(values):
        raise ValueError(f"{what}: expected {shape_text} of numbers, got {values[:3]!r}...")
    if not np.isfinite(array).all():
        raise ValueError(f"{what}: expected finite numbers, got NaN or inf")
    return array


def _boxes(records: Sequence[Any], what: str) -> np.ndarray:
    """The ``bbox`` of every record as ``ndarray[N, 4]`` xywh, checked."""
    boxes = _numbers(_column(records, "bbox", what), f"{what} bbox", "[x, y, w, h] lists", ndim=2)
    boxes = boxes if len(records) else np.zeros((0, 4))
    if boxes.shape[1] != 4:
        raise ValueError(f"{what} bbox: expected [x, y, w, h] (4 numbers), got {boxes.shape[1]} numbers")
    negative = (boxes[:, 2] < 0) | (boxes[:, 3] < 0)
    if negative.any():
        i = int(negative.argmax())
        raise ValueError(f"{what}[{i}] bbox: expected width and height >= 0, got {boxes[i].tolist()}")
    return boxes


def _positions(ids: list, index: dict) -> np.ndarray:
    """Position of each id in ``index`` (-1 when absent)."""
    return np.fromiter((index.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))


def read_ground_truth(coco_gt: Any) -> dict[str, Any]:
    """Images, categories and annotations of a COCO dict as arrays (annotations of unknown
    images or categories are dropped, as pycocotools does)."""
    if not isinstance(coco_gt, dict):
        raise TypeError(f"coco_gt: expected a COCO dict, got {type(coco_gt).__name__}")
    for key in ("images", "categories"):
        if not isinstance(coco_gt.get(key), list):
            raise ValueError(f"coco_gt: expected a list under {key!r}, got {type(coco_gt.get(key)).__name__}")
    anns = coco_gt.get("annotations", [])
    if not isinstance(anns, list):
        raise ValueError(f"coco_gt: expected a list under 'annotations', got {type(anns).__name__}")
    image_ids = sorted(set(_column(coco_gt["images"], "id", "coco_gt['images']")))
    category_ids = sorted(set(_column(coco_gt["categories"], "id", "coco_gt['categories']")))
    what = "coco_gt['annotations']"
    boxes = _boxes(anns, what)
    ann_ids = [i for i in _column(anns, "id", what, default=None) if i is not None]
    if 0 in ann_ids:  # pycocotools stores matches as gt ids, with 0 meaning "no match"
        raise ValueError(f"{what}: expected nonzero ids (0 reads as 'no match' in pycocotools), got id 0")
    if len(set(ann_ids)) != len(ann_ids):
        repeated = next(i for i, count in Counter(ann_ids).items() if count > 1)
        raise ValueError(f"{what}: expected unique ids, got id {repeated!r} more than once")
    image = _positions(_column(anns, "image_id", what), {i: p for p, i in enumerate(image_ids)})
    category = _positions(_column(anns, "category_id", what), {c: p for p, c in enumerate(category_ids)})
    # 'area' is the object's area (a mask's, in real COCO), not the box's; w * h when absent.
    area = _column(anns, "area", what, default=None)
    area = [w * h if a is None else a for a, (w, h) in zip(area, boxes[:, 2:].tolist(), strict=True)]
    area = _numbers(area, f"{what} area", "a list").reshape(len(anns))
    crowd = np.array([bool(c) for c in _column(anns, "iscrowd", what, default=0)], dtype=bool)
    keep = (image >= 0) & (category >= 0)
    return {
        "image_ids": image_ids,
        "category_ids": category_ids,
        "image": image[keep],
        "category": category[keep],
        "boxes": boxes[keep],
        "area": area[keep],
        "crowd": crowd[keep],
    }


def read_detections(coco_dt: Any, image_ids: list, category_ids: list) -> dict[str, np.ndarray]:
    """A COCO results list as arrays (detections of unknown categories are dropped, as
    pycocotools does; unknown images are an error, as pycocotools' ``loadRes`` asserts)."""
    if not isinstance(coco_dt, list):
        raise TypeError(f"coco_dt: expected a list of detection dicts, got {type(coco_dt).__name__}")
    boxes = _boxes(coco_dt, "coco_dt")
    score = _numbers(_column(coco_dt, "score", "coco_dt"), "coco_dt score", "a list")
    image_id_list = _column(coco_dt, "image_id", "coco_dt")
    image = _positions(image_id_list, {i: p for p, i in enumerate(image_ids)})
    if (image < 0).any():
        i = int((image < 0).argmax())
        raise ValueError(f"coco_dt[{i}]: expected an image_id listed in coco_gt['images'], "
                         f"got {image_id_list[i]!r}")
    category_index = {c: p for p, c in enumerate(category_ids)}
    category = _positions(_column(coco_dt, "category_id", "coco_dt"), category_index)
    keep = category >= 0
    return {"image": image[keep], "category": category[keep], "boxes": boxes[keep], "score": score[keep],
            "index": np.flatnonzero(keep)}


def _outside(area: np.ndarray) -> np.ndarray:
    """``ndarray[N, A]``: True where the area is outside each area range (bounds inclusive)."""
    return (area[:, None] < AREA_RANGES[:, 0]) | (area[:, None] > AREA_RANGES[:, 1])


def evaluate(coco_gt: Any, coco_dt: Any, iou_thresholds: np.ndarray = IOU_THRESHOLDS) -> Accumulated:
    """Match every detection (``COCOeval.evaluate``) and build the PR tables (``accumulate``)."""
    gt = read_ground_truth(coco_gt)
    dt = read_detections(coco_dt, gt["image_ids"], gt["category_ids"])
    num_images, num_categories = len(gt["image_ids"]), len(gt["category_ids"])
    # A group is one (category, image) pair: pycocotools evaluates each on its own.
    gt["group"] = gt["category"] * num_images + gt["image"]
    dt["group"] = dt["category"] * num_images + dt["image"]

    # Detections: best score first in each group (stable, like the mergesort), keep the top 100.
    order = np.lexsort((dt["index"], -dt["score"], dt["group"]))
    dt = {key: value[order] for key, value in dt.items()}
    rank = np.arange(len(order)) - np.searchsorted(dt["group"], dt["group"])  # rank within the group
    dt = {key: value[rank < MAX_DETS[-1]] for key, value in dt.items()}
    rank = rank[rank < MAX_DETS[-1]]

    gt_ignore = gt["crowd"][:, None] | _outside(gt["area"])  # (num_gt, A)
    counted = np.zeros((num_categories, len(AREA_RANGES)), dtype=np.int64)  # (K, A)
    np.add.at(counted, gt["category"], ~gt_ignore)
    matched, matched_ignored = _match_groups(dt, rank, gt, gt_ignore, iou_thresholds)
    # An unmatched detection outside the area range is ignored too: it may be a fine
    # detection of an object of another size.
    outside = _outside(dt["boxes"][:, 2] * dt["boxes"][:, 3])  # (N, A)
    ignored = np.where(matched, matched_ignored, outside[:, :, None])  # (N, A, T)
    precision, recall = accumulate(dt, rank, matched, ignored, counted, iou_thresholds)
    return Accumulated(precision, recall, gt["category_ids"])


def _match_groups(dt: dict, rank: np.ndarray, gt: dict, gt_ignore: np.ndarray,
                  iou_thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pad each group's ground truth into arrays and run ``greedy_match`` on them.

    Groups are padded in buckets of similar size (up to 1, 2, 4, 8, ... ground truths), so
    that one crowded image does not make every group as wide as itself.
    """
    A, T = gt_ignore.shape[1], len(iou_thresholds)
    matched = np.zeros((len(rank), A, T), dtype=bool)
    matched_ignored = np.zeros_like(matched)
    order = np.argsort(gt["group"], kind="stable")  # annotation order within each group
    groups, group_of_gt, counts = np.unique(gt["group"][order], return_inverse=True, return_counts=True)
    if len(groups) == 0:
        return matched, matched_ignored
    slot = np.arange(len(order)) - np.searchsorted(group_of_gt, group_of_gt)  # place in its group
    position = np.minimum(np.searchsorted(groups, dt["group"]), len(groups) - 1)
    group_of_dt = np.where(groups[position] == dt["group"], position, -1)  # -1: no ground truth
    bucket = np.ceil(np.log2(counts)).astype(int)  # (num_groups,)
    for b in np.unique(bucket):
        members = np.flatnonzero(bucket == b)
        local = np.full(len(groups), -1)
        local[members] = np.arange(len(members))
        P, G = len(members), int(counts[members].max())
        take = local[group_of_gt] >= 0
        rows, cols, source = local[group_of_gt][take], slot[take], order[take]
        boxes, real = np.zeros((P, G, 4)), np.zeros((P, G), dtype=bool)
        crowd, ignore = np.zeros((P, G), dtype=bool), np.zeros((P, A, G), dtype=bool)
        boxes[rows, cols], real[rows, cols] = gt["boxes"][source], True
        crowd[rows, cols] = gt["crowd"][source]
        ignore[rows, :, cols] = gt_ignore[source]  # (n, A) into (P, A, G)
        dets = np.flatnonzero((group_of_dt >= 0) & (local[group_of_dt] >= 0))
        det_boxes, det_group = dt["boxes"][dets], local[group_of_dt[dets]]
        matched[dets], matched_ignored[dets] = greedy_match(
            det_boxes, det_group, rank[dets], boxes, real, crowd, ignore, iou_thresholds
        )
    return matched, matched_ignored


def accumulate(dt: dict, rank: np.ndarray, matched: np.ndarray, ignored: np.ndarray, counted: np.ndarray,
               iou_thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision at 101 recall points and final recall, as ``COCOeval.accumulate``.

    Legend: T IoU thresholds, R recall points, K categories, A area ranges, M maxDets.
    """
    T, R, (K, A), M = len(iou_thresholds), len(RECALL_THRESHOLDS), counted.shape, len(MAX_DETS)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    # All detections of a category, best first; ties by image id, then by rank in the image,
    # exactly the order pycocotools' mergesort leaves after concatenating images in id order.
    order = np.lexsort((rank, dt["image"], -dt["score"], dt["category"]))
    bounds = np.searchsorted(dt["category"][order], np.arange(K + 1))
    for k in range(K):
        in_category = order[bounds[k] : bounds[k + 1]]
        for m, max_dets in enumerate(MAX_DETS):
            dets = in_category[rank[in_category] < max_dets]  # per-image truncation
            judged = ~ignored[dets]  # (n, A, T)
            tp = np.cumsum(matched[dets] & judged, axis=0).astype(float)  # (n, A, T)
            fp = np.cumsum(~matched[dets] & judged, axis=0).astype(float)
            for a in np.flatnonzero(counted[k] > 0):
                rc = tp[:, a] / counted[k, a]  # (n, T)
                pr = tp[:, a] / (fp[:, a] + tp[:, a] + np.spacing(1))
                pr = precision_envelope(pr, axis=0)  # (n, T)
                recall[:, k, a, m] = rc[-1] if len(dets) else 0.0
                for t in range(T):
                    at = np.searchsorted(rc[:, t], RECALL_THRESHOLDS, side="left")  # (R,)
                    reached = at < len(dets)
                    precision[t, reached, k, a, m] = pr[at[reached], t]
                    precision[t, ~reached, k, a, m] = 0.0
    return precision, recall


def summarize(result: Accumulated) -> dict[str, float]:
    """The 12 numbers of ``COCOeval.summarize``: means over entries > -1, else -1."""

    def mean(values: np.ndarray) -> float:
        valid = values[values > -1]
        return float(np.mean(valid)) if valid.size else -1.0

    p, r = result.precision, result.recall
    at50, at75 = (int(np.flatnonzero(IOU_THRESHOLDS == v)[0]) for v in (0.5, 0.75))
    values = [
        mean(p[:, :, :, 0, 2]), mean(p[at50, :, :, 0, 2]), mean(p[at75, :, :, 0, 2]),
        mean(p[:, :, :, 1, 2]), mean(p[:, :, :, 2, 2]), mean(p[:, :, :, 3, 2]),
        mean(r[:, :, 0, 0]), mean(r[:, :, 0, 1]), mean(r[:, :, 0, 2]),
        mean(r[:, :, 1, 2]), mean(r[:, :, 2, 2]), mean(r[:, :, 3, 2]),
    ]  # fmt: skip
    return dict(zip(STAT_NAMES, values, strict=True))
