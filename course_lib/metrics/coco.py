"""Detection metrics: COCO average precision and recall, precision-recall curves, matching.

COCO's detection metrics (Lin et al. 2014, "Microsoft COCO: Common Objects in Context", and
the evaluation page https://cocodataset.org/#detection-eval), as pycocotools computes them
for ``iouType="bbox"``. ``coco_evaluate`` returns the same 12 numbers as ``COCOeval.stats``:

* **Matching.** For each image and category, detections are taken by decreasing score (ties
  keep their order in the results list) and only the best 100 are kept. Each detection is
  matched to the ground truth with the highest IoU among those it overlaps with IoU >= t that
  are not matched yet (ties: the later one); a detection that finds none is a false positive.
  This is done separately at each IoU threshold t in 0.50:0.05:0.95 (10 thresholds).
* **IoU** of ``xywh`` boxes, no +1 on widths. For a crowd region (``iscrowd=1``) the union is
  the detection's own area, and a crowd region can absorb any number of detections.
* **Ignored ground truth**: crowd regions, and, for the area ranges small (area < 32²),
  medium (32² to 96²) and large (> 96²), objects whose ``area`` field lies outside the range
  (bounds inclusive). Counted ground truth is preferred: a detection goes to an ignored
  one only if no counted one qualifies. A detection matched to ignored ground truth, or
  unmatched with a box area ``w * h`` outside the range, is ignored: neither TP nor FP.
* **Precision-recall.** Per category, area range and maxDets (1, 10, 100 detections per image,
  best first), all images' detections are sorted by score (ties: image id, then rank).
  Precision is made monotone (each point takes the maximum precision at any higher recall,
  the "envelope") and read at the 101 recall points 0:0.01:1 (0 past the highest recall).
  AP is the mean of those 101 values; recall is the final recall. A category with no counted
  ground truth gets -1 ("absent") and is left out of the means.
* **Summary**: AP (mean over 10 IoUs, all categories, area all, 100 dets), AP50, AP75,
  APs/APm/APl (per area range), AR1/AR10/AR100 (mean recall over IoUs and categories for 1,
  10, 100 dets), ARs/ARm/ARl. Each averages only entries > -1, and is -1 when none is valid.

Where this module differs from pycocotools: an empty detection list, on which pycocotools'
``loadRes`` crashes, is evaluated as "nothing detected" (0 where ground truth exists);
annotation ids 0 and duplicated ids raise (pycocotools silently miscounts them); a missing
``iscrowd`` means 0 and a missing ``area`` means the box area ``w * h``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from course_lib._checks import check_boxes, check_choice, check_number, check_scores, check_tensor
from course_lib.metrics.cocoeval import evaluate, summarize
from course_lib.metrics.matching import RECALL_THRESHOLDS

__all__ = ["coco_evaluate", "evaluate_detections", "per_class_ap", "pr_curves", "to_coco"]


def coco_evaluate(coco_gt: dict, coco_dt: list[dict]) -> dict[str, float]:
    """COCO bbox AP and AR, equal to pycocotools' ``COCOeval(gt, dt, "bbox").stats``.

    Args:
        coco_gt: a COCO dict with ``images`` (``id``), ``categories`` (``id``) and
            ``annotations`` (``image_id``, ``category_id``, ``bbox`` as ``[x, y, w, h]``,
            ``area``, optional ``iscrowd`` and ``id``). Annotations of images or categories
            not listed are left out, as in pycocotools.
        coco_dt: the results list: dicts with ``image_id``, ``category_id``, ``bbox``
            ``[x, y, w, h]`` and ``score``. Detections of unlisted categories are left out.

    Returns:
        ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
        "ARl"}`` as floats in ``[0, 1]``, or -1 where no category has counted ground truth
        (see the module docstring for the definitions).
    """
    return summarize(evaluate(coco_gt, coco_dt))


Categories = Sequence[str] | Sequence[dict] | Mapping[int, str] | None


def _category_list(categories: Categories, labels: set[int]) -> list[dict]:
    """COCO ``categories`` from None (the labels seen), names (label = position) or dicts."""
    if categories is None:
        return [{"id": label, "name": str(label)} for label in sorted(labels)]
    if isinstance(categories, Mapping):
        result = [{"id": int(key), "name": str(name)} for key, name in categories.items()]
    elif isinstance(categories, list | tuple) and all(isinstance(c, str) for c in categories):
        result = [{"id": i, "name": name} for i, name in enumerate(categories)]
    elif isinstance(categories, list | tuple) and all(isinstance(c, dict) and "id" in c for c in categories):
        result = [dict(c) for c in categories]
    else:
        raise TypeError(f"categories: expected None, a list of names, a list of dicts with 'id' or a dict "
                        f"id -> name, got {type(categories).__name__}")
    unknown = labels - {c["id"] for c in result}
    if unknown:
        raise ValueError(f"labels: expected ids listed in categories, got {sorted(unknown)}")
    return result


def _get(record: Any, key: str, name: str, default: Any = None, required: bool = True) -> Any:
    """``record[key]`` with an "expected X, got Y" error."""
    if not isinstance(record, dict):
        raise TypeError(f"{name}: expected a dict, got {type(record).__name__}")
    if required and key not in record:
        raise ValueError(f"{name}: expected a key {key!r}, got keys {sorted(record)}")
    return record.get(key, default)


def _labels(value: Any, num_boxes: int, name: str) -> list[int]:
    check_tensor(value, name)
    if value.shape != (num_boxes,) or value.is_floating_point() or value.dtype == torch.bool:
        raise ValueError(
            f"{name}: expected an integer Tensor[{num_boxes}], got {value.dtype} {tuple(value.shape)}"
        )
    return value.tolist()


def _xywh(boxes: Tensor) -> list[list[float]]:
    boxes = boxes.detach().cpu().double()
    return torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()  # (N, 4)


def to_coco(
    predictions: list[dict[str, Tensor]], targets: list[dict[str, Tensor]], categories: Categories = None
) -> tuple[dict, list[dict]]:
    """Convert torchvision-style detections and targets to a COCO dict and results list.

    Image ``i`` of the lists gets image id ``i``; annotations get ids 1, 2, ...

    Args:
        predictions: per image, ``boxes`` (Tensor[N, 4] xyxy), ``scores`` (Tensor[N]) and
            ``labels`` (int Tensor[N]), as a torchvision detector returns in eval mode.
        targets: per image, ``boxes`` (Tensor[M, 4] xyxy), ``labels`` (int Tensor[M]),
            optional ``iscrowd`` (Tensor[M]) and ``area`` (Tensor[M], default: box area).
        categories: None (every label seen is a category), a list of names (label ``i`` is
            ``categories[i]``, e.g. ``CLASSES``; "background" has no ground truth and so does
            not count), a dict ``{label: name}``, or COCO category dicts.

    Returns:
        ``(coco_gt, coco_dt)`` ready for :func:`coco_evaluate` or pycocotools.
    """
    if not isinstance(predictions, list | tuple) or not isinstance(targets, list | tuple):
        kinds = f"{type(predictions).__name__} and {type(targets).__name__}"
        raise TypeError(f"predictions, targets: expected lists of dicts, got {kinds}")
    if len(predictions) != len(targets):
        raise ValueError(f"expected one prediction per target, got {len(predictions)} and {len(targets)}")
    images, annotations, detections, seen = [], [], [], set()
    for image_id, (prediction, target) in enumerate(zip(predictions, targets, strict=True)):
        images.append({"id": image_id})
        name = f"targets[{image_id}]"
        boxes = check_boxes(_get(target, "boxes", name), f"{name}['boxes']", allow_degenerate=False)
        labels = _labels(_get(target, "labels", name), len(boxes), f"{name}['labels']")
        crowd = _get(target, "iscrowd", name, torch.zeros(len(boxes), dtype=torch.int64), required=False)
        crowd = check_scores(crowd, len(boxes), f"{name}['iscrowd']").tolist()
        area = _get(target, "area", name, required=False)
        if area is None:  # COCO's area is the object's; without a mask, the box's
            area = (boxes[:, 2] - boxes[:, 0]).double() * (boxes[:, 3] - boxes[:, 1])
        area = check_scores(area, len(boxes), f"{name}['area']").tolist()
        for box, label, is_crowd, size in zip(_xywh(boxes), labels, crowd, area, strict=True):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": label,
                                "bbox": box, "area": size, "iscrowd": int(is_crowd)})
        name = f"predictions[{image_id}]"
        boxes = check_boxes(_get(prediction, "boxes", name), f"{name}['boxes']", allow_degenerate=False)
        scores = check_scores(_get(prediction, "scores", name), len(boxes), f"{name}['scores']").tolist()
        pred_labels = _labels(_get(prediction, "labels", name), len(boxes), f"{name}['labels']")
        for box, label, score in zip(_xywh(boxes), pred_labels, scores, strict=True):
            detections.append({"image_id": image_id, "category_id": label, "bbox": box, "score": score})
        seen.update(labels, pred_labels)
    coco_gt = {"images": images, "annotations": annotations, "categories": _category_list(categories, seen)}
    return coco_gt, detections


def evaluate_detections(
    predictions: list[dict[str, Tensor]], targets: list[dict[str, Tensor]], iou_type: str = "bbox"
) -> dict[str, float]:
    """The 12 COCO numbers of :func:`coco_evaluate` for torchvision-style lists of dicts.

    Args:
        predictions, targets: as in :func:`to_coco`; image ids are the list positions.
        iou_type: only ``"bbox"``.

    Returns:
        The dict of :func:`coco_evaluate`.
    """
    check_choice(iou_type, ("bbox",), "iou_type")
    coco_gt, coco_dt = to_coco(predictions, targets)
    return coco_evaluate(coco_gt, coco_dt)


def per_class_ap(coco_gt: dict, coco_dt: list[dict], iou_threshold: float = 0.5) -> dict[Any, float]:
    """COCO 101-point AP of each category at one IoU threshold (area all, 100 dets per image).

    The mean of pycocotools' ``eval["precision"][t, :, k, 0, 2]``; the mean over categories
    of the values other than -1 is AP50 when ``iou_threshold=0.5``.

    Returns:
        ``{category_id: AP}`` for every category of ``coco_gt``, -1.0 for a category without
        counted ground truth (as pycocotools marks it).
    """
    curves = _curves(coco_gt, coco_dt, iou_threshold)
    return {category: float(p.mean()) if p[0] > -1 else -1.0 for category, p in curves.items()}


def pr_curves(coco_gt: dict, coco_dt: list[dict], iou_threshold: float = 0.5) -> dict[Any, tuple]:
    """COCO's interpolated precision-recall curve of each category, ready to plot.

    Returns:
        ``{category_id: (recall_points, precision)}``, both ``ndarray[101]``: recall
        0:0.01:1 and the envelope's precision there (area all, 100 dets per image), for
        each category that has counted ground truth.
    """
    curves = _curves(coco_gt, coco_dt, iou_threshold)
    return {category: (RECALL_THRESHOLDS.copy(), p) for category, p in curves.items() if p[0] > -1}


def _curves(coco_gt: dict, coco_dt: list[dict], iou_threshold: float) -> dict[Any, np.ndarray]:
    check_number(iou_threshold, "iou_threshold", low=0.0, high=1.0)
    result = evaluate(coco_gt, coco_dt, iou_thresholds=np.array([float(iou_threshold)]))
    precision = result.precision[0, :, :, 0, 2]  # (R, K): area all, 100 detections
    return {category: precision[:, k].copy() for k, category in enumerate(result.category_ids)}
