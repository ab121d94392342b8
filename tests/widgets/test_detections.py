"""Tests for course_lib.widgets.detections: detections_view, its helpers and DetectionsExplorer."""

import contextlib
import io

import matplotlib.colors
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.metrics import error_breakdown, error_categories
from course_lib.widgets import DetectionsExplorer as ExportedExplorer
from course_lib.widgets import detections_view as exported_view
from course_lib.widgets.detections import (
    CATEGORY_COLORS,
    MAX_TAGS,
    DetectionsExplorer,
    counts_text,
    detections_view,
    score_range,
)

CLASS_NAMES = ("background", "circle", "square", "triangle")
IMAGE = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))

# Objects A (class 1), B (class 2) and C (class 1, found by nothing).
TARGET = {"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]),
          "labels": torch.tensor([1, 2, 1])}
# In input order: wrong class on B (0.6), correct on A (IoU 0.9, 0.9), background (0.4), duplicate of A
# (0.8), correct on B (0.3), localization on A (IoU 40 / 100, 0.7).
PREDICTION = {
    "boxes": torch.tensor([[20.0, 20, 30, 30], [1, 0, 10, 10], [55, 5, 62, 12], [0, 0, 10, 10],
                           [20, 20, 30, 30], [0, 0, 10, 4]]),
    "scores": torch.tensor([0.6, 0.9, 0.4, 0.8, 0.3, 0.7]),
    "labels": torch.tensor([3, 1, 2, 1, 2, 1]),
}
EMPTY = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}


def _random_case(seed, num_objects=4, num_detections=12, num_classes=3):
    generator = torch.Generator().manual_seed(seed)

    def boxes(count, size):
        corner = torch.rand(count, 2, generator=generator) * 40
        return torch.cat([corner, corner + 4 + torch.rand(count, 2, generator=generator) * size], dim=1)

    gt_boxes = boxes(num_objects, 20)
    labels = torch.randint(1, num_classes + 1, (num_objects,), generator=generator)
    target = {"boxes": gt_boxes, "labels": labels}
    # Half the detections jitter an object (so that every category occurs), half anywhere.
    near = gt_boxes[torch.randint(0, num_objects, (num_detections // 2,), generator=generator)]
    near = near + torch.randn(near.shape, generator=generator) * 2
    near[:, 2:] = torch.maximum(near[:, 2:], near[:, :2] + 1)
    prediction = {
        "boxes": torch.cat([near, boxes(num_detections - len(near), 20)]),
        "scores": torch.rand(num_detections, generator=generator) * 4 - 2,  # SVM-like margins
        "labels": torch.randint(1, num_classes + 1, (num_detections,), generator=generator),
    }
    return target, prediction


# --- detections_view --------------------------------------------------------------------------
def test_view_hand_built_case():
    view = detections_view(IMAGE, TARGET, PREDICTION, 0.0, class_names=CLASS_NAMES)
    assert view["kept"].tolist() == [1, 3, 5, 0, 2, 4]  # best score first
    assert view["categories"] == ["correct", "duplicate", "localization", "wrong class", "background",
                                  "correct"]
    assert view["tags"] == ["circle 0.90", "circle 0.80", "circle 0.70", "triangle 0.60", "square 0.40",
                            "square 0.30"]
    assert view["colors"] == [CATEGORY_COLORS[category] for category in view["categories"]]
    assert view["missed"].tolist() == [False, False, True]
    assert view["counts"] == {"correct": 2, "duplicate": 1, "localization": 1, "wrong class": 1,
                              "background": 1, "missed": 1, "detections": 6, "ground truths": 3}
    assert view["counts_text"] == ("2 correct · 1 duplicate · 1 localization · 1 wrong class · 1 background"
                                   " · 1 missed")
    assert view["gt_tags"] == ["circle", "square", "circle"] and view["num_detections"] == 6


def test_view_threshold_drops_boxes_and_b_becomes_missed():
    view = detections_view(IMAGE, TARGET, PREDICTION, 0.5, class_names=CLASS_NAMES)
    assert view["kept"].tolist() == [1, 3, 5, 0]
    assert view["categories"] == ["correct", "duplicate", "localization", "wrong class"]
    assert view["missed"].tolist() == [False, True, True]
    assert view["counts_text"] == "1 correct · 1 duplicate · 1 localization · 1 wrong class · 2 missed"
    assert view["boxes"].tolist() == PREDICTION["boxes"][[1, 3, 5, 0]].tolist()
    assert view["scores"].tolist() == PREDICTION["scores"][[1, 3, 5, 0]].tolist()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), score_threshold=st.floats(-2.5, 2.5),
       iou_threshold=st.sampled_from([0.3, 0.5, 0.75]))
def test_view_equals_the_metrics(seed, score_threshold, iou_threshold):
    target, prediction = _random_case(seed)
    view = detections_view(IMAGE, target, prediction, score_threshold, iou_threshold=iou_threshold)
    categories = error_categories(prediction, target, iou_threshold, 0.1, score_threshold)
    assert view["categories"] == [categories[i] for i in view["kept"].tolist()]
    assert set(range(len(categories))) - set(view["kept"].tolist()) == {
        i for i, category in enumerate(categories) if category is None}
    assert view["counts"] == error_breakdown([prediction], [target], iou_threshold, 0.1, score_threshold)
    assert int(view["missed"].sum()) == view["counts"]["missed"]
    assert (view["scores"].diff() <= 0).all()  # best first
    # Raising the threshold only removes boxes: those left keep their category.
    higher = detections_view(IMAGE, target, prediction, score_threshold + 0.5, iou_threshold=iou_threshold)
    before = dict(zip(view["kept"].tolist(), view["categories"], strict=True))
    assert all(before[i] == category for i, category in zip(higher["kept"].tolist(), higher["categories"],
                                                            strict=True))
    assert (higher["missed"] | ~view["missed"]).all()  # a missed object stays missed


def test_view_without_detections_or_objects():
    nothing = detections_view(IMAGE, TARGET, EMPTY, 0.5)
    assert nothing["kept"].dtype == torch.int64 and nothing["kept"].shape == (0,)
    assert nothing["boxes"].shape == (0, 4) and nothing["categories"] == [] and nothing["tags"] == []
    assert nothing["missed"].tolist() == [True, True, True]
    assert nothing["counts_text"] == "0 correct · 3 missed"
    no_objects = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    view = detections_view(IMAGE, no_objects, PREDICTION, 0.0)
    assert view["categories"] == ["background"] * 6 and view["missed"].shape == (0,)
    assert detections_view(IMAGE, no_objects, EMPTY, 0.0)["counts_text"] == "0 correct"
    above_all = detections_view(IMAGE, TARGET, PREDICTION, 5.0)
    assert above_all["kept"].shape == (0,) and above_all["counts"]["detections"] == 0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"image": torch.rand(64, 64)}, ValueError,
         r"image: expected a Tensor\[3, H, W\], got shape \(64, 64\)"),
        ({"score_threshold": "high"}, TypeError, "score_threshold: expected a number"),
        ({"prediction": {"boxes": PREDICTION["boxes"], "labels": PREDICTION["labels"]}}, ValueError,
         "prediction: expected a key 'scores'"),
        ({"prediction": {**PREDICTION, "scores": PREDICTION["scores"][:2]}}, ValueError,
         r"prediction\['scores'\]: expected a Tensor\[6\]"),
        ({"iou_threshold": 1.5}, ValueError, r"iou_threshold: expected a value in \[0.0, 1.0\]"),
    ],
)
def test_view_rejects_bad_input(kwargs, error, match):
    arguments = {"image": IMAGE, "target": TARGET, "prediction": PREDICTION, "score_threshold": 0.0, **kwargs}
    with pytest.raises(error, match=match):
        detections_view(**arguments)


# --- helpers ----------------------------------------------------------------------------------
def test_counts_text_shows_correct_then_the_non_zero_others():
    counts = {"correct": 4, "duplicate": 0, "localization": 1, "wrong class": 0, "background": 0, "missed": 2}
    assert counts_text(counts) == "4 correct · 1 localization · 2 missed"


@pytest.mark.parametrize(
    "scores, expected",
    [
        ([[0.2, 0.9], [0.55]], (0.0, 1.0)),  # probabilities
        ([[], []], (0.0, 1.0)),  # no detections at all
        ([[-1.43, 0.2], [2.31]], (-1.45, 2.35)),  # SVM margins, widened to the 0.05 grid
        ([[-0.5, -0.5]], (-0.5, -0.45)),  # one value: still a range
        ([[0.5, 1.2]], (0.5, 1.2)),
    ],
)
def test_score_range(scores, expected):
    predictions = [{"scores": torch.tensor(values)} for values in scores]
    assert score_range(predictions) == pytest.approx(expected)


def _dataset(num_images=3, seed=0):
    cases = [_random_case(seed + index) for index in range(num_images)]
    images = [torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(index))
              for index in range(num_images)]
    targets = [target for target, _ in cases]
    rcnn = [prediction for _, prediction in cases]  # margins in [-2, 2]
    faster = [{**prediction, "scores": torch.sigmoid(prediction["scores"])} for prediction in rcnn]
    return images, targets, {"rcnn": rcnn, "faster_rcnn": faster}


def test_explorer_controls():
    images, targets, detections = _dataset()
    explorer = DetectionsExplorer(images, targets, detections)
    scene, detector, threshold = (explorer.controls[name]
                                  for name in ("scene", "detector", "score_threshold"))
    assert (scene.min, scene.max, scene.value, scene.description) == (0, 2, 0, "scene")
    assert detector.options == ("rcnn", "faster_rcnn") and detector.value == "rcnn"
    assert threshold.description == "score ≥" and threshold.continuous_update is True
    assert ExportedExplorer is DetectionsExplorer and exported_view is detections_view


def test_threshold_range_follows_the_detector():
    images, targets, detections = _dataset()
    explorer = DetectionsExplorer(images, targets, detections, thresholds={"faster_rcnn": 0.7})
    threshold, detector = explorer.controls["score_threshold"], explorer.controls["detector"]
    low, high = score_range(detections["rcnn"])
    assert low < 0 < high and (threshold.min, threshold.max) == pytest.approx((low, high))
    assert threshold.value == 0.0  # R-CNN's default: the SVM's decision boundary
    threshold.value = -1.0
    assert explorer.result["score_threshold"] == -1.0 and "≥ -1.00" in explorer.status.value
    detector.value = "faster_rcnn"
    assert (threshold.min, threshold.max, threshold.value) == (0.0, 1.0, 0.7)  # probabilities
    assert explorer.result["detector"] == "faster_rcnn" and explorer.result["score_threshold"] == 0.7
    detector.value = "rcnn"  # back to R-CNN: back to its range and its last value
    assert (threshold.min, threshold.max, threshold.value) == pytest.approx((low, high, -1.0))
    assert explorer.result["score_threshold"] == -1.0


def test_changing_the_controls_redraws():
    images, targets, detections = _dataset()
    explorer = DetectionsExplorer(images, targets, detections, class_names=CLASS_NAMES)
    truth_ax, detections_ax = explorer.axes
    seen = set()
    changes = [(0, "rcnn", 0.0), (1, "rcnn", 0.0), (1, "rcnn", -2.0), (1, "faster_rcnn", 0.5),
               (2, "faster_rcnn", 0.3)]
    for scene, detector, value in changes:
        explorer.controls["scene"].value = scene
        explorer.controls["detector"].value = detector
        explorer.controls["score_threshold"].value = value
        result = explorer.result
        expected = detections_view(images[scene], targets[scene], detections[detector][scene], value,
                                   class_names=CLASS_NAMES)
        assert result["categories"] == expected["categories"] and result["counts"] == expected["counts"]
        assert result["counts_text"] in explorer.status.value
        assert f"scene {scene} · {detector}" in explorer.status.value
        # One rectangle per kept detection and per missed object; its colour says the category.
        drawn = detections_ax.patches
        assert len(drawn) == len(result["kept"]) + int(result["missed"].sum())
        dashed = [artist for artist in drawn if artist.get_linestyle() == "--"]
        assert len(dashed) == int(result["missed"].sum())
        colours = sorted(artist.get_edgecolor() for artist in drawn if artist.get_linestyle() != "--")
        assert colours == sorted(matplotlib.colors.to_rgba(color) for color in result["colors"])
        # The MAX_TAGS best-scored detections have a tag (draw_boxes shows those with a free spot).
        assert sorted(text.get_text() for text in detections_ax.texts) == sorted(result["tags"][:MAX_TAGS])
        assert detections_ax.get_title().startswith(f"{detector} · score ≥ {value:.2f}")
        assert truth_ax.get_title().startswith(f"ground truth · scene {scene}")
        assert len(truth_ax.patches) == len(targets[scene]["boxes"])
        seen.add(explorer.png)
    assert len(seen) == 5  # every change gave a new picture


def test_explorer_with_empty_detections():
    images, targets, detections = _dataset(num_images=2)
    detections["nothing"] = [EMPTY, EMPTY]
    explorer = DetectionsExplorer(images, targets, detections, detector="nothing")
    threshold = explorer.controls["score_threshold"]
    assert (threshold.min, threshold.max, threshold.value) == (0.0, 1.0, 0.5)
    num_objects = len(targets[0]["boxes"])
    assert explorer.result["counts_text"] == f"0 correct · {num_objects} missed"
    assert len(explorer.axes[1].patches) == num_objects and explorer.png.startswith(b"\x89PNG")
    threshold.value = 0.0
    explorer.controls["scene"].value = 1
    assert explorer.result["kept"].shape == (0,)
    no_objects = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * 2
    empty = DetectionsExplorer(images, no_objects, {"nothing": [EMPTY, EMPTY]})
    assert "0 of 0 detections" in empty.status.value and empty.result["counts_text"] == "0 correct"


def test_explorer_is_print_free():
    images, targets, detections = _dataset()
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        explorer = DetectionsExplorer(images, targets, detections)
        explorer.controls["detector"].value = "faster_rcnn"
        explorer.controls["scene"].value = 2
    assert stdout.getvalue() == ""


def _bad_inputs():
    images, targets, detections = _dataset()
    return [
        (([], [], {}), {}, "images: expected a non-empty list"),
        ((images, targets[:2], detections), {}, r"targets: expected 3 entries \(one per image\), got 2"),
        ((images, targets, {**detections, "fast_rcnn": detections["rcnn"][:1]}), {},
         r"detections\['fast_rcnn'\]: expected 3 entries \(one per image\), got 1"),
        ((images, targets, {}), {}, "detections: expected a non-empty dict"),
        ((images, targets, detections), {"detector": "yolo"},
         "detector: expected one of 'rcnn', 'faster_rcnn', got 'yolo'"),
        ((images, targets, detections), {"thresholds": {"fast_rcnn": 0.5}},
         "thresholds: expected one of 'rcnn', 'faster_rcnn', got 'fast_rcnn'"),
        (([torch.rand(64, 64)] * 3, targets, detections), {},
         r"images\[0\]: expected a Tensor\[3, H, W\], got shape \(64, 64\)"),
        ((images, targets, {"rcnn": [{"boxes": torch.zeros(1, 4), "labels": torch.ones(1)}] * 3}), {},
         r"detections\['rcnn'\]\[0\]: expected keys \['boxes', 'scores', 'labels'\]"),
        ((images, targets, {"rcnn": [{**EMPTY, "scores": torch.zeros(2)}] * 3}), {},
         r"detections\['rcnn'\]\[0\]\['scores'\]: expected a Tensor\[0\], got shape \(2,\)"),
    ]


@pytest.mark.parametrize("arguments, kwargs, match", _bad_inputs())
def test_explorer_rejects_bad_input(arguments, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DetectionsExplorer(*arguments, **kwargs)
