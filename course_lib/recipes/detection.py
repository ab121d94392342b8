"""What the detector recipes share: the ShapeScenes splits in memory, flips, losses, evaluation."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor, nn

from course_lib.data import ShapeScenes
from course_lib.metrics import evaluate_detections
from course_lib.train import TrainConfig, fit

SPLIT = "test"  # every detector is measured on the 200 test scenes
QUICK_SIZE = 20  # what the tests re-measure: the first 20 test scenes


def scenes(split: str, limit: int | None = None) -> list[tuple[Tensor, dict]]:
    """``(image, {"boxes", "labels"})`` of the first ``limit`` scenes of a split (masks dropped).

    Drawn once per ``(split, limit)`` and cached; each call returns fresh copies, so a caller that
    changes an image in place does not change what the next caller gets.
    """
    return [
        (image.clone(), {key: value.clone() for key, value in target.items()})
        for image, target in _drawn_scenes(split, limit)
    ]


@functools.lru_cache(maxsize=6)
def _drawn_scenes(split: str, limit: int | None) -> tuple[tuple[Tensor, dict], ...]:
    dataset = ShapeScenes.split(split)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    result = []
    for index in range(count):
        image, target = dataset[index]
        result.append((image, {"boxes": target["boxes"], "labels": target["labels"]}))
    return tuple(result)


def _mirror(boxes: Tensor, width: int) -> Tensor:
    return torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)


def _quarter_turn(boxes: Tensor, width: int) -> Tensor:
    # torch.rot90(image, 1, dims=(1, 2)) sends pixel (row r, column c) to (row W - 1 - c, column r).
    return torch.stack([boxes[:, 1], width - boxes[:, 2], boxes[:, 3], width - boxes[:, 0]], dim=1)


def hflip(image: Tensor, target: dict, proposals: Tensor | None = None):
    """Mirror an image left-right, with its boxes (and proposals)."""
    return dihedral(image, target, proposals, turns=0, flip=True)


def dihedral(
    image: Tensor, target: dict, proposals: Tensor | None = None, turns: int = 0, flip: bool = False
):
    """An optional left-right mirror, then ``turns`` quarter turns: the 8 symmetries of a square.

    A shape's class does not change under any of them, so they are free extra training data.
    Returns ``(image, target)`` or, with proposals, ``(image, target, proposals)``.
    """
    boxes = target["boxes"]
    if flip:
        image = image.flip(-1)
        boxes = _mirror(boxes, image.shape[-1])
        proposals = None if proposals is None else _mirror(proposals, image.shape[-1])
    for _ in range(turns % 4):
        width = image.shape[-1]
        image = torch.rot90(image, 1, dims=(1, 2))
        boxes = _quarter_turn(boxes, width)
        proposals = None if proposals is None else _quarter_turn(proposals, width)
    moved = {**target, "boxes": boxes}
    return (image, moved) if proposals is None else (image, moved, proposals)


def detection_losses(model: nn.Module, batch: list[tuple]) -> dict[str, Tensor]:
    """``compute_losses`` for a detector: each item in one of its 8 symmetries at random, then
    ``model(images, targets)``.

    Items are ``(image, target)`` or ``(image, target, proposals)`` (then passed as ``proposals=``).
    """
    turns = torch.randint(0, 4, (len(batch),)).tolist()
    flips = (torch.rand(len(batch)) < 0.5).tolist()
    items = [
        dihedral(item[0], item[1], item[2] if len(item) == 3 else None, turn, flip)
        for item, turn, flip in zip(batch, turns, flips, strict=True)
    ]
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
    keys: tuple[str, ...] = ("AP", "AP50", "AR100"),
) -> dict[str, float]:
    """COCO AP and AP50 (and AR100) of a detector on a split, with ``course_lib.metrics``.

    Args:
        proposals: for detectors with external proposals, ``indices -> proposals`` (e.g. a cache).
        keys: which of ``coco_evaluate``'s statistics to return.
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
    return {key: stats[key] for key in keys}


ONE_STAGE_KEYS = ("AP", "AP50", "APs", "APm", "AR100")  # the one-stage chapters compare by size


def train_from_backbone(
    build: Callable[[], nn.Module],
    config: TrainConfig,
    checkpoint=None,
    progress: bool = True,
    limit: int | None = None,
):
    """Seed, build, load ``shapes_backbone`` into ``model.backbone``, train on the training scenes.

    Returns:
        ``(model in eval mode, loss history)``.
    """
    from course_lib import zoo

    torch.manual_seed(config.seed)
    model = build()
    model.backbone.load_state_dict(zoo.load("shapes_backbone").state_dict())
    history = fit(
        model,
        scenes("train", limit),
        detection_losses,
        config,
        checkpoint=checkpoint,
        checkpoint_every=50,
        progress=progress,
    )
    return model, history


def from_backbone(build: Callable[[], nn.Module], config: TrainConfig) -> tuple[Callable, Callable]:
    """The ``train`` and ``evaluate`` of a detector trained from ``shapes_backbone`` by ``fit``.

    What the recipes of YOLO, SSD, RetinaNet, CenterNet and DETR share; each recipe module writes
    only its ``CONFIG``, its inference settings and ``build``, then ``train, evaluate =
    from_backbone(build, CONFIG)``.
    """

    def train(checkpoint=None, config: TrainConfig = config, progress: bool = True, limit: int | None = None):
        """Train from ``shapes_backbone``; returns ``(model in eval mode, loss history)``."""
        return train_from_backbone(build, config, checkpoint, progress, limit)

    def evaluate(model: nn.Module, split: str = SPLIT, limit: int | None = None) -> dict[str, float]:
        """AP, AP50, APs, APm and AR100 on the split."""
        return evaluate_detector(model, split, limit, keys=ONE_STAGE_KEYS)

    return train, evaluate
