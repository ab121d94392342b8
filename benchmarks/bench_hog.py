"""Time course_lib's HOG against scikit-image's, and the face detector against OpenCV's LBP cascade.

Rows (``main()``):

* ``hog``: the 512 x 512 astronaut (RGB, 9 bins, 8 x 8 cells, 2 x 2 blocks, L2-Hys), ours with
  ``interpolate=False`` (the same vector as scikit-image, checked first) and with the default
  interpolation, against ``skimage.feature.hog``.
* ``face detection``: our trained HOG + SVM sliding window on the astronaut against
  ``cv2.CascadeClassifier`` with scikit-image's LBP frontal-face cascade (different methods: the
  ratio says what the classical pipeline costs next to a boosted cascade).

Run as a script, it also prints the accuracy side: the face IoU and false positives of both
detectors, and the ShapeScenes baseline (one detector per class, trained on 200 train images,
COCO AP50 on the 200 test images) with its training time.

Run: ``python benchmarks/bench_hog.py`` (or ``make bench`` for every benchmark).
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import skimage.feature
from _timing import print_row, time_call

from course_lib.classical import hog
from course_lib.data import load_photo
from course_lib.recipes.face_detector import (
    cascade_detect,
    run_cascade_on_astronaut,
    run_on_astronaut,
    train_face_detector,
)
from course_lib.recipes.shape_detector import evaluate_shape_detectors, train_shape_detectors


def reference_hog(image: np.ndarray) -> np.ndarray:
    return skimage.feature.hog(image, 9, (8, 8), (2, 2), "L2-Hys", channel_axis=-1)


def main() -> list[dict]:
    cv2.setNumThreads(1)
    image = load_photo("astronaut")
    assert np.abs(hog(image, interpolate=False) - reference_hog(image)).max() < 1e-6  # same answer first
    rows = [
        print_row("hog 512x512 RGB, skimage's binning", time_call(lambda: hog(image, interpolate=False)),
                  time_call(reference_hog, image)),
        print_row("hog 512x512 RGB, interpolated bins", time_call(hog, image),
                  time_call(reference_hog, image)),
    ]
    detector = train_face_detector()
    rows.append(print_row("face detection, astronaut (HOG+SVM vs LBP cascade)",
                          time_call(detector.detect, image, repeat=3), time_call(cascade_detect, image)))
    return rows


def accuracy_report() -> None:
    start = time.perf_counter()
    detector = train_face_detector()
    seconds = time.perf_counter() - start
    print(f"face detector: trained in {seconds:.1f} s, {detector.num_negatives_} negatives")
    for threshold in (0.0, 0.5):
        result = run_on_astronaut(detector, threshold)
        print(f"  HOG+SVM at score > {threshold}: best IoU {result['best_iou']:.3f}, "
              f"found {bool(result['found'])}, false positives {int(result['false_positives'])}")
    cascade = run_cascade_on_astronaut()
    print(f"  LBP cascade: boxes {cascade['boxes'].tolist()}, best IoU {cascade['best_iou']:.3f}, "
          f"false positives {int(cascade['false_positives'])}, {cascade['seconds'] * 1e3:.0f} ms")
    start = time.perf_counter()
    detectors = train_shape_detectors(num_images=200)
    seconds = time.perf_counter() - start
    metrics = evaluate_shape_detectors(detectors, "test")
    print(f"ShapeScenes, 5 class detectors trained on 200 train images in {seconds:.1f} s; test split (200): "
          f"AP50 {metrics['AP50']:.3f}, AP {metrics['AP']:.3f}, AR100 {metrics['AR100']:.3f}, "
          f"{metrics['seconds_per_image'] * 1e3:.0f} ms per image")


if __name__ == "__main__":
    main()
    accuracy_report()
