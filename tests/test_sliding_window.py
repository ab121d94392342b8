"""Tests of the HOG + linear SVM sliding-window detector on small synthetic images (disks on noise)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.boxes import box_iou
from course_lib.classical import SlidingWindowDetector
from course_lib.classical.sliding_window import resize, to_unit_float


def disk_image(size: int, centre: tuple[float, float], radius: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    image = 0.2 * rng.random((size, size))  # faint noise
    image[(rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2] += 0.7
    return image


def disk_crops(num: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [disk_image(24, 12 + rng.uniform(-1, 1, 2), rng.uniform(8, 10), seed * 1000 + index)
            for index in range(num)]


def noise_crops(num: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [0.2 * rng.random((24, 24)) + 0.6 * (rng.random() < 0.3) * np.tri(24) for _ in range(num)]


@pytest.fixture(scope="module")
def detector():
    scenes = [disk_image(96, (30, 60), 12, seed=100 + i) for i in range(3)]  # disks away from the mined part
    object_boxes = [torch.tensor([[46.0, 16.0, 74.0, 44.0]])] * 3
    model = SlidingWindowDetector(window_size=(24, 24), pixels_per_cell=(6, 6), C=1.0, scale_step=1.25)
    return model.fit(disk_crops(30, 0), noise_crops(60, 1), scenes, object_boxes=object_boxes, rounds=1)


def test_finds_disks_at_two_scales(detector):
    image = disk_image(128, (40, 40), 10, seed=7)  # about one window
    image[60:120, 60:120] = disk_image(60, (30, 30), 24, seed=8)  # about twice the window
    detections = detector.detect(image)
    truth = torch.tensor([[30.0, 30.0, 50.0, 50.0], [66.0, 66.0, 114.0, 114.0]])
    ious = box_iou(truth, detections["boxes"])  # (2, N)
    assert (ious.amax(dim=1) >= 0.5).all(), ious
    assert torch.all(detections["scores"][:-1] >= detections["scores"][1:])  # best first
    assert detections["labels"].dtype == torch.int64 and (detections["labels"] == 1).all()


def test_scores_separate_the_training_crops(detector):
    assert (detector.decision_function(disk_crops(5, 9)) > 0).all()
    assert (detector.decision_function(noise_crops(5, 9)) < 0).all()


def test_window_geometry():
    model = SlidingWindowDetector(window_size=(24, 24), pixels_per_cell=(6, 6), scale_step=2.0)
    boxes, features = model.windows(np.zeros((48, 60)))
    # scale 1: 8 x 10 cells, windows of 4 x 4 cells at a one-cell stride -> 5 x 7; scale 2: 24 x 30 -> 1 x 2
    assert model.scales(48, 60) == [1.0, 2.0]
    assert boxes.shape == (5 * 7 + 1 * 2, 4) and features.shape == (37, model.num_features)
    assert boxes[0].tolist() == [0, 0, 24, 24] and boxes[1].tolist() == [6, 0, 30, 24]
    assert boxes[35].tolist() == [0, 0, 48, 48]
    assert (boxes[:, 2] <= 60).all() and (boxes[:, 3] <= 48).all()


def test_window_features_match_crop_features_inside_the_image():
    image = np.random.default_rng(3).random((48, 48))
    model = SlidingWindowDetector(window_size=(24, 24), pixels_per_cell=(6, 6), max_scale=1.0)
    boxes, features = model.windows(image)
    crop = model.crop_features([image[6:30, 12:36]])[0]
    index = int(torch.nonzero((boxes == torch.tensor([12.0, 6.0, 36.0, 30.0])).all(dim=1))[0])
    # the same window; only the border pixels' gradients differ (the crop has none there)
    assert np.corrcoef(features[index], crop)[0, 1] > 0.8


def test_training_is_deterministic(detector):
    again = SlidingWindowDetector(window_size=(24, 24), pixels_per_cell=(6, 6), C=1.0, scale_step=1.25)
    scenes = [disk_image(96, (30, 60), 12, seed=100 + i) for i in range(3)]
    object_boxes = [torch.tensor([[46.0, 16.0, 74.0, 44.0]])] * 3
    again.fit(disk_crops(30, 0), noise_crops(60, 1), scenes, object_boxes=object_boxes, rounds=1)
    np.testing.assert_array_equal(again.svm.coef_, detector.svm.coef_)


def test_hard_negative_mining_adds_negatives():
    model = SlidingWindowDetector(window_size=(24, 24), pixels_per_cell=(6, 6), C=1.0)
    scene = disk_image(64, (32, 32), 10, seed=5)  # a disk nobody marked: its windows are hard negatives
    model.fit(disk_crops(10, 0), noise_crops(20, 1), [scene], rounds=1, hard_per_image=5)
    assert 20 < model.num_negatives_ <= 25


def test_call_follows_torchvision(detector):
    images = [torch.from_numpy(disk_image(64, (32, 32), 10, seed=4)).float()[None].repeat(3, 1, 1)]
    outputs = detector(images)
    assert len(outputs) == 1 and set(outputs[0]) == {"boxes", "scores", "labels"}


def test_extreme_thresholds(detector):
    image = disk_image(64, (32, 32), 10, seed=4)
    assert len(detector.detect(image, score_threshold=1e6)["boxes"]) == 0
    empty = detector.detect(image, score_threshold=1e6)
    assert empty["boxes"].shape == (0, 4) and empty["scores"].dtype == torch.float32


def test_unit_float_and_resize():
    image = np.full((4, 6, 3), 255, dtype=np.uint8)
    assert to_unit_float(image).max() == 1.0 and to_unit_float(image, grey=True).shape == (4, 6)
    assert to_unit_float(torch.full((3, 4, 6), 255, dtype=torch.uint8)).max() == 1.0
    assert resize(np.ones((10, 10)), 5, 7).shape == (5, 7)


def test_bad_input(detector):
    with pytest.raises(ValueError, match="at least one window"):
        detector.detect(np.zeros((20, 40)))
    with pytest.raises(ValueError, match="non-empty"):
        detector.detect(np.zeros((0, 40)))
    with pytest.raises(ValueError, match="RGBA"):
        detector.detect(np.zeros((40, 40, 4)))
    with pytest.raises(RuntimeError, match="not trained"):
        SlidingWindowDetector().detect(np.zeros((40, 40)))
    with pytest.raises(ValueError, match="at least one positive"):
        SlidingWindowDetector().fit([], noise_crops(2, 0))
    with pytest.raises(ValueError, match="window_size"):
        SlidingWindowDetector(window_size=(6, 6), pixels_per_cell=(6, 6))
    with pytest.raises(ValueError, match="scale_step"):
        SlidingWindowDetector(scale_step=1.0)
    with pytest.raises(ValueError, match="block_norm: expected one of"):
        SlidingWindowDetector(block_norm="L3")
    with pytest.raises(ValueError, match="max_scale"):
        SlidingWindowDetector(min_scale=2.0, max_scale=1.0)
