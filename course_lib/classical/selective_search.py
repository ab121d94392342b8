"""Selective search: object proposals by hierarchical grouping of superpixels.

Uijlings, van de Sande, Gevers and Smeulders, "Selective Search for Object Recognition", IJCV 2013.
The three steps of the lecture:

1. over-segmentation with Felzenszwalb and Huttenlocher's graph-based method (IJCV 2004), here
   ``skimage.segmentation.felzenszwalb`` with ``sigma = 0.8`` and ``min_size = k`` as in the
   paper's code;
2. hierarchical grouping of neighbouring regions by colour, texture, size and fill similarity
   (``grouping.py``, ``similarity.py``);
3. diversification: run the grouping with several colour spaces, thresholds ``k`` and
   similarity sets (Section 5.2, Table 5 of the paper), rank the regions of all hierarchies and
   merge the lists, dropping duplicate boxes.

Ranking (``ranking="objectness"``, the default; ours, not the paper's). The paper (Section 6.1)
ranks the regions of each hierarchy by ``position * RND`` (position 1 = the whole image), which
puts the big regions near the top of the hierarchies first; OpenCV inverts it (``level * RND``,
``level`` = depth from the initial regions, so small regions first). Both are mostly random: on
ShapeScenes and coins, neither puts the objects in the first 10-50 proposals reliably. With the
paper's order ours found fewer objects there than OpenCV's (coins: 10 of 24 in the first 50,
OpenCV 17-22 depending on its draw), because our k = 50 and 100 give more, smaller regions than
OpenCV's k = 150-450, so a random draw hits an object less often. What decides is whether a region
*stands out*, so we score every region of every hierarchy, lower first:

* **distinctness**: the appearance similarity (colour and texture histogram intersection, see
  ``grouping.py``) of the merge that absorbs the region into its parent. An object differs from
  what surrounds it, so it is absorbed late and at a low similarity; a piece of an object or of
  the background is absorbed at a high one. Size and fill are left out here: they fall for every
  large merge whatever its content, and would put half-image blobs first. The whole image, never
  absorbed, scores 1;
* plus ``FILL_WEIGHT * (1 - size / box area)``: a region that fills little of its box (the
  background around objects, a snake-like strip) makes a poor box whatever its distinctness;
* divided by ``votes ** 0.25``, ``votes`` = the number of hierarchies that produce the same box:
  a box found by several colour spaces, ``k`` and similarity sets is a stable one (computed as two
  square roots, which are correctly rounded on every CPU, unlike NumPy's vectorized ``power``);
* times ``1 + JITTER * RND``: the paper's random factor, kept small, so that ``seed`` still
  reorders near-ties but the score decides.

After sorting and removing exact duplicates, every box that overlaps a better-ranked kept box with
IoU > ``NEAR_DUPLICATE_IOU`` sees its rank multiplied by ``DEMOTION`` (``demote_near_duplicates``):
the same object found by eight hierarchies with one-pixel differences would otherwise fill the top
of the list. No box is dropped, so the set of boxes is the paper's; only the order changes.
The paper's ranking remains available as ``ranking="paper"``.

The weights (``FILL_WEIGHT``, the vote exponent, ``NEAR_DUPLICATE_IOU``, ``DEMOTION``) were chosen
on the ShapeScenes val and train splits and on coins, never on the test split. The random factor
of the paper hurt there: multiplying a score by ``RND ** 0.2`` lowered recall at 10 proposals on
val from 0.61 to 0.47 (on a simpler version of the score), hence the small ``JITTER`` instead.

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
from course_lib.nms import fast_nms

# Table 5 of the paper: (colour spaces, k values, similarity sets) of each mode.
MODES = {
    "single": (("hsv",), (100,), ("CTSF",)),
    "fast": (("hsv", "lab"), (50, 100), ("CTSF", "TSF")),
    "quality": (("hsv", "lab", "rgi", "h", "i"), (50, 100, 150, 300), ("CTSF", "TSF", "F", "S")),
}
SIGMA = 0.8  # Gaussian smoothing of Felzenszwalb-Huttenlocher, as in the paper's code
MIN_SIDE = 8  # smaller images have too few pixels for 25-bin histograms and sigma = 1 derivatives


RANKINGS = ("objectness", "paper")
FILL_WEIGHT = 0.5  # weight of the empty part of a region's box in its score
JITTER = 0.1  # score * (1 + JITTER * RND)
NEAR_DUPLICATE_IOU = 0.7  # a box this close to a better-ranked one is a near-duplicate,
DEMOTION = 2.0  # and its rank is multiplied by this


def selective_search(
    image: np.ndarray, mode: str = "fast", seed: int = 0, ranking: str = "objectness"
) -> Tensor:
    """Ranked object proposals of one image (Uijlings et al. 2013).

    Args:
        image: ``np.ndarray[H, W, 3]`` uint8 RGB. A grey ``[H, W]`` or ``[H, W, 1]`` uint8 image is
            repeated on three channels; RGBA, float and tensor images are refused with a message
            saying how to convert them. Both sides must be at least ``MIN_SIDE`` pixels.
        mode: ``"single"`` (one strategy: HSV, k = 100, C+T+S+F), ``"fast"`` (HSV and Lab,
            k = 50 and 100, C+T+S+F and T+S+F: 8 strategies) or ``"quality"`` (5 colour spaces,
            4 values of k, 4 similarity sets: 80 strategies), as in Table 5 of the paper.
        seed: seed of the pseudo-random part of the ranking; the result is deterministic.
        ranking: ``"objectness"`` (ours, see the module docstring: distinct, box-filling regions
            found by several strategies first, near-duplicates demoted) or ``"paper"`` (Section 6.1:
            ``position * RND`` per hierarchy).

    Returns:
        ``Tensor[N, 4]`` float32 xyxy boxes in pixels (``x2`` = last column + 1), best-ranked
        first, no two equal.
    """
    check_choice(mode, MODES, "mode")
    check_number(seed, "seed", low=0, integer=True)
    check_choice(ranking, RANKINGS, "ranking")
    image = as_rgb_uint8(image)
    color_spaces, ks, similarities = MODES[mode]
    rng = np.random.default_rng(seed)
    all_boxes, all_scores = [], []
    for color_space in color_spaces:
        features = pixel_features(convert_color(image, color_space))  # shared by every k
        for k in ks:
            regions = region_statistics(segment(features.image, k), features)  # shared by every similarity
            for similarity in similarities:
                grouping = group_regions(regions, similarity)
                all_boxes.append(grouping.boxes)
                if ranking == "paper":
                    all_scores.append(hierarchy_rank(len(grouping.boxes), rng))
                else:
                    all_scores.append(region_scores(grouping))
    boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
    if ranking == "paper":
        return rank_and_deduplicate(boxes, scores)
    return objectness_rank(boxes, scores, rng)


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


def region_scores(grouping: Grouping) -> np.ndarray:
    """Score of each region of one hierarchy, lower = better: distinctness + emptiness of its box.

    Distinctness is the appearance similarity of the merge that absorbs the region (1 for the whole
    image, which is never absorbed); emptiness is ``1 - size / box area``, weighted by
    ``FILL_WEIGHT``. See the module docstring.

    Returns:
        (2R-1,) float64.
    """
    absorbed = np.ones(len(grouping.boxes))  # (2R-1,)
    absorbed[grouping.merges[:, 0]] = grouping.appearance
    absorbed[grouping.merges[:, 1]] = grouping.appearance
    box_area = (grouping.boxes[:, 2] - grouping.boxes[:, 0]) * (grouping.boxes[:, 3] - grouping.boxes[:, 1])
    return absorbed + FILL_WEIGHT * (1 - grouping.sizes / box_area)


def objectness_rank(boxes: np.ndarray, scores: np.ndarray, rng: np.random.Generator) -> Tensor:
    """Rank the regions of all hierarchies by score, boosted by votes, near-duplicates demoted.

    Args:
        boxes: (N, 4) xyxy boxes of the regions of every hierarchy, duplicates included.
        scores: (N,) ``region_scores``, lower = better.
        rng: the random factor ``1 + JITTER * RND``.

    Returns:
        ``Tensor[M, 4]`` float32, every distinct box once.
    """
    _, inverse, counts = np.unique(boxes, axis=0, return_inverse=True, return_counts=True)
    votes = counts[inverse.reshape(-1)].astype(np.float64)  # (N,) hierarchies giving the same box
    ranks = scores / np.sqrt(np.sqrt(votes)) * (1 + JITTER * rng.random(len(scores)))
    order = np.argsort(ranks, kind="stable")
    _, first = np.unique(boxes[order], axis=0, return_index=True)
    best = order[np.sort(first)]  # (M,) the best-ranked copy of each distinct box, in rank order
    boxes = torch.from_numpy(boxes[best].astype(np.float32))  # (M, 4)
    ranks = demote_near_duplicates(boxes, ranks[best], NEAR_DUPLICATE_IOU, DEMOTION)
    return boxes[torch.from_numpy(np.argsort(ranks, kind="stable"))]


def demote_near_duplicates(boxes: Tensor, ranks: np.ndarray, threshold: float, factor: float) -> np.ndarray:
    """Multiply by ``factor`` the rank of each box with IoU ``> threshold`` with a better-ranked kept box.

    Which boxes are near-duplicates is decided greedily in rank order, as by non-maximum
    suppression (``course_lib.nms.fast_nms``), but no box is dropped: it only goes further down
    the list (to the end with ``factor = inf``).

    Args:
        boxes: ``Tensor[N, 4]`` xyxy, sorted by increasing ``ranks``.
        ranks: ``(N,)`` non-negative ranks, lower = better.
        threshold: IoU in [0, 1].
        factor: >= 1.

    Returns:
        ``(N,)`` the new ranks.
    """
    kept = fast_nms(boxes, -torch.arange(len(boxes), dtype=torch.float32), threshold)  # (K,)
    demoted = np.ones(len(boxes), bool)
    demoted[kept.numpy()] = False
    return np.where(demoted, ranks * factor, ranks)


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
