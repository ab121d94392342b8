"""HOG + SVM on ShapeScenes: one sliding-window detector per shape class, the course's classical baseline.

Each class gets its own :class:`SlidingWindowDetector`, trained on the train split only:

* positives: square crops centred on the class's boxes (side = the box's longer side), mirrored too;
* negatives: random square windows that overlap no box of the class (IoU < 0.3; other shapes and
  the background are fair negatives), then hard negatives mined from the same train images.

At test time every detector scans the image and the detections are pooled (a box keeps the label
of its detector; NMS runs per class). The windows are square, so a thin box can at best be matched
with a square around it: part of why the AP is low. Evaluated with ``course_lib.metrics`` on the
test split.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor

from course_lib.boxes import box_iou
from course_lib.classical.sliding_window import SlidingWindowDetector
from course_lib.data import CLASSES, NUM_CLASSES, ShapeScenes
from course_lib.metrics import evaluate_detections

SHAPE_DETECTOR_ARGS = {"window_size": (16, 16), "pixels_per_cell": (4, 4), "cells_per_block": (2, 2),
                       "scale_step": 1.4, "min_scale": 0.75, "C": 0.1, "score_threshold": -0.5,
                       "iou_threshold": 0.3}


def square_crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The square around ``box`` (side = its longer side), padded by edge values where it leaves the image."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1, 2.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    side = int(round(side))
    pad = side
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return padded[top + pad : top + pad + side, left + pad : left + pad + side]


def training_crops(scenes: list, label: int, num_negatives_per_image: int, seed: int = 0):
    """``(positives, negatives)`` crops of class ``label`` from a list of ``Scene``."""
    rng = np.random.default_rng(seed)
    positives, negatives = [], []
    for scene in scenes:
        boxes = scene.boxes[scene.labels == label]
        for box in boxes:
            crop = square_crop(scene.image, box)
            positives += [crop, crop[:, ::-1]]
        size = scene.image.shape[0]
        for _ in range(num_negatives_per_image):
            side = int(rng.integers(8, size // 2))
            x, y = (int(v) for v in rng.integers(0, size - side + 1, 2))
            window = torch.tensor([[x, y, x + side, y + side]], dtype=torch.float32)
            if len(boxes) and box_iou(window, torch.from_numpy(boxes)).max() >= 0.3:
                continue
            negatives.append(scene.image[y : y + side, x : x + side])
    return positives, negatives


def train_shape_detectors(
    num_images: int = 200,
    labels: tuple[int, ...] | None = None,
    rounds: int = 1,
    num_mining_images: int = 50,
    seed: int = 0,
    **detector_args,
) -> dict[int, SlidingWindowDetector]:
    """One detector per class, trained on the first ``num_images`` of the train split.

    Hard negatives are mined on the first ``num_mining_images`` of them; every class reads the same
    pyramid windows of an image, computed once.

    Returns:
        ``{label: detector}``.
    """
    labels = tuple(range(1, NUM_CLASSES + 1)) if labels is None else labels
    dataset = ShapeScenes.split("train")
    scenes = [dataset.scene(index) for index in range(num_images)]
    detectors, positives, negatives = {}, {}, {}
    for label in labels:
        positive_crops, negative_crops = training_crops(scenes, label, 4, seed=seed + label)
        detector = SlidingWindowDetector(**{**SHAPE_DETECTOR_ARGS, **detector_args, "label": label})
        positives[label] = detector.crop_features(positive_crops)
        negatives[label] = [detector.crop_features(negative_crops)]
        detector.fit_features(positives[label], negatives[label][0])
        detectors[label] = detector
    first = detectors[labels[0]]
    for _ in range(rounds):
        for scene in scenes[:num_mining_images]:
            windows = first.windows(scene.image)  # shared: same HOG and pyramid for every class
            for label, detector in detectors.items():
                object_boxes = torch.from_numpy(scene.boxes[scene.labels == label])
                negatives[label].append(detector.hard_negatives(*windows, object_boxes, hard_per_image=10))
        for label, detector in detectors.items():
            detector.fit_features(positives[label], np.concatenate(negatives[label]))
    return detectors


def detect_shapes(detectors: dict[int, SlidingWindowDetector], image) -> dict[str, Tensor]:
    """Pool every class detector's detections on one image, best score first.

    The detectors must share their HOG and pyramid parameters: the windows are computed once.
    """
    windows = next(iter(detectors.values())).windows(image)
    outputs = [detector.detect(image, windows=windows) for detector in detectors.values()]
    scores = torch.cat([output["scores"] for output in outputs])
    order = torch.argsort(scores, descending=True, stable=True)
    keys = ("boxes", "scores", "labels")
    return {key: torch.cat([output[key] for output in outputs])[order] for key in keys}


def evaluate_shape_detectors(
    detectors: dict[int, SlidingWindowDetector], split: str = "test", num_images: int | None = None
) -> dict[str, float]:
    """COCO metrics of the pooled detectors on ``split`` (``AP``, ``AP50``, ...), plus ``seconds_per_image``.

    Only the classes that have a detector are counted (ground truth of other classes is dropped).
    """
    dataset = ShapeScenes.split(split)
    num_images = len(dataset) if num_images is None else num_images
    predictions, targets = [], []
    start = time.perf_counter()
    for index in range(num_images):
        scene = dataset.scene(index)
        predictions.append(detect_shapes(detectors, scene.image))
        keep = np.isin(scene.labels, list(detectors))
        targets.append({"boxes": torch.from_numpy(scene.boxes[keep]),
                        "labels": torch.from_numpy(scene.labels[keep])})
    seconds = (time.perf_counter() - start) / max(num_images, 1)
    metrics = evaluate_detections(predictions, targets)
    return {**metrics, "seconds_per_image": seconds}


def class_names(detectors: dict[int, SlidingWindowDetector]) -> list[str]:
    """The class names of ``detectors``, in order."""
    return [CLASSES[label] for label in detectors]
