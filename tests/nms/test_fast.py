"""Tests for course_lib.nms.fast: the block kernels must return what the readable greedy NMS and
torchvision.ops return, index for index."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops as tv_ops
from hypothesis import given, settings
from hypothesis import strategies as st

import course_lib.nms.fast as fast_module
from course_lib.nms import batched_nms, fast_batched_nms, fast_nms, nms

from .inputs import EXACT_THRESHOLDS, THRESHOLDS, detection_set, from_bytes, stable_order

FUZZ = settings(max_examples=1000)
DTYPES = [torch.float32, torch.float64]


# ---- readable == fast == torchvision ------------------------------------------------------------


def thresholds_for(kind: str, boxes: torch.Tensor) -> tuple[float, ...]:
    """0, 0.5, 1 and, on the grid sets, thresholds that some IoUs equal exactly (checked here)."""
    if kind != "grid":
        return (0.0, 0.1, 0.5, 1.0)
    ious = tv_ops.box_iou(boxes, boxes)  # (N, N) in the boxes' dtype, as every NMS computes them
    for threshold in EXACT_THRESHOLDS:  # else the test would not test the boundary it claims to
        assert (ious == torch.tensor(threshold, dtype=boxes.dtype)).any(), threshold
    return (0.0, *EXACT_THRESHOLDS, 1.0)


@pytest.mark.parametrize("kind", ["random", "clustered", "grid"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_readable_fast_and_torchvision_nms_keep_the_same_indices(kind, dtype):
    boxes, scores, _ = detection_set(kind, 1000, dtype, seed=10)  # scores with ties, duplicated boxes
    for iou_threshold in thresholds_for(kind, boxes):
        expected = tv_ops.nms(boxes, scores, iou_threshold)
        assert torch.equal(fast_nms(boxes, scores, iou_threshold), expected), iou_threshold
        assert torch.equal(nms(boxes, scores, iou_threshold), expected), iou_threshold


@pytest.mark.parametrize("kind", ["random", "clustered", "grid"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_readable_fast_and_torchvision_batched_nms_keep_the_same_indices(kind, dtype):
    boxes, scores, classes = detection_set(kind, 1000, dtype, seed=11)  # torchvision: offset-trick path
    for iou_threshold in thresholds_for(kind, boxes):
        expected = tv_ops.batched_nms(boxes, scores, classes, iou_threshold)
        assert torch.equal(fast_batched_nms(boxes, scores, classes, iou_threshold), expected), iou_threshold
        assert torch.equal(batched_nms(boxes, scores, classes, iou_threshold), expected), iou_threshold


def test_empty_input_gives_an_empty_int64_tensor():
    empty_boxes, empty_scores = torch.zeros(0, 4), torch.zeros(0)
    no_classes = torch.zeros(0, dtype=torch.int64)
    for result in (
        fast_nms(empty_boxes, empty_scores, 0.5),
        nms(empty_boxes, empty_scores, 0.5),
        fast_batched_nms(empty_boxes, empty_scores, no_classes, 0.5),
        batched_nms(empty_boxes, empty_scores, no_classes, 0.5),
    ):
        assert result.shape == (0,) and result.dtype == torch.int64 and result.device == empty_boxes.device


# ---- oracle: torchvision on 1k and 5k boxes, ties and duplicates included ---------------------


@pytest.mark.parametrize("num_boxes", [1000, 5000])
@pytest.mark.parametrize("kind", ["random", "clustered"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_nms_equals_torchvision(num_boxes, kind, dtype):
    boxes, scores, _ = detection_set(kind, num_boxes, dtype)
    for iou_threshold in (0.0, 0.5, 1.0):
        assert torch.equal(fast_nms(boxes, scores, iou_threshold), tv_ops.nms(boxes, scores, iou_threshold))


@pytest.mark.parametrize("num_boxes", [1000, 5000])
@pytest.mark.parametrize("kind", ["random", "clustered"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_batched_nms_equals_torchvision(num_boxes, kind, dtype):
    # Above 1000 boxes torchvision runs NMS class by class and merges with an unstable sort, so its
    # equal scores come in arbitrary order; we always put the lower index first. Same boxes, and the
    # same order once torchvision's ties are put in index order.
    boxes, scores, classes = detection_set(kind, num_boxes, dtype, seed=1)
    for iou_threshold in (0.0, 0.5, 1.0):
        ours = fast_batched_nms(boxes, scores, classes, iou_threshold)
        theirs = tv_ops.batched_nms(boxes, scores, classes, iou_threshold)
        assert torch.equal(ours, stable_order(theirs, scores))
        if num_boxes <= 1000:  # the offset-trick path: torchvision's order is ours exactly
            assert torch.equal(ours, theirs)


def test_fast_batched_nms_is_per_class_nms_even_with_negative_coordinates():
    # torchvision's offset trick assumes coordinates >= 0: here it shifts class 1 onto class 0.
    boxes = torch.tensor([[-10.0, -10, -2, -2], [-10.0, -10, -2, -2]])
    scores, classes = torch.tensor([0.9, 0.8]), torch.tensor([0, 1])
    assert tv_ops.batched_nms(boxes, scores, classes, 0.5).tolist() == [0]  # wrong: different classes
    assert fast_batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 1]


def test_fast_batched_nms_is_the_union_of_per_class_nms():
    boxes, scores, classes = detection_set("clustered", 3000, torch.float32, seed=2)  # class-by-class path
    members = [torch.nonzero(classes == c)[:, 0] for c in range(5)]
    expected = torch.cat([index[fast_nms(boxes[index], scores[index], 0.5)] for index in members])
    assert torch.equal(fast_batched_nms(boxes, scores, classes, 0.5), stable_order(expected, scores))


# ---- hypothesis fuzzing, >= 1000 cases per op -----------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=6 * 12), iou_threshold=THRESHOLDS)
def test_fuzz_fast_nms(data, iou_threshold):
    boxes, scores, _ = from_bytes(data)
    keep = fast_nms(boxes, scores, iou_threshold)
    assert keep.dtype == torch.int64
    assert torch.equal(keep, tv_ops.nms(boxes, scores, iou_threshold))


@FUZZ
@given(data=st.binary(max_size=6 * 12), iou_threshold=THRESHOLDS)
def test_fuzz_fast_batched_nms(data, iou_threshold):
    boxes, scores, classes = from_bytes(data)
    expected = tv_ops.batched_nms(boxes, scores, classes, iou_threshold)
    assert torch.equal(fast_batched_nms(boxes, scores, classes, iou_threshold), expected)


# ---- edge cases ---------------------------------------------------------------------------------


def test_single_identical_and_empty_boxes():
    one = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert fast_nms(one, torch.tensor([0.3]), 0.5).tolist() == [0]
    boxes = torch.tensor([[0.0, 0, 4, 4]] * 4)
    scores = torch.tensor([0.5, 0.9, 0.9, 0.1])
    assert fast_nms(boxes, scores, 0.5).tolist() == [1]  # the lowest index of the best score
    assert fast_nms(boxes, scores, 1.0).tolist() == [1, 2, 0, 3]  # IoU 1 is not above 1
    points = torch.tensor([[1.0, 1, 1, 1], [1.0, 1, 1, 1], [0.0, 0, 2, 2]])  # IoU of the points: 0 / 0
    assert fast_nms(points, torch.tensor([0.9, 0.8, 0.7]), 0.0).tolist() == [0, 1, 2]  # never suppress


def test_bad_input_raises_the_readable_versions_messages():
    boxes, scores = torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([0.5])
    with pytest.raises(ValueError, match=r"iou_threshold: expected a value in \[0.0, 1.0\], got 1.5"):
        fast_nms(boxes, scores, 1.5)
    with pytest.raises(ValueError, match=r"scores: expected a Tensor\[1\], got shape \(2,\)"):
        fast_nms(boxes, torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="x2 >= x1"):
        fast_nms(torch.tensor([[0.0, 0, -1, 1]]), scores, 0.5)
    with pytest.raises(ValueError, match="idxs: expected an integer"):
        fast_batched_nms(boxes, scores, torch.zeros(1), 0.5)


# ---- regressions --------------------------------------------------------------------------------


def test_long_suppression_chain_regression_slow_at_low_thresholds(monkeypatch):
    """Regression: 1,000 heavily overlapping boxes at IoU 0.3 took ~36-380 ms (one Cluster-NMS pass
    per link of the chain); past a few passes a block now scans box by box, with the same result."""
    calls = []
    original = fast_module._sequential_keep
    monkeypatch.setattr(fast_module, "_sequential_keep", lambda matrix: calls.append(1) or original(matrix))
    generator = torch.Generator().manual_seed(0)
    centres = torch.rand(1000, 2, generator=generator) * 40 + 40
    sizes = 20 + torch.rand(1000, 2, generator=generator) * 40
    boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1)
    scores = torch.rand(1000, generator=generator)
    for threshold in (0.1, 0.3, 0.5):
        assert torch.equal(fast_nms(boxes, scores, threshold), tv_ops.nms(boxes, scores, threshold))
    chain = torch.tensor([[float(i), 0.0, i + 10.0, 10.0] for i in range(200)])  # each overlaps the next 3
    chain_scores = torch.linspace(1, 0, 200)
    assert torch.equal(fast_nms(chain, chain_scores, 0.5), tv_ops.nms(chain, chain_scores, 0.5))
    assert calls  # the chain is longer than the Cluster-NMS passes: the box-by-box scan ran
