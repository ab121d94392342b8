"""Time course_lib.nms against torchvision.ops on two kinds of box sets, in one run.

Two versions of each NMS are timed against the same torchvision timing: the readable greedy loop
that the notebooks show (``nms``, ``batched_nms``) and the block kernel that the models call
(``fast_nms``, ``fast_batched_nms``). Each must return torchvision's result, or nothing is timed.

* ``random``: boxes as in torchvision's own NMS tests, ``x1, y1 ~ U(0, 100)``, sides ``~ U(0, 100)``:
  heavy, unstructured overlap; many boxes survive.
* ``clustered``: what a detector emits before NMS: one box per object plus jittered copies of it,
  ``N / 50`` objects on an 800 x 800 image; few boxes survive.

Run: ``python benchmarks/bench_nms.py`` (or ``make bench`` for every benchmark).
"""

from __future__ import annotations

import torch
import torchvision.ops
from _timing import print_row, time_call

from course_lib.nms import batched_nms, fast_batched_nms, fast_nms, nms
from course_lib.references import clustered_boxes, random_boxes

IOU_THRESHOLD = 0.5
NUM_CLASSES = 10  # K, the categories of batched_nms




def main() -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    rows = []
    for num_boxes in (1000, 5000):
        for kind, make in (("random", random_boxes), ("clustered", clustered_boxes)):
            boxes = make(num_boxes, generator)
            scores = torch.rand(num_boxes, generator=generator)
            classes = torch.randint(0, NUM_CLASSES, (num_boxes,), generator=generator)
            expected = torchvision.ops.nms(boxes, scores, IOU_THRESHOLD)
            reference_s = time_call(torchvision.ops.nms, boxes, scores, IOU_THRESHOLD)
            for name, ours in (("nms", nms), ("fast_nms", fast_nms)):
                assert torch.equal(ours(boxes, scores, IOU_THRESHOLD), expected)  # same answer, or no timing
                row_name = f"{name}, {kind}, N={num_boxes}"
                rows.append(print_row(row_name, time_call(ours, boxes, scores, IOU_THRESHOLD), reference_s))
            expected = torchvision.ops.batched_nms(boxes, scores, classes, IOU_THRESHOLD)
            reference_s = time_call(torchvision.ops.batched_nms, boxes, scores, classes, IOU_THRESHOLD)
            for name, ours in (("batched_nms", batched_nms), ("fast_batched_nms", fast_batched_nms)):
                # the same boxes (above 1000 boxes torchvision may order equal scores either way)
                kept = ours(boxes, scores, classes, IOU_THRESHOLD)
                assert torch.equal(kept.sort().values, expected.sort().values)
                row_name = f"{name}, {kind}, N={num_boxes}, K={NUM_CLASSES}"
                time_s = time_call(ours, boxes, scores, classes, IOU_THRESHOLD)
                rows.append(print_row(row_name, time_s, reference_s))
    return rows


if __name__ == "__main__":
    main()
