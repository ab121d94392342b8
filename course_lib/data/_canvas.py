"""A canvas that stacks shapes front to back and keeps track of what stays visible.

Later shapes are painted over earlier ones (occlusion). The canvas remembers which object owns
each pixel, so the masks and boxes it returns describe the *visible* part of each object, and it
refuses a new shape that would hide too much of an object already there (instead of painting it
and then dropping the hidden object's label, which would leave an unlabelled fragment behind).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from course_lib.data._draw import random_unit_vector, signed_distance

MIN_VISIBLE = 0.4  # an object keeps at least this fraction of its pixels visible
MIN_OBJECT_PIXELS = 8  # smallest shape, in pixels, before occlusion
MIN_CONTRAST = 0.35  # RGB distance between an object's colour and the background under it


@dataclass(frozen=True)
class Scene:
    """One generated image with its labelled objects, as numpy arrays.

    Attributes:
        image: ``[H, W, 3]`` uint8.
        boxes: ``[N, 4]`` float32, xyxy pixels, tight around the visible mask: ``x1`` is the first
            column of the mask and ``x2`` the last column + 1, so ``x2 - x1`` counts pixels (the
            COCO convention, where pixel ``(r, c)`` covers ``[c, c + 1) x [r, r + 1)``).
        labels: ``[N]`` int64 in ``1..K`` (0 is background).
        masks: ``[N, H, W]`` uint8 in {0, 1}, the visible pixels of each object.
        background: the background kind, one of ``"plain"``, ``"gradient"``, ``"noise"``, ``"texture"``.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    background: str


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight ``[N, 4]`` xyxy boxes of ``[N, H, W]`` masks, ``x2`` = last column + 1."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for k, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows):
            boxes[k] = cols[0], rows[0], cols[-1] + 1, rows[-1] + 1
    return boxes


class Canvas:
    """Paint shapes front to back on a background; see the module docstring."""

    def __init__(self, background: np.ndarray, background_kind: str):
        self.image = background  # (H, W, 3) float32 in [0, 1]
        self.background_kind = background_kind
        self.owner = np.full(background.shape[:2], -1, np.int16)  # (H, W) index of the top object
        self.labels: list[int] = []
        self.full_areas: list[int] = []
        self.visible_areas: list[int] = []
        self.min_visible: list[float] = []  # 0 for unlabelled distractors

    def add(
        self, rng: np.random.Generator, shape: dict, label: int, min_visible: float | None = MIN_VISIBLE
    ) -> bool:
        """Paint ``shape`` on top if every labelled object stays visible enough; report success.

        ``min_visible=None`` marks an unlabelled distractor: it may be cut by the border and
        nothing protects it from later shapes.
        """
        height, width = self.owner.shape
        radius = shape["radius"]
        x0, x1 = math.floor(shape["cx"] - radius) - 1, math.ceil(shape["cx"] + radius) + 1
        y0, y1 = math.floor(shape["cy"] - radius) - 1, math.ceil(shape["cy"] + radius) + 1
        distance = signed_distance(shape, np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)  # (h, w)
        full_area = int((distance <= 0).sum())
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if full_area < MIN_OBJECT_PIXELS or cx1 <= cx0 or cy1 <= cy0:
            return False
        distance = distance[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]  # clipped to the image
        inside = distance <= 0
        visible = int(inside.sum())
        if visible == 0 or (min_visible is not None and visible < min_visible * full_area):
            return False
        window = (slice(cy0, cy1), slice(cx0, cx1))
        covered = self.owner[window][inside]
        hidden = np.bincount(covered[covered >= 0], minlength=len(self.labels))
        for j, fraction in enumerate(self.min_visible):
            if self.visible_areas[j] - hidden[j] < fraction * self.full_areas[j]:
                return False

        patch = self.image[window]  # (h, w, 3), a view
        fill = self._fill(rng, shape, patch[inside].mean(axis=0), cx0, cy0, distance.shape)
        coverage = np.clip(0.5 - distance, 0.0, 1.0).astype(np.float32)[:, :, None]  # soft edge
        patch += (fill - patch) * coverage
        self.owner[window][inside] = len(self.labels)
        for j in np.flatnonzero(hidden):
            self.visible_areas[j] -= int(hidden[j])
        self.labels.append(label)
        self.full_areas.append(full_area)
        self.visible_areas.append(visible)
        self.min_visible.append(0.0 if min_visible is None else min_visible)
        return True

    @staticmethod
    def _fill(rng, shape, local_mean, left, top, window_shape) -> np.ndarray:
        """A colour far enough from the background under the shape, with mild shading."""
        for _ in range(10):
            colour = rng.random(3)
            if np.sqrt(((colour - local_mean) ** 2).sum()) >= MIN_CONTRAST:
                break
        else:  # black or white, whichever is farther
            colour = np.full(3, 0.0 if local_mean.mean() > 0.5 else 1.0)
        fill = np.empty((*window_shape, 3), np.float32)
        fill[:] = colour
        if rng.random() < 0.5:  # light from one side: a shading ramp of up to +-12%
            dx, dy = random_unit_vector(rng)
            xs = (np.arange(left, left + window_shape[1]) + 0.5 - shape["cx"]) / shape["radius"]
            ys = (np.arange(top, top + window_shape[0]) + 0.5 - shape["cy"]) / shape["radius"]
            ramp = (xs[None, :] * dx + ys[:, None] * dy) * rng.uniform(0.0, 0.12)  # (h, w)
            fill = np.clip(fill + ramp[:, :, None].astype(np.float32), 0.0, 1.0)
        return fill

    def finish(self, rng: np.random.Generator) -> Scene:
        """Add light sensor noise to some images, quantize to uint8 and collect the labels."""
        if rng.random() < 0.3:
            noise = rng.normal(0.0, rng.uniform(0.01, 0.04), self.image.shape).astype(np.float32)
            self.image += noise
        image = np.round(np.clip(self.image, 0.0, 1.0) * 255).astype(np.uint8)  # (H, W, 3)
        keep = [j for j, fraction in enumerate(self.min_visible) if fraction > 0]
        masks = (self.owner[None] == np.array(keep, np.int16)[:, None, None]).astype(np.uint8)  # (N, H, W)
        labels = np.array([self.labels[j] for j in keep], np.int64)
        return Scene(image, masks_to_boxes(masks), labels, masks, self.background_kind)
