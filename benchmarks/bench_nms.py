"""Time course_lib.nms against torchvision.ops on two kinds of box sets.

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

from course_lib.nms import batched_nms, nms

IOU_THRESHOLD = 0.5


def random_boxes(num_boxes: int, generator: torch.Generator) -> torch.Tensor:
    boxes = torch.rand(num_boxes, 4, generator=generator) * 100  # (N, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def clustered_boxes(num_boxes: int, generator: torch.Generator) -> torch.Tensor:
    num_objects = max(1, num_boxes // 50)
    centres = torch.rand(num_objects, 2, generator=generator) * 800  # (O, 2)
    sizes = 16 + torch.rand(num_objects, 2, generator=generator) * 200  # (O, 2)
    owner = torch.randint(0, num_objects, (num_boxes,), generator=generator)  # (N,)
    centre = centres[owner] + 0.1 * sizes[owner] * torch.randn(num_boxes, 2, generator=generator)  # (N, 2)
    size = sizes[owner] * (1 + 0.15 * torch.randn(num_boxes, 2, generator=generator)).clamp(min=0.3)  # (N, 2)
    return torch.cat((centre - size / 2, centre + size / 2), dim=1)  # (N, 4)


def main() -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    rows = []
    for num_boxes in (1000, 5000):
        for kind, make in (("random", random_boxes), ("clustered", clustered_boxes)):
            boxes = make(num_boxes, generator)
            scores = torch.rand(num_boxes, generator=generator)
            classes = torch.randint(0, 10, (num_boxes,), generator=generator)
            expected = torchvision.ops.nms(boxes, scores, IOU_THRESHOLD)
            assert torch.equal(nms(boxes, scores, IOU_THRESHOLD), expected)  # same answer, or no timing
            rows.append(
                print_row(
                    f"nms, {kind}, N={num_boxes}",
                    time_call(nms, boxes, scores, IOU_THRESHOLD),
                    time_call(torchvision.ops.nms, boxes, scores, IOU_THRESHOLD),
                )
            )
            rows.append(
                print_row(
                    f"batched_nms, {kind}, N={num_boxes}, 10 classes",
                    time_call(batched_nms, boxes, scores, classes, IOU_THRESHOLD),
                    time_call(torchvision.ops.batched_nms, boxes, scores, classes, IOU_THRESHOLD),
                )
            )
    return rows


if __name__ == "__main__":
    main()
