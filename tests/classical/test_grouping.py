"""Tests of course_lib.classical.grouping: hierarchical grouping merges the most similar pair first."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.classical.grouping import group_regions
from course_lib.classical.similarity import (
    pixel_features,
    region_statistics,
)


def test_colour_similarity_merges_the_closest_colours_first():
    # Three stripes: red, dark red, blue. By colour, red and dark red go together first.
    image = np.zeros((8, 12, 3), np.float32)
    image[:, :4], image[:, 4:8], image[:, 8:] = (0.9, 0.1, 0.1), (0.7, 0.1, 0.1), (0.1, 0.1, 0.9)
    labels = np.repeat((np.arange(12) // 4)[None], 8, axis=0)
    regions = region_statistics(labels, pixel_features(image))
    grouping = group_regions(regions, "C")
    assert grouping.merges.tolist() == [[0, 1], [2, 3]]
    assert grouping.boxes[3].tolist() == [0, 0, 8, 8] and grouping.boxes[4].tolist() == [0, 0, 12, 8]


def test_size_similarity_merges_the_smallest_pair_first():
    labels = np.array([[0, 0, 0, 0, 1, 2], [0, 0, 0, 0, 1, 2]])  # sizes 8, 2, 2
    regions = region_statistics(labels, pixel_features(np.zeros((2, 6, 3), np.float32)))
    grouping = group_regions(regions, "S")
    assert grouping.merges[0].tolist() == [1, 2]
    # size: 1 - (2 + 2) / 12 = 2 / 3
    assert grouping.similarities[0] == pytest.approx(2 / 3)


def test_fill_similarity_prefers_regions_that_fill_their_box():
    # Region 1 fits in the notch of region 0 (fill 1); region 2 touches 0 only at its far corner.
    labels = np.array([[0, 0, 0, 2], [0, 1, 0, 2], [0, 0, 0, 2]])
    regions = region_statistics(labels, pixel_features(np.zeros((3, 4, 3), np.float32)))
    grouping = group_regions(regions, "F")
    assert grouping.merges[0].tolist() == [0, 1]
    assert grouping.similarities[0] == pytest.approx(1.0)  # box of 0 and 1 = their pixels


