"""Recipe of ``digits_cnn``: a small CNN on scikit-learn's 8 x 8 digits, the lecture's t-SNE data.

The 1,797 digits are split once, stratified and seeded, into 1,437 training and 360 test images
(``digits_split``); pixel values 0..16 are scaled to [0, 1]. Accuracy on the 360 test digits.
"""

from __future__ import annotations

import functools
import os

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib._checks import check_choice
from course_lib.models.classifier import GAPClassifier, digits_cnn
from course_lib.train import TrainConfig, fit

CONFIG = TrainConfig(
    epochs=30, batch_size=32, lr=0.05, optimizer="sgd", weight_decay=5e-4, warmup_steps=20, seed=0
)
SPLIT = "test"
QUICK_SIZE = 100
TEST_FRACTION = 0.2
__all__ = ["CONFIG", "QUICK_SIZE", "SPLIT", "build", "digits_split", "evaluate", "train"]


def digits_split(split: str) -> tuple[Tensor, Tensor]:
    """``(images Tensor[N, 1, 8, 8] in [0, 1], labels Tensor[N])`` of the ``"train"`` or ``"test"`` split.

    Split once and cached; each call returns fresh copies, which a caller may change.
    """
    check_choice(split, ("train", "test"), "split")
    images, labels = _split_digits(split)
    return images.clone(), labels.clone()


@functools.lru_cache(maxsize=2)
def _split_digits(split: str) -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    indices = torch.arange(len(digits.target)).numpy()
    train_idx, test_idx = train_test_split(
        indices, test_size=TEST_FRACTION, stratify=digits.target, random_state=0
    )
    chosen = train_idx if split == "train" else test_idx
    images = torch.from_numpy(digits.images[chosen]).float().div(16.0)[:, None]  # (N, 1, 8, 8)
    return images, torch.from_numpy(digits.target[chosen]).long()


def build() -> GAPClassifier:
    """The architecture of ``digits_cnn``, with fresh weights."""
    return digits_cnn()


def digit_losses(model: nn.Module, batch: list[tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
    """Cross-entropy of a batch; a random shift of up to one pixel as augmentation."""
    images = torch.stack([image for image, _ in batch])  # (B, 1, 8, 8)
    shifts = torch.randint(-1, 2, (2,)).tolist()
    images = torch.roll(F.pad(images, (1, 1, 1, 1)), shifts=shifts, dims=(2, 3))[:, :, 1:-1, 1:-1]
    labels = torch.stack([label for _, label in batch])
    return {"classification": F.cross_entropy(model(images), labels)}


def train(checkpoint: str | os.PathLike | None = None, config: TrainConfig = CONFIG, progress: bool = True):
    """Train from the seed; returns ``(model in eval mode, loss history)``."""
    torch.manual_seed(config.seed)
    model = build()
    images, labels = digits_split("train")
    history = fit(
        model,
        list(zip(images, labels, strict=True)),
        digit_losses,
        config,
        checkpoint=checkpoint,
        progress=progress,
    )
    return model, history


@torch.no_grad()
def evaluate(model: GAPClassifier, split: str = SPLIT, limit: int | None = None) -> dict[str, float]:
    """Top-1 accuracy on the digits split (or its first ``limit`` images)."""
    model.eval()
    images, labels = digits_split(split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return {"accuracy": float((model(images).argmax(dim=1) == labels).float().mean())}
