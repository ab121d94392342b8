"""Tests of the HOG + SVM baseline on ShapeScenes (small subsets; the full run is benchmarks/bench_hog.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.data import ShapeScenes
from course_lib.recipes.shape_detector import (
    detect_shapes,
    evaluate_shape_detectors,
    square_crop,
    train_shape_detectors,
    training_crops,
)


@pytest.fixture(scope="module")
def detectors():
    return train_shape_detectors(num_images=40, labels=(1, 2), num_mining_images=10)


def test_small_baseline_beats_chance_on_the_test_split(detectors):
    metrics = evaluate_shape_detectors(detectors, "test", num_images=15)
    assert set(metrics) >= {"AP", "AP50", "AP75", "AR100", "seconds_per_image"}
    # chance is ~0: a random square rarely has IoU >= 0.5 with a shape (measured here: ~0.2)
    assert 0.02 < metrics["AP50"] < 1.0


def test_detect_shapes_pools_the_classes(detectors):
    image = ShapeScenes.split("test").scene(0).image
    output = detect_shapes(detectors, image)
    assert set(output["labels"].tolist()) <= {1, 2}
    assert torch.all(output["scores"][:-1] >= output["scores"][1:])
    assert output["boxes"].shape == (len(output["scores"]), 4)


def test_training_is_deterministic(detectors):
    again = train_shape_detectors(num_images=40, labels=(1, 2), num_mining_images=10)
    for label in (1, 2):
        np.testing.assert_array_equal(again[label].svm.coef_, detectors[label].svm.coef_)


def test_square_crop_by_hand():
    image = np.arange(100 * 3).reshape(10, 10, 3)
    crop = square_crop(image, np.array([2.0, 3.0, 6.0, 5.0]))  # 4 x 2 box -> 4 x 4 square on its centre
    assert crop.shape == (4, 4, 3)
    np.testing.assert_array_equal(crop, image[2:6, 2:6])
    assert square_crop(image, np.array([-2.0, -2.0, 2.0, 2.0])).shape == (4, 4, 3)  # padded at the edge


def test_training_crops_avoid_the_class():
    scenes = [ShapeScenes.split("train").scene(index) for index in range(5)]
    positives, negatives = training_crops(scenes, 1, 6, seed=0)
    assert len(positives) == 2 * int(sum((scene.labels == 1).sum() for scene in scenes))
    assert 0 < len(negatives) <= 30
