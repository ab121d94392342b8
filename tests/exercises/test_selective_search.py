"""Tests of the merge-regions checker: it passes correct solutions and catches typical mistakes with a hint.

The wrong answers are written the way students write them, not through the checker's ``_merged``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.classical.grouping import group_regions
from course_lib.classical.similarity import pixel_features, region_statistics
from course_lib.exercises.selective_search import MERGE_REGIONS, check_merge_regions


def good_merge(a, b):
    size = a["size"] + b["size"]
    hist = (a["size"] * np.asarray(a["hist"]) + b["size"] * np.asarray(b["hist"])) / size
    box = [min(a["box"][0], b["box"][0]), min(a["box"][1], b["box"][1]),
           max(a["box"][2], b["box"][2]), max(a["box"][3], b["box"][3])]
    return {"hist": hist, "size": size, "box": box}


def torch_merge(a, b):
    merged = good_merge(a, b)
    return {"hist": torch.tensor(merged["hist"]), "size": torch.tensor(merged["size"]),
            "box": torch.tensor(merged["box"])}


def plain_average(a, b):
    return {**good_merge(a, b), "hist": (np.asarray(a["hist"]) + np.asarray(b["hist"])) / 2}


def not_renormalized(a, b):
    return {**good_merge(a, b), "hist": a["size"] * np.asarray(a["hist"]) + b["size"] * np.asarray(b["hist"])}


def max_size(a, b):
    return {**good_merge(a, b), "size": max(a["size"], b["size"])}


def box_intersection(a, b):
    box = [max(a["box"][0], b["box"][0]), max(a["box"][1], b["box"][1]),
           min(a["box"][2], b["box"][2]), min(a["box"][3], b["box"][3])]
    return {**good_merge(a, b), "box": box}


def returns_tuple(a, b):
    merged = good_merge(a, b)
    return merged["hist"], merged["size"], merged["box"]


def stub(a, b):
    raise NotImplementedError


@pytest.mark.parametrize("solution", [good_merge, torch_merge])
def test_correct_solutions_pass(solution, capsys):
    result = check_merge_regions(solution)
    assert result and result.num_cases == len(MERGE_REGIONS.cases)
    assert "All" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (plain_average, "plain average"),
        (not_renormalized, "sums to 1 again"),
        (max_size, "not the max"),
        (box_intersection, "not an intersection"),
    ],
)
def test_typical_mistakes_are_caught_with_their_hint(wrong, hint, capsys):
    result = check_merge_regions(wrong)
    assert not result
    assert hint in result.failures[0]
    assert hint in capsys.readouterr().out


def test_wrong_return_type_and_stub_are_reported():
    result = check_merge_regions(returns_tuple, verbose=False)
    assert not result and "expected a dict" in result.failures[0]
    result = check_merge_regions(stub, verbose=False)
    assert not result and "not attempted yet" in result.failures[0]
    assert not check_merge_regions("not a function", verbose=False)


def test_reference_agrees_with_the_library_propagation():
    """The exercise's reference is what grouping does: merging two stripes equals recomputing them."""
    rng = np.random.default_rng(0)
    image = rng.random((8, 12, 3)).astype(np.float32)
    labels = np.repeat(np.array([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2])[None], 8, axis=0)
    features = pixel_features(image)
    regions = region_statistics(labels, features)
    a = {"hist": regions.color[0], "size": regions.sizes[0], "box": regions.boxes[0].tolist()}
    b = {"hist": regions.color[1], "size": regions.sizes[1], "box": regions.boxes[1].tolist()}
    merged = MERGE_REGIONS.reference(a, b)
    recomputed = region_statistics(np.minimum(labels, 1) * (labels // 2), features)  # stripes 0+1 -> 0
    np.testing.assert_allclose(merged["hist"], recomputed.color[0], atol=1e-12)
    assert merged["size"] == recomputed.sizes[0]
    assert merged["box"] == recomputed.boxes[0].tolist()
    assert len(group_regions(regions, "C").merges) == 2
