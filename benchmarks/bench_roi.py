"""Time course_lib.roi against torchvision.ops: roi_pool and roi_align, forward and forward+backward.

Each op in two versions, both against torchvision in the same run: the fast kernels the models call
(``fast_roi_pool``, ``fast_roi_align``) and the readable algorithms a notebook shows (``roi_pool``,
``roi_align``). The readable ones take seconds on the large case; they are timed by one call each.

Two sizes, as in the course's detectors: a stride-4 feature map of a 128 x 128 ShapeScenes image,
``(2, 64, 32, 32)`` with 512 RoIs, and a larger ``(4, 256, 50, 50)`` map (a 200 x 200 image) with 2000
RoIs. RoIs are proposal-like boxes of 8 to ~0.6 image sides, clipped to the image; output 7 x 7,
``spatial_scale`` 0.25, ``sampling_ratio`` -1 (adaptive), ``aligned=False``.

Run: ``python benchmarks/bench_roi.py`` (or ``make bench`` for every benchmark).
"""

from __future__ import annotations

import time

import torch
import torchvision.ops
from _timing import NUM_THREADS, print_row, time_call

from course_lib.roi import fast_roi_align, fast_roi_pool, roi_align, roi_pool

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


def time_once(fn, *args) -> tuple[float, object]:
    """Wall time of one call, and its result (no warm-up: at seconds per call it would change nothing)."""
    torch.set_num_threads(NUM_THREADS)
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    rows = []
    for shape, num_boxes in (((2, 64, 32, 32), 512), ((4, 256, 50, 50), 2000)):
        features = torch.rand(shape, generator=generator)
        rois = proposals(num_boxes, shape[0], int(shape[2] / SPATIAL_SCALE), generator)
        label = f"{tuple(shape)}, K={num_boxes}"
        repeat = 5 if shape[1] < 256 else 3
        args = (features, rois, OUTPUT_SIZE, SPATIAL_SCALE)
        for readable, fast, reference in (
            (roi_pool, fast_roi_pool, torchvision.ops.roi_pool),
            (roi_align, fast_roi_align, torchvision.ops.roi_align),
        ):
            expected = reference(*args)
            assert torch.allclose(fast(*args), expected, atol=1e-4), fast.__name__  # same answer, or no time
            reference_s = time_call(reference, *args, repeat=repeat)
            fast_s = time_call(fast, *args, repeat=repeat)
            rows.append(print_row(f"{fast.__name__}, {label}", fast_s, reference_s))
            readable_s, got = time_once(readable, *args)
            assert torch.allclose(got, expected, atol=1e-4), readable.__name__
            rows.append(print_row(f"{readable.__name__}, {label}", readable_s, reference_s))

            reference_s = time_call(forward_backward, reference, features, rois, repeat=repeat)
            fast_s = time_call(forward_backward, fast, features, rois, repeat=repeat)
            rows.append(print_row(f"{fast.__name__} fwd+bwd, {label}", fast_s, reference_s))
            readable_s, _ = time_once(forward_backward, readable, features, rois)
            rows.append(print_row(f"{readable.__name__} fwd+bwd, {label}", readable_s, reference_s))
    return rows


if __name__ == "__main__":
    main()
