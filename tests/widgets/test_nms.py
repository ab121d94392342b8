"""Tests for course_lib.widgets.nms: the NMS explorer and its pure function ``nms_view``."""

import contextlib
import io
import re

import pytest
import torch
import torchvision.ops
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.data.noisy import noisy_detections
from course_lib.nms import soft_nms
from course_lib.widgets.nms import NMS_METHODS, NMSExplorer, nms_view

KEPT = re.compile(r"kept (\d+) of (\d+) boxes")


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
