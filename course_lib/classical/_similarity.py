"""Colour spaces, initial region statistics and the four similarities of selective search.

Section 3.2 of Uijlings et al., "Selective Search for Object Recognition", IJCV 2013:

* colour: a 25-bin histogram per channel, L1-normalized over all channels; similarity is the
  histogram intersection ``sum_k min(c_i^k, c_j^k)``;
* texture: Gaussian derivatives (sigma = 1) in 8 orientations per channel, a 10-bin histogram of
  each, L1-normalized; the same intersection;
* size: ``1 - (size_i + size_j) / size(image)``, which makes small regions merge first;
* fill: ``1 - (size(BB_ij) - size_i - size_j) / size(image)``, high when ``i`` and ``j`` fit
  into each other.

The colour and texture histograms of a merged region are the size-weighted average of its two
parts (Eq. 2 of the paper), so nothing is recomputed from pixels during grouping.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import skimage.color
from scipy import ndimage

COLOR_BINS = 25
TEXTURE_BINS = 10
NUM_ORIENTATIONS = 8
COLOR_SPACES = ("hsv", "lab", "rgi", "h", "i", "rgb")


def convert_color(image: np.ndarray, color_space: str) -> np.ndarray:
    """``image`` (H, W, 3) uint8 RGB -> (H, W, C) float32 in [0, 1], C = 3 or 1 (``"h"``, ``"i"``).

    ``rgi`` is normalized rg plus intensity, as in Table 1 of the paper.
    """
    rgb = image.astype(np.float32) / 255  # (H, W, 3)
    if color_space == "rgb":
        return rgb
    if color_space in ("hsv", "h"):
        hsv = skimage.color.rgb2hsv(rgb).astype(np.float32)  # (H, W, 3)
        return hsv if color_space == "hsv" else hsv[:, :, :1]
    if color_space == "lab":
        lab = skimage.color.rgb2lab(rgb).astype(np.float32)  # L in [0, 100], a and b in about [-128, 127]
        lab[:, :, 0] /= 100
        lab[:, :, 1:] = (lab[:, :, 1:] + 128) / 255
        return np.clip(lab, 0, 1)
    intensity = rgb.mean(axis=2, keepdims=True)  # (H, W, 1)
    if color_space == "i":
        return intensity
    assert color_space == "rgi", color_space
    total = rgb.sum(axis=2, keepdims=True) + 1e-6
    return np.concatenate((rgb[:, :, :2] / total, intensity), axis=2)  # (H, W, 3)


@dataclass
class PixelFeatures:
    """Per-pixel histogram bin indices of one colour space, computed once and shared by every k.

    ``color_bins`` is (H*W, C) and ``texture_bins`` (H*W, C*8), each entry already offset so that
    ``np.bincount`` over ``label * num_bins + bin`` builds all region histograms at once.
    """

    image: np.ndarray  # (H, W, C) float32 in [0, 1]
    color_bins: np.ndarray  # (H*W, C) int64 in [0, C*25)
    texture_bins: np.ndarray  # (H*W, C*8) int64 in [0, C*8*10)

    @cached_property
    def num_color(self) -> int:
        return self.image.shape[2] * COLOR_BINS

    @cached_property
    def num_texture(self) -> int:
        return self.image.shape[2] * NUM_ORIENTATIONS * TEXTURE_BINS


def pixel_features(converted: np.ndarray) -> PixelFeatures:
    """Histogram bin of every pixel for colour and texture, from a converted image (H, W, C)."""
    H, W, C = converted.shape
    color = np.minimum((converted * COLOR_BINS).astype(np.int64), COLOR_BINS - 1)  # (H, W, C)
    color += np.arange(C) * COLOR_BINS
    # Directional derivatives along 4 axes (0, 45, 90, 135 degrees); the positive and the negative
    # part of each give the 8 orientations (OpenCV does the same with 2 axes on 2 rotated images).
    angles = np.arange(NUM_ORIENTATIONS // 2) * (np.pi / (NUM_ORIENTATIONS // 2))
    cos, sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    texture = np.empty((H, W, C, 2, NUM_ORIENTATIONS // 2), np.int64)
    for channel in range(C):
        plane = converted[:, :, channel]
        dx = ndimage.gaussian_filter(plane, 1.0, order=(0, 1))  # (H, W) d/dx
        dy = ndimage.gaussian_filter(plane, 1.0, order=(1, 0))  # (H, W) d/dy
        response = dx[:, :, None] * cos + dy[:, :, None] * sin  # (H, W, 4)
        top = np.abs(response).max()
        scale = np.float32(TEXTURE_BINS / top) if top > 0 else np.float32(0)
        for sign_index, sign in enumerate((scale, -scale)):
            scaled = np.clip(response * sign, 0, TEXTURE_BINS - 1)  # (H, W, 4), negative part -> bin 0
            texture[:, :, channel, sign_index] = scaled.astype(np.int64)
    texture += (np.arange(C * NUM_ORIENTATIONS) * TEXTURE_BINS).reshape(C, 2, NUM_ORIENTATIONS // 2)
    return PixelFeatures(converted, color.reshape(H * W, C), texture.reshape(H * W, -1))


@dataclass
class Regions:
    """Statistics of the R initial regions of one segmentation: what grouping starts from."""

    labels: np.ndarray  # (H, W) int64 in [0, R)
    color: np.ndarray  # (R, C*25) float64, rows sum to 1
    texture: np.ndarray  # (R, C*80) float64, rows sum to 1
    sizes: np.ndarray  # (R,) float64, pixels
    boxes: np.ndarray  # (R, 4) float64 xyxy, x2 = last column + 1
    pairs: np.ndarray  # (P, 2) int64, neighbouring regions (4-connectivity), a < b


def region_statistics(labels: np.ndarray, features: PixelFeatures) -> Regions:
    """Histograms, sizes, boxes and neighbour pairs of the regions of ``labels`` (H, W)."""
    num_regions = int(labels.max()) + 1
    flat = labels.reshape(-1, 1).astype(np.int64)  # (H*W, 1)
    num_color, num_texture = features.num_color, features.num_texture
    color = _histograms(flat * num_color + features.color_bins, num_regions, num_color)  # (R, C*25)
    texture = _histograms(flat * num_texture + features.texture_bins, num_regions, num_texture)  # (R, C*80)
    sizes = np.bincount(flat[:, 0], minlength=num_regions).astype(np.float64)  # (R,)
    slices = ndimage.find_objects(labels + 1)
    boxes = np.array([(sx.start, sy.start, sx.stop, sy.stop) for sy, sx in slices], np.float64)  # (R, 4)
    return Regions(labels, color, texture, sizes, boxes, neighbour_pairs(labels))


def _histograms(indices: np.ndarray, num_regions: int, num_bins: int) -> np.ndarray:
    counts = np.bincount(indices.ravel(), minlength=num_regions * num_bins).astype(np.float64)
    counts = counts.reshape(num_regions, num_bins)  # (R, bins)
    return counts / counts.sum(axis=1, keepdims=True)


def neighbour_pairs(labels: np.ndarray) -> np.ndarray:
    """Pairs ``(a, b)``, ``a < b``, of labels that touch horizontally or vertically, sorted."""
    num_regions = int(labels.max()) + 1
    left, right = labels[:, :-1].ravel(), labels[:, 1:].ravel()
    top, bottom = labels[:-1, :].ravel(), labels[1:, :].ravel()
    first = np.concatenate((left, top)).astype(np.int64)
    second = np.concatenate((right, bottom)).astype(np.int64)
    touching = first != second
    low = np.minimum(first[touching], second[touching])
    high = np.maximum(first[touching], second[touching])
    codes = np.unique(low * num_regions + high)
    return np.stack((codes // num_regions, codes % num_regions), axis=1)  # (P, 2)
