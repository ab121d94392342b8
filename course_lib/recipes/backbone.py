"""Recipe of ``shapes_backbone``: the ShapesBackbone trained to classify ShapeCrops.

The course's ImageNet pre-training in miniature: 5,000 training crops (64 px, one labelled shape
with distractors), flips and quarter turns as augmentation (a shape's class does not change under
either), SGD with momentum and a cosine schedule. Accuracy is measured on the 500 test crops,
which no step of training sees.
"""

from __future__ import annotations

import functools
import os

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib.data import CLASSES, ShapeCrops
from course_lib.models.backbone import ShapesBackbone
from course_lib.train import TrainConfig, fit

CONFIG = TrainConfig(
    epochs=24, batch_size=64, lr=0.05, optimizer="sgd", weight_decay=5e-4, warmup_steps=50, seed=0
)


def crops(split: str, limit: int | None = None) -> tuple[Tensor, Tensor]:
    """All crops of a ShapeCrops split as ``(images Tensor[N, 3, 64, 64] float, labels Tensor[N])``.

    Labels are ``1..K`` as in ``CLASSES``. Drawing the 5,000 training crops takes ~9 s, so they are
    drawn once per ``(split, limit)``; each call returns fresh copies, which a caller may change.
    """
    images, labels = _drawn_crops(split, limit)
    return images.clone(), labels.clone()


@functools.lru_cache(maxsize=4)
def _drawn_crops(split: str, limit: int | None) -> tuple[Tensor, Tensor]:
    dataset = ShapeCrops.split(split)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    items = [dataset[index] for index in range(count)]
    images = torch.stack([image for image, _ in items])  # (N, 3, 64, 64)
    labels = torch.stack([target["label"] for _, target in items])  # (N,)
    return images, labels


def augment(images: Tensor) -> Tensor:
    """A random horizontal flip and a random quarter turn per image (uses torch's global RNG)."""
    flip = torch.rand(len(images)) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    turns = torch.randint(0, 4, (len(images),))
    return torch.stack(
        [torch.rot90(image, int(k), dims=(1, 2)) for image, k in zip(images, turns, strict=True)]
    )


def output_indices(model: nn.Module, labels: Tensor) -> Tensor:
    """The output of ``model`` that scores each ShapeCrops label (``CLASSES`` index), by class name.

    ``shapes_classifier`` has one output per name of ``CLASSES``, so the output index is the label;
    a model whose ``classes`` leave out ``"background"`` scores label ``k`` at output ``k - 1``.

    Raises:
        ValueError: if a label's class is not among ``model.classes``.
    """
    position = {name: index for index, name in enumerate(model.classes)}
    missing = sorted({CLASSES[label] for label in labels.tolist()} - set(position))
    if missing:
        raise ValueError(f"labels: expected classes among {model.classes}, got {missing}")
    lookup = torch.tensor([position.get(name, -1) for name in CLASSES], device=labels.device)
    return lookup[labels]


def classification_losses(model: nn.Module, batch: list[tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
    """``compute_losses`` for a classifier: cross-entropy of the augmented batch."""
    images = augment(torch.stack([image for image, _ in batch]))  # (B, 3, H, W)
    labels = output_indices(model, torch.stack([label for _, label in batch]))  # (B,)
    return {"classification": F.cross_entropy(model(images), labels)}


def train(
    checkpoint: str | os.PathLike | None = None, config: TrainConfig = CONFIG, progress: bool = True
) -> tuple[ShapesBackbone, list[dict]]:
    """Train a ShapesBackbone from its seed; returns ``(model in eval mode, loss history)``."""
    return train_on_crops(ShapesBackbone, checkpoint, config, progress)


def train_on_crops(
    build_model, checkpoint: str | os.PathLike | None, config: TrainConfig, progress: bool = True
) -> tuple[nn.Module, list[dict]]:
    """Seed, build ``build_model()``, and fit it on the 5,000 training crops (every crop recipe)."""
    torch.manual_seed(config.seed)
    model = build_model()
    images, labels = crops("train")
    dataset = list(zip(images, labels, strict=True))
    history = fit(model, dataset, classification_losses, config, checkpoint=checkpoint, progress=progress)
    return model, history


@torch.no_grad()
def evaluate(model: nn.Module, split: str = "test", limit: int | None = None) -> dict[str, float]:
    """Top-1 accuracy of a ShapeCrops classifier on a split (or its first ``limit`` crops)."""
    model.eval()
    images, labels = crops(split, limit)
    predictions = torch.cat([model(chunk).argmax(dim=1) for chunk in images.split(250)])
    return {"accuracy": float((predictions == output_indices(model, labels)).float().mean())}


SPLIT = "test"
QUICK_SIZE = 100


def build() -> ShapesBackbone:
    """The architecture of ``shapes_backbone``, with fresh weights."""
    return ShapesBackbone()
