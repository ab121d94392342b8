"""Tests of course_lib.roi.fast_pool and fast_align: the fast kernels against the readable ops and
torchvision.ops, outputs and gradients, on seeded random inputs of every kind (boxes as Tensor[K, 5]
and as lists, scales, aligned, sampling ratios, boxes outside, degenerate and empty), in every
floating dtype, and on the cases that exercise the kernels' own machinery (ties, large bins)."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops
from hypothesis import given
from hypothesis import strategies as st
from roi_cases import ALIGN_TOLERANCE, as_list, rois_for_tests, run

from course_lib.roi import fast_pool, fast_roi_align, fast_roi_pool, roi_align, roi_pool

TORCHVISION_DTYPES = [torch.float16, torch.float32, torch.float64]  # what its CPU kernels support


def features_and_rois(seed: int, dtype: torch.dtype, spatial_scale: float, as_tensor: bool):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(3, 5, 9, 11, generator=generator).to(dtype)
    rois = rois_for_tests(generator, 3, 11 / spatial_scale).to(dtype)
    return features, (rois if as_tensor else as_list(rois, 3))


def assert_three_equal(ours, fast, reference, features, boxes, *args, **tolerance):
    """Readable, fast and torchvision: the same outputs and input gradients, within ``tolerance``."""
    (out, grad), (fast_out, fast_grad), (expected, expected_grad) = (
        run(op, features, boxes, *args) for op in (ours, fast, reference)
    )
    for result in (out, grad, fast_out, fast_grad):
        assert result.dtype == features.dtype
    for got, want in ((out, expected), (fast_out, expected)):
        torch.testing.assert_close(got, want, **tolerance)
    for got, want in ((grad, expected_grad), (fast_grad, expected_grad)):
        torch.testing.assert_close(got, want, **tolerance)


@pytest.mark.parametrize("dtype", TORCHVISION_DTYPES)
@pytest.mark.parametrize("as_tensor", [True, False], ids=["tensor", "list"])
@pytest.mark.parametrize("spatial_scale", [1.0, 0.25, 1 / 3])
@pytest.mark.parametrize("output_size", [(3, 2), 7, 1])
def test_roi_pool_readable_fast_and_torchvision_agree(dtype, as_tensor, spatial_scale, output_size):
    features, boxes = features_and_rois(0, dtype, spatial_scale, as_tensor)
    # Pooling copies values and sends each gradient to one cell: exact in every dtype.
    assert_three_equal(
        roi_pool, fast_roi_pool, torchvision.ops.roi_pool, features, boxes, output_size, spatial_scale,
        rtol=0, atol=0,
    )


@pytest.mark.parametrize("dtype", TORCHVISION_DTYPES)
@pytest.mark.parametrize("as_tensor", [True, False], ids=["tensor", "list"])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
@pytest.mark.parametrize("spatial_scale", [1.0, 0.25, 1 / 3])
def test_roi_align_readable_fast_and_torchvision_agree(
    dtype, as_tensor, aligned, sampling_ratio, spatial_scale
):
    features, boxes = features_and_rois(1, dtype, spatial_scale, as_tensor)
    for output_size in ((3, 2), 7):
        assert_three_equal(
            roi_align, fast_roi_align, torchvision.ops.roi_align, features, boxes, output_size,
            spatial_scale, sampling_ratio, aligned, **ALIGN_TOLERANCE[dtype],
        )


def test_roi_pool_float16_does_not_overflow_the_start_value():
    # Regression: the kernel's start value -FLT_MAX was written into a float16 tensor, which raised
    # "value cannot be converted to type c10::Half without overflow". In float16 it is -inf.
    features = torch.randn(1, 2, 6, 6).half()
    boxes = torch.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]]).half()
    for pool in (roi_pool, fast_roi_pool):
        assert torch.equal(pool(features, boxes, 2), torchvision.ops.roi_pool(features, boxes, 2))


@pytest.mark.parametrize("output_size", [(2, 4), 1])
def test_bfloat16_pool_matches_torchvision_in_float32(output_size):
    # torchvision has no bfloat16 CPU kernel. With whole-number boxes, a power-of-two scale and bins
    # per side, bfloat16 places every bin exactly, so float32 torchvision on the same values is the oracle.
    generator = torch.Generator().manual_seed(6)
    features = torch.randn(2, 3, 10, 12, generator=generator).bfloat16()
    rois = rois_for_tests(generator, 2, 40.0).round().bfloat16()
    expected, expected_grad = run(torchvision.ops.roi_pool, features.float(), rois.float(), output_size, 0.25)
    for pool in (roi_pool, fast_roi_pool):
        out, grad = run(pool, features, rois, output_size, 0.25)
        assert out.dtype == grad.dtype == torch.bfloat16
        torch.testing.assert_close(out.float(), expected, rtol=0, atol=0)
        torch.testing.assert_close(grad.float(), expected_grad, rtol=0, atol=0)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [1, 2])
def test_bfloat16_align_matches_torchvision_in_float32(aligned, sampling_ratio):
    # Whole-number boxes on a small map: every sampling point is exact in bfloat16; only the sums
    # round, to bfloat16's 8 bits.
    generator = torch.Generator().manual_seed(7)
    features = torch.randn(2, 3, 8, 8, generator=generator).bfloat16()
    corners = torch.randint(-4, 13, (20, 4), generator=generator).float()
    top_left, bottom_right = corners[:, :2], corners[:, 2:]
    boxes = torch.cat((torch.minimum(top_left, bottom_right), torch.maximum(top_left, bottom_right)), dim=1)
    rois = torch.cat((torch.randint(0, 2, (20, 1), generator=generator).float(), boxes), dim=1)
    args = (2, 1.0, sampling_ratio, aligned)
    expected, expected_grad = run(torchvision.ops.roi_align, features.float(), rois, *args)
    for align in (roi_align, fast_roi_align):
        out, grad = run(align, features, rois.bfloat16(), *args)
        assert out.dtype == grad.dtype == torch.bfloat16
        torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2)
        torch.testing.assert_close(grad.float(), expected_grad, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("dtype", TORCHVISION_DTYPES)
def test_fast_roi_pool_ties_go_where_torchvision_sends_them(dtype):
    # Three values on a 20 x 20 map: most bins hold ties, across the four windows of a look-up.
    generator = torch.Generator().manual_seed(8)
    features = torch.randint(0, 3, (2, 4, 20, 20), generator=generator).to(dtype)
    rois = rois_for_tests(generator, 2, 20.0).to(dtype)
    for output_size in ((3, 2), 5, 1):
        assert_three_equal(
            roi_pool, fast_roi_pool, torchvision.ops.roi_pool, features, rois, output_size, 1.0,
            rtol=0, atol=0,
        )


def test_fast_roi_pool_with_bins_of_every_size():
    # Output 1 x 1 over boxes up to the whole 40 x 48 map: tables up to 32 x 32 windows.
    generator = torch.Generator().manual_seed(9)
    features = torch.randn(2, 3, 40, 48, generator=generator, dtype=torch.float64)
    rois = rois_for_tests(generator, 2, 48.0)
    for output_size in (1, (2, 5), 7):
        assert_three_equal(
            roi_pool, fast_roi_pool, torchvision.ops.roi_pool, features, rois, output_size, 1.0,
            rtol=0, atol=0,
        )


@pytest.mark.parametrize("grain, table_elements", [(64, 2**25), (4096, 2000)])
def test_fast_roi_pool_in_small_blocks_and_channel_slices(monkeypatch, grain, table_elements):
    # Tiny limits: blocks of one RoI, one channel (or a few) per slice of tables, as a large input
    # would get; the result must not change.
    monkeypatch.setattr(fast_pool, "_GRAIN", grain)
    monkeypatch.setattr(fast_pool, "_TABLE_ELEMENTS", table_elements)
    features, rois = features_and_rois(11, torch.float64, 0.5, as_tensor=True)
    assert_three_equal(
        roi_pool, fast_roi_pool, torchvision.ops.roi_pool, features, rois, (3, 4), 0.5, rtol=0, atol=0
    )


@pytest.mark.parametrize("op, fast", [(roi_pool, fast_roi_pool), (roi_align, fast_roi_align)])
def test_without_gradient_the_fast_ops_give_the_same_output(op, fast):
    features, rois = features_and_rois(10, torch.float32, 0.25, as_tensor=True)
    with torch.no_grad():
        torch.testing.assert_close(fast(features, rois, 4, 0.25), op(features, rois, 4, 0.25))
    torch.testing.assert_close(fast(features, rois, 4, 0.25), op(features, rois, 4, 0.25))


@given(
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    output_size=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    corners=st.lists(st.tuples(*[st.floats(-8.0, 20.0, width=32)] * 4), min_size=1, max_size=6),
    spatial_scale=st.sampled_from([1.0, 0.5, 0.25]),
    seed=st.integers(0, 2**16),
)
def test_readable_fast_and_torchvision_agree_on_drawn_inputs(
    height, width, output_size, corners, spatial_scale, seed
):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randint(-2, 3, (1, 2, height, width), generator=generator).float()  # many ties
    rois = torch.cat((torch.zeros(len(corners), 1), torch.tensor(corners) / spatial_scale), dim=1)
    assert_three_equal(
        roi_pool, fast_roi_pool, torchvision.ops.roi_pool, features, rois, output_size, spatial_scale,
        rtol=0, atol=0,
    )
    assert_three_equal(
        roi_align, fast_roi_align, torchvision.ops.roi_align, features, rois, output_size, spatial_scale, 2,
        rtol=0, atol=1e-5,
    )
