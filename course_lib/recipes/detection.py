"""What the detector recipes share: the ShapeScenes splits in memory, flips, losses, evaluation."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor, nn

from course_lib.data import ShapeScenes
from course_lib.metrics import evaluate_detections

SPLIT = "test"  # every detector is measured on the 200 test scenes
QUICK_SIZE = 20  # what the tests re-measure: the first 20 test scenes


@functools.lru_cache(maxsize=6)
def scenes(split: str, limit: int | None = None) -> list[tuple[Tensor, dict]]:
    """``(image, {"boxes", "labels"})`` of the first ``limit`` scenes of a split (masks dropped), cached."""
    dataset = ShapeScenes.split(split)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    result = []
    for index in range(count):
        image, target = dataset[index]
        result.append((image, {"boxes": target["boxes"], "labels": target["labels"]}))
    return result


def hflip(image: Tensor, target: dict, proposals: Tensor | None = None):
    """Mirror an image left-right, with its boxes (and proposals)."""
    width = image.shape[-1]

    def mirror(boxes: Tensor) -> Tensor:
        return torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)

    flipped = {**target, "boxes": mirror(target["boxes"])}
    if proposals is None:
        return image.flip(-1), flipped
    return image.flip(-1), flipped, mirror(proposals)


def detection_losses(model: nn.Module, batch: list[tuple]) -> dict[str, Tensor]:
    """``compute_losses`` for a detector: images flipped with probability 1/2, ``model(images, targets)``.

    Items are ``(image, target)`` or ``(image, target, proposals)`` (then passed as ``proposals=``).
    """
    flips = torch.rand(len(batch)) < 0.5
    items = [hflip(*item) if flip else item for item, flip in zip(batch, flips.tolist(), strict=True)]
    images = [item[0] for item in items]
    targets = [item[1] for item in items]
    if len(items[0]) == 3:
        return model(images, targets, proposals=[item[2] for item in items])
    return model(images, targets)


@torch.no_grad()
def evaluate_detector(
    model: nn.Module,
    split: str = SPLIT,
    limit: int | None = None,
    batch_size: int = 8,
    proposals: Callable[[list[int]], list[Tensor]] | None = None,
) -> dict[str, float]:
    """COCO AP and AP50 (and AR100) of a detector on a split, with ``course_lib.metrics``.

    Args:
        proposals: for detectors with external proposals, ``indices -> proposals`` (e.g. a cache).
    """
    model.eval()
    data = scenes(split, limit)
    predictions = []
    for start in range(0, len(data), batch_size):
        indices = list(range(start, min(len(data), start + batch_size)))
        images = [data[index][0] for index in indices]
        if proposals is None:
            predictions.extend(model(images))
        else:
            predictions.extend(model(images, proposals=proposals(indices)))
    stats = evaluate_detections(predictions, [target for _, target in data])
    return {"AP": stats["AP"], "AP50": stats["AP50"], "AR100": stats["AR100"]}
