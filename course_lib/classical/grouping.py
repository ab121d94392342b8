"""Hierarchical grouping: Algorithm 1 of Uijlings et al., IJCV 2013.

Start from the regions of an over-segmentation. Repeatedly merge the two most similar
neighbouring regions into a new one, until one region, the whole image, is left. Every region that
ever exists (the R initial ones and the R - 1 merged ones) is a proposal.

The similarities live in a heap. A merged region gets a new id and the pairs of its two parts are
left in the heap and skipped when they come out (lazy deletion), so each merge costs one
vectorized similarity computation against the new region's neighbours, not a rescan of all pairs.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from course_lib.classical.similarity import (
    COLOR_BINS,
    NUM_ORIENTATIONS,
    Regions,
    fill_similarity,
    intersections,
    size_similarity,
)

SIMILARITY_PARTS = "CTSF"  # colour, texture, size, fill (Section 3.2 of the paper)


@dataclass
class Grouping:
    """The result of grouping R initial regions: 2R - 1 regions, ids in creation order.

    Region ``R + m`` is created by merge ``m`` from regions ``merges[m, 0]`` and ``merges[m, 1]``;
    the last region, ``2R - 2``, covers the whole image.
    """

    boxes: np.ndarray  # (2R-1, 4) float64 xyxy
    merges: np.ndarray  # (R-1, 2) int64
    similarities: np.ndarray  # (R-1,) float64, the similarity of each merged pair
    appearance: np.ndarray  # (R-1,) float64 in [0, 1], the pair's colour / texture part (see below)
    sizes: np.ndarray  # (2R-1,) float64, pixels of every region


def group_regions(regions: Regions, similarity: str) -> Grouping:
    """Merge the most similar neighbours until one region is left (Algorithm 1 of the paper).

    Args:
        regions: initial regions with their histograms, sizes, boxes and neighbour pairs.
        similarity: the similarities to add up, a subset of ``"CTSF"`` (e.g. ``"TSF"``).

    Returns:
        The boxes and sizes of all 2R - 1 regions and the merge list. With each merge comes its
        *appearance* similarity: the mean of its colour and texture intersections (in [0, 1]), or
        the mean of all its terms when ``similarity`` has neither C nor T. Selective search ranks
        a region by the appearance similarity of the merge that absorbs it.
    """
    num_initial = len(regions.sizes)
    total = 2 * num_initial - 1
    image_size = float(regions.sizes.sum())
    # Integer bin counts of colour and texture for every region that will exist; a merged region's
    # counts are the sum of its parts' (Eq. 2 of the paper, exact in integers).
    channels = regions.color_counts.shape[1] // COLOR_BINS
    parts = []  # (counts of every region, entries per pixel)
    for letter, counts, entries in (
        ("C", regions.color_counts, channels),
        ("T", regions.texture_counts, channels * NUM_ORIENTATIONS),
    ):
        if letter in similarity:
            part = np.zeros((total, counts.shape[1]), np.int64)  # (2R-1, D)
            part[:num_initial] = counts
            parts.append((part, entries))
    use_size, use_fill = "S" in similarity, "F" in similarity

    def pair_similarities(firsts: np.ndarray, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Similarities of the pairs ``(firsts[p], seconds[p])``, all at once: total and appearance (P,)."""
        size_a, size_b = all_sizes[firsts], all_sizes[seconds]  # (P,), (P,)
        appearance = np.zeros(len(firsts))
        for part, entries in parts:
            appearance += intersections(part[firsts], part[seconds], size_a, size_b, entries)
        score = appearance.copy()
        if use_size:
            score += size_similarity(size_a, size_b, image_size)
        if use_fill:
            score += fill_similarity(all_boxes[firsts], all_boxes[seconds], size_a, size_b, image_size)
        appearance = appearance / len(parts) if parts else score / (use_size + use_fill)
        return score, appearance

    all_sizes = np.zeros(total)  # (2R-1,) pixels
    all_sizes[:num_initial] = regions.sizes
    all_boxes = np.zeros((total, 4))  # (2R-1, 4)
    all_boxes[:num_initial] = regions.boxes
    neighbours: list[set[int]] = [set() for _ in range(num_initial)]
    heap = []
    firsts, seconds = regions.pairs[:, 0], regions.pairs[:, 1]
    if len(regions.pairs):
        scores, appearances = pair_similarities(firsts, seconds)  # (P,), (P,)
        heap = list(zip((-scores).tolist(), firsts.tolist(), seconds.tolist(), appearances.tolist(),
                        strict=True))
        heapq.heapify(heap)
    for a, b in zip(firsts.tolist(), seconds.tolist(), strict=True):
        neighbours[a].add(b)
        neighbours[b].add(a)

    alive = [True] * num_initial
    merges, merged_similarities, merged_appearances = [], [], []
    new = num_initial
    while heap:
        negative, a, b, appearance = heapq.heappop(heap)
        if not (alive[a] and alive[b]):
            continue  # a pair of a region that has already been merged
        for part, _ in parts:
            part[new] = part[a] + part[b]  # Eq. 2, in counts
        all_sizes[new] = all_sizes[a] + all_sizes[b]
        all_boxes[new, :2] = np.minimum(all_boxes[a, :2], all_boxes[b, :2])  # union of the two boxes
        all_boxes[new, 2:] = np.maximum(all_boxes[a, 2:], all_boxes[b, 2:])
        alive[a] = alive[b] = False
        alive.append(True)
        around = (neighbours[a] | neighbours[b]) - {a, b}
        for other in around:
            neighbours[other] -= {a, b}
            neighbours[other].add(new)
        neighbours.append(around)
        merges.append((a, b))
        merged_similarities.append(-negative)
        merged_appearances.append(appearance)
        others = np.array(sorted(around), np.int64)
        scores, appearances = pair_similarities(others, np.full(len(others), new))  # (len(others),) each
        for item in zip(scores.tolist(), others.tolist(), appearances.tolist(), strict=True):
            heapq.heappush(heap, (-item[0], item[1], new, item[2]))
        new += 1
    if new != total:  # the regions of one image always form one connected graph
        raise AssertionError(f"grouping ended with {total - new + 1} regions; expected one")
    return Grouping(all_boxes, np.array(merges, np.int64).reshape(-1, 2), np.array(merged_similarities),
                    np.array(merged_appearances), all_sizes)

