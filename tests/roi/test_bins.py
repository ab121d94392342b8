"""Tests of course_lib.roi.bins: C's rounding, the bins of RoI pooling by hand and against
torchvision (through roi_pool of a map that numbers its cells), their invariants, and the start
value of each bin's maximum in every dtype."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops
from hypothesis import given
from hypothesis import strategies as st

from course_lib.roi import bin_bounds, max_start_value, pool_bins, round_half_away

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_half_away_by_hand(dtype):
    values = torch.tensor([0.5, 1.5, 2.5, -0.5, -2.5, 2.4, -2.6, 3.0, 0.0], dtype=dtype)
    expected = [1.0, 2.0, 3.0, -1.0, -3.0, 2.0, -3.0, 3.0, 0.0]
    assert round_half_away(values).tolist() == expected
    assert round_half_away(values).dtype == dtype


def test_bin_bounds_by_hand():
    start, end = torch.tensor([0.0, 1.0, 2.0, 5.0]), torch.tensor([3.0, 3.0, 8.0, 2.0])
    first, last = bin_bounds(start, end, 2, size=6)
    # 4 cells in 2 bins of 2; 3 cells in bins of 1.5 (floor / ceil: they share cell 2);
    # 7 cells from 2, clipped at 6; end < start: one cell.
    assert first.tolist() == [[0, 2], [1, 2], [2, 5], [5, 5]]
    assert last.tolist() == [[2, 4], [3, 4], [6, 6], [6, 6]]
    assert first.dtype == last.dtype == torch.int64


def test_bin_bounds_outside_the_map_are_empty():
    first, last = bin_bounds(torch.tensor([-9.0, 10.0]), torch.tensor([-4.0, 12.0]), 3, size=8)
    assert torch.equal(first, last)  # every bin empty
    assert first.tolist() == [[0, 0, 0], [8, 8, 8]]


def test_pool_bins_by_hand():
    rois = torch.tensor([[0.0, 2.0, 6.0, 12.0, 10.0]])  # scale 0.5: cells x 1..6, y 3..5
    row_first, row_last, col_first, col_last = pool_bins(rois, (3, 2), 0.5, (8, 8))
    assert (row_first.tolist(), row_last.tolist()) == ([[3, 4, 5]], [[4, 5, 6]])
    assert (col_first.tolist(), col_last.tolist()) == ([[1, 4]], [[4, 7]])


@given(
    start=st.integers(-6, 14), length=st.integers(-3, 14), num_bins=st.integers(1, 8), size=st.integers(1, 10)
)
def test_bins_cover_the_clipped_box_in_order(start, length, num_bins, size):
    box_start, box_end = torch.tensor([start], dtype=torch.float32), torch.tensor([start + length * 1.0])
    first, last = (bounds[0] for bounds in bin_bounds(box_start, box_end, num_bins, size))  # (n,) each
    box_first, box_last = start, start + max(length + 1, 1)  # one past the last cell
    assert first[0] == min(max(box_first, 0), size) and last[-1] == min(max(box_last, 0), size)
    assert (first <= last).all() and (first[1:] >= first[:-1]).all()
    assert (first[1:] <= last[:-1]).all()  # neighbours touch or overlap: no cell is skipped


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("spatial_scale", [1.0, 0.25, 1 / 3])
def test_pool_bins_fall_where_torchvision_pools(dtype, spatial_scale):
    # A map that numbers its cells: torchvision's maximum over a bin names the bin's last cell.
    H, W = 9, 11
    cells = torch.arange(H * W, dtype=dtype).view(1, 1, H, W)
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(40, 2, generator=generator) * 14 / spatial_scale - 2 / spatial_scale
    sides = torch.rand(40, 2, generator=generator) * 12 / spatial_scale
    rois = torch.cat((torch.zeros(40, 1), corners, corners + sides), dim=1).to(dtype)  # (K, 5)
    output_size = (3, 4)
    row_first, row_last, col_first, col_last = pool_bins(rois, output_size, spatial_scale, (H, W))
    pooled = torchvision.ops.roi_pool(cells, rois, output_size, spatial_scale)[:, 0]  # (K, 3, 4)
    empty = (row_last == row_first)[:, :, None] | (col_last == col_first)[:, None, :]
    last_cell = (row_last - 1)[:, :, None] * W + (col_last - 1)[:, None, :]  # (K, 3, 4)
    assert torch.equal(pooled.long(), torch.where(empty, 0, last_cell))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_start_value_is_minus_flt_max_in_the_input_dtype(dtype):
    start = max_start_value(torch.zeros(1, dtype=dtype))
    assert start.dtype == dtype and start.dim() == 0
    if dtype in (torch.float32, torch.float64):
        assert start.item() == -torch.finfo(torch.float32).max
    else:  # -FLT_MAX does not fit: -inf, as a C cast gives
        assert start.item() == float("-inf")
