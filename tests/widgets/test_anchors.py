"""Tests for course_lib.widgets.anchors: the anchor explorer and its pure function ``anchor_view``."""

import contextlib
import io
import re

import pytest
import torch
import torchvision.ops
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.widgets.anchors import AnchorExplorer, anchor_view


# --- anchor_view ------------------------------------------------------------------------------
def test_anchor_view_hand_computed():
    # A 64-pixel image, stride 32: anchors centred at (0, 0), (32, 0), (0, 32), (32, 32).
    view = anchor_view((16, 8, 48, 40), sizes=[32], aspect_ratios=[1.0], stride=32, image_size=64)
    assert view["anchors"].tolist() == [
        [-16, -16, 16, 16], [16, -16, 48, 16], [-16, 16, 16, 48], [16, 16, 48, 48]
    ]
    assert view["ious"].tolist() == pytest.approx([0, 256 / 1792, 0, 768 / 1280])
    # The last anchor's IoU 0.6 is between the thresholds, but it is the best: positive anyway.
    assert view["labels"].tolist() == [0, 0, 0, 1]
    assert view["counts"] == {"positive": 1, "negative": 3, "ignored": 0}
    assert view["num_low_quality"] == 1 and view["best_iou"] == pytest.approx(0.6)
    relaxed = anchor_view((16, 8, 48, 40), [32], [1.0], 32, 64, fg_iou_thresh=0.6, bg_iou_thresh=0.1)
    assert relaxed["labels"].tolist() == [0, -1, 0, 1] and relaxed["num_low_quality"] == 0


def _brute_force_labels(ious, fg_iou_thresh, bg_iou_thresh):
    # torch compares a float32 tensor with a Python float in float32 (8.8e-105 becomes 0.0).
    fg_iou_thresh = float(torch.tensor(fg_iou_thresh, dtype=torch.float32))
    bg_iou_thresh = float(torch.tensor(bg_iou_thresh, dtype=torch.float32))
    labels = []
    for iou in ious.tolist():
        if iou >= fg_iou_thresh or (iou == ious.max() and iou > 0):
            labels.append(1)
        elif iou < bg_iou_thresh:
            labels.append(0)
        else:
            labels.append(-1)
    return labels


@settings(max_examples=25)
@given(
    corner=st.tuples(st.integers(0, 100), st.integers(0, 100)),
    size=st.tuples(st.integers(1, 128), st.integers(1, 128)),
    thresholds=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
    stride=st.sampled_from([8, 16, 32]),
)
def test_anchor_view_matches_a_brute_force_rule_and_torchvision_iou(corner, size, thresholds, stride):
    gt_box = (corner[0], corner[1], corner[0] + size[0], corner[1] + size[1])
    bg, fg = sorted(thresholds)
    view = anchor_view(gt_box, [16, 32, 64], [0.5, 1.0, 2.0], stride, 128, fg, bg)
    assert view["num_anchors"] == (-(-128 // stride)) ** 2 * 9
    gt = torch.tensor([gt_box], dtype=torch.float32)
    expected_ious = torchvision.ops.box_iou(view["anchors"], gt)[:, 0]
    torch.testing.assert_close(view["ious"], expected_ious)
    assert view["labels"].tolist() == _brute_force_labels(view["ious"], fg, bg)
    assert sum(view["counts"].values()) == view["num_anchors"]


def test_anchor_view_without_sizes_or_ratios_has_no_anchors():
    for sizes, ratios in (([], [1.0]), ([32], []), ([], [])):
        view = anchor_view((0, 0, 10, 10), sizes, ratios, 16, 128)
        assert view["anchors"].shape == (0, 4) and view["labels"].dtype == torch.int64
        assert view["counts"] == {"positive": 0, "negative": 0, "ignored": 0} and view["best_iou"] == 0.0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"bg_iou_thresh": 0.8}, ValueError, r"expected a value <= fg_iou_thresh=0.7, got 0.8"),
        ({"fg_iou_thresh": 1.2}, ValueError, r"fg_iou_thresh: expected a value in \[0.0, 1.0\]"),
        ({"stride": 0}, ValueError, r"stride: expected a value in \[1, inf\]"),
        ({"sizes": [-8]}, ValueError, "sizes and aspect_ratios: expected a value in"),
        ({"gt_box": (10, 10, 5, 20)}, ValueError, "gt_box: expected x2 > x1 and y2 > y1"),
    ],
)
def test_anchor_view_rejects_bad_input(kwargs, error, match):
    arguments = {"gt_box": (0, 0, 10, 10), "sizes": [32], "aspect_ratios": [1.0], "stride": 16,
                 "image_size": 64, **kwargs}
    with pytest.raises(error, match=match):
        anchor_view(**arguments)


# --- AnchorExplorer ---------------------------------------------------------------------------
ANCHOR_STATUS = re.compile(r"positive (\d+), negative (\d+), ignored (\d+) of (\d+) anchors")


def _anchor_counts(explorer):
    match = ANCHOR_STATUS.search(explorer.status.value)
    assert match, explorer.status.value
    return tuple(int(group) for group in match.groups())


def test_anchor_explorer_status_counts_the_labels():
    explorer = AnchorExplorer(image=torch.rand(3, 128, 128))
    positive, negative, ignored, total = _anchor_counts(explorer)
    assert total == 8 * 8 * 9 and positive + negative + ignored == total
    assert (positive, negative, ignored) == tuple(explorer.result["counts"].values())
    ax = explorer.axes[0]
    assert len(ax.collections) == 3 and len(ax.patches) == 1  # negatives, ignored, positives; the box
    explorer.controls["stride"].value = 8
    assert _anchor_counts(explorer)[3] == 16 * 16 * 9
    explorer.controls["sizes"].value = (32,)
    explorer.controls["aspect_ratios"].value = (1.0,)
    assert _anchor_counts(explorer)[3] == 16 * 16


def test_anchor_explorer_keeps_the_negative_threshold_below_the_positive_one():
    explorer = AnchorExplorer()
    explorer.controls["fg_iou_thresh"].value = 0.5
    explorer.controls["bg_iou_thresh"].value = 0.6  # above: pulled back to 0.5
    assert explorer.controls["bg_iou_thresh"].value == 0.5 and explorer.result["bg_iou_thresh"] == 0.5
    assert _anchor_counts(explorer)[2] == 0  # no IoU lies in [0.5, 0.5): nothing ignored
    explorer.controls["fg_iou_thresh"].value = 0.2  # below bg: bg follows it down
    assert explorer.controls["bg_iou_thresh"].value == 0.2


def test_anchor_explorer_threshold_extremes():
    explorer = AnchorExplorer()
    explorer.controls["bg_iou_thresh"].value = 0.0
    explorer.controls["fg_iou_thresh"].value = 0.0  # every IoU is >= 0: every anchor positive
    positive, negative, ignored, total = _anchor_counts(explorer)
    assert positive == total and negative == ignored == 0
    explorer.controls["fg_iou_thresh"].value = 1.0  # only the best anchor, by the best-match rule
    assert explorer.result["counts"]["positive"] == explorer.result["num_low_quality"] >= 1
    assert "positive only as the best match" in explorer.status.value


def test_anchor_explorer_tiny_and_huge_boxes():
    explorer = AnchorExplorer()
    controls = explorer.controls
    controls["x"].value, controls["y"].value, controls["w"].value, controls["h"].value = 60, 60, 1, 1
    assert explorer.result["gt_box"] == [60, 60, 61, 61]
    assert explorer.result["counts"]["positive"] >= 1 and explorer.result["best_iou"] < 0.3
    controls["x"].value, controls["y"].value, controls["w"].value, controls["h"].value = 0, 0, 128, 128
    assert explorer.result["gt_box"] == [0, 0, 128, 128]
    assert sum(explorer.result["counts"].values()) == explorer.result["num_anchors"]
    controls["x"].value, controls["y"].value = 127, 127  # the slider maxima: box mostly off the image
    assert _anchor_counts(explorer)[3] == 576


def test_anchor_explorer_with_no_sizes_selected():
    explorer = AnchorExplorer()
    explorer.controls["sizes"].value = ()
    assert _anchor_counts(explorer) == (0, 0, 0, 0)
    assert explorer.png.startswith(b"\x89PNG") and explorer.axes[0].get_legend() is None


def test_anchor_explorer_is_print_free():
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        explorer = AnchorExplorer()
        explorer.controls["w"].value = 10
    assert stdout.getvalue() == ""
