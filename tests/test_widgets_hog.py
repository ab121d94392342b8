"""Tests for course_lib.widgets.hog: the HOG explorer, the detector explorer and their pure functions."""

import matplotlib

matplotlib.use("Agg")  # no display needed; set before pyplot is imported

import base64  # noqa: E402
import io  # noqa: E402
import re  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import skimage.feature  # noqa: E402
import torch  # noqa: E402
import torchvision.ops  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

from course_lib.classical.faces import astronaut_face_box, lfw_crops, random_negative_crops  # noqa: E402
from course_lib.classical.hog import cell_histograms, hog, hog_glyph, normalize_blocks  # noqa: E402
from course_lib.classical.sliding_window import SlidingWindowDetector  # noqa: E402
from course_lib.data import load_photo  # noqa: E402
from course_lib.widgets.base import Explorer  # noqa: E402
from course_lib.widgets.hog import (  # noqa: E402
    MAX_CANDIDATES,
    DetectorExplorer,
    HOGExplorer,
    detector_view,
    hog_view,
    normalized_cell_histograms,
    scored_windows,
    shrink,
)

PHOTO_SIDE = 192  # the astronaut, shrunk: every test stays fast


@pytest.fixture(autouse=True)
def no_figures_left():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "an explorer left a pyplot figure open"


@pytest.fixture(scope="module")
def photo():
    return shrink(load_photo("astronaut"), PHOTO_SIDE)  # (192, 192, 3) float in [0, 1]


@pytest.fixture(scope="module")
def face_box():
    return astronaut_face_box() * PHOTO_SIDE / 512  # (1, 4) in the shrunk photo's pixels


@pytest.fixture(scope="module")
def detector():
    """A small face detector: LFW faces against LFW non-faces and random crops, no mining (fast)."""
    faces, non_faces = lfw_crops()
    negatives = list(non_faces) + random_negative_crops(100, seed=0)
    args = {"window_size": (24, 24), "pixels_per_cell": (6, 6), "grey": True, "scale_step": 1.25, "C": 1.0,
            "score_threshold": 0.0, "iou_threshold": 0.3}
    return SlidingWindowDetector(**args).fit(list(faces), negatives, rounds=0)


def _shown_png(explorer):
    (output,) = explorer.output.outputs
    assert output["output_type"] == "display_data"
    return base64.b64decode(output["data"]["image/png"])


def _vertical_edge(size=16):
    image = np.zeros((size, size))
    image[:, size // 2 :] = 1.0  # dark left half, bright right half
    return image


# --- hog_view ---------------------------------------------------------------------------------
def test_hog_view_hand_computed_vertical_edge():
    # The edge columns 7 and 8 have gradient (row 0, col 1): angle 0, halfway between the centres of
    # bin 8 (170 deg) and bin 0 (10 deg), so each pixel puts 1/2 in each. A cell of 8 x 8 holds 8
    # such pixels: 8 * 1/2 / 64 in bins 0 and 8; with 1-cell blocks and L1 each cell becomes 1/2, 1/2.
    view = hog_view(_vertical_edge(), pixels_per_cell=8, orientations=9, block_norm="L1", cells_per_block=1)
    assert view["cells"] == (2, 2) and view["blocks"] == (2, 2)
    assert view["num_features"] == view["formula_num_features"] == 2 * 2 * 1 * 1 * 9
    expected = np.zeros((4, 9))
    expected[:, [0, 8]] = (1 / 16) / (1 / 8 + 1e-5)  # L1: v / (|v|_1 + eps), eps = 1e-5 as in scikit-image
    np.testing.assert_allclose(view["features"].reshape(4, 9), expected, rtol=1e-12)
    assert view["glyph"].shape == (16, 16) and view["normalized_glyph"].shape == (16, 16)


@pytest.mark.parametrize("block_norm", ["L1", "L1-sqrt", "L2", "L2-Hys"])
@pytest.mark.parametrize("pixels_per_cell, orientations, cells_per_block",
                         [(8, 9, 2), (6, 12, 3), (16, 4, 1)])
def test_hog_view_is_the_library_hog_and_has_skimage_length(photo, block_norm, pixels_per_cell, orientations,
                                                            cells_per_block):
    view = hog_view(photo, pixels_per_cell, orientations, block_norm, cells_per_block)
    cell, block = (pixels_per_cell,) * 2, (cells_per_block,) * 2
    np.testing.assert_array_equal(view["features"], hog(photo, orientations, cell, block, block_norm))
    reference = skimage.feature.hog(photo, orientations, cell, block, block_norm, channel_axis=-1)
    assert view["num_features"] == view["formula_num_features"] == reference.size
    np.testing.assert_array_equal(view["glyph"], hog_glyph(cell_histograms(photo, orientations, cell), cell))
    assert view["value_counts"].sum() == view["num_features"]
    assert np.isfinite(view["normalized_glyph"]).all()


def test_hog_view_glyph_draws_the_same_lines_as_skimage(photo):
    # skimage's picture is as large as the image; ours covers the whole cells. Without interpolation the
    # histograms are skimage's, so the glyphs agree where both are drawn (up to float32 sums).
    grey = photo.mean(axis=2)
    _, reference = skimage.feature.hog(grey, 9, (8, 8), (2, 2), visualize=True)
    ours = hog_glyph(cell_histograms(grey, 9, (8, 8), interpolate=False), (8, 8))
    np.testing.assert_allclose(ours, reference[: ours.shape[0], : ours.shape[1]], atol=1e-5)


@settings(max_examples=25)
@given(height=st.integers(8, 60), width=st.integers(8, 60), pixels_per_cell=st.integers(2, 8),
       orientations=st.integers(1, 12), cells_per_block=st.integers(1, 3), seed=st.integers(0, 1000))
def test_hog_view_length_matches_the_formula(height, width, pixels_per_cell, orientations, cells_per_block,
                                             seed):
    cell, block = pixels_per_cell, cells_per_block
    if min(height, width) // cell < block:
        return  # no whole block: tested below
    image = np.random.default_rng(seed).random((height, width))
    view = hog_view(image, cell, orientations, "L2-Hys", block)
    rows, cols = height // cell - block + 1, width // cell - block + 1
    assert view["num_features"] == view["formula_num_features"] == rows * cols * block**2 * orientations
    assert view["glyph"].shape == (height // pixels_per_cell * pixels_per_cell,
                                   width // pixels_per_cell * pixels_per_cell)


def test_normalized_cell_histograms_averages_each_cell_over_its_blocks(photo):
    histograms = cell_histograms(photo, 9, (8, 8))
    one_cell_blocks = normalize_blocks(histograms, (1, 1), "L2")
    np.testing.assert_array_equal(normalized_cell_histograms(one_cell_blocks), one_cell_blocks[:, :, 0, 0])
    blocks = normalize_blocks(histograms, (2, 2), "L2")  # (Hb, Wb, 2, 2, 9)
    average = normalized_cell_histograms(blocks)
    assert average.shape == histograms.shape
    # The corner cell is in one block only; an inner cell in four.
    np.testing.assert_allclose(average[0, 0], blocks[0, 0, 0, 0])
    inner = np.mean([blocks[4, 4, 1, 1], blocks[4, 5, 1, 0], blocks[5, 4, 0, 1], blocks[5, 5, 0, 0]], axis=0)
    np.testing.assert_allclose(average[5, 5], inner)


def test_hog_view_block_norms(photo):
    # Every block has norm 1, but for eps: in flat regions (the black corner) the norm falls to 0.
    l1 = hog_view(photo, 8, 9, "L1", 2)["features"].reshape(-1, 36).sum(axis=1)
    l2 = np.linalg.norm(hog_view(photo, 8, 9, "L2", 2)["features"].reshape(-1, 36), axis=1)
    hys = hog_view(photo, 8, 9, "L2-Hys", 2)["features"].reshape(-1, 36)
    for norms in (l1, l2, np.linalg.norm(hys, axis=1)):
        assert norms.max() <= 1 + 1e-9 and np.mean(norms > 0.999) > 0.95
    assert hys.max() < l2.max()  # clipping at 0.2 flattens the strongest bins


def test_hog_view_flat_image_gives_zeros_not_nan():
    for block_norm in ("L1", "L1-sqrt", "L2", "L2-Hys"):
        view = hog_view(np.full((32, 32), 0.5), 8, 9, block_norm, 2)
        assert np.all(view["features"] == 0) and not np.isnan(view["normalized_glyph"]).any()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"block_norm": "L3"}, ValueError, "block_norm.*L2-Hys"),
        ({"pixels_per_cell": 0}, ValueError, r"pixels_per_cell: expected a value in \[1, inf\], got 0"),
        ({"orientations": 2.5}, TypeError, "orientations: expected an int"),
        ({"cells_per_block": 5}, ValueError, "expected at least one block of 5 x 5 cells, got 4 x 4 cells"),
        ({"pixels_per_cell": 64}, ValueError, "expected at least one cell of 64 x 64 pixels"),
    ],
)
def test_hog_view_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        hog_view(np.random.default_rng(0).random((32, 32)), **kwargs)


def test_hog_view_rejects_bad_images():
    with pytest.raises(ValueError, match="RGBA"):
        hog_view(np.zeros((32, 32, 4)))
    with pytest.raises(ValueError, match="non-empty"):
        hog_view(np.zeros((0, 32)))


# --- HOGExplorer ------------------------------------------------------------------------------
STATUS_HOG = re.compile(
    r"feature length (\d+) ([=≠]) (\d+) x (\d+) blocks x (\d) x (\d) cells x (\d+) bins = (\d+)")


def _status_hog(explorer):
    match = STATUS_HOG.search(explorer.status.value)
    assert match, explorer.status.value
    return match.groups()


def test_hog_explorer_controls_change_the_features(photo):
    explorer = HOGExplorer(photo)
    length, sign, *_, total = _status_hog(explorer)
    assert (int(length), sign, int(total)) == (23 * 23 * 2 * 2 * 9, "=", 23 * 23 * 2 * 2 * 9)  # 24 x 24 cells
    assert int(length) == hog(photo).size
    explorer.controls["orientations"].value = 12
    assert int(_status_hog(explorer)[0]) == 23 * 23 * 2 * 2 * 12
    explorer.controls["pixels_per_cell"].value = 16  # 12 x 12 cells, 11 x 11 blocks
    assert _status_hog(explorer)[2:4] == ("11", "11")
    before = explorer.result["features"]
    explorer.controls["block_norm"].value = "L1"
    assert explorer.result["block_norm"] == "L1" and not np.allclose(before, explorer.result["features"])
    photo_ax, glyph_ax, normalized_ax, values_ax = explorer.axes
    assert len(photo_ax.images) == len(glyph_ax.images) == len(normalized_ax.images) == 1
    assert len(values_ax.lines) == 0 and len(values_ax.patches) == 1  # no L2-Hys clip line for L1
    explorer.controls["block_norm"].value = "L2-Hys"
    assert len(values_ax.lines) == 1
    assert _shown_png(explorer).startswith(b"\x89PNG")
    explorer.close()


def test_hog_explorer_at_the_slider_extremes(photo):
    explorer = HOGExplorer(photo)
    controls = explorer.controls
    assert (controls["pixels_per_cell"].min, controls["pixels_per_cell"].max) == (2, 32)
    low = {name: controls[name].min for name in ("pixels_per_cell", "cells_per_block", "orientations")}
    high = {name: controls[name].max for name in low}
    settings_ = ({**low, "cells_per_block": 4, "orientations": 18}, high, {**high, "cells_per_block": 1}, low)
    for setting in settings_:
        for name, value in setting.items():
            controls[name].value = value
        length, sign, *_, total = _status_hog(explorer)
        assert sign == "=" and length == total
        cell, block, bins = setting["pixels_per_cell"], setting["cells_per_block"], setting["orientations"]
        assert explorer.result["num_features"] == hog(photo, bins, (cell, cell), (block, block)).size
    assert _shown_png(explorer).startswith(b"\x89PNG")


def test_explorers_show_a_palette_png(photo):
    explorer = HOGExplorer(photo)
    png = _shown_png(explorer)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "P"  # 256 colours
    assert image.size == explorer.figure.canvas.get_width_height()
    assert len(png) < len(Explorer.render_png(explorer)) / 2  # the true-colour PNG of the base class
    pixels = np.asarray(image.convert("RGB")).astype(int)
    canvas = np.asarray(explorer.figure.canvas.buffer_rgba())[..., :3].astype(int)
    assert np.abs(pixels - canvas).mean() < 3  # and looks the same


def test_hog_explorer_shrinks_large_photos_and_refuses_tiny_ones():
    explorer = HOGExplorer(load_photo("astronaut"), max_side=128)
    assert explorer.image.shape == (128, 128, 3) and 0 <= explorer.image.min() and explorer.image.max() <= 1
    assert explorer.controls["pixels_per_cell"].max == 32
    small = HOGExplorer(np.random.default_rng(0).random((40, 24)))
    assert small.image.shape == (40, 24) and small.controls["pixels_per_cell"].max == 6
    with pytest.raises(ValueError, match=r"image: expected at least 16 x 16 pixels, got \(12, 40\)"):
        HOGExplorer(np.zeros((12, 40)))


# --- scored_windows ---------------------------------------------------------------------------
def test_scored_windows_are_the_detector_windows_with_svm_scores(detector, photo):
    windows = scored_windows(detector, photo)
    boxes, features = detector.windows(photo)
    torch.testing.assert_close(windows["boxes"], boxes)
    expected = detector.svm.decision_function(features)  # scikit-learn's own scores
    np.testing.assert_allclose(windows["scores"].numpy(), expected, atol=1e-5)
    scales = windows["pyramid_scales"]
    assert scales == detector.scales(PHOTO_SIDE, PHOTO_SIDE) and len(scales) > 3
    levels = windows["levels"]
    assert levels.dtype == torch.int64 and levels.min() == 0 and levels.max() == len(scales) - 1
    heights = windows["boxes"][:, 3] - windows["boxes"][:, 1]
    expected_heights = 24 * torch.tensor(scales)[levels]
    torch.testing.assert_close(heights, expected_heights.float(), rtol=0.05, atol=0)
    assert (torch.diff(levels) >= 0).all()  # level after level, as detector.windows lists them


def test_scored_windows_needs_a_trained_detector(photo):
    with pytest.raises(ValueError, match="expected a trained detector"):
        scored_windows(SlidingWindowDetector(), photo)


# --- detector_view ----------------------------------------------------------------------------
BOXES = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [30, 30, 40, 40], [60, 60, 80, 80]])
SCORES = torch.tensor([0.9, 0.8, 0.3, -0.2])
LEVELS = torch.tensor([0, 0, 1, 2])
GT = torch.tensor([[0.0, 0, 10, 10]])


def test_detector_view_hand_computed():
    view = detector_view(BOXES, SCORES, LEVELS, 0.0, iou_threshold=0.3, gt_boxes=GT)
    # box 1 overlaps box 0 with IoU 81/119 > 0.3: removed; box 3 scores below 0.
    assert view["boxes"].tolist() == [[0, 0, 10, 10], [30, 30, 40, 40]]
    assert (view["num_windows"], view["num_above"], view["num_detections"]) == (4, 3, 2)
    assert view["is_true_positive"].tolist() == [True, False]
    assert (view["best_iou"], view["false_positives"], view["num_found"]) == (1.0, 1, 1)
    no_nms = detector_view(BOXES, SCORES, LEVELS, 0.0, iou_threshold=None, gt_boxes=GT)
    assert no_nms["num_detections"] == 3 and no_nms["is_true_positive"].tolist() == [True, True, False]
    assert no_nms["best_iou"] == 1.0 and no_nms["false_positives"] == 1  # a duplicate is not a false positive
    level_one = detector_view(BOXES, SCORES, LEVELS, -1.0, min_level=1, max_level=1, gt_boxes=GT)
    assert level_one["boxes"].tolist() == [[30, 30, 40, 40]] and level_one["num_windows"] == 1
    assert level_one["best_iou"] == 0.0 and level_one["num_found"] == 0
    assert "best_iou" not in detector_view(BOXES, SCORES, LEVELS, 0.0)


def test_detector_view_at_the_detector_settings_is_detect(detector, photo, face_box):
    windows = scored_windows(detector, photo)
    for threshold in (-0.5, 0.0, 0.5):
        view = detector_view(windows["boxes"], windows["scores"], windows["levels"], threshold,
                             iou_threshold=detector.iou_threshold, gt_boxes=face_box)
        expected = detector.detect(photo, score_threshold=threshold)
        torch.testing.assert_close(view["boxes"], expected["boxes"])
        torch.testing.assert_close(view["scores"], expected["scores"])
        above = windows["scores"] > threshold
        kept = torchvision.ops.nms(windows["boxes"][above], windows["scores"][above], detector.iou_threshold)
        assert view["num_detections"] == len(kept) and view["num_above"] == int(above.sum())


@settings(max_examples=20)
@given(seed=st.integers(0, 10_000), threshold=st.floats(-1, 1), low=st.integers(0, 3), high=st.integers(0, 3))
def test_detector_view_never_grows_with_the_threshold(seed, threshold, low, high):
    generator = torch.Generator().manual_seed(seed)
    corners = torch.rand(40, 2, generator=generator) * 100
    boxes = torch.cat([corners, corners + 5 + torch.rand(40, 2, generator=generator) * 30], dim=1)
    scores = torch.randn(40, generator=generator)
    levels = torch.randint(0, 4, (40,), generator=generator)
    view = detector_view(boxes, scores, levels, threshold, low, high, 0.5, gt_boxes=boxes[:3])
    stricter = detector_view(boxes, scores, levels, threshold + 0.3, low, high, 0.5, gt_boxes=boxes[:3])
    assert stricter["num_above"] <= view["num_above"] <= view["num_windows"]
    assert view["num_detections"] <= view["num_above"]
    # NMS keeps exactly the windows of the full run above the threshold (the explorer relies on it).
    chosen = (levels >= low) & (levels <= high)
    full = torch.nonzero(chosen)[:, 0][torchvision.ops.nms(boxes[chosen], scores[chosen], 0.5)]
    assert view["boxes"].tolist() == boxes[full[scores[full] > threshold]].tolist()
    assert 0 <= view["best_iou"] <= 1 and view["false_positives"] + int(view["is_true_positive"].sum()) == \
        view["num_detections"]


def test_detector_view_with_nothing_left_or_no_ground_truth():
    empty = detector_view(BOXES, SCORES, LEVELS, 5.0, gt_boxes=GT)
    assert empty["num_detections"] == 0 and empty["boxes"].shape == (0, 4)
    assert (empty["best_iou"], empty["false_positives"], empty["num_found"]) == (0.0, 0, 0)
    no_gt = detector_view(BOXES, SCORES, LEVELS, 0.0, gt_boxes=torch.zeros(0, 4))
    assert no_gt["false_positives"] == 2 and no_gt["num_gt"] == 0 and no_gt["best_iou"] == 0.0
    no_levels = torch.zeros(0, dtype=torch.int64)
    nothing = detector_view(torch.zeros(0, 4), torch.zeros(0), no_levels, 0.0, gt_boxes=GT)
    assert nothing["num_windows"] == 0 and nothing["num_detections"] == 0


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((BOXES, SCORES[:3], LEVELS, 0.0), {}, ValueError, r"scores: expected a Tensor\[4\]"),
        ((BOXES, SCORES, LEVELS.float(), 0.0), {}, ValueError, r"levels: expected an integer Tensor\[4\]"),
        ((BOXES, SCORES, LEVELS[:2], 0.0), {}, ValueError, "levels: expected"),
        ((BOXES, SCORES, LEVELS, float("nan")), {}, ValueError, "score_threshold: expected a finite number"),
        ((BOXES, SCORES, LEVELS, 0.0), {"iou_threshold": 1.5}, ValueError, "iou_threshold: expected a value"),
        ((BOXES, SCORES, LEVELS, 0.0), {"min_level": -1}, ValueError, r"min_level: expected a value in \[0"),
        ((BOXES, SCORES, LEVELS, 0.0), {"gt_boxes": [[0, 0, 1, 1]]}, TypeError, "gt_boxes: expected a torch"),
    ],
)
def test_detector_view_rejects_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        detector_view(*args, **kwargs)


# --- DetectorExplorer -------------------------------------------------------------------------
STATUS_DETECTOR = re.compile(
    r"(\d+) detections? \(score &gt; (-?\d+\.\d\d), scales (\d+\.\d\d) to (\d+\.\d\d), "
    r"(NMS|no NMS)\)(; best IoU (\d\.\d\d), (\d) of 1 found, (\d+) false positives)?")


def _status_detector(explorer):
    match = STATUS_DETECTOR.search(explorer.status.value)
    assert match, explorer.status.value
    return match.groups()


def _reference(state, windows, face_box, iou_threshold=0.3):
    """What detector_view gives on every window (no caching) for the explorer's controls."""
    low, high = state["levels"]
    threshold = round(state["score_threshold"], 4)
    return detector_view(windows["boxes"], windows["scores"], windows["levels"], threshold, low, high,
                         iou_threshold if state["use_nms"] else None, face_box)


def test_detector_explorer_matches_detector_view_on_every_window(detector, photo, face_box):
    explorer = DetectorExplorer(detector, photo, face_box)
    assert explorer.result["num_detections"] == len(detector.detect(photo)["boxes"])
    slider = explorer.controls["score_threshold"]
    num_levels = len(explorer.windows["pyramid_scales"])
    for use_nms in (True, False):
        for index in [(0, num_levels - 1), (2, 4), (1, 1)]:
            for threshold in (slider.min, -0.5, 0.0, 0.3, slider.max):
                state = {"score_threshold": threshold, "levels": index, "use_nms": use_nms}
                result, expected = explorer.compute(**state), _reference(state, explorer.windows, face_box)
                assert result["boxes"].tolist() == expected["boxes"].tolist()
                for key in ("num_windows", "num_above", "num_detections", "best_iou", "false_positives"):
                    assert result[key] == expected[key], key
    # The controls reach compute, and the status shows its numbers.
    explorer.controls["use_nms"].value = False
    explorer.controls["levels"].index = (2, 4)
    slider.value = -0.5
    expected = _reference(explorer.state, explorer.windows, face_box)
    count, shown_threshold, low, high, nms_text, _, _, _, false_positives = _status_detector(explorer)
    assert int(count) == expected["num_detections"] and nms_text == "no NMS" and shown_threshold == "-0.50"
    scales = explorer.windows["pyramid_scales"]
    assert (low, high) == (f"{scales[2]:.2f}", f"{scales[4]:.2f}")
    assert int(false_positives) == expected["false_positives"]


def test_detector_explorer_draws_boxes_and_the_score_histogram(detector, photo, face_box):
    explorer = DetectorExplorer(detector, photo, face_box)
    slider = explorer.controls["score_threshold"]
    slider.value = slider.min  # the most windows the slider allows
    image_ax, score_ax = explorer.axes
    # the slider's lowest threshold still lets through at least MAX_CANDIDATES windows (all, if fewer)
    assert explorer.result["num_above"] >= min(MAX_CANDIDATES, explorer.result["num_windows"])
    assert explorer.result["num_detections"] > 5
    (collection,) = image_ax.collections
    assert len(collection.get_paths()) == min(explorer.result["num_detections"], 150)
    assert len(score_ax.lines) == 1 and score_ax.lines[0].get_xdata()[0] == pytest.approx(slider.min)
    assert explorer.result["score_counts"].sum() == explorer.result["num_windows"] - int(
        (explorer.windows["scores"] < slider.min).sum() + (explorer.windows["scores"] > slider.max).sum())
    slider.value = slider.max  # nothing scores above the top of the slider
    assert explorer.result["num_detections"] == 0
    assert _status_detector(explorer)[0] == "0" and _status_detector(explorer)[6] == "0.00"
    assert _shown_png(explorer).startswith(b"\x89PNG")
    explorer.close()


def test_detector_explorer_without_ground_truth(detector, photo):
    explorer = DetectorExplorer(detector, photo)
    groups = _status_detector(explorer)
    assert groups[5] is None and "is_true_positive" not in explorer.result
    explorer.controls["score_threshold"].value = explorer.controls["score_threshold"].min
    assert int(_status_detector(explorer)[0]) == explorer.result["num_detections"] > 0
    with pytest.raises(TypeError, match="gt_boxes: expected a torch.Tensor"):
        DetectorExplorer(detector, photo, [[0, 0, 10, 10]])
