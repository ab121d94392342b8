"""Time course_lib.metrics.coco_evaluate against pycocotools' COCO + COCOeval (bbox).

The reference is the whole pycocotools pipeline a user runs: ``COCO()`` on the gt dict,
``loadRes``, ``evaluate``, ``accumulate``, ``summarize`` (its prints go to a sink). The data
is generated to look like a small detector's output: 5 classes, 1-6 objects per image of all
sizes (a few crowd regions), 20-100 detections per image of which ~30% are noisy hits.
Both must give the same 12 numbers; the script checks that before it prints the times.

Run: ``python benchmarks/bench_metrics.py`` (or ``make bench`` for every benchmark).
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
from _timing import print_row, time_call
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from course_lib.metrics import coco_evaluate

NUM_CLASSES = 5


def make_dataset(num_images: int, seed: int = 0) -> tuple[dict, list[dict]]:
    rng = np.random.default_rng(seed)
    annotations, detections = [], []
    for image_id in range(1, num_images + 1):
        objects = []
        for _ in range(rng.integers(1, 7)):
            w, h = np.exp(rng.uniform(np.log(8), np.log(250), 2))  # small, medium and large
            x, y = rng.uniform(0, 400, 2)
            objects.append({"id": len(annotations) + len(objects) + 1, "image_id": image_id,
                            "category_id": int(rng.integers(1, NUM_CLASSES + 1)), "bbox": [x, y, w, h],
                            "area": w * h, "iscrowd": int(rng.random() < 0.03)})
        annotations += objects
        for _ in range(rng.integers(20, 101)):
            if rng.random() < 0.3:
                hit = objects[rng.integers(len(objects))]
                box = np.abs(np.array(hit["bbox"]) * (1 + rng.normal(0, 0.1, 4)))
                category = hit["category_id"]
            else:
                box = np.concatenate([rng.uniform(0, 400, 2), np.exp(rng.uniform(np.log(8), np.log(250), 2))])
                category = int(rng.integers(1, NUM_CLASSES + 1))
            detections.append({"image_id": image_id, "category_id": category, "bbox": box.tolist(),
                               "score": round(float(rng.random()), 3)})
    coco_gt = {"images": [{"id": i} for i in range(1, num_images + 1)], "annotations": annotations,
               "categories": [{"id": c, "name": f"class {c}"} for c in range(1, NUM_CLASSES + 1)]}
    return coco_gt, detections


def pycocotools_evaluate(coco_gt: dict, coco_dt: list[dict]) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = coco_gt
        coco.createIndex()
        result = COCOeval(coco, coco.loadRes(coco_dt), "bbox")
        result.evaluate()
        result.accumulate()
        result.summarize()
    return result.stats


def main() -> list[dict]:
    rows = []
    for num_images, repeat in [(100, 5), (500, 3)]:
        coco_gt, coco_dt = make_dataset(num_images)
        # pycocotools writes into the dicts it is given: let it have its own copies.
        ref_gt, ref_dt = copy.deepcopy(coco_gt), copy.deepcopy(coco_dt)
        ours = np.array(list(coco_evaluate(coco_gt, coco_dt).values()))
        np.testing.assert_allclose(ours, pycocotools_evaluate(ref_gt, ref_dt), atol=1e-6, rtol=0)
        ours_s = time_call(coco_evaluate, coco_gt, coco_dt, repeat=repeat)
        ref_s = time_call(pycocotools_evaluate, ref_gt, ref_dt, repeat=repeat)
        name = f"coco_evaluate {num_images} img, {len(coco_dt)} dets"
        rows.append(print_row(name, ours_s, ref_s))
    return rows


if __name__ == "__main__":
    main()
