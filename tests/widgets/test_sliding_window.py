"""Tests for course_lib.widgets.sliding_window: the detector explorer and its pure functions."""

import base64
import io
import re

import numpy as np
import pytest
import torch
import torchvision.ops
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from course_lib.classical.sliding_window import SlidingWindowDetector
from course_lib.data import load_photo
from course_lib.recipes.face_detector import astronaut_face_box, lfw_crops, random_negative_crops
from course_lib.widgets.base import shrink
from course_lib.widgets.sliding_window import (
    MAX_CANDIDATES,
    DetectorExplorer,
    detector_view,
    scored_windows,
)

PHOTO_SIDE = 192  # the astronaut, shrunk: every test stays fast


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
    assert Image.open(io.BytesIO(_shown_png(explorer))).mode == "P"  # a photo: a 256-colour PNG
    explorer.close()


def test_detector_explorer_without_ground_truth(detector, photo):
    explorer = DetectorExplorer(detector, photo)
    groups = _status_detector(explorer)
    assert groups[5] is None and "is_true_positive" not in explorer.result
    explorer.controls["score_threshold"].value = explorer.controls["score_threshold"].min
    assert int(_status_detector(explorer)[0]) == explorer.result["num_detections"] > 0
    with pytest.raises(TypeError, match="gt_boxes: expected a torch.Tensor"):
        DetectorExplorer(detector, photo, [[0, 0, 10, 10]])
