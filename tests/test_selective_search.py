"""Tests of course_lib.classical.selective_search (and its _similarity / _grouping / _ground_truth parts)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from course_lib.classical._ground_truth import ANNOTATIONS, derive_coin_boxes, load_photo_annotations
from course_lib.classical._grouping import group_regions
from course_lib.classical._similarity import (
    intersections,
    neighbour_pairs,
    pixel_features,
    region_statistics,
)
from course_lib.classical.selective_search import (
    MODES,
    hierarchy_rank,
    rank_and_deduplicate,
    selective_search,
    selective_search_hierarchy,
)
from course_lib.data import ShapeScenes
from course_lib.proposals_eval import proposal_recall


def two_colour_image(height=32, width=64):
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (200, 30, 30)
    image[:, width // 2 :] = (20, 40, 220)
    return image


def boxes_as_set(boxes):
    return {tuple(box) for box in boxes.int().tolist()}


@pytest.fixture(scope="module")
def scene():
    return ShapeScenes.split("test").scene(0)


# ----------------------------------------------------------------------------- hand-checkable cases


@pytest.mark.parametrize("mode", ["single", "fast"])
def test_two_colour_image_gives_the_two_halves_and_the_whole(mode):
    boxes = selective_search(two_colour_image(), mode)
    assert boxes_as_set(boxes) == {(0, 0, 32, 32), (32, 0, 64, 32), (0, 0, 64, 32)}
    assert boxes.dtype == torch.float32 and boxes.shape == (3, 4)


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


PORTABLE_CASES = """
import numpy as np
from course_lib.classical._similarity import convert_color
from course_lib.classical.selective_search import selective_search
from course_lib.data import ShapeScenes
from course_lib.data.photos import load_photo

photo = load_photo("coins")[::2, ::2].copy()
scene = ShapeScenes.split("test").scene(16).image
upsampled = np.repeat(np.repeat(scene, 2, axis=0), 2, axis=1)  # flat areas: many equal edge weights
parts = [convert_color(photo, "lab"), selective_search(photo, "fast").numpy(),
         selective_search(upsampled, "fast").numpy()]
"""


def test_selective_search_is_the_same_with_numpys_baseline_loops():
    # Regression (a checked MABO and a recall moved on an AVX-512 CPU): NumPy's AVX2 / AVX-512 loops
    # changed the last bit of the float32 Lab conversion (texture bins, then the proposals of coins),
    # and its vectorized sort ordered equal edge weights of Felzenszwalb's graph differently (the
    # regions of an upsampled scene). Here a subprocess with NumPy's baseline loops only must get
    # the same bits as this process.
    digest = "import hashlib\nprint(hashlib.md5(b''.join(p.tobytes() for p in parts)).hexdigest())\n"
    code = PORTABLE_CASES + digest
    environment = dict(os.environ, NPY_DISABLE_CPU_FEATURES="X86_V3 X86_V4 AVX512_ICL AVX512_SPR")
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    namespace: dict = {}
    exec(PORTABLE_CASES, namespace)
    here = hashlib.md5(b"".join(part.tobytes() for part in namespace["parts"])).hexdigest()
    assert result.stdout.strip() == here


def test_neighbour_pairs_are_four_connected():
    labels = np.array([[0, 1], [2, 3]])
    assert neighbour_pairs(labels).tolist() == [[0, 1], [0, 2], [1, 3], [2, 3]]  # not 0-3 or 1-2


def test_ranking_follows_the_hierarchy_and_removes_duplicates():
    rng = np.random.default_rng(0)
    ranks = hierarchy_rank(5, rng)
    assert ranks[-1] <= 1 and np.all(ranks >= 0) and np.all(ranks <= np.arange(5, 0, -1))
    boxes = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [0, 0, 2, 2]], np.float64)
    kept = rank_and_deduplicate(boxes, np.array([3.0, 2.0, 1.0]))
    assert kept.tolist() == [[0, 0, 2, 2], [1, 1, 3, 3]]  # the best-ranked copy comes first


# ----------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("mode", ["single", "fast"])
def test_proposals_are_valid_unique_and_inside_the_image(scene, mode):
    boxes = selective_search(scene.image, mode)
    height, width = scene.image.shape[:2]
    assert boxes.dtype == torch.float32 and boxes.dim() == 2 and boxes.shape[1] == 4 and len(boxes) > 3
    assert torch.all(boxes[:, :2] >= 0)
    assert torch.all(boxes[:, 2] <= width) and torch.all(boxes[:, 3] <= height)
    assert torch.all(boxes[:, 2:] > boxes[:, :2])
    assert torch.equal(boxes, boxes.round())
    assert len(boxes_as_set(boxes)) == len(boxes)  # duplicates removed
    assert (0, 0, width, height) in boxes_as_set(boxes)


def test_deterministic_for_a_seed_and_the_seed_only_reorders(scene):
    first = selective_search(scene.image, "fast", seed=3)
    assert torch.equal(first, selective_search(scene.image, "fast", seed=3))
    other = selective_search(scene.image, "fast", seed=4)
    assert not torch.equal(first, other) and boxes_as_set(first) == boxes_as_set(other)


def test_more_strategies_give_more_proposals(scene):
    single = boxes_as_set(selective_search(scene.image, "single"))
    fast = boxes_as_set(selective_search(scene.image, "fast"))
    assert single <= fast and len(fast) > len(single)


def test_quality_mode_runs_its_eighty_strategies_on_a_small_image():
    colour_spaces, ks, similarities = MODES["quality"]
    assert len(colour_spaces) * len(ks) * len(similarities) == 80
    image = np.ascontiguousarray(ShapeScenes.split("test").scene(1).image[::2, ::2])  # 64 x 64
    boxes = selective_search(image, "quality")
    assert boxes_as_set(selective_search(image, "fast")) <= boxes_as_set(boxes) | {(0, 0, 64, 64)}


def test_hierarchy_merges_down_to_the_whole_image(scene):
    hierarchy = selective_search_hierarchy(scene.image, "lab", k=50, similarity="TSF")
    num_initial = hierarchy.num_initial
    height, width = scene.image.shape[:2]
    assert hierarchy.labels.max() + 1 == num_initial and len(hierarchy.boxes) == 2 * num_initial - 1
    assert hierarchy.boxes[-1].tolist() == [0, 0, width, height]  # the whole image is the last merge
    np.testing.assert_array_equal(hierarchy.labels_at(0), hierarchy.labels)
    assert np.all(hierarchy.labels_at(num_initial - 1) == 2 * num_initial - 2)
    for step in (1, num_initial // 2, num_initial - 1):
        new = num_initial + step - 1  # the region made by the step-th merge
        rows, cols = np.nonzero(hierarchy.labels_at(step) == new)
        assert hierarchy.boxes[new].tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


def test_oracle_recall_against_opencv_on_a_few_scenes():
    cv2.setNumThreads(1)
    scenes = ShapeScenes.split("test")
    ours, theirs, gt = [], [], []
    for index in range(6):
        scene = scenes.scene(index)
        ours.append(selective_search(scene.image, "fast"))
        search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
        search.setBaseImage(np.ascontiguousarray(scene.image[:, :, ::-1]))
        search.switchToSelectiveSearchFast()
        rects = torch.from_numpy(search.process().astype(np.float32))
        theirs.append(torch.cat((rects[:, :2], rects[:, :2] + rects[:, 2:]), dim=1))
        gt.append(torch.from_numpy(scene.boxes))
    ours_recall, their_recall = proposal_recall(ours, gt), proposal_recall(theirs, gt)
    assert ours_recall[500] >= their_recall[500] > 0.5
    # OpenCV ranks with an unseeded rand(): compare at counts above its ~75 proposals per image.
    assert ours_recall[200] >= their_recall[200] - 0.05


# ----------------------------------------------------------------------------- ground truth files


def test_shipped_coin_boxes_are_rederived_exactly():
    shipped = json.loads((ANNOTATIONS / "coins.json").read_text())
    np.testing.assert_array_equal(derive_coin_boxes(), np.array(shipped["boxes"], np.float32))
    assert len(shipped["boxes"]) == 24


@pytest.mark.parametrize(("name", "count", "size"), [("coins", 24, (384, 303)), ("astronaut", 7, (512, 512))])
def test_photo_annotations_are_valid_boxes(name, count, size):
    annotations = load_photo_annotations(name)
    boxes = annotations["boxes"]
    assert boxes.shape == (count, 4) and len(annotations["names"]) == count
    assert torch.all(boxes[:, 2:] > boxes[:, :2]) and torch.all(boxes >= 0)
    assert torch.all(boxes[:, 2] <= size[0]) and torch.all(boxes[:, 3] <= size[1])
    with pytest.raises(ValueError, match="expected one of"):
        load_photo_annotations("moon")


# ----------------------------------------------------------------------------- bad input


def test_grey_images_are_repeated_on_three_channels():
    grey = two_colour_image()[:, :, 0]
    expected = selective_search(np.repeat(grey[:, :, None], 3, axis=2), "single")
    assert torch.equal(selective_search(grey, "single"), expected)
    assert torch.equal(selective_search(grey[:, :, None], "single"), expected)


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (two_colour_image().astype(np.float32) / 255, TypeError, "expected dtype uint8.*img_as_ubyte"),
        (np.zeros((32, 32, 4), np.uint8), ValueError, "alpha"),
        (np.zeros((32, 32, 2), np.uint8), ValueError, r"expected shape \(H, W, 3\)"),
        (np.zeros((4, 32, 3), np.uint8), ValueError, "both sides >= 8"),
        (np.zeros((0, 0, 3), np.uint8), ValueError, "non-empty"),
        (torch.zeros(3, 32, 32), TypeError, "permute"),
        ([[1, 2], [3, 4]], TypeError, "np.ndarray"),
    ],
)
def test_bad_images_get_a_clear_error(image, error, match):
    with pytest.raises(error, match=match):
        selective_search(image)


def test_bad_options_list_the_valid_ones():
    image = two_colour_image()
    with pytest.raises(ValueError, match="'single', 'fast', 'quality'"):
        selective_search(image, mode="slow")
    with pytest.raises(TypeError, match="seed"):
        selective_search(image, seed=0.5)
    with pytest.raises(ValueError, match="subset of 'CTSF'"):
        selective_search_hierarchy(image, similarity="CX")
    with pytest.raises(ValueError, match="color_space"):
        selective_search_hierarchy(image, color_space="xyz")
    with pytest.raises(ValueError, match="step"):
        selective_search_hierarchy(image).labels_at(5)
