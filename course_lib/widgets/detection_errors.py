"""What the detections explorer shows, computed without drawing: each detection's error category.

``detections_view`` sorts the detections of one image that pass a score threshold into the error
categories of ``course_lib.metrics.error_categories`` (correct, duplicate, localization, wrong
class, background; after Hoiem et al. 2012 and TIDE), finds the objects no detection matched
(missed) and gives each box its category's colour (``CATEGORY_COLORS``); ``counts_text`` words the
counts. ``score_range`` is the range a threshold slider needs for one detector's scores, which are
probabilities for Fast and Faster R-CNN but SVM margins for R-CNN. The explorer that draws all this
is ``course_lib.widgets.detections``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from course_lib._checks import check_number, check_tensor
from course_lib.data import CLASSES
from course_lib.metrics import error_breakdown, error_categories, missed_objects
from course_lib.metrics.errors import ERROR_CATEGORIES

# Okabe-Ito colours (told apart with colour-blindness too); a missed object is drawn dashed.
CATEGORY_COLORS = {
    "correct": "#009E73",  # bluish green
    "duplicate": "#56B4E9",  # sky blue
    "localization": "#E69F00",  # orange
    "wrong class": "#CC79A7",  # reddish purple
    "background": "#D55E00",  # vermillion
    "missed": "#F0E442",  # yellow, dashed
}
SCORE_STEP = 0.05  # the threshold slider's step, and the grid its bounds are rounded to


def counts_text(counts: dict[str, int]) -> str:
    """``"4 correct · 1 localization · 2 missed"``: the correct count, then the non-zero others."""
    parts = [f"{counts['correct']} correct"]
    parts += [f"{counts[name]} {name}" for name in (*ERROR_CATEGORIES[1:], "missed") if counts[name]]
    return " · ".join(parts)


def detections_view(
    image: Tensor,
    target: dict[str, Tensor],
    prediction: dict[str, Tensor],
    score_threshold: float,
    iou_threshold: float = 0.5,
    background_iou: float = 0.1,
    class_names: Sequence[str] = CLASSES,
) -> dict[str, Any]:
    """What the detections figure shows: the detections above a threshold, each with its error category.

    Args:
        image (Tensor[3, H, W]): the image, floats in [0, 1].
        target: ``boxes`` (Tensor[M, 4] xyxy) and ``labels`` (int Tensor[M]).
        prediction: ``boxes`` (Tensor[N, 4] xyxy), ``scores`` (Tensor[N]) and ``labels``
            (int Tensor[N]), a torchvision-style detector's output for ``image``.
        score_threshold: detections scored at least this are shown and judged.
        iou_threshold, background_iou: as in ``course_lib.metrics.error_categories``.
        class_names: ``class_names[label]`` names a class in the tags.

    Returns:
        dict with ``image``; ``gt_boxes`` (Tensor[M, 4]), ``gt_labels``, ``gt_tags`` (class
        names); ``kept`` (int64 Tensor[K], the detections scored >= ``score_threshold``, best
        first, ties in input order), and for those ``boxes`` (Tensor[K, 4]), ``scores``,
        ``labels``, ``categories`` (list of K str), ``tags`` (``"circle 0.87"``) and ``colors``;
        ``missed`` (bool Tensor[M]); ``counts`` (as ``error_breakdown`` on this one image) and
        ``counts_text``; ``num_detections`` (N), ``score_threshold``, ``iou_threshold``,
        ``background_iou``.
    """
    check_tensor(image, "image")
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image: expected a Tensor[3, H, W], got shape {tuple(image.shape)}")
    check_number(score_threshold, "score_threshold")
    # error_categories checks the dicts, the boxes, scores, labels and both IoU thresholds.
    categories = error_categories(prediction, target, iou_threshold, background_iou, score_threshold)
    counts = error_breakdown([prediction], [target], iou_threshold, background_iou, score_threshold)
    scores = prediction["scores"].detach().cpu()
    judged = torch.tensor([category is not None for category in categories], dtype=torch.bool)
    kept = judged.nonzero().flatten()  # (K,) in input order
    kept = kept[torch.sort(scores[kept].double(), descending=True, stable=True).indices]  # best first
    labels = prediction["labels"].detach().cpu()[kept]  # (K,)
    kept_scores = scores[kept]  # (K,)
    kept_categories = [categories[i] for i in kept.tolist()]
    gt_labels = target["labels"].detach().cpu()
    boxes = prediction["boxes"].detach().cpu()[kept]  # (K, 4)
    tags = [
        f"{_class_name(label, class_names)} {score:.2f}"
        for label, score in zip(labels.tolist(), kept_scores.tolist(), strict=True)
    ]
    return {
        "image": image,
        "gt_boxes": target["boxes"].detach().cpu(),
        "gt_labels": gt_labels,
        "gt_tags": [_class_name(label, class_names) for label in gt_labels.tolist()],
        "kept": kept,
        "boxes": boxes,
        "scores": kept_scores,
        "labels": labels,
        "categories": kept_categories,
        "tags": tags,
        "colors": [CATEGORY_COLORS[category] for category in kept_categories],
        "missed": missed_objects(prediction, target, iou_threshold, background_iou, score_threshold),
        "counts": counts,
        "counts_text": counts_text(counts),
        "num_detections": len(categories),
        "score_threshold": float(score_threshold),
        "iou_threshold": float(iou_threshold),
        "background_iou": float(background_iou),
    }


def score_range(predictions: Sequence[dict[str, Tensor]], step: float = SCORE_STEP) -> tuple[float, float]:
    """The range a threshold slider needs for one detector's scores.

    Probabilities (every score in [0, 1], or no detections at all) give ``(0.0, 1.0)``; other
    scores, such as R-CNN's SVM margins, give their minimum and maximum widened to multiples of
    ``step``.

    Args:
        predictions: one detector's outputs, each with ``scores`` (Tensor[N]).
        step: the grid the bounds are rounded to, > 0.

    Returns:
        ``(low, high)`` with ``low < high``.
    """
    check_number(step, "step", low=1e-9)
    scores = torch.cat(
        [prediction["scores"].detach().cpu().double().flatten() for prediction in predictions]
        + [torch.zeros(0, dtype=torch.float64)]
    )
    if scores.numel() == 0 or (scores.min() >= 0 and scores.max() <= 1):
        return 0.0, 1.0
    # Rounded first: a float32 1.2 is 1.2000000477, which should not widen the range to 1.25.
    low = math.floor(round(float(scores.min()) / step, 4)) * step
    high = math.ceil(round(float(scores.max()) / step, 4)) * step
    if high <= low:
        high = low + step
    return round(low, 6), round(high, 6)


def _class_name(label: int, class_names: Sequence[str]) -> str:
    return class_names[label] if 0 <= label < len(class_names) else str(label)
