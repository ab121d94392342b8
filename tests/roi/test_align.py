"""Tests of course_lib.roi.align (the readable roi_align), and of fast_roi_align where the contract
is shared: hand-computed cases, torchvision.ops.roi_align as the oracle (outputs and gradients),
invariants, edge cases and bad input. Readable vs fast on many inputs: test_fast.py."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops
from roi_cases import assert_bad_input_raises, ramp, rois_for_tests, run_both

from course_lib.roi import bilinear_interpolate, fast_roi_align, roi_align

ALIGNS = [pytest.param(roi_align, id="readable"), pytest.param(fast_roi_align, id="fast")]


# ----------------------------------------------------------------------------- hand-computed


@pytest.mark.parametrize("align", ALIGNS)
def test_roi_align_by_hand(align):
    features = ramp(4, 4)
    # Bins of one cell; 2 x 2 points at 0.75 and 1.25 (first bin), whose mean is x = y = 1.
    boxes = torch.tensor([[0.0, 0.5, 0.5, 2.5, 2.5]], dtype=torch.float64)
    out = align(features, boxes, 2, sampling_ratio=2)
    assert torch.allclose(out, torch.tensor([[[[11.0, 12.0], [21.0, 22.0]]]], dtype=torch.float64))
    # aligned=True shifts by half a cell: the same box now reads x = y = 0.5 and 1.5.
    out = align(features, boxes, 2, sampling_ratio=2, aligned=True)
    assert torch.allclose(out, torch.tensor([[[[5.5, 6.5], [15.5, 16.5]]]], dtype=torch.float64))


@pytest.mark.parametrize("align", ALIGNS)
def test_roi_align_border_rules_by_hand(align):
    features = torch.tensor([[[[5.0, 1.0], [2.0, 3.0]]]])
    near = torch.tensor([[0.0, -1.5, -1.5, -0.5, -0.5]])  # one point at (-1, -1): reads the corner
    far = torch.tensor([[0.0, -2.5, -2.5, -1.5, -1.5]])  # one point at (-2, -2): reads 0
    assert align(features, near, 1, sampling_ratio=1).item() == 5.0
    assert align(features, far, 1, sampling_ratio=1).item() == 0.0


def test_bilinear_interpolate_by_hand():
    feature_map = torch.tensor([[[0.0, 4.0], [8.0, 12.0]]])  # (1, 2, 2)
    y = torch.tensor([0.0, 0.5, 1.0, 1.5, -1.0, -1.5])
    x = torch.tensor([0.25])
    values = bilinear_interpolate(feature_map, y, x)[0, :, 0]
    # 4 x + 8 y inside; beyond the last row the last row; within a cell above, row 0; further: 0.
    assert values.tolist() == [1.0, 5.0, 9.0, 9.0, 1.0, 0.0]


# ----------------------------------------------------------------------------- oracle


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


def test_float32_matches_torchvision():
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(2, 5, 16, 16, generator=generator)
    rois = rois_for_tests(generator, 2, 64.0).float()
    (out, grad), (expected, expected_grad) = run_both(
        roi_align, torchvision.ops.roi_align, features, rois, 7, 0.25
    )
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-5)


def test_list_of_boxes_matches_torchvision():
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(3, 2, 8, 8, generator=generator, dtype=torch.float64)
    boxes = [rois_for_tests(generator, 1, 32.0)[:5, 1:], torch.zeros(0, 4, dtype=torch.float64),
             rois_for_tests(generator, 1, 32.0)[-6:, 1:]]
    (out, grad), (expected, expected_grad) = run_both(
        roi_align, torchvision.ops.roi_align, features, boxes, (2, 3), 0.25
    )
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("align", ALIGNS)
def test_each_roi_reads_only_its_own_image(align):
    generator = torch.Generator().manual_seed(4)
    features = torch.randn(3, 2, 10, 10, generator=generator)
    rois = rois_for_tests(generator, 3, 20.0).float()
    out = align(features, rois, 4, 0.5)
    for image in range(3):
        mine = rois[:, 0] == image
        alone = rois[mine].clone()
        alone[:, 0] = 0
        torch.testing.assert_close(align(features[image : image + 1], alone, 4, 0.5), out[mine])


@pytest.mark.parametrize("align", ALIGNS)
def test_permuting_the_rois_permutes_the_output(align):
    generator = torch.Generator().manual_seed(5)
    features = torch.randn(2, 3, 8, 8, generator=generator)
    rois = rois_for_tests(generator, 2, 16.0).float()
    order = torch.randperm(len(rois), generator=generator)
    torch.testing.assert_close(align(features, rois[order], 3, 0.5), align(features, rois, 3, 0.5)[order])


@pytest.mark.parametrize("align", ALIGNS)
def test_roi_align_of_a_constant_map_inside_is_the_constant(align):
    features = torch.full((1, 2, 8, 8), 3.0)
    boxes = torch.tensor([[0.0, 1.0, 1.5, 6.0, 5.0]])
    assert torch.allclose(align(features, boxes, 5), torch.full((1, 2, 5, 5), 3.0))


# ----------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("align", ALIGNS)
@pytest.mark.parametrize("boxes", [torch.zeros(0, 5), [torch.zeros(0, 4), torch.zeros(0, 4)], []])
def test_no_boxes_give_an_empty_result(align, boxes):
    features = torch.randn(2, 3, 5, 5, requires_grad=True)
    out = align(features, boxes, (2, 4))
    assert out.shape == (0, 3, 2, 4) and out.dtype == features.dtype
    out.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


@pytest.mark.parametrize("align", ALIGNS)
@pytest.mark.parametrize("shape", [(2, 0, 5, 5), (2, 3, 0, 5), (2, 3, 5, 0)])
def test_an_empty_map_gives_zeros(align, shape):
    # torchvision's roi_align reads out of bounds on an empty map (it crashed here): no oracle.
    features = torch.randn(shape, requires_grad=True)
    rois = torch.tensor([[0.0, 0.0, 0.0, 3.0, 3.0], [1.0, 1.0, 1.0, 2.0, 2.0]])
    out = align(features, rois, 2)
    assert torch.equal(out, torch.zeros(2, shape[1], 2, 2))
    out.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


@pytest.mark.parametrize("align", ALIGNS)
def test_empty_boxes_with_aligned_give_zeros_and_a_gradient_of_zeros(align):
    features = torch.randn(1, 2, 6, 6, requires_grad=True)
    boxes = torch.tensor([[0.0, 4.0, 4.0, 2.0, 2.0], [0.0, 3.0, 3.0, 3.0, 3.0]])  # x2 < x1; zero size
    out = align(features, boxes, 2, aligned=True)  # adaptive grid: ceil(size / 2) <= 0 points per bin
    assert torch.equal(out, torch.zeros(2, 2, 2, 2))
    out.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


@pytest.mark.parametrize("align", ALIGNS)
def test_boxes_are_cast_to_the_input_dtype(align):
    features = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    boxes = torch.tensor([[0.0, 0.5, 1.0, 4.0, 5.0]], dtype=torch.float32)
    assert align(features, boxes, 2).dtype == torch.float64


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("align", ALIGNS)
def test_bad_input_raises(align):
    assert_bad_input_raises(align)


@pytest.mark.parametrize("align", ALIGNS)
def test_roi_align_bad_sampling_ratio_and_aligned_raise(align):
    features = torch.randn(1, 1, 5, 5)
    boxes = torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]])
    with pytest.raises(TypeError, match="sampling_ratio: expected an int, got float 1.5"):
        align(features, boxes, 2, sampling_ratio=1.5)
    with pytest.raises(TypeError, match="sampling_ratio: expected an int, got bool True"):
        align(features, boxes, 2, sampling_ratio=True)
    with pytest.raises(TypeError, match="aligned: expected a bool, got int 1"):
        align(features, boxes, 2, aligned=1)
