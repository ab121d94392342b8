"""Tests of course_lib.roi: hand-computed poolings, torchvision.ops as the oracle (outputs and
gradients), invariants, edge cases and bad input."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops

from course_lib.roi import roi_align, roi_pool


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


def run_both(ours, reference, features, rois, *args):
    """Outputs and input gradients of both ops for the same random output weights."""
    results = []
    for op in (ours, reference):
        x = features.clone().requires_grad_(True)
        out = op(x, rois, *args)
        weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
        (out * weights).sum().backward()
        results.append((out.detach(), x.grad))
    return results


# ----------------------------------------------------------------------------- hand-computed


def test_roi_pool_two_by_two_by_hand():
    features = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    boxes = torch.tensor([[0.0, 0.0, 0.0, 3.0, 3.0]])  # 4 x 4 cells (both ends included), bins of 2
    assert roi_pool(features, boxes, 2).tolist() == [[[[5.0, 7.0], [13.0, 15.0]]]]
    # x1 = 1.5 rounds to 2 (halves away from zero), x2 = 3: 2 columns; rows 0..1, one bin each.
    boxes = torch.tensor([[0.0, 1.5, 0.0, 3.0, 1.0]])
    assert roi_pool(features, boxes, (2, 1)).tolist() == [[[[3.0], [7.0]]]]


def test_roi_align_by_hand():
    features = ramp(4, 4)
    # Bins of one cell; 2 x 2 points at 0.75 and 1.25 (first bin), whose mean is x = y = 1.
    boxes = torch.tensor([[0.0, 0.5, 0.5, 2.5, 2.5]], dtype=torch.float64)
    out = roi_align(features, boxes, 2, sampling_ratio=2)
    assert torch.allclose(out, torch.tensor([[[[11.0, 12.0], [21.0, 22.0]]]], dtype=torch.float64))
    # aligned=True shifts by half a cell: the same box now reads x = y = 0.5 and 1.5.
    out = roi_align(features, boxes, 2, sampling_ratio=2, aligned=True)
    assert torch.allclose(out, torch.tensor([[[[5.5, 6.5], [15.5, 16.5]]]], dtype=torch.float64))


def test_roi_align_border_rules_by_hand():
    features = torch.tensor([[[[5.0, 1.0], [2.0, 3.0]]]])
    near = torch.tensor([[0.0, -1.5, -1.5, -0.5, -0.5]])  # one point at (-1, -1): reads the corner
    far = torch.tensor([[0.0, -2.5, -2.5, -1.5, -1.5]])  # one point at (-2, -2): reads 0
    assert roi_align(features, near, 1, sampling_ratio=1).item() == 5.0
    assert roi_align(features, far, 1, sampling_ratio=1).item() == 0.0


# ----------------------------------------------------------------------------- oracle


@pytest.mark.parametrize("spatial_scale", [1.0, 0.5, 0.25, 0.125])
@pytest.mark.parametrize("output_size", [(3, 2), 7, 1])
def test_roi_pool_matches_torchvision(spatial_scale, output_size):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(3, 4, 9, 11, generator=generator, dtype=torch.float64)
    rois = rois_for_tests(generator, 3, 11 / spatial_scale)
    (out, grad), (expected, expected_grad) = run_both(
        roi_pool, torchvision.ops.roi_pool, features, rois, output_size, spatial_scale
    )
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-5)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2])
@pytest.mark.parametrize("spatial_scale", [1.0, 0.25, 0.125])
def test_roi_align_matches_torchvision(aligned, sampling_ratio, spatial_scale):
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(3, 4, 9, 11, generator=generator, dtype=torch.float64)
    rois = rois_for_tests(generator, 3, 11 / spatial_scale)
    for output_size in ((3, 2), 7):
        (out, grad), (expected, expected_grad) = run_both(
            roi_align, torchvision.ops.roi_align, features, rois, output_size, spatial_scale,
            sampling_ratio, aligned,
        )
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-5)


@pytest.mark.parametrize("op, reference", [(roi_pool, torchvision.ops.roi_pool),
                                           (roi_align, torchvision.ops.roi_align)])
def test_float32_matches_torchvision(op, reference):
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(2, 5, 16, 16, generator=generator)
    rois = rois_for_tests(generator, 2, 64.0).float()
    (out, grad), (expected, expected_grad) = run_both(op, reference, features, rois, 7, 0.25)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-5)


@pytest.mark.parametrize("op, reference", [(roi_pool, torchvision.ops.roi_pool),
                                           (roi_align, torchvision.ops.roi_align)])
def test_list_of_boxes_matches_torchvision(op, reference):
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(3, 2, 8, 8, generator=generator, dtype=torch.float64)
    boxes = [rois_for_tests(generator, 1, 32.0)[:5, 1:], torch.zeros(0, 4, dtype=torch.float64),
             rois_for_tests(generator, 1, 32.0)[-6:, 1:]]
    (out, grad), (expected, expected_grad) = run_both(op, reference, features, boxes, (2, 3), 0.25)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-5)


def test_roi_pool_ties_take_the_first_maximum_like_torchvision():
    features = torch.full((2, 3, 6, 6), 2.5, dtype=torch.float64)
    rois = torch.tensor([[0, 0, 0, 5, 5], [1, 1, 2, 4, 5], [0, 3, 3, 3, 3]], dtype=torch.float64)
    (out, grad), (expected, expected_grad) = run_both(
        roi_pool, torchvision.ops.roi_pool, features, rois, 3, 1.0
    )
    assert torch.equal(out, torch.full_like(out, 2.5))
    # The gradient of each RoI lands on one cell per bin, the first of the bin in row-major order.
    torch.testing.assert_close(grad.sum(dim=(1, 2, 3)), expected_grad.sum(dim=(1, 2, 3)))
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0)


# ----------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("op", [roi_pool, roi_align])
def test_each_roi_reads_only_its_own_image(op):
    generator = torch.Generator().manual_seed(4)
    features = torch.randn(3, 2, 10, 10, generator=generator)
    rois = rois_for_tests(generator, 3, 20.0).float()
    out = op(features, rois, 4, 0.5)
    for image in range(3):
        mine = rois[:, 0] == image
        alone = rois[mine].clone()
        alone[:, 0] = 0
        torch.testing.assert_close(op(features[image : image + 1], alone, 4, 0.5), out[mine])


@pytest.mark.parametrize("op", [roi_pool, roi_align])
def test_permuting_the_rois_permutes_the_output(op):
    generator = torch.Generator().manual_seed(5)
    features = torch.randn(2, 3, 8, 8, generator=generator)
    rois = rois_for_tests(generator, 2, 16.0).float()
    order = torch.randperm(len(rois), generator=generator)
    torch.testing.assert_close(op(features, rois[order], 3, 0.5), op(features, rois, 3, 0.5)[order])


def test_roi_align_of_a_constant_map_inside_is_the_constant():
    features = torch.full((1, 2, 8, 8), 3.0)
    boxes = torch.tensor([[0.0, 1.0, 1.5, 6.0, 5.0]])
    assert torch.allclose(roi_align(features, boxes, 5), torch.full((1, 2, 5, 5), 3.0))


# ----------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("op", [roi_pool, roi_align])
@pytest.mark.parametrize("boxes", [torch.zeros(0, 5), [torch.zeros(0, 4), torch.zeros(0, 4)], []])
def test_no_boxes_give_an_empty_result(op, boxes):
    features = torch.randn(2, 3, 5, 5, requires_grad=True)
    out = op(features, boxes, (2, 4))
    assert out.shape == (0, 3, 2, 4) and out.dtype == features.dtype
    out.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


def test_roi_pool_outside_the_map_gives_zero_and_no_gradient():
    features = torch.randn(1, 2, 4, 4, requires_grad=True)
    out = roi_pool(features, torch.tensor([[0.0, 10.0, 10.0, 20.0, 20.0]]), 2)
    assert torch.equal(out, torch.zeros(1, 2, 2, 2))
    out.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


def test_boxes_are_cast_to_the_input_dtype():
    features = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    boxes = torch.tensor([[0.0, 0.5, 1.0, 4.0, 5.0]], dtype=torch.float32)
    assert roi_align(features, boxes, 2).dtype == torch.float64
    torch.testing.assert_close(roi_pool(features, boxes, 2), roi_pool(features, boxes.double(), 2))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("op", [roi_pool, roi_align])
def test_bad_input_raises(op):
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
    with pytest.raises(TypeError, match="output_size: expected an int or a pair"):
        op(features, boxes, (1, 2, 3))
    with pytest.raises(TypeError, match=r"output_size: expected an int or a pair \(h, w\), got 2.0"):
        op(features, boxes, 2.0)
    with pytest.raises(TypeError, match="output_size: expected an int, got float 2.0"):
        op(features, boxes, (2.0, 2))
    with pytest.raises(ValueError, match="spatial_scale: expected a positive number, got 0"):
        op(features, boxes, 2, 0)
    with pytest.raises(ValueError, match="spatial_scale: expected a positive number, got -0.25"):
        op(features, boxes, 2, -0.25)


def test_roi_align_bad_sampling_ratio_and_aligned_raise():
    features = torch.randn(1, 1, 5, 5)
    boxes = torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]])
    with pytest.raises(TypeError, match="sampling_ratio: expected an int, got float 1.5"):
        roi_align(features, boxes, 2, sampling_ratio=1.5)
    with pytest.raises(TypeError, match="sampling_ratio: expected an int, got bool True"):
        roi_align(features, boxes, 2, sampling_ratio=True)
    with pytest.raises(TypeError, match="aligned: expected a bool, got int 1"):
        roi_align(features, boxes, 2, aligned=1)
