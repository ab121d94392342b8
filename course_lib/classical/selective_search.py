"""Selective search: object proposals by hierarchical grouping of superpixels.

Uijlings, van de Sande, Gevers and Smeulders, "Selective Search for Object Recognition", IJCV 2013.
The three steps of the lecture:

1. over-segmentation with Felzenszwalb and Huttenlocher's graph-based method (IJCV 2004), here
   ``skimage.segmentation.felzenszwalb`` with ``sigma = 0.8`` and ``min_size = k`` as in the
   paper's code;
2. hierarchical grouping of neighbouring regions by colour, texture, size and fill similarity
   (``grouping.py``, ``similarity.py``);
3. diversification: run the grouping with several colour spaces, thresholds ``k`` and
   similarity sets (Section 5.2, Table 5 of the paper), rank every region of every hierarchy by
   ``position * random`` (Section 6.1) and merge the lists, dropping duplicate boxes.

Differences from the paper: the 8 texture orientations are the positive and negative parts of
Gaussian derivatives along 4 axes (the paper does not say how the sign is handled); neighbours are
4-connected; the intensity-based colour spaces are the paper's list without the opponent and
C-invariant ones (``"rgb"`` is offered instead).

OpenCV's implementation (``cv2.ximgproc.segmentation``, the reference of the tests and of
``benchmarks/bench_selective_search.py``) differs in its settings: its fast mode uses k = 150, 300
and 450, and it ranks by ``random * depth`` with the initial regions at depth 1, so small regions
come first (its source says this is inverted from the paper), with an unseeded ``rand()``.

Cost: the over-segmentation (``felzenszwalb``, once per colour space and k) takes about 60% of
the time; the per-pixel histogram bins are computed once per colour space and the initial region
statistics once per (colour space, k), then shared by every similarity set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import skimage.segmentation
import torch
from torch import Tensor

from course_lib._checks import check_choice, check_number
from course_lib.classical.grouping import SIMILARITY_PARTS, Grouping, group_regions
from course_lib.classical.similarity import COLOR_SPACES, convert_color, pixel_features, region_statistics

# Table 5 of the paper: (colour spaces, k values, similarity sets) of each mode.
MODES = {
    "single": (("hsv",), (100,), ("CTSF",)),
    "fast": (("hsv", "lab"), (50, 100), ("CTSF", "TSF")),
    "quality": (("hsv", "lab", "rgi", "h", "i"), (50, 100, 150, 300), ("CTSF", "TSF", "F", "S")),
}
SIGMA = 0.8  # Gaussian smoothing of Felzenszwalb-Huttenlocher, as in the paper's code
MIN_SIDE = 8  # smaller images have too few pixels for 25-bin histograms and sigma = 1 derivatives


def selective_search(image: np.ndarray, mode: str = "fast", seed: int = 0) -> Tensor:
    """Ranked object proposals of one image (Uijlings et al. 2013).

    Args:
        image: ``np.ndarray[H, W, 3]`` uint8 RGB. A grey ``[H, W]`` or ``[H, W, 1]`` uint8 image is
            repeated on three channels; RGBA, float and tensor images are refused with a message
            saying how to convert them. Both sides must be at least ``MIN_SIDE`` pixels.
        mode: ``"single"`` (one strategy: HSV, k = 100, C+T+S+F), ``"fast"`` (HSV and Lab,
            k = 50 and 100, C+T+S+F and T+S+F: 8 strategies) or ``"quality"`` (5 colour spaces,
            4 values of k, 4 similarity sets: 80 strategies), as in Table 5 of the paper.
        seed: seed of the pseudo-random ranking (Section 6.1); the result is deterministic.

    Returns:
        ``Tensor[N, 4]`` float32 xyxy boxes in pixels (``x2`` = last column + 1), best-ranked
        first, no two equal.
    """
    check_choice(mode, MODES, "mode")
    check_number(seed, "seed", low=0, integer=True)
    image = as_rgb_uint8(image)
    color_spaces, ks, similarities = MODES[mode]
    rng = np.random.default_rng(seed)
    all_boxes, all_ranks = [], []
    for color_space in color_spaces:
        features = pixel_features(convert_color(image, color_space))  # shared by every k
        for k in ks:
            regions = region_statistics(segment(features.image, k), features)  # shared by every similarity
            for similarity in similarities:
                grouping = group_regions(regions, similarity)
                all_boxes.append(grouping.boxes)
                all_ranks.append(hierarchy_rank(len(grouping.boxes), rng))
    return rank_and_deduplicate(np.concatenate(all_boxes), np.concatenate(all_ranks))


# Scale of the fixed noise that breaks ties between equal edge weights (see ``segment``): far
# below one grey level (1 / 255), far above float64 rounding.
TIE_BREAK = 1e-7


def segment(converted: np.ndarray, k: float) -> np.ndarray:
    """Felzenszwalb-Huttenlocher over-segmentation of a converted (H, W, C) image: (H, W) labels.

    The method visits the edges of the pixel grid by increasing weight. Flat and upsampled
    images have many edges of exactly equal weight, and NumPy's sort orders equal values
    differently on different CPUs (its AVX-512 and AVX2 sorting networks are not stable), so the
    regions, and every proposal after them, would change with the CPU. A fixed noise of
    ``TIE_BREAK`` (seeded, the same on every machine) makes every weight distinct: the same order,
    hence the same regions, everywhere. This tie-break is ours, not the paper's.
    """
    noise = np.random.default_rng(0).random(converted.shape)  # (H, W, C) in [0, 1)
    converted = converted.astype(np.float64) + TIE_BREAK * noise
    channel_axis = None if converted.shape[2] == 1 else -1
    plane = converted[:, :, 0] if channel_axis is None else converted
    # skimage divides `scale` by 255, so k is on the paper's 0-255 intensity scale.
    labels = skimage.segmentation.felzenszwalb(
        plane, scale=k, sigma=SIGMA, min_size=int(k), channel_axis=channel_axis
    )
    return labels.astype(np.int64)


def hierarchy_rank(num_regions: int, rng: np.random.Generator) -> np.ndarray:
    """Section 6.1: ``v_i = RND * i``, ``i`` the position in the hierarchy (1 = the whole image).

    Regions are in creation order, so the last one (the whole image) has position 1.
    """
    position = np.arange(num_regions, 0, -1, dtype=np.float64)  # (R',)
    return position * rng.random(num_regions)


def rank_and_deduplicate(boxes: np.ndarray, ranks: np.ndarray) -> Tensor:
    """Sort ``boxes`` (N, 4) by increasing rank; keep the best-ranked copy of each box."""
    order = np.argsort(ranks, kind="stable")
    boxes = boxes[order]
    _, first = np.unique(boxes, axis=0, return_index=True)
    return torch.from_numpy(boxes[np.sort(first)].astype(np.float32))  # (N, 4)


def as_rgb_uint8(image: object) -> np.ndarray:
    """Check ``image`` and return it as a contiguous (H, W, 3) uint8 array (grey is repeated)."""
    if isinstance(image, torch.Tensor):
        raise TypeError(
            "image: expected an np.ndarray[H, W, 3] of uint8, got a torch.Tensor; for a [3, H, W] "
            "tensor in [0, 1] use (image.permute(1, 2, 0) * 255).round().byte().numpy()"
        )
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image: expected an np.ndarray[H, W, 3] of uint8, got {type(image).__name__}")
    if image.size == 0:
        raise ValueError(f"image: expected a non-empty image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise TypeError(
            f"image: expected dtype uint8, got {image.dtype}; convert a float image in [0, 1] with "
            "skimage.util.img_as_ubyte(image)"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)  # (H, W, 3) grey on three channels
    if image.ndim != 3 or image.shape[2] != 3:
        is_rgba = image.ndim == 3 and image.shape[2] == 4
        hint = "; drop the alpha channel with image[..., :3]" if is_rgba else ""
        raise ValueError(f"image: expected shape (H, W, 3), got {image.shape}{hint}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image: expected both sides >= {MIN_SIDE} pixels, got shape {image.shape}")
    return np.ascontiguousarray(image)


@dataclass
class Hierarchy:
    """One grouping hierarchy, for showing how regions merge step by step.

    ``labels`` holds the R initial regions; merge ``m`` joins regions ``merges[m]`` into region
    ``R + m``, whose box is ``boxes[R + m]``. ``boxes`` are xyxy, ``x2`` = last column + 1.
    """

    labels: np.ndarray  # (H, W) int64 in [0, R)
    boxes: Tensor  # (2R-1, 4) float32
    merges: np.ndarray  # (R-1, 2) int64
    similarities: np.ndarray  # (R-1,) similarity of each merged pair

    @property
    def num_initial(self) -> int:
        return len(self.merges) + 1

    def labels_at(self, step: int) -> np.ndarray:
        """The label map after the first ``step`` merges; each region keeps its id (0 .. 2R-2)."""
        check_number(step, "step", low=0, high=len(self.merges), integer=True)
        owner = np.arange(self.num_initial + step)
        for index, (a, b) in enumerate(self.merges[:step].tolist()):
            owner[a] = owner[b] = self.num_initial + index
        for index in range(len(owner) - 1, -1, -1):  # parents have larger ids: resolve top-down
            owner[index] = owner[owner[index]]
        return owner[self.labels]  # (H, W)


def selective_search_hierarchy(
    image: np.ndarray, color_space: str = "hsv", k: float = 100, similarity: str = "CTSF"
) -> Hierarchy:
    """Run one strategy of selective search and return its whole merge history.

    Args:
        image: as for :func:`selective_search`.
        color_space: one of ``COLOR_SPACES``.
        k: Felzenszwalb-Huttenlocher threshold (larger: fewer, bigger initial regions).
        similarity: the similarities added up, a non-empty subset of ``"CTSF"`` (colour,
            texture, size, fill), e.g. ``"TSF"``.

    Returns:
        A :class:`Hierarchy`.
    """
    check_choice(color_space, COLOR_SPACES, "color_space")
    check_number(k, "k", low=1)
    if not isinstance(similarity, str) or not similarity or set(similarity) - set(SIMILARITY_PARTS):
        raise ValueError(
            f"similarity: expected a non-empty subset of 'CTSF' such as 'TSF', got {similarity!r}"
        )
    image = as_rgb_uint8(image)
    features = pixel_features(convert_color(image, color_space))
    regions = region_statistics(segment(features.image, k), features)
    grouping: Grouping = group_regions(regions, similarity)
    boxes = torch.from_numpy(grouping.boxes.astype(np.float32))
    return Hierarchy(regions.labels, boxes, grouping.merges, grouping.similarities)
