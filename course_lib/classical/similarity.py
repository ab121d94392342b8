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
parts (Eq. 2 of the paper), so nothing is recomputed from pixels during grouping. Grouping keeps
them as integer counts, for which Eq. 2 is exact (the counts of a merged region are the sum of its
parts' counts), and computes each intersection exactly in integers (``intersections``): a float
sum's last bits depend on the order of its terms, which NumPy chooses by the CPU's vector width,
and a tie between two pairs would then merge one way on one CPU and the other way on another.
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
    # HSV and Lab are computed in float64, then rounded to float32. In float32, the powers and the
    # matrix product of the Lab conversion differ in their last bit between CPUs (NumPy and BLAS
    # pick vector kernels per CPU), enough to move a pixel across a histogram bin edge; a
    # float64 difference of that size almost never survives the rounding to float32.
    rgb64 = rgb.astype(np.float64)
    if color_space in ("hsv", "h"):
        hsv = skimage.color.rgb2hsv(rgb64).astype(np.float32)  # (H, W, 3)
        return hsv if color_space == "hsv" else hsv[:, :, :1]
    if color_space == "lab":
        lab = skimage.color.rgb2lab(rgb64)  # L in [0, 100], a and b in about [-128, 127]
        lab[:, :, 0] /= 100
        lab[:, :, 1:] = (lab[:, :, 1:] + 128) / 255
        return np.clip(lab, 0, 1).astype(np.float32)
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
    color_counts: np.ndarray  # (R, C*25) int64: pixels per bin, C entries per pixel
    texture_counts: np.ndarray  # (R, C*80) int64: pixels per bin, C*8 entries per pixel
    sizes: np.ndarray  # (R,) float64, pixels
    boxes: np.ndarray  # (R, 4) float64 xyxy, x2 = last column + 1
    pairs: np.ndarray  # (P, 2) int64, neighbouring regions (4-connectivity), a < b

    @property
    def color(self) -> np.ndarray:
        """(R, C*25) float64 colour histograms, L1-normalized: each row sums to 1."""
        return _normalized(self.color_counts)

    @property
    def texture(self) -> np.ndarray:
        """(R, C*80) float64 texture histograms, L1-normalized: each row sums to 1."""
        return _normalized(self.texture_counts)


def intersections(
    counts_a: np.ndarray, counts_b: np.ndarray, sizes_a: np.ndarray, sizes_b: np.ndarray, entries: int
) -> np.ndarray:
    """Histogram intersections ``sum_k min(h_a^k, h_b^k)`` of normalized histograms, from counts.

    With ``h = counts / (m * size)`` (``m = entries`` per pixel, the same for both), the
    intersection is ``sum_k min(counts_a^k * size_b, counts_b^k * size_a) / (m * size_a * size_b)``:
    an integer sum, exact in any order, then one division. The result is the same to the last bit
    on every CPU.

    Args:
        counts_a, counts_b: ``(P, D)`` int64 bin counts of the two regions of each pair.
        sizes_a, sizes_b: ``(P,)`` pixels of each region (integers, as int or float arrays).
        entries: histogram entries per pixel: ``C`` for colour, ``8 C`` for texture.

    Returns:
        ``(P,)`` float64 in [0, 1].
    """
    sizes_a, sizes_b = sizes_a.astype(np.int64), sizes_b.astype(np.int64)
    overlap = np.minimum(counts_a * sizes_b[:, None], counts_b * sizes_a[:, None]).sum(axis=1)  # (P,)
    return overlap / (entries * sizes_a * sizes_b)


def size_similarity(sizes_a: np.ndarray, sizes_b: np.ndarray, image_size: float) -> np.ndarray:
    """``s_size = 1 - (size_a + size_b) / size(image)``: small pairs merge first (Eq. 5 of the paper).

    Args:
        sizes_a, sizes_b: ``(P,)`` pixels of the two regions of each pair.
        image_size: pixels of the image.
    """
    return 1 - (sizes_a + sizes_b) / image_size


def fill_similarity(
    boxes_a: np.ndarray, boxes_b: np.ndarray, sizes_a: np.ndarray, sizes_b: np.ndarray, image_size: float
) -> np.ndarray:
    """``s_fill = 1 - (size(BB_ab) - size_a - size_b) / size(image)`` (Eq. 6 of the paper).

    ``BB_ab`` is the box around both regions: the pair scores 1 when the two regions fill it, as
    when one fits into a gap of the other.

    Args:
        boxes_a, boxes_b: ``(P, 4)`` xyxy boxes of the two regions of each pair.
        sizes_a, sizes_b: ``(P,)`` pixels of each region.
        image_size: pixels of the image.
    """
    low = np.minimum(boxes_a[:, :2], boxes_b[:, :2])  # (P, 2)
    high = np.maximum(boxes_a[:, 2:], boxes_b[:, 2:])  # (P, 2)
    return 1 - (np.prod(high - low, axis=1) - sizes_a - sizes_b) / image_size


def region_similarities(regions: Regions, first: int, second: int) -> dict[str, float]:
    """The four similarities of Section 3.2 of the paper for two initial regions, by name.

    Returns:
        ``{"colour": ..., "texture": ..., "size": ..., "fill": ...}``, each in [0, 1]; grouping
        adds up the ones of its similarity set.
    """
    image_size = float(regions.sizes.sum())
    a, b = np.array([first]), np.array([second])
    sizes_a, sizes_b = regions.sizes[a], regions.sizes[b]
    channels = regions.color_counts.shape[1] // COLOR_BINS
    color, texture = regions.color_counts, regions.texture_counts
    parts = {
        "colour": intersections(color[a], color[b], sizes_a, sizes_b, channels),
        "texture": intersections(texture[a], texture[b], sizes_a, sizes_b, channels * NUM_ORIENTATIONS),
        "size": size_similarity(sizes_a, sizes_b, image_size),
        "fill": fill_similarity(regions.boxes[a], regions.boxes[b], sizes_a, sizes_b, image_size),
    }
    return {name: float(value[0]) for name, value in parts.items()}


def _normalized(counts: np.ndarray) -> np.ndarray:
    return counts / counts.sum(axis=1, keepdims=True)


def region_statistics(labels: np.ndarray, features: PixelFeatures) -> Regions:
    """Histograms, sizes, boxes and neighbour pairs of the regions of ``labels`` (H, W)."""
    num_regions = int(labels.max()) + 1
    flat = labels.reshape(-1, 1).astype(np.int64)  # (H*W, 1)
    num_color, num_texture = features.num_color, features.num_texture
    color = _counts(flat * num_color + features.color_bins, num_regions, num_color)  # (R, C*25)
    texture = _counts(flat * num_texture + features.texture_bins, num_regions, num_texture)  # (R, C*80)
    sizes = np.bincount(flat[:, 0], minlength=num_regions).astype(np.float64)  # (R,)
    slices = ndimage.find_objects(labels + 1)
    boxes = np.array([(sx.start, sy.start, sx.stop, sy.stop) for sy, sx in slices], np.float64)  # (R, 4)
    return Regions(labels, color, texture, sizes, boxes, neighbour_pairs(labels))


def _counts(indices: np.ndarray, num_regions: int, num_bins: int) -> np.ndarray:
    counts = np.bincount(indices.ravel(), minlength=num_regions * num_bins).astype(np.int64)
    return counts.reshape(num_regions, num_bins)  # (R, bins)


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
