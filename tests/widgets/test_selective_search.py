"""Tests for course_lib.widgets.selective_search (the selective search explorer of notebook 04)."""

import contextlib
import io
import re

import numpy as np
import pytest
import torch
import torchvision.ops
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage

from course_lib.classical.selective_search import selective_search_hierarchy
from course_lib.data import ShapeScenes
from course_lib.metrics.proposals import proposal_recall
from course_lib.widgets.selective_search import (
    K_VALUES,
    SIMILARITY_SETS,
    SelectiveSearchExplorer,
    ranked_proposals,
    region_palette,
    selective_search_view,
)


def two_colour_image(height=32, width=64):
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (200, 30, 30)
    image[:, width // 2 :] = (20, 40, 220)
    return image


@pytest.fixture(scope="module")
def scene():
    return ShapeScenes.split("test").scene(0)


@pytest.fixture(scope="module")
def hierarchy(scene):
    return selective_search_hierarchy(scene.image, "hsv", 100, "CTSF")


def _status_numbers(explorer):
    pattern = r"step (\d+) of (\d+): (\d+) regions?.* (\d+) of (\d+) proposals?"
    match = re.search(pattern, explorer.status.value)
    assert match, explorer.status.value
    return tuple(int(group) for group in match.groups())


# --- selective_search_view --------------------------------------------------------------------
def test_view_hand_computed_two_halves():
    hierarchy = selective_search_hierarchy(two_colour_image(), k=100)
    left = torch.tensor([[0.0, 0.0, 32.0, 32.0]])
    start = selective_search_view(hierarchy, step=0, num_proposals=0, gt_boxes=left)
    assert (start["num_initial"], start["num_steps"], start["num_regions"]) == (2, 1, 2)
    assert sorted(start["region_boxes"].tolist()) == [[0, 0, 32, 32], [32, 0, 64, 32]]
    assert start["merged"] is None and start["merged_box"] is None and start["similarity"] is None
    assert start["recall"] == 0.0 and start["found"].tolist() == [False]  # no proposal shown yet
    end = selective_search_view(hierarchy, step=1, num_proposals=3, gt_boxes=left)
    assert end["num_regions"] == 1 and set(np.unique(end["labels"])) == {2}
    assert end["merged"] == (0, 1) and end["merged_box"] == [0, 0, 64, 32]
    assert end["region_boxes"].tolist() == [[0, 0, 64, 32]]
    assert end["total_proposals"] == 3 and end["recall"] == 1.0
    assert end["best_overlaps"].tolist() == [1.0]


def test_view_regions_match_a_brute_force_replay_of_the_merges(hierarchy):
    num_initial = hierarchy.num_initial
    members = {index: {index} for index in range(num_initial)}  # region id -> initial regions
    for step in range(hierarchy.num_initial):
        view = selective_search_view(hierarchy, step, 5)
        alive = sorted(np.unique(view["labels"]).tolist())
        assert len(alive) == view["num_regions"] == num_initial - step
        for region, box in zip(alive, view["region_boxes"].tolist(), strict=True):
            mask = np.isin(hierarchy.labels, sorted(members[region]))
            assert np.array_equal(view["labels"] == region, mask)
            (rows, cols), = [ndimage.find_objects(mask.astype(int))[0]]
            assert box == [cols.start, rows.start, cols.stop, rows.stop]  # the tight box of its pixels
        colours = view["region_image"][view["labels"] == alive[0]]
        assert (colours == colours[0]).all()  # one colour per region
        if step < len(hierarchy.merges):
            a, b = hierarchy.merges[step].tolist()
            members[num_initial + step] = members[a] | members[b]


@settings(max_examples=20)
@given(num_proposals=st.integers(0, 60), iou_threshold=st.floats(0.0, 1.0), seed=st.integers(0, 2**31 - 1))
def test_view_recall_matches_proposal_recall_and_torchvision(hierarchy, scene, num_proposals, iou_threshold,
                                                              seed):
    gt_boxes = torch.from_numpy(scene.boxes)
    view = selective_search_view(hierarchy, 0, num_proposals, gt_boxes, iou_threshold, seed=seed)
    shown = ranked_proposals(hierarchy, seed)[:num_proposals]
    assert torch.equal(view["proposals"], shown) and view["num_proposals"] == len(shown)
    expected = proposal_recall(shown, gt_boxes, iou_threshold, counts=(num_proposals,))[num_proposals]
    assert view["recall"] == pytest.approx(expected)
    if num_proposals:
        best = torchvision.ops.box_iou(shown, gt_boxes).max(dim=0).values
        torch.testing.assert_close(view["best_overlaps"], best)


def test_ranked_proposals_are_the_unique_hierarchy_boxes_whole_image_included(hierarchy, scene):
    proposals = ranked_proposals(hierarchy)
    assert {tuple(b) for b in proposals.tolist()} == {tuple(b) for b in hierarchy.boxes.tolist()}
    assert len(proposals) == len({tuple(b) for b in proposals.tolist()})
    assert [0, 0, 128, 128] in proposals.tolist()
    assert torch.equal(proposals, ranked_proposals(hierarchy))  # deterministic for a seed
    assert not torch.equal(proposals, ranked_proposals(hierarchy, seed=1))  # the seed reorders


def test_view_clamps_step_and_count_and_handles_missing_or_empty_ground_truth(hierarchy):
    view = selective_search_view(hierarchy, step=10**6, num_proposals=10**6)
    assert view["step"] == view["num_steps"] and view["num_regions"] == 1
    assert view["num_proposals"] == view["total_proposals"]
    assert view["recall"] is None and view["found"].shape == (0,)
    empty = selective_search_view(hierarchy, 0, 10, gt_boxes=torch.zeros(0, 4))
    assert empty["recall"] == 0.0 and empty["found"].shape == (0,)


def test_region_palette_is_fixed_and_bright_enough():
    palette = region_palette(50)
    assert palette.shape == (50, 3) and palette.dtype == np.float32
    assert np.array_equal(palette, region_palette(50)) and (palette >= 0.15).all() and (palette <= 0.95).all()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"hierarchy": "tree"}, TypeError, "hierarchy: expected a Hierarchy, got str"),
        ({"step": -1}, ValueError, r"step: expected a value in \[0, inf\]"),
        ({"num_proposals": 2.5}, TypeError, "num_proposals: expected an int"),
        ({"iou_threshold": 1.5}, ValueError, r"iou_threshold: expected a value in \[0.0, 1.0\]"),
        ({"gt_boxes": torch.zeros(3)}, ValueError, "gt_boxes: expected"),
    ],
)
def test_view_rejects_bad_input(hierarchy, kwargs, error, match):
    arguments = {"hierarchy": hierarchy, "step": 0, "num_proposals": 5, **kwargs}
    with pytest.raises(error, match=match):
        selective_search_view(**arguments)


# --- SelectiveSearchExplorer ------------------------------------------------------------------
def test_explorer_starts_at_the_over_segmentation_with_twenty_proposals(scene, hierarchy):
    explorer = SelectiveSearchExplorer(scene.image, torch.from_numpy(scene.boxes))
    step, count = explorer.controls["step"], explorer.controls["num_proposals"]
    assert (step.value, step.max) == (0, hierarchy.num_initial - 1)
    total = len(ranked_proposals(hierarchy))
    assert count.value == min(20, total) and count.max == total
    assert _status_numbers(explorer)[:3] == (0, hierarchy.num_initial - 1, hierarchy.num_initial)
    assert "recall@IoU≥0.5" in explorer.status.value
    left, right = explorer.axes
    assert len(left.images) == 1 and len(right.images) == 1 and len(right.collections) == 2
    assert Image.open(io.BytesIO(explorer.png)).mode == "P"  # a photo: a 256-colour PNG


def test_explorer_sliders_at_their_extremes(scene):
    gt_boxes = torch.from_numpy(scene.boxes)
    explorer = SelectiveSearchExplorer(scene.image, gt_boxes)
    step, count = explorer.controls["step"], explorer.controls["num_proposals"]
    step.value = step.max
    assert explorer.result["num_regions"] == 1 and explorer.result["merged_box"] == [0, 0, 128, 128]
    assert len(explorer.axes[0].collections) == 2  # the region boxes and the merged one
    count.value = count.max
    total = explorer.result["total_proposals"]
    proposals = ranked_proposals(explorer.cache[("hsv", "CTSF", 100)][0])
    expected = proposal_recall(proposals, gt_boxes, counts=(total,))[total]
    assert explorer.result["recall"] == pytest.approx(expected)
    count.value = 0
    assert explorer.result["recall"] == 0.0 and not explorer.result["found"].any()
    step.value = 0
    assert explorer.result["num_regions"] == explorer.result["num_initial"]
    assert explorer.result["merged"] is None


def test_explorer_caches_one_hierarchy_per_strategy_and_follows_the_last_step(scene):
    explorer = SelectiveSearchExplorer(scene.image)
    assert list(explorer.cache) == [("hsv", "CTSF", 100)]
    step = explorer.controls["step"]
    step.value = step.max  # at the end: a new hierarchy keeps showing its last merge
    for similarity in SIMILARITY_SETS:
        explorer.controls["similarity"].value = similarity
        assert step.value == step.max == explorer.result["num_steps"]
    for k in K_VALUES:
        explorer.controls["k"].value = k
        assert step.max == explorer.result["num_steps"] and explorer.result["step"] == step.value
    explorer.controls["color_space"].value = "lab"
    assert len(explorer.cache) == len(SIMILARITY_SETS) + len(K_VALUES) - 1 + 1
    cached = explorer.cache[("lab", SIMILARITY_SETS[-1], K_VALUES[-1])][0]
    explorer.controls["k"].value = 100
    explorer.controls["k"].value = K_VALUES[-1]
    assert explorer.cache[("lab", SIMILARITY_SETS[-1], K_VALUES[-1])][0] is cached  # not recomputed
    assert explorer.result["recall"] is None and "recall" not in explorer.status.value


def test_explorer_chosen_step_stays_when_the_hierarchy_grows(scene):
    explorer = SelectiveSearchExplorer(scene.image, k=300)
    explorer.controls["step"].value = 1
    explorer.controls["k"].value = 50  # a finer segmentation: more steps, the chosen one stays
    assert explorer.controls["step"].value == 1 == explorer.result["step"]


def test_explorer_on_a_grey_two_region_image():
    grey = two_colour_image()[:, :, 0]
    explorer = SelectiveSearchExplorer(grey, torch.tensor([[0.0, 0.0, 64.0, 32.0]]))
    explorer.controls["num_proposals"].value = explorer.controls["num_proposals"].max
    assert explorer.result["recall"] == 1.0  # the whole image is always a proposal


def test_explorer_on_a_uniform_image_has_one_region_and_no_merge():
    uniform = np.full((16, 16, 3), 128, np.uint8)
    explorer = SelectiveSearchExplorer(uniform, torch.tensor([[0.0, 0.0, 16.0, 16.0]]))
    assert _status_numbers(explorer) == (0, 0, 1, 1, 1) and explorer.result["recall"] == 1.0
    explorer.controls["step"].value = explorer.controls["step"].max
    assert explorer.controls["step"].value == explorer.result["step"] == 0
    explorer.controls["num_proposals"].value = 0
    assert explorer.result["recall"] == 0.0 and explorer.png.startswith(b"\x89PNG")


def test_explorer_is_print_free(scene):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        explorer = SelectiveSearchExplorer(scene.image)
        explorer.controls["step"].value = 3
        explorer.controls["similarity"].value = "F"
    assert stdout.getvalue() == ""


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"image": np.zeros((32, 32, 4), np.uint8)}, ValueError, r"drop the alpha channel"),
        ({"k": 75}, ValueError, "k: expected one of"),
        ({"similarity": "XY"}, ValueError, "similarity: expected one of"),
        ({"gt_boxes": torch.zeros(2, 3)}, ValueError, "gt_boxes: expected"),
    ],
)
def test_explorer_rejects_bad_input(kwargs, error, match):
    arguments = {"image": two_colour_image(), **kwargs}
    with pytest.raises(error, match=match):
        SelectiveSearchExplorer(**arguments)
