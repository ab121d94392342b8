"""Selective search against OpenCV's (``cv2.ximgproc.segmentation``), both on one thread.

For each image set, one run measures, for ours and OpenCV's in fast mode (and single mode for ours):
recall at IoU >= 0.5 and MABO as the number of proposals grows, and seconds per image. OpenCV ranks
with an unseeded ``rand()``, so its recall at small counts changes from run to run: its rows are
the mean of ``OPENCV_RUNS`` runs, and a ``min``/``max`` row shows their spread. ``ours paper``
is our selective search with the paper's ranking (``ranking="paper"``), for comparison.

Sets: the first ``NUM_SCENES`` images of the ShapeScenes test split (128 x 128), scikit-image's
``coins`` (24 boxes derived in ``data/annotations/coins.json``) and ``astronaut`` (7 boxes by hand).

Run: ``python benchmarks/bench_selective_search.py [--quality]`` (or ``make bench``).
"""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np
import torch
from _timing import print_row

from course_lib.classical.selective_search import selective_search
from course_lib.data import ShapeScenes, load_photo
from course_lib.data.annotations import load_photo_annotations
from course_lib.metrics.proposals import DEFAULT_COUNTS, mabo, proposal_recall
from course_lib.references import opencv_selective_search

NUM_SCENES = 30
OPENCV_RUNS = 5


def image_sets() -> dict[str, list[tuple[np.ndarray, torch.Tensor]]]:
    scenes = ShapeScenes.split("test")
    shapes = [(scene.image, torch.from_numpy(scene.boxes)) for scene in map(scenes.scene, range(NUM_SCENES))]
    photos = {
        name: [(load_photo(name), load_photo_annotations(name)["boxes"])] for name in ("coins", "astronaut")
    }
    return {f"ShapeScenes test[:{NUM_SCENES}]": shapes, **photos}


def run(method, images) -> tuple[list[torch.Tensor], float]:
    """Proposals of every image and the mean seconds per image (one untimed warm-up call)."""
    method(images[0][0])
    proposals, start = [], time.perf_counter()
    for image, _ in images:
        proposals.append(method(image))
    return proposals, (time.perf_counter() - start) / len(images)


def main(quality: bool = False) -> list[dict]:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    methods = {
        "ours single": lambda image: selective_search(image, "single"),
        "ours paper": lambda image: selective_search(image, "fast", ranking="paper"),
        "ours fast": lambda image: selective_search(image, "fast"),
        "OpenCV fast": lambda image: opencv_selective_search(image, "fast"),
    }
    if quality:
        methods["ours quality"] = lambda image: selective_search(image, "quality")
        methods["OpenCV quality"] = lambda image: opencv_selective_search(image, "quality")
    rows = []
    header = "".join(f"{count:>7}" for count in DEFAULT_COUNTS)
    for set_name, images in image_sets().items():
        gt_boxes = [boxes for _, boxes in images]
        print(f"\n{set_name}: {len(images)} image(s), {sum(map(len, gt_boxes))} boxes")
        print(f"{'method':<16}{'':>6}{header}   #proposals  s/image")
        seconds = {}
        for method_name, method in methods.items():
            num_runs = OPENCV_RUNS if method_name.startswith("OpenCV") else 1
            runs = [run(method, images) for _ in range(num_runs)]
            seconds[method_name] = np.mean([run_seconds for _, run_seconds in runs])
            recalls = [proposal_recall(proposals, gt_boxes) for proposals, _ in runs]
            overlaps = [mabo(proposals, gt_boxes) for proposals, _ in runs]
            recall = {c: np.mean([r[c] for r in recalls]) for c in DEFAULT_COUNTS}
            overlap = {c: np.mean([o[c] for o in overlaps]) for c in DEFAULT_COUNTS}
            mean_count = np.mean([len(p) for p in runs[0][0]])
            print(f"{method_name:<16}{'recall':>6}" + "".join(f"{recall[c]:7.3f}" for c in DEFAULT_COUNTS)
                  + f"   {mean_count:10.0f}  {seconds[method_name]:7.3f}")
            if len(runs) > 1:
                low = {c: min(r[c] for r in recalls) for c in DEFAULT_COUNTS}
                high = {c: max(r[c] for r in recalls) for c in DEFAULT_COUNTS}
                label = f"({num_runs} runs)"
                print(f"{label:<16}{'min':>6}" + "".join(f"{low[c]:7.3f}" for c in DEFAULT_COUNTS))
                print(f"{'':<16}{'max':>6}" + "".join(f"{high[c]:7.3f}" for c in DEFAULT_COUNTS))
            print(f"{'':<16}{'MABO':>6}" + "".join(f"{overlap[c]:7.3f}" for c in DEFAULT_COUNTS))
        rows.append(print_row(f"selective search fast, {set_name} (per image)",
                              seconds["ours fast"], seconds["OpenCV fast"]))
    return rows


if __name__ == "__main__":
    main(quality="--quality" in sys.argv)
