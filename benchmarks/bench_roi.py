"""Time course_lib.roi against torchvision.ops: roi_pool and roi_align, forward and forward+backward.

Two sizes, as in the course's detectors: a stride-4 feature map of a 128 x 128 ShapeScenes image,
``(2, 64, 32, 32)`` with 512 RoIs, and a larger ``(4, 256, 50, 50)`` map (a 200 x 200 image) with 2000
RoIs. RoIs are proposal-like boxes of 8 to ~0.6 image sides, clipped to the image; output 7 x 7,
``spatial_scale`` 0.25, ``sampling_ratio`` -1 (adaptive), ``aligned=False``.

Run: ``python benchmarks/bench_roi.py`` (or ``make bench`` for every benchmark).
"""

from __future__ import annotations

import torch
import torchvision.ops
from _timing import print_row, time_call

from course_lib.roi import roi_align, roi_pool

OUTPUT_SIZE = 7
SPATIAL_SCALE = 0.25


def proposals(num_boxes: int, batch_size: int, image_size: int, generator: torch.Generator) -> torch.Tensor:
    """``Tensor[K, 5]``: batch index, then an ``xyxy`` box of side 8 to 8 + 0.6 * image_size pixels."""
    centres = torch.rand(num_boxes, 2, generator=generator) * image_size  # (K, 2)
    sides = 8 + torch.rand(num_boxes, 2, generator=generator) * 0.6 * image_size  # (K, 2)
    boxes = torch.cat((centres - sides / 2, centres + sides / 2), dim=1).clamp(0, image_size)  # (K, 4)
    batch = torch.randint(0, batch_size, (num_boxes, 1), generator=generator).float()  # (K, 1)
    return torch.cat((batch, boxes), dim=1)  # (K, 5)


def forward_backward(op, features: torch.Tensor, rois: torch.Tensor) -> None:
    features = features.detach().requires_grad_(True)
    op(features, rois, OUTPUT_SIZE, SPATIAL_SCALE).sum().backward()


def main() -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    rows = []
    for shape, num_boxes in (((2, 64, 32, 32), 512), ((4, 256, 50, 50), 2000)):
        features = torch.rand(shape, generator=generator)
        rois = proposals(num_boxes, shape[0], int(shape[2] / SPATIAL_SCALE), generator)
        label = f"{tuple(shape)}, K={num_boxes}"
        repeat = 5 if shape[1] < 256 else 1  # the large case takes seconds per call
        for name, ours, reference in (
            ("roi_pool", roi_pool, torchvision.ops.roi_pool),
            ("roi_align", roi_align, torchvision.ops.roi_align),
        ):
            expected = reference(features, rois, OUTPUT_SIZE, SPATIAL_SCALE)
            got = ours(features, rois, OUTPUT_SIZE, SPATIAL_SCALE)
            assert torch.allclose(got, expected, atol=1e-4), name  # same answer, or no timing
            rows.append(
                print_row(
                    f"{name}, {label}",
                    time_call(ours, features, rois, OUTPUT_SIZE, SPATIAL_SCALE, repeat=repeat),
                    time_call(reference, features, rois, OUTPUT_SIZE, SPATIAL_SCALE, repeat=repeat),
                )
            )
            rows.append(
                print_row(
                    f"{name} fwd+bwd, {label}",
                    time_call(forward_backward, ours, features, rois, repeat=repeat),
                    time_call(forward_backward, reference, features, rois, repeat=repeat),
                )
            )
    return rows


if __name__ == "__main__":
    main()
