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

from course_lib.classical._similarity import Regions

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


def group_regions(regions: Regions, similarity: str) -> Grouping:
    """Merge the most similar neighbours until one region is left (Algorithm 1 of the paper).

    Args:
        regions: initial regions with their histograms, sizes, boxes and neighbour pairs.
        similarity: the similarities to add up, a subset of ``"CTSF"`` (e.g. ``"TSF"``).

    Returns:
        The boxes of all 2R - 1 regions and the merge list.
    """
    num_initial = len(regions.sizes)
    total = 2 * num_initial - 1
    image_size = float(regions.sizes.sum())
    parts = [hist for letter, hist in (("C", regions.color), ("T", regions.texture)) if letter in similarity]
    # Colour and texture are both intersections of histograms propagated with the same weights, so
    # one concatenated histogram gives their sum in one pass.
    width = sum(part.shape[1] for part in parts)
    hist = np.empty((total, width))  # (2R-1, D)
    if parts:
        hist[:num_initial] = np.concatenate(parts, axis=1)
    use_size, use_fill = "S" in similarity, "F" in similarity

    def pair_similarities(firsts: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Similarities of the initial pairs ``(firsts[p], seconds[p])``, all at once: (P,)."""
        score = np.zeros(len(firsts))
        if parts:
            score += np.minimum(hist[firsts], hist[seconds]).sum(axis=1)
        pair_size = regions.sizes[firsts] + regions.sizes[seconds]
        if use_size:
            score += 1 - pair_size / image_size
        if use_fill:
            low = np.minimum(regions.boxes[firsts, :2], regions.boxes[seconds, :2])  # (P, 2)
            high = np.maximum(regions.boxes[firsts, 2:], regions.boxes[seconds, 2:])  # (P, 2)
            score += 1 - (np.prod(high - low, axis=1) - pair_size) / image_size
        return score

    neighbours: list[set[int]] = [set() for _ in range(num_initial)]
    heap = []
    firsts, seconds = regions.pairs[:, 0], regions.pairs[:, 1]
    if len(regions.pairs):
        scores = pair_similarities(firsts, seconds)  # (P,)
        heap = list(zip((-scores).tolist(), firsts.tolist(), seconds.tolist(), strict=True))
        heapq.heapify(heap)
    for a, b in zip(firsts.tolist(), seconds.tolist(), strict=True):
        neighbours[a].add(b)
        neighbours[b].add(a)

    # One merge touches a handful of regions: plain Python lists for sizes and boxes are faster
    # there than numpy calls; only the histograms stay in numpy.
    sizes, boxes = regions.sizes.tolist(), regions.boxes.tolist()
    alive = [True] * num_initial
    merges, merged_similarities = [], []
    new = num_initial
    while heap:
        negative, a, b = heapq.heappop(heap)
        if not (alive[a] and alive[b]):
            continue  # a pair of a region that has already been merged
        size_a, size_b = sizes[a], sizes[b]
        size = size_a + size_b
        if parts:
            hist[new] = (size_a * hist[a] + size_b * hist[b]) / size  # Eq. 2: propagate, not recompute
        box_a, box_b = boxes[a], boxes[b]
        box = [min(box_a[0], box_b[0]), min(box_a[1], box_b[1])]
        box += [max(box_a[2], box_b[2]), max(box_a[3], box_b[3])]  # union of the two boxes
        sizes.append(size)
        boxes.append(box)
        alive[a] = alive[b] = False
        alive.append(True)
        around = (neighbours[a] | neighbours[b]) - {a, b}
        for other in around:
            neighbours[other] -= {a, b}
            neighbours[other].add(new)
        neighbours.append(around)
        merges.append((a, b))
        merged_similarities.append(-negative)
        others = sorted(around)
        scores = np.minimum(hist[others], hist[new]).sum(axis=1).tolist() if parts else [0.0] * len(others)
        for score, other in zip(scores, others, strict=True):
            if use_size:
                score += 1 - (sizes[other] + size) / image_size
            if use_fill:
                box_o = boxes[other]
                box_area = (max(box_o[2], box[2]) - min(box_o[0], box[0])) * (
                    max(box_o[3], box[3]) - min(box_o[1], box[1])
                )
                score += 1 - (box_area - sizes[other] - size) / image_size
            heapq.heappush(heap, (-score, other, new))
        new += 1
    if new != total:  # the regions of one image always form one connected graph
        raise AssertionError(f"grouping ended with {total - new + 1} regions; expected one")
    boxes = np.array(boxes, np.float64).reshape(-1, 4)  # (2R-1, 4)
    return Grouping(boxes, np.array(merges, np.int64).reshape(-1, 2), np.array(merged_similarities))

