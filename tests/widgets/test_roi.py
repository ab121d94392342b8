"""Tests for course_lib.widgets.roi: roi_view (bins, pooled grid, quantization) and RoIPoolExplorer."""

import contextlib
import io
import re

import pytest
import torch
import torchvision.ops
from hypothesis import given, settings
from hypothesis import strategies as st

import course_lib.roi
from course_lib.widgets.roi import ROI_METHODS, RoIPoolExplorer, _short, roi_view

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


def test_short_values_fit_their_field():
    assert [_short(v) for v in (0.62, 0.001, 15.3, -3.14, -0.617, 99.9, 12345, -12345)] == [
        "0.62", "0", "15", "-3.1", "-.62", "100", "1e4", "-1e4"]


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
    assert len(explorer.axes[0].collections) == 3  # cell grid, bins, sampling points
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
