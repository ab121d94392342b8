"""Time course_lib.boxes against torchvision.ops: pairwise IoU and GIoU matrices.

Boxes as in torchvision's tests: ``x1, y1 ~ U(0, 100)``, sides ``~ U(0, 100)``. At 5000 x 5000 each
(N, M) temporary is 100 MB, so the time is mostly memory: we compute on contiguous rows and in place.

Run: ``python benchmarks/bench_boxes.py`` (or ``make bench`` for every benchmark).
"""

from __future__ import annotations

import torch
import torchvision.ops
from _timing import print_row, time_call

from course_lib.boxes import box_iou, generalized_box_iou
from course_lib.references import random_boxes


def main() -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    rows = []
    for num_boxes, repeat in ((1000, 7), (5000, 3)):
        boxes1, boxes2 = random_boxes(num_boxes, generator), random_boxes(num_boxes, generator)
        assert torch.equal(box_iou(boxes1, boxes2), torchvision.ops.box_iou(boxes1, boxes2))
        for name, ours, theirs in (
            ("box_iou", box_iou, torchvision.ops.box_iou),
            ("generalized_box_iou", generalized_box_iou, torchvision.ops.generalized_box_iou),
        ):
            rows.append(
                print_row(
                    f"{name}, {num_boxes} x {num_boxes}",
                    time_call(ours, boxes1, boxes2, repeat=repeat),
                    time_call(theirs, boxes1, boxes2, repeat=repeat),
                )
            )
    return rows


if __name__ == "__main__":
    main()
