"""Tests for course_lib.widgets.proposals: the NMS and anchor explorers and their pure functions."""

import matplotlib

matplotlib.use("Agg")  # no display needed; set before pyplot is imported

import contextlib  # noqa: E402
import io  # noqa: E402
import re  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision.ops  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from course_lib.nms import soft_nms  # noqa: E402
from course_lib.widgets.proposals import (  # noqa: E402
    NMS_METHODS,
    AnchorExplorer,
    NMSExplorer,
    anchor_view,
    nms_view,
    noisy_detections,
)

KEPT = re.compile(r"kept (\d+) of (\d+) boxes")


@pytest.fixture(autouse=True)
def no_figures_left():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "an explorer left a pyplot figure open"


def _kept_in_status(explorer):
    matches = KEPT.findall(explorer.status.value)
    assert len(matches) == 1, f"expected one 'kept k of n boxes' in {explorer.status.value!r}"
    return int(matches[0][0]), int(matches[0][1])


# Objects of a 128x128 scene, and a detector-like output: 6 jittered copies of each.
OBJECTS = torch.tensor([[10.0, 12, 50, 60], [60, 20, 110, 70], [30, 70, 90, 120], [95, 90, 125, 126],
                        [40, 40, 75, 85]])
BOXES, SCORES = noisy_detections(OBJECTS, boxes_per_object=6, seed=0)

# Hand-computed: B overlaps A with IoU 90 / 110; C is far from both.
HAND_BOXES = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]])
HAND_SCORES = torch.tensor([0.9, 0.8, 0.7])


# --- noisy_detections -------------------------------------------------------------------------
def test_noisy_detections_are_deterministic_scored_copies():
    boxes, scores = noisy_detections(OBJECTS, boxes_per_object=4, seed=3)
    again_boxes, again_scores = noisy_detections(OBJECTS, boxes_per_object=4, seed=3)
    assert torch.equal(boxes, again_boxes) and torch.equal(scores, again_scores)
    assert boxes.shape == (20, 4) and scores.shape == (20,)
    assert ((scores > 0) & (scores < 1)).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    first_copies = boxes.view(5, 4, 4)[:, 0]
    assert (torchvision.ops.box_iou(first_copies, OBJECTS).diag() > 0.7).all()
    assert not torch.equal(noisy_detections(OBJECTS, 4, seed=4)[0], boxes)


def test_noisy_detections_without_jitter_are_the_objects():
    boxes, _ = noisy_detections(OBJECTS, boxes_per_object=2, jitter=0.0)
    torch.testing.assert_close(boxes, OBJECTS.repeat_interleave(2, dim=0))


def test_noisy_detections_of_no_object_is_empty():
    boxes, scores = noisy_detections(torch.zeros(0, 4))
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_noisy_detections_rejects_bad_input():
    with pytest.raises(ValueError, match=r"boxes_per_object: expected a value in \[1, inf\]"):
        noisy_detections(OBJECTS, boxes_per_object=0)
    with pytest.raises(ValueError, match="jitter"):
        noisy_detections(OBJECTS, jitter=-1.0)


# --- nms_view ---------------------------------------------------------------------------------
def test_nms_view_hand_computed_steps():
    start = nms_view(HAND_BOXES, HAND_SCORES, 0.5, step=0)
    assert start["states"] == ["remaining"] * 3 and start["selected"] is None and start["num_steps"] == 2
    first = nms_view(HAND_BOXES, HAND_SCORES, 0.5, step=1)
    assert first["states"] == ["selected", "removed", "remaining"]
    assert first["selected"] == 0 and first["removed"].tolist() == [1]
    assert first["ious"].tolist() == pytest.approx([0, 90 / 110, 0])
    last = nms_view(HAND_BOXES, HAND_SCORES, 0.5, step=2)
    assert last["states"] == ["kept", "suppressed", "selected"]
    assert last["kept"].tolist() == [0, 2] and last["num_kept"] == 2
    assert nms_view(HAND_BOXES, HAND_SCORES, 0.9)["num_kept"] == 3  # 0.818 is not above 0.9


def test_nms_view_step_is_clamped_and_none_means_the_end():
    assert nms_view(HAND_BOXES, HAND_SCORES, 0.5, step=99)["step"] == 2
    assert nms_view(HAND_BOXES, HAND_SCORES, 0.5)["step"] == 2


@settings(max_examples=25)
@given(seed=st.integers(0, 2**31 - 1), iou_threshold=st.floats(0.0, 1.0))
def test_nms_view_matches_torchvision_and_accounts_for_every_box(seed, iou_threshold):
    boxes, scores = noisy_detections(OBJECTS, boxes_per_object=4, seed=seed)
    view = nms_view(boxes, scores, iou_threshold)
    assert torch.equal(view["kept"], torchvision.ops.nms(boxes, scores, iou_threshold))
    kept_states = {i for i, state in enumerate(view["states"]) if state in ("kept", "selected")}
    assert kept_states == set(view["kept"].tolist())
    assert set(view["states"]) <= {"kept", "selected", "suppressed", "removed"}  # nothing remains at the end
    assert view["num_steps"] == view["num_kept"]


def test_nms_view_extreme_thresholds():
    assert nms_view(BOXES, SCORES, 1.0)["num_kept"] == len(BOXES)  # an IoU is never above 1
    strict = nms_view(BOXES, SCORES, 0.0)  # any overlap removes
    kept = BOXES[strict["kept"]]
    assert (torchvision.ops.box_iou(kept, kept).fill_diagonal_(0) == 0).all()
    assert strict["num_kept"] < nms_view(BOXES, SCORES, 0.5)["num_kept"] < len(BOXES)


@pytest.mark.parametrize("method", ["soft-linear", "soft-gaussian"])
def test_nms_view_soft_methods_match_soft_nms(method):
    view = nms_view(BOXES, SCORES, 0.3, step=3, method=method)
    kept, new_scores = soft_nms(BOXES, SCORES, iou_threshold=0.3, method=method.split("-")[1])
    assert torch.equal(view["kept"], kept)
    torch.testing.assert_close(view["scores"][kept], new_scores)
    assert (view["scores"] <= SCORES + 1e-6).all()  # Soft-NMS only ever lowers scores
    assert view["steps"] == [] and view["step"] == 0 and view["num_kept"] == len(kept)


@pytest.mark.parametrize("method", NMS_METHODS)
def test_nms_view_with_zero_boxes(method):
    view = nms_view(torch.zeros(0, 4), torch.zeros(0), 0.5, step=0, method=method)
    assert view["num_kept"] == view["num_boxes"] == view["num_steps"] == 0
    assert view["kept"].dtype == torch.int64 and view["kept"].shape == (0,)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"method": "fast"}, ValueError, "method: expected one of 'greedy', 'soft-linear', 'soft-gaussian'"),
        ({"iou_threshold": 1.5}, ValueError, r"iou_threshold: expected a value in \[0.0, 1.0\]"),
        ({"step": -1}, ValueError, r"step: expected a value in \[0, inf\]"),
        ({"step": 1.5}, TypeError, "step: expected an int"),
        ({"scores": HAND_SCORES[:2]}, ValueError, r"scores: expected a Tensor\[3\]"),
    ],
)
def test_nms_view_rejects_bad_input(kwargs, error, match):
    arguments = {"boxes": HAND_BOXES, "scores": HAND_SCORES, "iou_threshold": 0.5, **kwargs}
    with pytest.raises(error, match=match):
        nms_view(**arguments)


# --- NMSExplorer ------------------------------------------------------------------------------
def test_nms_explorer_controls_are_what_the_browser_test_drives():
    explorer = NMSExplorer(BOXES, SCORES)
    threshold = explorer.controls["iou_threshold"]
    assert threshold.description == "IoU threshold"
    assert (threshold.min, threshold.max, threshold.step, threshold.value) == (0.0, 1.0, 0.05, 0.5)
    assert threshold.continuous_update is True
    assert explorer.controls["step"].description == "step"
    assert explorer.controls["method"].options == NMS_METHODS


def test_nms_explorer_status_follows_the_threshold():
    explorer = NMSExplorer(BOXES, SCORES, image=torch.rand(3, 128, 128))
    counts = {}
    for value in (0.5, 0.45, 0.4, 0.35, 0.0, 1.0):  # ArrowLeft moves the slider by one step of 0.05
        explorer.controls["iou_threshold"].value = value
        counts[value] = _kept_in_status(explorer)
        assert counts[value] == (len(torchvision.ops.nms(BOXES, SCORES, value)), len(BOXES))
    assert counts[0.5] != counts[0.35], "the browser test needs the count to change from 0.5 to 0.35"
    assert counts[1.0] == (len(BOXES), len(BOXES))


def test_nms_explorer_step_slider_walks_through_the_greedy_loop():
    explorer = NMSExplorer(HAND_BOXES, HAND_SCORES)
    step = explorer.controls["step"]
    assert (step.max, step.value) == (2, 2)  # starts at the final result
    step.value = 0
    assert explorer.result["states"] == ["remaining"] * 3 and "step 0 of 2" in explorer.status.value
    step.value = 1
    assert explorer.result["removed"].tolist() == [1] and "1 removed" in explorer.status.value
    ax = explorer.axes[0]
    assert len(ax.patches) == 3
    assert sorted(text.get_text() for text in ax.texts) == ["0.90", "IoU 0.82"]  # score of A, IoU of B
    assert _kept_in_status(explorer) == (2, 3)  # the count is the final result's at every step


def test_nms_explorer_step_follows_the_end_but_not_a_chosen_step():
    explorer = NMSExplorer(BOXES, SCORES)
    threshold, step = explorer.controls["iou_threshold"], explorer.controls["step"]
    threshold.value = 1.0
    assert step.max == step.value == len(BOXES) == explorer.result["step"]
    threshold.value = 0.5
    assert step.max == step.value == explorer.result["num_kept"]
    step.value = 1
    threshold.value = 1.0
    assert step.value == 1 and explorer.result["step"] == 1
    threshold.value = 0.0
    assert step.value == 1 <= step.max


def test_nms_explorer_soft_methods_disable_the_step_slider():
    explorer = NMSExplorer(BOXES, SCORES)
    explorer.controls["method"].value = "soft-linear"
    assert explorer.controls["step"].disabled
    kept, _ = soft_nms(BOXES, SCORES, iou_threshold=0.5, method="linear")
    assert _kept_in_status(explorer) == (len(kept), len(BOXES))
    explorer.controls["method"].value = "soft-gaussian"
    assert "threshold is not used" in explorer.status.value
    explorer.controls["method"].value = "greedy"
    assert not explorer.controls["step"].disabled
    assert explorer.controls["step"].value == explorer.result["num_kept"]


def test_nms_explorer_with_zero_boxes():
    explorer = NMSExplorer(torch.zeros(0, 4), torch.zeros(0))
    assert _kept_in_status(explorer) == (0, 0)
    for value in (0.0, 1.0):
        explorer.controls["iou_threshold"].value = value
        assert _kept_in_status(explorer) == (0, 0)
    explorer.controls["step"].value = 0
    for method in NMS_METHODS:
        explorer.controls["method"].value = method
        assert _kept_in_status(explorer) == (0, 0)
    assert explorer.png.startswith(b"\x89PNG")


def test_nms_explorer_is_print_free():
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        explorer = NMSExplorer(BOXES, SCORES)
        explorer.controls["iou_threshold"].value = 0.3
        explorer.controls["step"].value = 0
    assert stdout.getvalue() == ""


def test_nms_explorer_rejects_bad_input():
    with pytest.raises(ValueError, match=r"scores: expected a Tensor\[30\]"):
        NMSExplorer(BOXES, SCORES[:3])


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
