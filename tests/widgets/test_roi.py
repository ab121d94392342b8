"""Tests for course_lib.widgets.roi: roi_view (bins, pooled grid, quantization) and RoIPoolExplorer."""

import contextlib
import io
import re

import numpy as np
import pytest
import torch
import torchvision.ops
from hypothesis import given, settings
from hypothesis import strategies as st

import course_lib.roi
from course_lib._checks import check_pair
from course_lib.widgets.roi import (
    ROI_METHODS,
    RoIPoolExplorer,
    default_proposal,
    pooled_regions,
    quantization_iou,
    roi_view,
    value_format,
)

STATUS = re.compile(
    r"proposal (\d+) of (\d+) · (RoI pool|RoIAlign) · 7x7 bins .*covered region IoU (\d\.\d\d)")
HAND_MAP = torch.arange(16.0).view(1, 4, 4)  # one channel, value = 4 * row + column


# --- roi_view: hand-computed ------------------------------------------------------------------
def test_roi_pool_hand_computed():
    # Box (0, 0, 8, 8), stride 4: cells round(0) = 0 to round(2) = 2, both included, so 3 cells a side.
    # Two bins of 1.5 cells: floor(0)..ceil(1.5) = cells [0, 2) and floor(1.5)..ceil(3) = [1, 3).
    view = roi_view(16, HAND_MAP, (0, 0, 8, 8), stride=4, output_size=2, method="RoI pool", channel=0)
    assert view["bins"].tolist() == [[0, 0, 8, 8], [4, 0, 12, 8], [0, 4, 8, 12], [4, 4, 12, 12]]
    assert view["pooled"].tolist() == [[5, 6], [9, 10]]  # the maxima of those 2x2 cells
    assert view["covered_box"].tolist() == [0, 0, 12, 12]
    assert (view["roi_area"], view["covered_area"]) == (64.0, 144.0)
    assert view["covered_iou"] == pytest.approx(64 / 144) == view["pool_iou"]
    assert view["max_shift"] == 4.0 and view["points"].shape == (0, 2)
    assert view["roi_feature"].tolist() == [0, 0, 2, 2]


def test_roi_align_hand_computed():
    view = roi_view(16, HAND_MAP, (0, 0, 8, 8), stride=4, output_size=2, method="RoIAlign", channel=0)
    assert view["bins"].tolist() == [[0, 0, 4, 4], [4, 0, 8, 4], [0, 4, 4, 8], [4, 4, 8, 8]]
    xs = sorted({x for x, _ in view["points"].tolist()})
    assert xs == [1, 3, 5, 7] and view["points"].shape == (16, 2)  # 2x2 points per bin, at 1/4 and 3/4
    # A point at pixel x reads the map at x / 4 - 0.5 (cell centres): pixel 1 -> -0.25 (border: cell 0),
    # pixel 3 -> 0.25, so bin (0, 0) averages rows/cols {0, 0.25}: 4 * 0.125 + 0.125 = 0.625.
    assert view["pooled"][0, 0].item() == pytest.approx(0.625)
    assert view["covered_iou"] == 1.0 and view["max_shift"] == 0.0
    assert view["pool_iou"] == pytest.approx(64 / 144)


def test_written_values_share_one_fixed_format():
    # Regression (issue 12): 06's pooled grid mixed "7e-2" with "0.94".
    small = np.array([[0.07, 0.94], [0.001, -0.617]])
    assert [format(float(v), value_format(small)) for v in small.ravel()] == ["0.07", "0.94", "0.00", "-0.62"]
    assert value_format(np.array([15.3, 0.5])) == ".1f"
    assert value_format(np.array([-12345.0])) == ".0f"
    assert value_format(np.zeros(0)) == ".2f"


# --- roi_view: oracles and invariants ---------------------------------------------------------
def _random_case(seed, size=64, stride=4, channels=3):
    generator = torch.Generator().manual_seed(seed)
    feature_map = torch.randn(channels, size // stride, size // stride, generator=generator)
    corner = torch.rand(2, generator=generator) * (size - 8)
    extent = torch.rand(2, generator=generator) * (size - corner - 1) + 1
    proposal = torch.cat([corner, corner + extent])
    return feature_map, proposal


@settings(max_examples=20)
@given(seed=st.integers(0, 2**31 - 1), output_size=st.sampled_from([2, 3, 7, (2, 5)]),
       channel=st.sampled_from([0, 2, None]))
def test_roi_pool_bins_hold_the_pooled_maxima(seed, output_size, channel):
    feature_map, proposal = _random_case(seed)
    view = roi_view(64, feature_map, proposal, 4, output_size, "RoI pool", channel)
    chosen = feature_map if channel is None else feature_map[channel : channel + 1]
    expected = torchvision.ops.roi_pool(chosen[None], [proposal[None]], output_size, 0.25)[0].mean(0)
    torch.testing.assert_close(view["pooled"], expected)
    torch.testing.assert_close(view["pooled"], course_lib.roi.roi_pool(
        chosen[None], [proposal[None]], output_size, 0.25)[0].mean(0))
    out_w = view["output_size"][1]
    assert (view["bins"] % 4 == 0).all(), "RoI pool's bins snap to the 4-pixel cell grid"
    for index, (x1, y1, x2, y2) in enumerate((view["bins"] / 4).long().tolist()):
        cells = chosen[:, y1:y2, x1:x2]  # the bin's cells, in every channel shown
        value = cells.amax(dim=(1, 2)).mean() if cells.numel() else torch.tensor(0.0)
        assert view["pooled"].flatten()[index].item() == pytest.approx(value.item(), abs=1e-5), (index, out_w)
    bins = view["bins"]
    union = torch.stack([bins[:, 0].min(), bins[:, 1].min(), bins[:, 2].max(), bins[:, 3].max()])
    assert torch.equal(union, view["covered_box"])
    assert 0.0 <= view["covered_iou"] <= 1.0


@settings(max_examples=20)
@given(seed=st.integers(0, 2**31 - 1), output_size=st.sampled_from([2, 7, (3, 4)]))
def test_roi_align_bins_split_the_box_and_average_their_points(seed, output_size):
    feature_map, proposal = _random_case(seed)
    view = roi_view(64, feature_map, proposal, 4, output_size, "RoIAlign", 1)
    expected = torchvision.ops.roi_align(feature_map[None, 1:2], [proposal[None]], output_size, 0.25,
                                         sampling_ratio=2, aligned=True)[0, 0]
    torch.testing.assert_close(view["pooled"], expected)
    out_h, out_w = view["output_size"]
    bins = view["bins"].view(out_h, out_w, 4)
    torch.testing.assert_close(bins[0, 0, :2], proposal[:2])
    torch.testing.assert_close(bins[-1, -1, 2:], proposal[2:])
    widths = bins[..., 2] - bins[..., 0]
    torch.testing.assert_close(widths, torch.full_like(widths, float(proposal[2] - proposal[0]) / out_w))
    # Oracle: bilinear reads with grid_sample (cell centres at (j + 0.5) * stride pixels), averaged per bin.
    points = view["points"]  # (out_h * 2 * out_w * 2, 2), row-major over the point grid
    grid = (points / 64 * 2 - 1).view(1, out_h * 2, out_w * 2, 2)
    samples = torch.nn.functional.grid_sample(feature_map[None, 1:2], grid, mode="bilinear",
                                              padding_mode="border", align_corners=False)[0, 0]
    torch.testing.assert_close(samples.view(out_h, 2, out_w, 2).mean(dim=(1, 3)), view["pooled"])
    assert view["covered_iou"] == pytest.approx(1.0) and 0.0 <= view["pool_iou"] <= 1.0


def test_roi_view_box_off_the_map_covers_nothing():
    view = roi_view(16, HAND_MAP, (40, 40, 60, 60), 4, 2, "RoI pool", 0)
    assert view["covered_area"] == 0.0 and view["covered_iou"] == 0.0
    assert view["pooled"].tolist() == [[0, 0], [0, 0]]  # empty bins pool to 0, never NaN


def test_roi_view_mean_over_channels():
    feature_map, proposal = _random_case(3)
    mean = roi_view(64, feature_map, proposal, 4, 7, "RoIAlign", None)
    each = [roi_view(64, feature_map, proposal, 4, 7, "RoIAlign", c)["pooled"] for c in range(3)]
    torch.testing.assert_close(mean["pooled"], torch.stack(each).mean(0))
    torch.testing.assert_close(mean["feature"], feature_map.mean(0))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"feature_map": torch.zeros(4, 4)}, ValueError, r"feature_map: expected a float Tensor\[C, H/"),
        ({"feature_map": torch.zeros(1, 8, 8)}, ValueError, r"expected a spatial size of .* got \(8, 8\)"),
        ({"channel": 1}, ValueError, r"channel: expected a value in \[0, 0\], got 1"),
        ({"channel": -1}, ValueError, r"channel: expected a value in \[0, 0\]"),
        ({"method": "max"}, ValueError, "method: expected one of 'RoI pool', 'RoIAlign', got 'max'"),
        ({"proposal": (8, 0, 4, 8)}, ValueError, "proposal: expected x2 > x1 and y2 > y1"),
        ({"proposal": (0, 0, 8)}, ValueError, r"proposal: expected 4 numbers .*, got shape \(3,\)"),
        ({"stride": 0}, ValueError, r"stride: expected a value in \[1, inf\]"),
        ({"image_size": (16, 16, 3)}, ValueError, "image_size: expected an int or"),
    ],
)
def test_roi_view_rejects_bad_input(kwargs, error, match):
    arguments = {"image_size": 16, "feature_map": HAND_MAP, "proposal": (0, 0, 8, 8), "stride": 4,
                 "output_size": 2, "method": "RoI pool", "channel": 0, **kwargs}
    with pytest.raises(error, match=match):
        roi_view(**arguments)


# --- RoIPoolExplorer --------------------------------------------------------------------------
def _explorer(num_proposals=5):
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(3, 64, 64, generator=generator)
    feature_map = torch.randn(6, 16, 16, generator=generator)
    corner = torch.rand(num_proposals, 2, generator=generator) * 40
    proposals = torch.cat([corner, corner + 5 + torch.rand(num_proposals, 2, generator=generator) * 18], 1)
    return RoIPoolExplorer(image, feature_map, proposals, stride=4), feature_map, proposals


def _status(explorer):
    match = STATUS.search(explorer.status.value)
    assert match, explorer.status.value
    return match.groups()


def test_explorer_controls():
    explorer, _, _ = _explorer()
    controls = explorer.controls
    assert controls["proposal"].description == "proposal" and (controls["proposal"].min,
                                                              controls["proposal"].max) == (0, 4)
    assert controls["method"].options == ROI_METHODS and controls["method"].value == "RoI pool"
    assert (controls["channel"].min, controls["channel"].max) == (0, 5)
    assert _status(explorer)[:3] == ("0", "5", "RoI pool")


def test_explorer_follows_its_controls():
    explorer, feature_map, proposals = _explorer()
    explorer.controls["proposal"].value = 3
    explorer.controls["channel"].value = 4
    expected = roi_view(64, feature_map, proposals[3], 4, 7, "RoI pool", 4)
    assert torch.equal(explorer.result["pooled"], expected["pooled"])
    assert _status(explorer) == ("3", "5", "RoI pool", f"{expected['covered_iou']:.2f}")
    ax = explorer.axes[2]
    assert ax.images[0].get_array().shape == (7, 7) and len(ax.texts) > 0  # values written on the grid
    explorer.controls["method"].value = "RoIAlign"
    assert _status(explorer)[2:] == ("RoIAlign", "1.00")
    assert f"RoI pool: {expected['covered_iou']:.2f}" in explorer.status.value
    assert len(explorer.axes[0].collections) == 5  # cell grid, bins, sampling points, proposal, covered
    torch.testing.assert_close(explorer.result["pooled"],
                               roi_view(64, feature_map, proposals[3], 4, 7, "RoIAlign", 4)["pooled"])
    assert explorer.png.startswith(b"\x89PNG") and explorer.render_seconds > 0


def test_explorer_with_one_proposal_and_one_channel():
    image, feature_map = torch.rand(3, 30, 30), torch.rand(1, 8, 8)  # ceil(30 / 4) = 8 cells
    explorer = RoIPoolExplorer(image, feature_map, torch.tensor([[0.0, 0.0, 30.0, 30.0]]))
    assert _status(explorer)[:2] == ("0", "1")


def test_explorer_is_print_free():
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        explorer, _, _ = _explorer()
        explorer.controls["proposal"].value = 2
    assert stdout.getvalue() == ""


IMAGE, MAP, BOX = torch.rand(3, 64, 64), torch.rand(6, 16, 16), torch.tensor([[0.0, 0, 8, 8]])


@pytest.mark.parametrize(
    "arguments, match",
    [
        ((torch.rand(64, 64), MAP, BOX), r"image: expected a Tensor\[3"),
        ((IMAGE, torch.rand(6, 10, 16), BOX), "spatial size"),
        ((IMAGE, MAP, torch.zeros(0, 4)), "expected at least one box, got 0"),
        ((IMAGE, MAP, torch.zeros(3, 5)), r"proposals: expected a Tensor\[N, 4\]"),
        ((IMAGE, MAP, torch.tensor([[9.0, 0, 8, 8]])), "x2 >= x1"),
    ],
)
def test_explorer_rejects_bad_input(arguments, match):
    with pytest.raises(ValueError, match=match):
        RoIPoolExplorer(*arguments)


# --- regression: "the pooled values drift to the wrong cells and the last column is empty" --------
@pytest.mark.parametrize("output_size", [7, (3, 5), 2])
def test_pooled_values_are_written_centred_in_their_own_cells(output_size):
    explorer, _, _ = _explorer()
    explorer.controls["proposal"].value = 1
    explorer.output_size = check_pair(output_size, "output_size")
    explorer.update()
    explorer.render_png()
    pooled_ax, pooled = explorer.axes[2], explorer.result["pooled"]
    out_h, out_w = pooled.shape
    renderer = explorer.figure.canvas.get_renderer()
    (left, top), (right, bottom) = pooled_ax.transData.transform([(0, 0), (out_w, out_h)])
    cell_height = (top - bottom) / out_h
    cells = {}
    for text in pooled_ax.texts:  # one multi-line text per column and colour, one line per row
        x, _ = text.get_position()
        j = int(x)
        assert j + 0.25 < x < j + 0.75, (text.get_text(), x)
        lines = text.get_text().split("\n")
        assert len(lines) == out_h, text.get_text()
        for i, line in enumerate(lines):
            if line:
                assert (i, j) not in cells, f"two texts in cell {(i, j)}"
                cells[(i, j)] = line
        # Where it is really drawn: inside its column, lines one cell apart, centred on the grid.
        extent = text.get_window_extent(renderer)
        column_left, column_right = left + j * (right - left) / out_w, left + (j + 1) * (right - left) / out_w
        assert column_left - 0.5 <= extent.x0 and extent.x1 <= column_right + 0.5, (text.get_text(), extent)
        line_height = extent.height - (out_h - 1) * cell_height
        assert 0 < line_height <= cell_height + 0.5, (extent.height, cell_height)
        assert abs((extent.y0 + extent.y1) / 2 - (top + bottom) / 2) <= 1.0, (extent, top, bottom)
    assert set(cells) == {(i, j) for i in range(out_h) for j in range(out_w)}, "one value per cell"
    assert all(cells[(i, out_w - 1)] for i in range(out_h)), "the last column is written"
    assert all(cells[(i, j)] == format(float(pooled[i, j]), value_format(pooled.numpy())) for i, j in cells)


def test_quantization_iou_matches_roi_view():
    feature_map, _ = _random_case(0)
    _, _, proposals = _explorer(num_proposals=12)
    iou = quantization_iou(proposals, 4, 7, (16, 16))
    regions = pooled_regions(proposals, 4, 7, (16, 16))
    for index, proposal in enumerate(proposals):
        view = roi_view(64, feature_map, proposal, 4, 7, "RoI pool", 0)
        assert torch.equal(regions[index], view["covered_box"])
        assert iou[index].item() == pytest.approx(view["covered_iou"], abs=1e-6)
    # On the cell grid, still not exact: cells 1..3 and 2..4 both ends included, 12 x 12 px read for 8 x 8.
    on_grid = torch.tensor([[4.0, 8, 12, 16]])
    assert pooled_regions(on_grid, 4, 7, (16, 16)).tolist() == [[4, 8, 16, 20]]
    assert quantization_iou(on_grid, 4, 7, (16, 16)).item() == pytest.approx(64 / 144)
    off_the_map = torch.tensor([[80.0, 80, 90, 90]])
    assert quantization_iou(off_the_map, 4, 7, (16, 16)).tolist() == [0.0]
    assert quantization_iou(torch.zeros(0, 4), 4, 7, (16, 16)).shape == (0,)


def test_default_proposal_is_small_with_the_worst_quantization():
    proposals = torch.tensor([[0.0, 0, 40, 40],  # large, on the grid
                              [2.0, 2, 10, 10],  # small, reads [4, 16]^2: IoU 36 / 172 = 0.21
                              [4.0, 4, 12, 12],  # small, reads [4, 16]^2: IoU 64 / 144 = 0.44
                              [1.0, 1, 60, 61]])  # large: excluded, however low its IoU
    assert default_proposal(proposals, 4, 7, (16, 16)) == 1
    assert default_proposal(proposals[[0, 3]], 4, 7, (16, 16)) == 0  # none small: the smallest
    with pytest.raises(ValueError, match="expected at least one box, got 0"):
        default_proposal(torch.zeros(0, 4), 4, 7, (16, 16))


def test_explorer_opens_on_a_small_proposal():
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(3, 128, 128, generator=generator)
    feature_map = torch.randn(4, 32, 32, generator=generator)
    corner = torch.rand(30, 2, generator=generator) * 60
    proposals = torch.cat([corner, corner + 6 + torch.rand(30, 2, generator=generator) * 60], 1)
    explorer = RoIPoolExplorer(image, feature_map, proposals, stride=4)
    index = explorer.controls["proposal"].value
    sides = proposals[:, 2:] - proposals[:, :2]
    assert sides[index].max() <= 32 and _status(explorer)[0] == str(index)
    iou = quantization_iou(proposals, 4, 7, (32, 32))
    small = (sides <= 32).all(dim=1)
    assert iou[index] == iou[small].min() and iou[index] < 1
    assert RoIPoolExplorer(image, feature_map, proposals, initial_proposal=3).controls["proposal"].value == 3
    with pytest.raises(ValueError, match=r"initial_proposal: expected a value in \[0, 29\], got 30"):
        RoIPoolExplorer(image, feature_map, proposals, initial_proposal=30)
