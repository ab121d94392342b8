"""What a detector's false positives and misses are: the error breakdown of Hoiem et al. and TIDE.

AP says how good a detector is, not what goes wrong. Hoiem et al. 2012 ("Diagnosing Error in
Object Detectors", ECCV) sort each false positive by its cause, and TIDE (Bolya et al. 2020, "TIDE:
A General Toolbox for Identifying Object Detection Errors", ECCV, Sec. 2) makes the causes
disjoint with two IoU thresholds: the foreground threshold ``t_f = 0.5`` (a match) and the
background threshold ``t_b = 0.1`` (below it a box overlaps nothing).

This module is a simplification of both, for counting. Per image, the detections with
``score >= score_threshold`` are taken best score first (ties: input order, a stable sort) and
matched greedily per class at IoU >= ``iou_threshold``, as COCO does (each ground truth is
matched at most once; a detection takes the free ground truth of its class with the highest IoU).
Each detection then gets exactly one category, the first of these that applies:

1. ``"correct"``: it matched a ground truth of its class (a COCO true positive);
2. ``"duplicate"``: it has IoU >= ``iou_threshold`` with a ground truth of its class, but a
   detection before it (higher score, or equal score and earlier in the input) took it;
3. ``"localization"``: its best IoU with a ground truth of its class is in
   ``[background_iou, iou_threshold)``;
4. ``"wrong class"``: it has IoU >= ``background_iou`` with a ground truth of another class;
5. ``"background"``: its IoU with every ground truth of the image is < ``background_iou``.

Each ground truth that no detection matched is ``"missed"``, whatever errors lie on it.

Where this departs from the papers: Hoiem et al. count duplicates as localization errors and
split class confusions into similar and dissimilar classes; TIDE has a sixth type ("both": wrong
class and poorly localized, here "wrong class"), counts a miss only when no other error explains
it, and weighs each type by the AP gained by fixing it, where we count. The order above puts the
detection's own class first: a box with IoU 0.3 on an object of its class and 0.6 on an object of
another class is a localization error here.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import torch
from torch import Tensor

from course_lib._checks import check_boxes, check_number, check_scores, check_tensor
from course_lib.boxes import box_iou

ERROR_CATEGORIES = ("correct", "duplicate", "localization", "wrong class", "background")

__all__ = ["error_breakdown", "error_categories", "f1_threshold", "missed_objects"]


def error_categories(
    prediction: dict[str, Tensor],
    target: dict[str, Tensor],
    iou_threshold: float = 0.5,
    background_iou: float = 0.1,
    score_threshold: float = 0.0,
) -> list[str | None]:
    """The category of each detection of one image (see the module docstring for the rules).

    Args:
        prediction: ``boxes`` (Tensor[N, 4] xyxy), ``scores`` (Tensor[N]) and ``labels``
            (int Tensor[N]), as a torchvision detector returns in eval mode.
        target: ``boxes`` (Tensor[M, 4] xyxy) and ``labels`` (int Tensor[M]).
        iou_threshold: the IoU a match needs, in ``[0, 1]``.
        background_iou: below this IoU a detection overlaps nothing, in ``[0, iou_threshold]``.
        score_threshold: detections scored below it are not judged.

    Returns:
        One of ``"correct"``, ``"duplicate"``, ``"localization"``, ``"wrong class"`` and
        ``"background"`` per detection, in input order; None for a detection scored below
        ``score_threshold``. An empty list for an image without detections.
    """
    _check_thresholds(iou_threshold, background_iou, score_threshold)
    categories, _ = _judge(prediction, target, "prediction", "target", iou_threshold, background_iou,
                           score_threshold)
    return categories


def missed_objects(
    prediction: dict[str, Tensor],
    target: dict[str, Tensor],
    iou_threshold: float = 0.5,
    background_iou: float = 0.1,
    score_threshold: float = 0.0,
) -> Tensor:
    """Which objects of one image no detection found: bool Tensor[M], True = missed.

    The same matching as :func:`error_categories` (arguments as there): an object is found when a
    ``"correct"`` detection took it.
    """
    _check_thresholds(iou_threshold, background_iou, score_threshold)
    _, gt_matched = _judge(prediction, target, "prediction", "target", iou_threshold, background_iou,
                           score_threshold)
    return ~torch.as_tensor(np.asarray(gt_matched, dtype=bool))


def error_breakdown(
    predictions: list[dict[str, Tensor]],
    targets: list[dict[str, Tensor]],
    iou_threshold: float = 0.5,
    background_iou: float = 0.1,
    score_threshold: float = 0.0,
) -> dict[str, int]:
    """Count correct detections, each kind of false positive, and missed objects over a dataset.

    Args:
        predictions: per image, a dict as in :func:`error_categories`.
        targets: per image, a dict as in :func:`error_categories`; as many as ``predictions``.
        iou_threshold, background_iou, score_threshold: as in :func:`error_categories`.

    Returns:
        ``{"correct", "duplicate", "localization", "wrong class", "background", "missed",
        "detections", "ground truths"}`` as ints. The first five add up to ``"detections"``
        (those scored at least ``score_threshold``), and ``"correct" + "missed"`` is
        ``"ground truths"``. All zeros for empty lists.
    """
    if not isinstance(predictions, list | tuple) or not isinstance(targets, list | tuple):
        kinds = f"{type(predictions).__name__} and {type(targets).__name__}"
        raise TypeError(f"predictions, targets: expected lists of dicts, got {kinds}")
    if len(predictions) != len(targets):
        raise ValueError(f"expected one prediction per target, got {len(predictions)} and {len(targets)}")
    _check_thresholds(iou_threshold, background_iou, score_threshold)
    counts = Counter({name: 0 for name in ERROR_CATEGORIES})
    missed = num_gt = 0
    for index, (prediction, target) in enumerate(zip(predictions, targets, strict=True)):
        categories, gt_matched = _judge(prediction, target, f"predictions[{index}]", f"targets[{index}]",
                                        iou_threshold, background_iou, score_threshold)
        counts.update(category for category in categories if category is not None)
        missed += int((~gt_matched).sum())
        num_gt += len(gt_matched)
    result = {name: counts[name] for name in ERROR_CATEGORIES}
    result |= {"missed": missed, "detections": sum(result.values()), "ground truths": num_gt}
    return result


def f1_threshold(
    predictions: list[dict[str, Tensor]], targets: list[dict[str, Tensor]], iou_threshold: float = 0.5
) -> tuple[float, float]:
    """The score threshold that maximizes F1 over a dataset, and that F1.

    ``F1 = 2 TP / (detections kept + objects)``, a TP being a ``"correct"`` detection at
    ``iou_threshold``. Matching goes from the highest score down, so whether a detection is correct
    does not depend on the ones scored below it: one matching of all detections gives TP at every
    threshold. Choose it on validation scenes, then use it on the test scenes.

    Returns:
        ``(threshold, f1)``: keep detections scored ``>= threshold``. ``(inf, 0.0)`` when there
        are no detections or no objects.
    """
    if not isinstance(predictions, list | tuple) or not isinstance(targets, list | tuple):
        kinds = f"{type(predictions).__name__} and {type(targets).__name__}"
        raise TypeError(f"predictions, targets: expected lists of dicts, got {kinds}")
    if len(predictions) != len(targets):
        raise ValueError(f"expected one prediction per target, got {len(predictions)} and {len(targets)}")
    check_number(iou_threshold, "iou_threshold", low=0.0, high=1.0)
    scores, correct, num_gt = [], [], 0
    for index, (prediction, target) in enumerate(zip(predictions, targets, strict=True)):
        name = f"predictions[{index}]"
        image_scores = check_tensor(_get(prediction, "scores", name), f"{name}['scores']")
        image_scores = np.asarray(image_scores.detach().cpu(), np.float64)
        lowest = float(image_scores.min()) if len(image_scores) else 0.0
        categories, gt_matched = _judge(prediction, target, f"predictions[{index}]", f"targets[{index}]",
                                        iou_threshold, 0.0, lowest)
        scores.append(image_scores)
        correct += [category == "correct" for category in categories]
        num_gt += len(gt_matched)
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    if len(all_scores) == 0 or num_gt == 0:
        return math.inf, 0.0
    order = np.argsort(-all_scores, kind="stable")
    ranked = all_scores[order]
    true_positives = np.cumsum(np.asarray(correct)[order])
    f1 = 2 * true_positives / (np.arange(1, len(ranked) + 1) + num_gt)
    # A threshold keeps every detection of a score or none: only the last of each tie counts.
    last_of_tie = np.append(ranked[1:] != ranked[:-1], True)
    best = int(np.flatnonzero(last_of_tie)[np.argmax(f1[last_of_tie])])
    return float(ranked[best]), float(f1[best])


def _check_thresholds(iou_threshold: float, background_iou: float, score_threshold: float) -> None:
    check_number(iou_threshold, "iou_threshold", low=0.0, high=1.0)
    check_number(background_iou, "background_iou", low=0.0, high=iou_threshold)
    check_number(score_threshold, "score_threshold")


def _judge(
    prediction: Any,
    target: Any,
    prediction_name: str,
    target_name: str,
    iou_threshold: float,
    background_iou: float,
    score_threshold: float,
) -> tuple[list[str | None], np.ndarray]:
    """The category of each detection (None below the score threshold) and which gts were matched."""
    boxes, labels = _boxes_and_labels(target, target_name)
    pred_boxes, pred_labels = _boxes_and_labels(prediction, prediction_name)
    scores = check_scores(_get(prediction, "scores", prediction_name), len(pred_boxes),
                          f"{prediction_name}['scores']")
    # float64 IoU, as COCO's matching (and match_detections) compares it with the threshold
    iou = box_iou(pred_boxes.double(), boxes.double()).numpy()  # (N, M)
    same_class = pred_labels[:, None] == labels[None, :]  # (N, M)
    # -1 where the image holds no ground truth of that kind, so that background_iou=0 stays exact
    best_same = np.max(iou, axis=1, initial=-1.0, where=same_class)  # (N,)
    best_other = np.max(iou, axis=1, initial=-1.0, where=~same_class)  # (N,)

    categories: list[str | None] = [None] * len(pred_boxes)
    gt_matched = np.zeros(len(boxes), dtype=bool)
    scores = scores.detach().cpu().double().numpy()
    kept = np.flatnonzero(scores >= score_threshold)
    # Matching per class with one loop: a detection only sees gts of its class, so interleaving
    # the classes in score order changes nothing.
    for i in kept[np.argsort(-scores[kept], kind="stable")]:
        candidates = np.where(same_class[i] & ~gt_matched, iou[i], -1.0)  # (M,)
        if candidates.max(initial=-1.0) >= iou_threshold:
            best = len(boxes) - 1 - int(np.argmax(candidates[::-1]))  # ties -> the later gt, as COCO
            categories[i], gt_matched[best] = "correct", True
        elif best_same[i] >= iou_threshold:  # every gt it would match is taken already
            categories[i] = "duplicate"
        elif best_same[i] >= background_iou:
            categories[i] = "localization"
        elif best_other[i] >= background_iou:
            categories[i] = "wrong class"
        else:
            categories[i] = "background"
    return categories, gt_matched


def _get(record: Any, key: str, name: str) -> Any:
    if not isinstance(record, dict):
        raise TypeError(f"{name}: expected a dict, got {type(record).__name__}")
    if key not in record:
        raise ValueError(f"{name}: expected a key {key!r}, got keys {sorted(record)}")
    return record[key]


def _boxes_and_labels(record: Any, name: str) -> tuple[Tensor, np.ndarray]:
    """``record["boxes"]`` (integer or float, on the CPU) and ``record["labels"]`` as numpy."""
    boxes = check_boxes(_get(record, "boxes", name), f"{name}['boxes']", allow_degenerate=False,
                        allow_integer=True)
    labels = check_tensor(_get(record, "labels", name), f"{name}['labels']")
    if labels.shape != (len(boxes),) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"{name}['labels']: expected an integer Tensor[{len(boxes)}], "
                         f"got {labels.dtype} {tuple(labels.shape)}")
    return boxes.detach().cpu(), labels.detach().cpu().numpy()
