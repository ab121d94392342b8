"""Tests of course_lib.classical.similarity: colour spaces, region statistics, the four similarities."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.classical.grouping import group_regions
from course_lib.classical.similarity import (
    fill_similarity,
    intersections,
    neighbour_pairs,
    pixel_features,
    region_similarities,
    region_statistics,
    size_similarity,
)


def test_propagated_histograms_equal_histograms_recomputed_from_pixels():
    rng = np.random.default_rng(1)
    image = rng.random((10, 10, 3)).astype(np.float32)
    labels = np.repeat((np.arange(10) // 3)[None], 10, axis=0)  # 4 stripes of 3, 3, 3, 1 columns
    features = pixel_features(image)
    regions = region_statistics(labels, features)
    together = region_statistics(np.where(labels == 3, 2, labels), features)  # stripes 2 and 3 as one
    weights = regions.sizes[2:4, None]
    np.testing.assert_allclose((weights * regions.texture[2:4]).sum(0) / weights.sum(), together.texture[2])
    np.testing.assert_allclose((weights * regions.color[2:4]).sum(0) / weights.sum(), together.color[2])
    np.testing.assert_allclose(regions.color.sum(1), 1)
    np.testing.assert_allclose(regions.texture.sum(1), 1)


def test_integer_intersections_equal_the_float_formula():
    # Oracle: sum_k min(h_a^k, h_b^k) on normalized float histograms, for random counts.
    rng = np.random.default_rng(0)
    for entries in (1, 3, 24):
        sizes_a, sizes_b = rng.integers(1, 500, 40), rng.integers(1, 500, 40)  # (P,)
        counts_a = np.stack([rng.multinomial(entries * n, np.ones(30) / 30) for n in sizes_a])  # (P, 30)
        counts_b = np.stack([rng.multinomial(entries * n, np.ones(30) / 30) for n in sizes_b])
        hist_a, hist_b = counts_a / (entries * sizes_a[:, None]), counts_b / (entries * sizes_b[:, None])
        expected = np.minimum(hist_a, hist_b)
        got = intersections(counts_a, counts_b, sizes_a.astype(float), sizes_b.astype(float), entries)
        np.testing.assert_allclose(got, expected.sum(axis=1), rtol=0, atol=1e-12)
    identical = intersections(counts_a[:1], counts_a[:1], sizes_a[:1], sizes_a[:1], entries)
    assert identical.tolist() == [1.0]  # a histogram meets itself fully, exactly


def test_intersections_do_not_depend_on_the_order_of_the_bins():
    # Exact integer sums: any order of the terms gives the same bits (a float sum would not).
    rng = np.random.default_rng(1)
    counts_a, counts_b = rng.integers(0, 50, (20, 75)), rng.integers(0, 50, (20, 75))
    sizes_a, sizes_b = counts_a.sum(1) // 3 + 1, counts_b.sum(1) // 3 + 1
    permutation = rng.permutation(75)
    first = intersections(counts_a, counts_b, sizes_a, sizes_b, 3)
    permuted = intersections(counts_a[:, permutation], counts_b[:, permutation], sizes_a, sizes_b, 3)
    assert first.tobytes() == permuted.tobytes()


def test_neighbour_pairs_are_four_connected():
    labels = np.array([[0, 1], [2, 3]])
    assert neighbour_pairs(labels).tolist() == [[0, 1], [0, 2], [1, 3], [2, 3]]  # not 0-3 or 1-2




def test_size_and_fill_similarities_by_hand():
    # Regions of 2 and 3 pixels in a 20-pixel image; their boxes span a 2 x 4 box (8 pixels).
    sizes_a, sizes_b = np.array([2.0]), np.array([3.0])
    boxes_a, boxes_b = np.array([[0.0, 0.0, 2.0, 1.0]]), np.array([[1.0, 1.0, 4.0, 2.0]])
    assert size_similarity(sizes_a, sizes_b, 20.0).tolist() == [0.75]  # 1 - 5 / 20
    assert fill_similarity(boxes_a, boxes_b, sizes_a, sizes_b, 20.0).tolist() == [0.85]  # 1 - (8 - 5) / 20


def test_region_similarities_are_what_grouping_adds_up():
    rng = np.random.default_rng(3)
    image = rng.random((12, 12, 3)).astype(np.float32)
    labels = np.repeat((np.arange(12) // 4)[None], 12, axis=0)  # three stripes of 4 columns
    regions = region_statistics(labels, pixel_features(image))
    grouping = group_regions(regions, "CTSF")
    first = grouping.merges[0].tolist()
    parts = region_similarities(regions, *first)
    assert set(parts) == {"colour", "texture", "size", "fill"} and all(0 <= v <= 1 for v in parts.values())
    assert sum(parts.values()) == pytest.approx(grouping.similarities[0], abs=1e-12)
    hist_a, hist_b = regions.color[first[0]], regions.color[first[1]]  # the float formula as the oracle
    assert parts["colour"] == pytest.approx(np.minimum(hist_a, hist_b).sum(), abs=1e-12)
    assert parts["size"] == pytest.approx(1 - 96 / 144) and parts["fill"] == pytest.approx(1.0)
