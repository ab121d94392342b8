"""Recipe of ``shapes_segmenter``: the per-pixel concept labeller of GAN dissection, on 64 x 64 scenes.

The 2,000 training ShapeScenes are drawn at 128 px and brought to 64 px, the GAN's size: images by
2 x 2 averaging (what a camera at half the resolution would see), label maps by nearest neighbour
(a pixel keeps one class). A label map holds, per pixel, the class of the visible shape there, 0
where none is (the scenes' masks are the visible parts, so they never overlap).

:class:`~course_lib.models.segmenter.ShapesSegmenter` starts from ``shapes_backbone``; every layer
trains (batch norm included: 32 scenes a batch are enough for batch statistics), with AdamW, a
cosine schedule, the per-pixel cross entropy, and the eight flips and quarter turns of the square as
augmentation. Measured on the 200 test scenes: pixel accuracy and the mean IoU over the six classes
(background included) from the confusion matrix of all pixels, as in the PASCAL VOC benchmark.
"""

from __future__ import annotations

import functools
import os

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib.data import CLASSES, ShapeScenes
from course_lib.models.segmenter import ShapesSegmenter
from course_lib.train import TrainConfig, fit

# One step (32 scenes, one thread) took 0.26 s on an idle core, up to ~0.45 s on a busy machine:
# 63 steps an epoch, so 40 epochs (2,520 steps) take 11 to 19 minutes.
CONFIG = TrainConfig(
    epochs=40, batch_size=32, lr=1e-3, optimizer="adamw", weight_decay=1e-4, warmup_steps=100, seed=0
)
SPLIT = "test"
QUICK_SIZE = 20
IMAGE_SIZE = 64
__all__ = [
    "CONFIG",
    "IMAGE_SIZE",
    "QUICK_SIZE",
    "SPLIT",
    "augment",
    "build",
    "evaluate",
    "label_map",
    "segmentation_losses",
    "segmentation_scenes",
    "train",
]


def build() -> ShapesSegmenter:
    """The architecture of ``shapes_segmenter``, with fresh weights."""
    return ShapesSegmenter()


def label_map(masks: Tensor, labels: Tensor, size: int | None = None) -> Tensor:
    """One class per pixel from a scene's visible masks: Tensor[H, W] int64, 0 where no shape is.

    Args:
        masks (Tensor[N, H, W]): 0/1 visible masks, disjoint (as ShapeScenes draws them).
        labels (Tensor[N]): their classes, ``1..K``.
        size: resize the map to ``size x size`` by nearest neighbour (pixel ``2i`` for a halving).
    """
    N, H, W = masks.shape  # objects, height, width
    classes = (masks.long() * labels.long()[:, None, None]).amax(dim=0) if N else masks.new_zeros(H, W)
    classes = classes.long()  # (H, W)
    if size is not None:
        classes = F.interpolate(classes[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()
    return classes  # (size, size)


def segmentation_scenes(split: str, limit: int | None = None) -> tuple[Tensor, Tensor]:
    """The first ``limit`` scenes of a split at 64 px: ``(images Tensor[N, 3, 64, 64], Tensor[N, 64, 64])``.

    Drawn once per ``(split, limit)`` (~10 s for the 2,000 training scenes); each call returns fresh
    copies, which a caller may change.
    """
    images, labels = _drawn_scenes(split, limit)
    return images.clone(), labels.clone()


@functools.lru_cache(maxsize=4)
def _drawn_scenes(split: str, limit: int | None) -> tuple[Tensor, Tensor]:
    dataset = ShapeScenes.split(split)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    factor = dataset.image_size // IMAGE_SIZE
    images, labels = [], []
    for index in range(count):
        image, target = dataset[index]
        images.append(F.avg_pool2d(image[None], factor)[0])  # (3, 64, 64)
        labels.append(label_map(target["masks"], target["labels"], IMAGE_SIZE))  # (64, 64)
    if not images:
        size = IMAGE_SIZE
        return torch.zeros(0, 3, size, size), torch.zeros(0, size, size, dtype=torch.long)
    return torch.stack(images), torch.stack(labels)


def augment(images: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """The same random flip and quarter turn for each image and its label map (torch's global RNG)."""
    flips = torch.rand(len(images)) < 0.5
    turns = torch.randint(0, 4, (len(images),))
    out_images, out_labels = [], []
    for index, (flip, k) in enumerate(zip(flips.tolist(), turns.tolist(), strict=True)):
        pair = [images[index]] if labels is None else [images[index], labels[index]]
        pair = [item.flip(-1) if flip else item for item in pair]
        pair = [torch.rot90(item, k, dims=(-2, -1)) for item in pair]
        out_images.append(pair[0])
        out_labels.append(pair[-1])
    if not out_images:
        return images, labels
    return torch.stack(out_images), None if labels is None else torch.stack(out_labels)


def segmentation_losses(model: nn.Module, batch: list[tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
    """``compute_losses`` for :func:`~course_lib.train.fit`: per-pixel cross entropy of an augmented batch."""
    images = torch.stack([image for image, _ in batch])  # (B, 3, 64, 64)
    images, labels = augment(images, torch.stack([labels for _, labels in batch]))  # and (B, 64, 64)
    return {"segmentation": F.cross_entropy(model(images), labels)}


def train(
    checkpoint: str | os.PathLike | None = None, config: TrainConfig = CONFIG, progress: bool = True
) -> tuple[ShapesSegmenter, list[dict]]:
    """Train from ``shapes_backbone``; returns ``(model in eval mode, loss history)``."""
    from course_lib import zoo

    torch.manual_seed(config.seed)
    model = build()
    model.backbone.load_state_dict(zoo.load("shapes_backbone").state_dict())
    images, labels = segmentation_scenes("train")
    dataset = list(zip(images, labels, strict=True))
    history = fit(model, dataset, segmentation_losses, config, checkpoint=checkpoint, progress=progress)
    return model, history


def confusion_matrix(predictions: Tensor, labels: Tensor, num_classes: int = len(CLASSES)) -> Tensor:
    """Counts of (true class, predicted class) over all pixels: Tensor[K + 1, K + 1] int64, rows true."""
    pairs = labels.flatten() * num_classes + predictions.flatten()  # (P,)
    return torch.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


@torch.no_grad()
def evaluate(model: nn.Module, split: str = SPLIT, limit: int | None = None) -> dict[str, float]:
    """Pixel accuracy and mean IoU over the classes (those present or predicted) on a split's scenes."""
    model.eval()
    images, labels = segmentation_scenes(split, limit)
    counts = torch.zeros(len(CLASSES), len(CLASSES), dtype=torch.long)
    for chunk, truth in zip(images.split(50), labels.split(50), strict=True):
        counts += confusion_matrix(model(chunk).argmax(dim=1), truth)
    true_positives = counts.diag().double()  # (K + 1,)
    union = counts.sum(dim=0) + counts.sum(dim=1) - counts.diag()  # (K + 1,)
    present = union > 0
    iou = true_positives[present] / union[present]
    return {
        "pixel_accuracy": float(true_positives.sum() / counts.sum().clamp(min=1)),
        "mean_iou": float(iou.mean()) if len(iou) else 0.0,
    }
