"""ShapeScenes and ShapeCrops: the course's generated detection and classification data.

Every image is drawn from a numpy Generator seeded by ``(seed, index, stream)``, with pure-numpy
arithmetic (see ``_draw.py``), so image ``i`` is the same bytes on every machine and in every
run; images are quantized to multiples of 1/255, so a PNG round trip is exact. Objects are five
shape classes of 6 px to half the image across, in random colours that contrast with the
background under them, overlapping (later shapes on top), on plain, gradient, noisy or textured
backgrounds (crops of scikit-image's photos).

Fixed splits (``SPLITS``), disjoint because their seeds differ; any other seed gives fresh images
from the same distribution:

==========  =====================  ======================
split       ShapeScenes (128 px)   ShapeCrops (64 px)
==========  =====================  ======================
train       seed 0, 2000 images    seed 10, 5000 images
val         seed 1, 200 images     seed 11, 500 images
test        seed 2, 200 images     seed 12, 500 images
==========  =====================  ======================
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Self

import numpy as np
import torch
from torch import Tensor

from course_lib._checks import check_choice, check_number
from course_lib.data._canvas import Canvas, Scene, masks_to_boxes
from course_lib.data._draw import SHAPE_NAMES, draw_background, random_unit_vector

CLASSES = ("background", *SHAPE_NAMES)  # ("background", "circle", "square", "triangle", "star", "ring")
NUM_CLASSES = len(CLASSES) - 1  # K, background excluded
MAX_OBJECTS = 6
MIN_IMAGE_SIZE = 32


def random_shape(rng: np.random.Generator, label: int, radius: float, cx: float, cy: float) -> dict:
    """Parameters of one shape of class ``label`` (see ``_draw.signed_distance``)."""
    kind = CLASSES[label]
    cos, sin = (1.0, 0.0) if kind in ("circle", "ring") else random_unit_vector(rng)
    ratio = 0.0  # inner / outer radius
    if kind == "ring":
        ratio = rng.uniform(0.45, 0.62)
    elif kind == "star":
        ratio = rng.uniform(0.42, 0.55)
    return {"kind": kind, "cx": cx, "cy": cy, "radius": radius, "cos": cos, "sin": sin, "ratio": ratio}


class _Generated(torch.utils.data.Dataset):
    """What both generated datasets share: arguments, length, indexing and splits."""

    SPLITS: dict[str, tuple[int, int]] = {}  # split -> (seed, num_images)
    _STREAM = 0  # keeps the two datasets' random streams apart for equal seeds

    def __init__(self, num_images: int, image_size: int, seed: int):
        self.num_images = int(check_number(num_images, "num_images", low=0, integer=True))
        self.image_size = int(check_number(image_size, "image_size", low=MIN_IMAGE_SIZE, integer=True))
        self.seed = int(check_number(seed, "seed", low=0, integer=True))

    @classmethod
    def split(cls, name: str, image_size: int | None = None) -> Self:
        """The fixed ``"train"``, ``"val"`` or ``"test"`` split (seeds and sizes in ``SPLITS``)."""
        check_choice(name, cls.SPLITS, "split")
        seed, num_images = cls.SPLITS[name]
        if image_size is None:
            return cls(num_images, seed=seed)
        return cls(num_images, image_size=image_size, seed=seed)

    def __len__(self) -> int:
        return self.num_images

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(num_images={self.num_images}, image_size={self.image_size}, seed={self.seed})"

    def _rng(self, index) -> tuple[int, np.random.Generator]:
        index = operator.index(index)
        if not -self.num_images <= index < self.num_images:
            raise IndexError(
                f"index: expected an int in [{-self.num_images}, {self.num_images}), got {index} "
                f"for {self!r}"
            )
        index %= self.num_images
        return index, np.random.default_rng([self.seed, index, self._STREAM])

    def scene(self, index: int) -> Scene:
        """Image ``index`` as numpy arrays, with the background kind (see ``Scene``)."""
        raise NotImplementedError


def _image_tensor(image: np.ndarray) -> Tensor:
    # In numpy: small torch ops may start threads, which costs more than they save here.
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)) / np.float32(255))  # (3, H, W)


class ShapeScenes(_Generated):
    """Generated detection scenes: 1 to 6 shapes per image, with boxes and masks.

    ``dataset[i]`` returns ``(image, target)``: ``image`` is a ``Tensor[3, H, W]`` float32 in
    [0, 1] (multiples of 1/255) and ``target`` holds ``boxes`` (``Tensor[N, 4]`` float32, xyxy
    pixels, tight around the visible mask, ``x2`` = last column + 1), ``labels`` (``Tensor[N]``
    int64 in ``1..K``, names in ``CLASSES``), ``masks`` (``Tensor[N, H, W]`` uint8 in {0, 1}, the
    visible pixels), ``area`` (``Tensor[N]`` float32, mask pixel count) and ``image_id`` (int, the
    index). The circumscribed diameter of a shape runs from 6 px to half the image, median ~20% of
    it (``radius = 3 + (size / 4 - 3) * u ** 1.5``, ``u`` uniform), so most objects are "small"
    by COCO's measure (box area < 32**2) and none is "large" (> 96**2) at 128 px. A shape is
    painted only if every object under it keeps at least 40% of its pixels visible.

    Args:
        num_images: length of the dataset.
        image_size: side of the square images, at least 32.
        seed: images are drawn from ``np.random.default_rng([seed, index, 0])``.
    """

    SPLITS = {"train": (0, 2000), "val": (1, 200), "test": (2, 200)}
    _STREAM = 0

    def __init__(self, num_images: int, image_size: int = 128, seed: int = 0):
        super().__init__(num_images, image_size, seed)

    def scene(self, index: int) -> Scene:
        index, rng = self._rng(index)
        size = self.image_size
        canvas = Canvas(*draw_background(rng, size))
        max_radius = size / 4
        for number in range(int(rng.integers(1, MAX_OBJECTS + 1))):
            label = int(rng.integers(1, NUM_CLASSES + 1))
            for _ in range(100 if number == 0 else 10):  # the first shape always finds room
                radius = 3.0 + (max_radius - 3.0) * rng.random() ** 1.5  # 3 px to size / 4, median ~size / 10
                cx, cy = rng.uniform(0.5 * radius, size - 0.5 * radius, size=2)  # cut by 1/5 at most
                if canvas.add(rng, random_shape(rng, label, radius, float(cx), float(cy)), label):
                    break
        return canvas.finish(rng)

    def __getitem__(self, index: int) -> tuple[Tensor, dict]:
        scene = self.scene(index)
        target = {
            "boxes": torch.from_numpy(scene.boxes),  # (N, 4)
            "labels": torch.from_numpy(scene.labels),  # (N,)
            "masks": torch.from_numpy(scene.masks),  # (N, H, W)
            "area": torch.from_numpy(scene.masks.sum(axis=(1, 2), dtype=np.float32)),  # (N,)
            "image_id": operator.index(index) % self.num_images,
        }
        return _image_tensor(scene.image), target


class ShapeCrops(_Generated):
    """One labelled shape per image, with distractors: the course's stand-in for ImageNet.

    ``dataset[i]`` returns ``(image, {"label": Tensor[] int64, "mask": Tensor[H, W] uint8})``.
    The labelled shape is near the centre and spans 50% to 85% of the crop; up to two smaller
    shapes of other classes lie behind it (some cut by the border), and half the images have a
    small one in front, which hides at most 25% of it. ``mask`` is its visible part. Classes are
    balanced: ``label = i % K + 1``, so any ``K`` consecutive images hold each class once (shuffle
    in the DataLoader).

    Args:
        num_images: length of the dataset.
        image_size: side of the square images, at least 32.
        seed: images are drawn from ``np.random.default_rng([seed, index, 1])``.
    """

    SPLITS = {"train": (10, 5000), "val": (11, 500), "test": (12, 500)}
    _STREAM = 1

    def __init__(self, num_images: int, image_size: int = 64, seed: int = 0):
        super().__init__(num_images, image_size, seed)

    def scene(self, index: int) -> Scene:
        index, rng = self._rng(index)
        size = self.image_size
        label = index % NUM_CLASSES + 1
        others = [k for k in range(1, NUM_CLASSES + 1) if k != label]
        canvas = Canvas(*draw_background(rng, size))
        for _ in range(int(rng.integers(0, 3))):  # behind, possibly cut by the border
            other = others[rng.integers(len(others))]
            radius = size * rng.uniform(0.1, 0.2)
            cx, cy = rng.uniform(0, size, size=2)
            canvas.add(rng, random_shape(rng, other, radius, float(cx), float(cy)), other, None)
        for _ in range(100):  # the labelled shape, near the middle: the border cuts little of it
            radius = size * rng.uniform(0.25, 0.425)
            cx, cy = size * (0.5 + rng.uniform(-0.12, 0.12, size=2))
            if canvas.add(rng, random_shape(rng, label, radius, float(cx), float(cy)), label, 0.75):
                break
        else:
            raise RuntimeError(f"could not place the labelled shape of image {index}")  # never seen
        if rng.random() < 0.5:  # in front: allowed only where it hides at most 25%
            other = others[rng.integers(len(others))]
            for _ in range(5):
                radius = size * rng.uniform(0.06, 0.14)
                cx, cy = rng.uniform(0, size, size=2)
                if canvas.add(rng, random_shape(rng, other, radius, float(cx), float(cy)), other, None):
                    break
        return canvas.finish(rng)

    def __getitem__(self, index: int) -> tuple[Tensor, dict]:
        scene = self.scene(index)
        target = {"label": torch.tensor(int(scene.labels[0])), "mask": torch.from_numpy(scene.masks[0])}
        return _image_tensor(scene.image), target


def describe(dataset, n: int = 200, categories: Sequence[str] | Mapping[int, str] | None = None) -> dict:
    """Summarize the first ``n`` images of a detection or classification dataset.

    Reads ``ShapeScenes``, ``ShapeCrops`` (one object per image, its box taken from its mask),
    ``CocoDetection`` and any dataset of ``(image, target)`` pairs whose target has ``boxes`` and
    ``labels`` (or ``label`` and ``mask``).

    Args:
        dataset: the dataset to read.
        n: how many images to read from the start (fewer if the dataset is shorter).
        categories: label names, a sequence indexed by label or a mapping; defaults to the
            dataset's ``categories`` attribute, else ``CLASSES``.

    Returns:
        ``{"num_images": int, "objects_per_image": {"mean", "min", "max"}, "class_counts":
        {name: int}, "box_size_percentiles": {5, 25, 50, 75, 95: float}`` (of ``sqrt(w * h)`` in
        pixels; empty when there is no box), ``"size_ranges": {"small", "medium", "large": int}``
        (COCO's box-area thresholds 32**2 and 96**2) and ``"background_counts": {kind: int}``
        (generated datasets only; empty otherwise).
    """
    n = min(int(check_number(n, "n", low=0, integer=True)), len(dataset))
    if categories is None:
        categories = getattr(dataset, "categories", CLASSES)
    if isinstance(categories, Mapping):
        names = dict(categories)
    else:
        names = {label: name for label, name in enumerate(categories) if label > 0}
    class_counts = dict.fromkeys(names.values(), 0)
    background_counts: dict[str, int] = {}
    per_image, all_boxes = [], []
    for index in range(n):
        if isinstance(dataset, _Generated):
            scene = dataset.scene(index)
            boxes, labels = scene.boxes, scene.labels
            background_counts[scene.background] = background_counts.get(scene.background, 0) + 1
        else:
            boxes, labels = _boxes_and_labels(dataset[index][1])
        per_image.append(len(labels))
        all_boxes.append(boxes)
        for label in labels.tolist():
            name = names.get(label, str(label))
            class_counts[name] = class_counts.get(name, 0) + 1
    boxes = np.concatenate(all_boxes) if all_boxes else np.zeros((0, 4), np.float32)  # (M, 4)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # (M,)
    percentiles = (5, 25, 50, 75, 95)
    sizes = np.percentile(np.sqrt(areas), percentiles) if len(areas) else []
    return {
        "num_images": n,
        "objects_per_image": {
            "mean": float(np.mean(per_image)) if n else 0.0,
            "min": int(min(per_image, default=0)),
            "max": int(max(per_image, default=0)),
        },
        "class_counts": class_counts,
        "box_size_percentiles": {p: float(s) for p, s in zip(percentiles, sizes, strict=False)},
        "size_ranges": {
            "small": int((areas < 32**2).sum()),
            "medium": int(((areas >= 32**2) & (areas < 96**2)).sum()),
            "large": int((areas >= 96**2).sum()),
        },
        "background_counts": dict(sorted(background_counts.items())),
    }


def _boxes_and_labels(target: dict) -> tuple[np.ndarray, np.ndarray]:
    if "boxes" in target and "labels" in target:
        boxes = np.asarray(target["boxes"], np.float32).reshape(-1, 4)  # (N, 4)
        return boxes, np.asarray(target["labels"]).reshape(-1)
    if "label" in target and "mask" in target:
        mask = np.asarray(target["mask"])[None]  # (1, H, W)
        return masks_to_boxes(mask), np.asarray(target["label"]).reshape(1)
    raise ValueError(
        f"target: expected keys 'boxes' and 'labels' (or 'label' and 'mask'), got {sorted(target)}"
    )
