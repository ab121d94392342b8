"""Recipe of ``shapes_classifier``: the visualization chapters' ShapeCrops classifier.

The same data, augmentation (flips and quarter turns) and loss as ``shapes_backbone``, for the
conv / ReLU / max-pool / GAP network of ``models/classifier.py``, trained longer. Accuracy on the
500 test crops.
"""

from __future__ import annotations

import os

from course_lib.models.classifier import GAPClassifier, shapes_classifier
from course_lib.recipes.backbone import evaluate as evaluate_crops
from course_lib.recipes.backbone import train_on_crops
from course_lib.train import TrainConfig

CONFIG = TrainConfig(
    epochs=20, batch_size=64, lr=0.05, optimizer="sgd", weight_decay=5e-4, warmup_steps=50, seed=0
)
SPLIT = "test"
QUICK_SIZE = 100
__all__ = ["CONFIG", "QUICK_SIZE", "SPLIT", "build", "evaluate", "train"]


def build() -> GAPClassifier:
    """The architecture of ``shapes_classifier``, with fresh weights."""
    return shapes_classifier()


def train(checkpoint: str | os.PathLike | None = None, config: TrainConfig = CONFIG, progress: bool = True):
    """Train from the seed; returns ``(model in eval mode, loss history)``."""
    return train_on_crops(build, checkpoint, config, progress)


def evaluate(model: GAPClassifier, split: str = SPLIT, limit: int | None = None) -> dict[str, float]:
    """Top-1 accuracy on a ShapeCrops split."""
    return evaluate_crops(model, split, limit)
