"""A sliding-window detector: HOG features, a linear SVM, an image pyramid and NMS (Dalal and Triggs 2005).

The recipe of Section 4 of the paper:

1. Describe fixed-size windows (``window_size`` pixels) by their HOG vector.
2. Train a linear SVM (``sklearn.svm.LinearSVC``) on positive crops against negative crops.
3. **Hard-negative mining**: scan images that contain no object (or only away from the objects),
   collect the false positives the SVM scores highest, add them to the negatives and retrain.
4. Detection: scan every window of every level of an image pyramid (each level ``scale_step`` times
   smaller), keep windows scoring above ``score_threshold``, merge overlaps with
   ``course_lib.nms.nms`` (the paper used mean shift; greedy NMS is what later detectors use).

Speed: HOG is computed once per pyramid level and every window reads its blocks from that map
(OpenCV's HOGDescriptor does the same), so windows move in steps of whole cells
(``window_stride`` cells). A window then sees the true gradients at its border, whereas a training
crop has zero gradient on its border rows and columns; the difference is small and ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.svm import LinearSVC
from torch import Tensor

from course_lib._checks import check_choice, check_number, check_pair
from course_lib.boxes import box_iou
from course_lib.classical.hog import BLOCK_NORMS, as_float_image, cell_histograms, normalize_blocks
from course_lib.nms import fast_nms

GREY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])  # scikit-image's rgb2gray (ITU-R BT.709)


def to_unit_float(image: Any, grey: bool = False) -> np.ndarray:
    """An image as float64 in [0, 1] (uint8 is divided by 255), ``H x W`` or ``H x W x 3``.

    ``grey=True`` turns colour into luminance (``skimage.color.rgb2gray``'s weights).
    """
    dtype = getattr(image, "dtype", None)
    is_uint8 = dtype == torch.uint8 if isinstance(image, Tensor) else dtype == np.uint8
    image = as_float_image(image).astype(np.float64)
    if is_uint8:
        image = image / 255.0
    if grey and image.ndim == 3:
        image = image @ GREY_WEIGHTS  # (H, W, 3) -> (H, W)
    return image


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with antialiasing (torch), ``H x W`` or ``H x W x 3`` float64."""
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    tensor = tensor[None, None] if image.ndim == 2 else tensor.permute(2, 0, 1)[None]  # (1, C, H, W)
    out = F.interpolate(tensor, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    out = out[0, 0] if image.ndim == 2 else out[0].permute(1, 2, 0)  # (h, w) or (h, w, 3)
    return out.numpy()


class SlidingWindowDetector:
    """HOG + linear SVM sliding-window detector for one class.

    Args:
        window_size: window ``(rows, cols)`` in pixels; a multiple of ``pixels_per_cell`` is best.
        orientations, pixels_per_cell, cells_per_block, block_norm: the HOG parameters (see ``hog``).
        grey: describe the luminance instead of the strongest colour channel.
        scale_step: ratio between consecutive pyramid levels (> 1).
        min_scale, max_scale: the smallest and largest object scale searched, in window sizes:
            objects from ``min_scale * window_size`` to ``max_scale * window_size`` pixels.
        window_stride: step between windows, in cells.
        C: the SVM's regularization (smaller C: a wider margin, more training errors).
        score_threshold: windows scoring at most this are dropped (the SVM margin is at 0).
        iou_threshold: NMS threshold.
        label: the class index reported in ``labels``.
    """

    def __init__(
        self,
        window_size: tuple[int, int] = (24, 24),
        orientations: int = 9,
        pixels_per_cell: tuple[int, int] = (6, 6),
        cells_per_block: tuple[int, int] = (2, 2),
        block_norm: str = "L2-Hys",
        grey: bool = False,
        scale_step: float = 1.25,
        min_scale: float = 1.0,
        max_scale: float = float("inf"),
        window_stride: int = 1,
        C: float = 0.01,
        score_threshold: float = 0.0,
        iou_threshold: float = 0.3,
        label: int = 1,
    ):
        self.window_size = check_pair(window_size, "window_size", low=1)
        self.pixels_per_cell = check_pair(pixels_per_cell, "pixels_per_cell", low=1)
        self.cells_per_block = check_pair(cells_per_block, "cells_per_block", low=1)
        self.orientations = int(check_number(orientations, "orientations", low=1, integer=True))
        self.block_norm = check_choice(block_norm, BLOCK_NORMS, "block_norm")
        self.grey = bool(grey)
        self.scale_step = float(check_number(scale_step, "scale_step", low=1.01))
        self.min_scale = float(check_number(min_scale, "min_scale", low=1e-3))
        self.max_scale = float(max_scale)
        if not self.max_scale >= self.min_scale:
            raise ValueError(f"max_scale: expected a value >= min_scale {self.min_scale}, got {max_scale!r}")
        self.window_stride = int(check_number(window_stride, "window_stride", low=1, integer=True))
        self.C = float(check_number(C, "C", low=1e-12))
        self.score_threshold = float(check_number(score_threshold, "score_threshold"))
        self.iou_threshold = float(check_number(iou_threshold, "iou_threshold", low=0, high=1))
        self.label = int(label)
        self.cells = tuple(w // c for w, c in zip(self.window_size, self.pixels_per_cell, strict=True))
        if any(c < b for c, b in zip(self.cells, self.cells_per_block, strict=True)):
            raise ValueError(f"window_size: expected at least one block of cells, got {self.window_size} "
                             f"with cells {self.pixels_per_cell} and blocks {self.cells_per_block}")
        self.svm: LinearSVC | None = None

    # ------------------------------------------------------------------ features

    def _blocks(self, image: np.ndarray) -> np.ndarray:
        histograms = cell_histograms(image, self.orientations, self.pixels_per_cell)
        return normalize_blocks(histograms, self.cells_per_block, self.block_norm)  # (Hb, Wb, br, bc, n)

    def crop_features(self, crops: Sequence[Any]) -> np.ndarray:
        """HOG vectors of crops, each resized to ``window_size`` first: ``ndarray[N, D]``."""
        features = []
        for crop in crops:
            crop = to_unit_float(crop, self.grey)
            if crop.shape[:2] != self.window_size:
                crop = resize(crop, *self.window_size)
            features.append(self._blocks(crop).ravel())
        return np.stack(features) if features else np.zeros((0, self.num_features))

    @property
    def num_features(self) -> int:
        (rows, cols), (block_rows, block_cols) = self.cells, self.cells_per_block
        return (rows - block_rows + 1) * (cols - block_cols + 1) * block_rows * block_cols * self.orientations

    def scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales (image size / level size) at which the window fits in the image."""
        largest = min(height / self.window_size[0], width / self.window_size[1], self.max_scale)
        scales, scale = [], self.min_scale
        while scale <= largest + 1e-9:
            scales.append(scale)
            scale *= self.scale_step
        return scales

    def windows(self, image: Any) -> tuple[Tensor, np.ndarray]:
        """Every window of the pyramid: ``(boxes Tensor[N, 4] xyxy image pixels, features ndarray[N, D])``."""
        image = to_unit_float(image, self.grey)
        height, width = image.shape[:2]
        if height < self.window_size[0] or width < self.window_size[1]:
            raise ValueError(f"image: expected at least one window of {self.window_size[0]} x "
                             f"{self.window_size[1]} pixels, got an image of {height} x {width}")
        all_boxes, all_features = [], []
        window_blocks = tuple(c - b + 1 for c, b in zip(self.cells, self.cells_per_block, strict=True))
        for scale in self.scales(height, width):
            level_h, level_w = max(round(height / scale), self.window_size[0]), max(round(width / scale),
                                                                                   self.window_size[1])
            level = image if (level_h, level_w) == (height, width) else resize(image, level_h, level_w)
            blocks = self._blocks(level)  # (Hb, Wb, br, bc, n)
            view = np.lib.stride_tricks.sliding_window_view(blocks, window_blocks, axis=(0, 1))
            view = view[:: self.window_stride, :: self.window_stride]  # (Ny, Nx, br, bc, n, wbr, wbc)
            num_y, num_x = view.shape[:2]
            features = view.transpose(0, 1, 5, 6, 2, 3, 4).reshape(num_y * num_x, -1)  # (Ny*Nx, D)
            step_y = self.window_stride * self.pixels_per_cell[0] * height / level_h
            step_x = self.window_stride * self.pixels_per_cell[1] * width / level_w
            ys, xs = np.meshgrid(np.arange(num_y) * step_y, np.arange(num_x) * step_x, indexing="ij")
            size_y, size_x = self.window_size[0] * height / level_h, self.window_size[1] * width / level_w
            boxes = np.stack([xs, ys, xs + size_x, ys + size_y], axis=-1).reshape(-1, 4)  # (Ny*Nx, 4)
            all_boxes.append(boxes)
            all_features.append(features)
        boxes = torch.from_numpy(np.concatenate(all_boxes)).float()
        return boxes, np.concatenate(all_features)

    # ------------------------------------------------------------------ training

    def fit(
        self,
        positives: Sequence[Any],
        negatives: Sequence[Any],
        negative_images: Sequence[Any] = (),
        object_boxes: Sequence[Tensor] | None = None,
        rounds: int = 1,
        hard_per_image: int = 20,
    ) -> SlidingWindowDetector:
        """Train the SVM on crops, then mine hard negatives ``rounds`` times.

        Args:
            positives: crops of the object (any size; resized to the window).
            negatives: crops without it.
            negative_images: images scanned for hard negatives.
            object_boxes: per negative image, the boxes of the object (``Tensor[M, 4]``), so that
                windows overlapping them (IoU >= 0.3) are not taken as negatives; None if the images
                contain no object.
            rounds: hard-negative mining rounds (0: train on the crops only).
            hard_per_image: at most this many new negatives per image and round, the highest scoring
                windows with a score above -1 (inside the margin).

        Returns:
            ``self``, trained.
        """
        positive_features = self.crop_features(positives)
        negative_features = [self.crop_features(negatives)]
        if len(positive_features) == 0 or sum(map(len, negative_features)) == 0:
            raise ValueError("fit: expected at least one positive and one negative crop, got "
                             f"{len(positive_features)} and {len(negative_features[0])}")
        self.fit_features(positive_features, np.concatenate(negative_features))
        for _ in range(rounds):
            for index, image in enumerate(negative_images):
                near = None if object_boxes is None else object_boxes[index]
                negative_features.append(self.hard_negatives(*self.windows(image), near, hard_per_image))
            self.fit_features(positive_features, np.concatenate(negative_features))
        return self

    def hard_negatives(
        self,
        boxes: Tensor,
        features: np.ndarray,
        object_boxes: Tensor | None = None,
        hard_per_image: int = 20,
    ) -> np.ndarray:
        """The features of the ``hard_per_image`` best-scoring windows with score > -1 that overlap no
        object box (IoU < 0.3): ``ndarray[M, D]``. ``boxes, features`` come from :meth:`windows`."""
        scores = self._score(features)
        if object_boxes is not None and len(object_boxes):
            near = box_iou(boxes, object_boxes.float()).amax(dim=1) >= 0.3
            scores[near.numpy()] = -np.inf
        order = np.argsort(-scores, kind="stable")[:hard_per_image]
        return features[order[scores[order] > -1]]

    def fit_features(self, positive_features: np.ndarray, negative_features: np.ndarray) -> None:
        """Train the SVM on feature vectors (``ndarray[P, D]`` objects, ``ndarray[N, D]`` background).

        ``class_weight="balanced"``: the negatives outnumber the positives, often 10 to 1.
        """
        self.num_negatives_ = len(negative_features)
        features = np.concatenate([positive_features, negative_features])
        targets = np.r_[np.ones(len(positive_features)), np.zeros(len(negative_features))]
        self.svm = LinearSVC(C=self.C, class_weight="balanced", dual=False, random_state=0, max_iter=5000)
        self.svm.fit(features, targets)

    def _score(self, features: np.ndarray) -> np.ndarray:
        if self.svm is None:
            raise RuntimeError("the detector is not trained: call fit(...) first")
        return features @ self.svm.coef_[0] + self.svm.intercept_[0]

    def decision_function(self, crops: Sequence[Any]) -> np.ndarray:
        """SVM scores of crops (> 0: object): ``ndarray[N]``."""
        return self._score(self.crop_features(crops))

    # ------------------------------------------------------------------ detection

    def detect(self, image: Any, score_threshold: float | None = None, windows=None) -> dict[str, Tensor]:
        """Detections on one image: ``{"boxes": Tensor[N, 4] xyxy, "scores": Tensor[N], "labels": Tensor[N]}``

        Best score first, after NMS. ``score_threshold`` overrides the detector's. ``windows``: the
        ``(boxes, features)`` of :meth:`windows` if already computed (detectors of the same HOG
        and pyramid parameters can share them).
        """
        threshold = self.score_threshold if score_threshold is None else score_threshold
        boxes, features = self.windows(image) if windows is None else windows
        scores = torch.from_numpy(self._score(features)).float()
        keep = scores > threshold
        boxes, scores = boxes[keep], scores[keep]
        keep = fast_nms(boxes, scores, self.iou_threshold)
        labels = torch.full((len(keep),), self.label, dtype=torch.int64)
        return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels}

    def __call__(self, images: Sequence[Any]) -> list[dict[str, Tensor]]:
        """torchvision's eval-mode convention: a list of images in, one dict per image out."""
        return [self.detect(image) for image in images]
