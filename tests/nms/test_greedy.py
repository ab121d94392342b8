"""Tests for course_lib.nms.greedy, the readable NMS: torchvision.ops is the oracle for nms and
batched_nms, and nms_steps must agree with nms."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops as tv_ops
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.nms import batched_nms, nms, nms_steps
from course_lib.nms.greedy import check_batched_nms_args, check_nms_args, threshold_as

from .inputs import THRESHOLDS, detection_set, from_bytes, stable_order

FUZZ = settings(max_examples=1000)


# ---- hand-computed cases ------------------------------------------------------------------------


def test_nms_by_hand():
    # Two pairs of 10x10 squares shifted by 1 (IoU 81 / 119 = 0.68) far apart from each other.
    boxes = torch.tensor([[0.0, 0, 10, 10], [1.0, 1, 11, 11], [20.0, 20, 30, 30], [21.0, 21, 31, 31]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    assert nms(boxes, scores, 0.5).tolist() == [3, 0]
    assert nms(boxes, scores, 0.7).tolist() == [3, 0, 1, 2]  # 0.68 is not above 0.7
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 2, 2]), 0.5).tolist() == [3, 0, 1]


def test_iou_exactly_on_the_threshold_is_kept():
    # IoU = 1 / 2 exactly: torchvision suppresses only IoU > threshold (the lecture's slide says >=).
    boxes, scores = torch.tensor([[0.0, 0, 2, 1], [0.0, 0, 1, 1]]), torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == tv_ops.nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.49).tolist() == [0]


@pytest.mark.parametrize("dtype, expected", [(torch.float32, [0]), (torch.float64, [0, 1])])
def test_threshold_compared_in_double_like_torchvision(dtype, expected):
    # IoU = 1 / 10. In float32 that is 0.10000000149 > 0.1: torchvision's C++ kernel compares it with
    # the double 0.1 and suppresses; a float32 comparison would see equality and keep both.
    boxes = torch.tensor([[0.0, 0, 10, 1], [0.0, 0, 1, 1]], dtype=dtype)
    scores = torch.tensor([0.9, 0.8], dtype=dtype)
    assert tv_ops.nms(boxes, scores, 0.1).tolist() == expected
    assert nms(boxes, scores, 0.1).tolist() == expected
    assert [step["selected"] for step in nms_steps(boxes, scores, 0.1)] == expected


def test_threshold_as_by_hand():
    below = threshold_as(0.1, torch.float32)
    assert below < 0.1 and below == torch.tensor(0.1, dtype=torch.float32).nextafter(torch.tensor(0.0)).item()
    assert threshold_as(0.5, torch.float32) == 0.5  # exact in float32: unchanged
    assert threshold_as(0.1, torch.float64) == 0.1
    # 0.7 rounds down to float32 by itself (0.699999988): nothing to step down
    assert threshold_as(0.7, torch.float32) == torch.tensor(0.7, dtype=torch.float32).item() < 0.7


@FUZZ
@given(iou_threshold=st.floats(0.0, 1.0), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_fuzz_threshold_as_is_the_largest_value_not_above(iou_threshold, dtype):
    threshold = threshold_as(iou_threshold, dtype)
    as_dtype = torch.tensor(threshold, dtype=dtype)
    assert as_dtype.item() == threshold <= iou_threshold  # exact in dtype, not above
    above = as_dtype.nextafter(torch.tensor(2.0, dtype=dtype))  # the next value of dtype
    assert above.item() > iou_threshold
    # hence, for every IoU of dtype, "iou > threshold" in dtype is "iou > iou_threshold" in double
    for iou in (as_dtype, above):
        assert bool(iou > threshold) == (iou.item() > iou_threshold)


def test_nms_steps_by_hand():
    boxes = torch.tensor([[0.0, 0, 2, 1], [0.0, 0, 1, 1], [5.0, 5, 6, 6]])
    steps = nms_steps(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.4)
    assert [step["selected"] for step in steps] == [0, 2]
    assert steps[0]["candidates"].tolist() == [1, 2]
    torch.testing.assert_close(steps[0]["ious"], torch.tensor([0.5, 0.0]))
    assert steps[0]["removed"].tolist() == [1] and steps[0]["remaining"].tolist() == [2]
    assert steps[1]["candidates"].tolist() == [] and steps[1]["remaining"].tolist() == []


# ---- oracle: torchvision on 1k and 5k boxes, ties and duplicates included ---------------------


@pytest.mark.parametrize("num_boxes", [1000, 5000])
@pytest.mark.parametrize("kind", ["random", "clustered"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nms_equals_torchvision(num_boxes, kind, dtype):
    boxes, scores, _ = detection_set(kind, num_boxes, dtype)
    for iou_threshold in (0.0, 0.5, 1.0):
        assert torch.equal(nms(boxes, scores, iou_threshold), tv_ops.nms(boxes, scores, iou_threshold))


@pytest.mark.parametrize("num_boxes", [1000, 5000])
@pytest.mark.parametrize("kind", ["random", "clustered"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_nms_equals_torchvision(num_boxes, kind, dtype):
    # Above 1000 boxes torchvision runs NMS class by class and merges with an unstable sort, so its
    # equal scores come in arbitrary order; we always put the lower index first. Same boxes, and the
    # same order once torchvision's ties are put in index order.
    boxes, scores, classes = detection_set(kind, num_boxes, dtype, seed=1)
    for iou_threshold in (0.0, 0.5, 1.0):
        ours = batched_nms(boxes, scores, classes, iou_threshold)
        theirs = tv_ops.batched_nms(boxes, scores, classes, iou_threshold)
        assert torch.equal(ours, stable_order(theirs, scores))
        if num_boxes <= 1000:  # torchvision's offset-trick path: its order is ours exactly
            assert torch.equal(ours, theirs)


def test_batched_nms_is_per_class_nms_even_with_negative_coordinates():
    # torchvision's offset trick assumes coordinates >= 0: here it shifts class 1 onto class 0.
    boxes = torch.tensor([[-10.0, -10, -2, -2], [-10.0, -10, -2, -2]])
    scores, classes = torch.tensor([0.9, 0.8]), torch.tensor([0, 1])
    assert tv_ops.batched_nms(boxes, scores, classes, 0.5).tolist() == [0]  # wrong: different classes
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 1]


def test_batched_nms_is_the_union_of_per_class_nms():
    boxes, scores, classes = detection_set("clustered", 3000, torch.float32, seed=2)
    members = [torch.nonzero(classes == c)[:, 0] for c in range(5)]
    expected = torch.cat([index[tv_ops.nms(boxes[index], scores[index], 0.5)] for index in members])
    assert torch.equal(batched_nms(boxes, scores, classes, 0.5), stable_order(expected, scores))


def test_nms_steps_equals_nms_on_random_sets():
    for kind in ("random", "clustered"):
        boxes, scores, _ = detection_set(kind, 400, torch.float32, seed=3)
        for iou_threshold in (0.0, 0.3, 0.5, 1.0):
            steps = nms_steps(boxes, scores, iou_threshold)
            assert [step["selected"] for step in steps] == nms(boxes, scores, iou_threshold).tolist()


# ---- hypothesis fuzzing, >= 1000 cases per op -----------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=6 * 12), iou_threshold=THRESHOLDS)
def test_fuzz_nms_and_nms_steps(data, iou_threshold):
    boxes, scores, _ = from_bytes(data)
    keep = nms(boxes, scores, iou_threshold)
    assert keep.dtype == torch.int64
    assert torch.equal(keep, tv_ops.nms(boxes, scores, iou_threshold))
    assert [step["selected"] for step in nms_steps(boxes, scores, iou_threshold)] == keep.tolist()


@FUZZ
@given(data=st.binary(max_size=6 * 12), iou_threshold=THRESHOLDS)
def test_fuzz_batched_nms(data, iou_threshold):
    boxes, scores, classes = from_bytes(data)
    expected = tv_ops.batched_nms(boxes, scores, classes, iou_threshold)
    assert torch.equal(batched_nms(boxes, scores, classes, iou_threshold), expected)


# ---- invariants -------------------------------------------------------------------------------


def test_nms_invariants():
    boxes, scores, _ = detection_set("random", 500, torch.float32, seed=5)
    keep = nms(boxes, scores, 0.5)
    kept_iou = tv_ops.box_iou(boxes[keep], boxes[keep]).fill_diagonal_(0)
    assert (kept_iou <= 0.5).all()  # no two kept boxes overlap too much
    removed = torch.ones(500, dtype=torch.bool)
    removed[keep] = False
    assert (tv_ops.box_iou(boxes[removed], boxes[keep]) > 0.5).any(dim=1).all()  # each removal has a reason
    assert torch.equal(nms(boxes, scores, 1.0), stable_order(torch.arange(500), scores))  # 1: keep all
    assert torch.equal(nms(boxes * 3 + 7, scores, 0.5), keep)  # scale and shift
    assert torch.equal(nms(boxes, scores * 2, 0.5), keep)  # only the order of scores matters


def test_nms_steps_records_are_consistent():
    boxes, scores, _ = detection_set("clustered", 300, torch.float32, seed=6)
    steps = nms_steps(boxes, scores, 0.5)
    assert set(steps[0]["candidates"].tolist()) == set(range(300)) - {steps[0]["selected"]}
    for step, next_step in zip(steps, steps[1:] + [None], strict=True):
        assert (step["ious"][torch.isin(step["candidates"], step["removed"])] > 0.5).all()
        assert (step["ious"][torch.isin(step["candidates"], step["remaining"])] <= 0.5).all()
        split = step["removed"].tolist() + step["remaining"].tolist()
        assert sorted(split) == sorted(step["candidates"].tolist())
        if next_step is not None:
            assert next_step["selected"] == step["remaining"][0]
    assert steps[-1]["remaining"].numel() == 0


def test_half_precision_boxes_are_compared_in_float32():
    boxes, scores, classes = detection_set("clustered", 300, torch.float32, seed=9)
    half = boxes.half()
    assert torch.equal(nms(half, scores, 0.5), tv_ops.nms(half.float(), scores, 0.5))
    expected = tv_ops.batched_nms(half.float(), scores, classes, 0.5)
    assert torch.equal(batched_nms(half, scores, classes, 0.5), expected)


# ---- edge cases ---------------------------------------------------------------------------------


def test_empty_and_single_inputs():
    empty_boxes, empty_scores = torch.zeros(0, 4), torch.zeros(0)
    for result in (
        nms(empty_boxes, empty_scores, 0.5),
        batched_nms(empty_boxes, empty_scores, torch.zeros(0, dtype=torch.int64), 0.5),
    ):
        assert result.shape == (0,) and result.dtype == torch.int64 and result.device == empty_boxes.device
    assert nms_steps(empty_boxes, empty_scores, 0.5) == []
    one = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert nms(one, torch.tensor([0.3]), 0.5).tolist() == [0]
    assert batched_nms(one, torch.tensor([0.3]), torch.tensor([4]), 0.5).tolist() == [0]


def test_identical_boxes_keep_the_lowest_index_of_the_best_score():
    boxes = torch.tensor([[0.0, 0, 4, 4]] * 4)
    scores = torch.tensor([0.5, 0.9, 0.9, 0.1])
    assert nms(boxes, scores, 0.5).tolist() == tv_ops.nms(boxes, scores, 0.5).tolist() == [1]
    assert nms(boxes, scores, 1.0).tolist() == [1, 2, 0, 3]  # IoU 1 is not above 1


def test_empty_boxes_never_suppress():
    points = torch.tensor([[1.0, 1, 1, 1], [1.0, 1, 1, 1], [0.0, 0, 2, 2]])  # IoU of the points: 0 / 0
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(points, scores, 0.0).tolist() == tv_ops.nms(points, scores, 0.0).tolist() == [0, 1, 2]
    assert not any(step["ious"].isnan().any() for step in nms_steps(points, scores, 0.0))


# ---- bad input ----------------------------------------------------------------------------------


def test_bad_input_raises_with_a_clear_message():
    boxes, scores = torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([0.5])
    with pytest.raises(ValueError, match=r"iou_threshold: expected a value in \[0.0, 1.0\], got 1.5"):
        nms(boxes, scores, 1.5)
    with pytest.raises(ValueError, match=r"scores: expected a Tensor\[1\], got shape \(2,\)"):
        nms(boxes, torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="x2 >= x1"):
        nms(torch.tensor([[0.0, 0, -1, 1]]), scores, 0.5)  # e.g. xywh boxes passed as xyxy
    with pytest.raises(ValueError, match="idxs: expected an integer"):
        batched_nms(boxes, scores, torch.zeros(1), 0.5)
    with pytest.raises(TypeError, match="iou_threshold: expected a number"):
        nms_steps(boxes, scores, "0.5")


def test_check_helpers_accept_good_and_reject_bad_arguments():
    boxes, scores = torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([0.5])
    check_nms_args(boxes, scores, 0.5)
    check_batched_nms_args(boxes, scores, torch.tensor([3]), 0.5)
    with pytest.raises(TypeError, match="boxes: expected a torch.Tensor, got list"):
        check_nms_args([[0.0, 0, 1, 1]], scores, 0.5)
    with pytest.raises(ValueError, match=r"idxs: expected an integer Tensor\[1\], got shape \(2,\)"):
        check_batched_nms_args(boxes, scores, torch.tensor([0, 1]), 0.5)
    with pytest.raises(ValueError, match="idxs: expected an integer Tensor.*torch.bool"):
        check_batched_nms_args(boxes, scores, torch.tensor([True]), 0.5)
