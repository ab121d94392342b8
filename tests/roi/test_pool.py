"""Tests of course_lib.roi.pool (the readable roi_pool), and of fast_roi_pool where the contract is
shared: hand-computed poolings, torchvision.ops.roi_pool as the oracle (outputs and gradients),
invariants, edge cases and bad input. Readable vs fast on many inputs: test_fast.py."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops
from roi_cases import assert_bad_input_raises, rois_for_tests, run_both

from course_lib.roi import fast_roi_pool, roi_pool

POOLS = [pytest.param(roi_pool, id="readable"), pytest.param(fast_roi_pool, id="fast")]


# ----------------------------------------------------------------------------- hand-computed


@pytest.mark.parametrize("pool", POOLS)
def test_roi_pool_two_by_two_by_hand(pool):
    features = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    boxes = torch.tensor([[0.0, 0.0, 0.0, 3.0, 3.0]])  # 4 x 4 cells (both ends included), bins of 2
    assert pool(features, boxes, 2).tolist() == [[[[5.0, 7.0], [13.0, 15.0]]]]
    # x1 = 1.5 rounds to 2 (halves away from zero), x2 = 3: 2 columns; rows 0..1, one bin each.
    boxes = torch.tensor([[0.0, 1.5, 0.0, 3.0, 1.0]])
    assert pool(features, boxes, (2, 1)).tolist() == [[[[3.0], [7.0]]]]


@pytest.mark.parametrize("pool", POOLS)
def test_roi_pool_overlapping_bins_by_hand(pool):
    # 3 rows in 2 bins: bin_h = 1.5, bin 0 = rows floor(0) .. ceil(1.5) = 0..1, bin 1 = rows 1..2.
    features = torch.tensor([[[[1.0], [9.0], [2.0]]]])
    boxes = torch.tensor([[0.0, 0.0, 0.0, 0.0, 2.0]])
    assert pool(features, boxes, (2, 1)).tolist() == [[[[9.0], [9.0]]]]


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


def test_float32_matches_torchvision():
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(2, 5, 16, 16, generator=generator)
    rois = rois_for_tests(generator, 2, 64.0).float()
    (out, grad), (expected, expected_grad) = run_both(
        roi_pool, torchvision.ops.roi_pool, features, rois, 7, 0.25
    )
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-5)


def test_list_of_boxes_matches_torchvision():
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(3, 2, 8, 8, generator=generator, dtype=torch.float64)
    boxes = [rois_for_tests(generator, 1, 32.0)[:5, 1:], torch.zeros(0, 4, dtype=torch.float64),
             rois_for_tests(generator, 1, 32.0)[-6:, 1:]]
    (out, grad), (expected, expected_grad) = run_both(
        roi_pool, torchvision.ops.roi_pool, features, boxes, (2, 3), 0.25
    )
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-5)


@pytest.mark.parametrize("pool", POOLS)
def test_roi_pool_ties_take_the_first_maximum_like_torchvision(pool):
    features = torch.full((2, 3, 6, 6), 2.5, dtype=torch.float64)
    rois = torch.tensor([[0, 0, 0, 5, 5], [1, 1, 2, 4, 5], [0, 3, 3, 3, 3]], dtype=torch.float64)
    (out, grad), (expected, expected_grad) = run_both(pool, torchvision.ops.roi_pool, features, rois, 3, 1.0)
    assert torch.equal(out, torch.full_like(out, 2.5))
    # The gradient of each RoI lands on one cell per bin, the first of the bin in row-major order.
    torch.testing.assert_close(grad.sum(dim=(1, 2, 3)), expected_grad.sum(dim=(1, 2, 3)))
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0)


@pytest.mark.parametrize("pool", POOLS)
def test_nan_never_wins_and_minus_inf_bins_give_minus_flt_max_like_torchvision(pool):
    nan, inf = float("nan"), float("inf")
    features = torch.tensor([[nan, -inf, 0.5, nan], [-inf, nan, nan, 2.0], [nan, nan, -inf, -inf],
                             [-inf, nan, -inf, nan]], dtype=torch.float64)[None, None]
    rois = torch.tensor([[0, 0, 0, 3, 3], [0, 0, 0, 1, 1], [0, 0, 2, 3, 3]], dtype=torch.float64)
    (out, grad), (expected, expected_grad) = run_both(pool, torchvision.ops.roi_pool, features, rois, 2, 1.0)
    assert torch.equal(out, expected) and torch.equal(grad, expected_grad)
    assert out[1, 0, 0, 0] == -torch.finfo(torch.float32).max  # bin of NaN and -inf only


# ----------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("pool", POOLS)
def test_each_roi_reads_only_its_own_image(pool):
    generator = torch.Generator().manual_seed(4)
    features = torch.randn(3, 2, 10, 10, generator=generator)
    rois = rois_for_tests(generator, 3, 20.0).float()
    out = pool(features, rois, 4, 0.5)
    for image in range(3):
        mine = rois[:, 0] == image
        alone = rois[mine].clone()
        alone[:, 0] = 0
        torch.testing.assert_close(pool(features[image : image + 1], alone, 4, 0.5), out[mine])


@pytest.mark.parametrize("pool", POOLS)
def test_permuting_the_rois_permutes_the_output(pool):
    generator = torch.Generator().manual_seed(5)
    features = torch.randn(2, 3, 8, 8, generator=generator)
    rois = rois_for_tests(generator, 2, 16.0).float()
    order = torch.randperm(len(rois), generator=generator)
    torch.testing.assert_close(pool(features, rois[order], 3, 0.5), pool(features, rois, 3, 0.5)[order])


# ----------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("boxes", [torch.zeros(0, 5), [torch.zeros(0, 4), torch.zeros(0, 4)], []])
def test_no_boxes_give_an_empty_result(pool, boxes):
    features = torch.randn(2, 3, 5, 5, requires_grad=True)
    out = pool(features, boxes, (2, 4))
    assert out.shape == (0, 3, 2, 4) and out.dtype == features.dtype
    out.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("shape", [(2, 0, 5, 5), (2, 3, 0, 5), (2, 3, 5, 0)])
def test_an_empty_map_gives_zeros_like_torchvision(pool, shape):
    features = torch.randn(shape, requires_grad=True)
    rois = torch.tensor([[0.0, 0.0, 0.0, 3.0, 3.0], [1.0, 1.0, 1.0, 2.0, 2.0]])
    out = pool(features, rois, 2)
    assert torch.equal(out, torchvision.ops.roi_pool(features.detach(), rois, 2))
    out.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


@pytest.mark.parametrize("pool", POOLS)
def test_roi_pool_outside_the_map_gives_zero_and_no_gradient(pool):
    features = torch.randn(1, 2, 4, 4, requires_grad=True)
    out = pool(features, torch.tensor([[0.0, 10.0, 10.0, 20.0, 20.0]]), 2)
    assert torch.equal(out, torch.zeros(1, 2, 2, 2))
    out.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


@pytest.mark.parametrize("pool", POOLS)
def test_boxes_are_cast_to_the_input_dtype(pool):
    features = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    boxes = torch.tensor([[0.0, 0.5, 1.0, 4.0, 5.0]], dtype=torch.float32)
    out = pool(features, boxes, 2)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, pool(features, boxes.double(), 2))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("pool", POOLS)
def test_bad_input_raises(pool):
    assert_bad_input_raises(pool)
