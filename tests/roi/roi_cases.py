"""Inputs and helpers shared by the tests of course_lib.roi (imported as ``roi_cases``)."""

from __future__ import annotations

import pytest
import torch

# Tolerances against torchvision per dtype. RoI pooling copies values, so it is exact in every dtype;
# RoIAlign sums weighted values, and float16 rounds each step of the sum (eps 2**-10; a gradient entry
# here sums a few dozen terms of size ~1, and came within 0.017 of torchvision's float16 one).
ALIGN_TOLERANCE = {
    torch.float16: {"rtol": 1e-2, "atol": 2e-2},
    torch.float32: {"rtol": 0.0, "atol": 1e-5},
    torch.float64: {"rtol": 0.0, "atol": 1e-10},
}


def ramp(height: int, width: int) -> torch.Tensor:
    """A (1, 1, H, W) map with value x + 10 y at column x, row y: bilinear reads it exactly."""
    rows = torch.arange(height, dtype=torch.float64)[:, None]
    cols = torch.arange(width, dtype=torch.float64)[None, :]
    return (cols + 10 * rows)[None, None]


def rois_for_tests(generator: torch.Generator, batch_size: int, image_size: float) -> torch.Tensor:
    """(K, 5) RoIs of every kind: random, crossing the border, tiny, outside, zero-size, malformed."""
    num_random = 24
    centres = torch.rand(num_random, 2, generator=generator, dtype=torch.float64) * 1.2 * image_size
    sides = torch.rand(num_random, 2, generator=generator, dtype=torch.float64) * image_size
    random = torch.cat((centres - sides / 2, centres + sides / 2), dim=1)  # some cross the border
    special = torch.tensor(
        [
            [-20.0, -12.0, 30.0, 25.0],  # crosses the top-left border
            [5.0, 6.0, 6.5, 7.0],  # smaller than one bin
            [1000.0, 1000.0, 1040.0, 1030.0],  # entirely outside
            [-40.0, -40.0, -30.0, -35.0],  # entirely outside, above and to the left
            [8.0, 8.0, 8.0, 8.0],  # zero size
            [12.0, 4.0, 12.0, 20.0],  # zero width
            [20.0, 20.0, 10.0, 10.0],  # x2 < x1: malformed
            [0.0, 0.0, image_size, image_size],  # the whole image
            [2.0, 2.0, 6.0, 6.0],  # whole numbers: halves after scaling by 0.125 or 0.25
            [6.0, 10.0, 22.0, 14.0],
        ],
        dtype=torch.float64,
    )
    boxes = torch.cat((random, special))
    batch = torch.randint(0, batch_size, (len(boxes), 1), generator=generator).to(torch.float64)
    return torch.cat((batch, boxes), dim=1)  # (K, 5)


def as_list(rois: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """The same RoIs as one ``Tensor[L, 4]`` per image (the order changes: image by image)."""
    return [rois[rois[:, 0] == image, 1:] for image in range(batch_size)]


def run(op, features: torch.Tensor, rois, *args) -> tuple[torch.Tensor, torch.Tensor]:
    """Output and input gradient of ``op`` for fixed output weights.

    The weights are multiples of 1/8 in [-1, 1]: exact in every dtype, so that gradients summed in
    another order (autograd's, torchvision's loop) still agree to the last bit in RoI pooling.
    """
    x = features.detach().clone().requires_grad_(True)
    out = op(x, rois, *args)
    weights = ((torch.arange(out.numel()) % 17 - 8) / 8).to(out.dtype).reshape(out.shape)
    (out * weights).sum().backward()
    return out.detach(), x.grad


def run_both(ours, reference, features, rois, *args):
    """Outputs and input gradients of both ops for the same output weights."""
    return [run(op, features, rois, *args) for op in (ours, reference)]


def assert_bad_input_raises(op) -> None:
    """The argument checks every RoI op shares, with their messages."""
    features = torch.randn(2, 3, 5, 5)
    boxes = torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]])
    with pytest.raises(ValueError, match=r"input: expected a Tensor\[B, C, H, W\], got shape \(3, 5, 5\)"):
        op(features[0], boxes, 2)
    with pytest.raises(TypeError, match="input: expected a torch.Tensor, got list"):
        op([[1.0]], boxes, 2)
    with pytest.raises(TypeError, match="input: expected a floating-point tensor"):
        op(features.long(), boxes, 2)
    with pytest.raises(ValueError, match=r"boxes: expected a Tensor\[K, 5\].*got shape \(1, 4\)"):
        op(features, boxes[:, 1:], 2)
    with pytest.raises(ValueError, match=r"boxes\[0\]: expected a Tensor\[N, 4\], got shape \(1, 5\)"):
        op(features, [boxes], 2)
    with pytest.raises(ValueError, match=r"batch indices that are integers in \[0, 1\], got 2.0"):
        op(features, torch.tensor([[2.0, 0.0, 0.0, 2.0, 2.0]]), 2)
    with pytest.raises(ValueError, match="got -1.0"):
        op(features, torch.tensor([[-1.0, 0.0, 0.0, 2.0, 2.0]]), 2)
    with pytest.raises(ValueError, match="got 0.5"):
        op(features, torch.tensor([[0.5, 0.0, 0.0, 2.0, 2.0]]), 2)
    with pytest.raises(ValueError, match=r"batch indices that are integers in \[0, 1\], got 2.0"):
        op(features, [boxes[:, 1:]] * 3, 2)
    with pytest.raises(ValueError, match="boxes: expected finite coordinates"):
        op(features, torch.tensor([[0.0, 0.0, float("nan"), 2.0, 2.0]]), 2)
    with pytest.raises(ValueError, match=r"output_size: expected a value in \[1, inf\], got 0"):
        op(features, boxes, 0)
    with pytest.raises(ValueError, match=r"output_size: expected a value in \[1, inf\], got -2"):
        op(features, boxes, (3, -2))
    # A sequence of the wrong length: ValueError, as course_lib._checks.check_pair says everywhere
    # (the roi module raised TypeError before the shared helper).
    with pytest.raises(ValueError, match=r"output_size: expected an int or a pair \(h, w\), got 3 values"):
        op(features, boxes, (1, 2, 3))
    with pytest.raises(TypeError, match=r"output_size: expected an int or a pair \(h, w\), got 2.0"):
        op(features, boxes, 2.0)
    with pytest.raises(TypeError, match="output_size: expected an int, got float 2.0"):
        op(features, boxes, (2.0, 2))
    with pytest.raises(ValueError, match="spatial_scale: expected a positive number, got 0"):
        op(features, boxes, 2, 0)
    with pytest.raises(ValueError, match="spatial_scale: expected a positive number, got -0.25"):
        op(features, boxes, 2, -0.25)
