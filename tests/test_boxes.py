"""Tests for course_lib.boxes, against torchvision.ops and torchvision's BoxCoder."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.ops as tv_ops
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.detection._utils import BoxCoder as TvBoxCoder

from course_lib.boxes import (
    BOX_FORMATS,
    BoxCoder,
    box_area,
    box_convert,
    box_inter_union,
    box_iou,
    clip_boxes_to_image,
    generalized_box_iou,
    upcast_boxes,
)
from course_lib.references import random_boxes

FUZZ = settings(max_examples=1000)


def seeded_boxes(num_boxes: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return random_boxes(num_boxes, torch.Generator().manual_seed(seed), dtype=dtype)


def boxes_from_bytes(data: bytes, low: float = 0.0) -> torch.Tensor:
    """Decode hypothesis bytes into valid xyxy boxes, 4 bytes a box.

    A byte ``b`` is the coordinate ``low + (b % 16) + (b // 16) / 16``: a grid of 1/16 pixel on 16
    pixels, where equal bytes make identical, touching and empty boxes common, and every value is
    exact in float32. Bytes are the cheapest thing hypothesis draws, so 1000 cases take a second.
    """
    values = torch.tensor(list(data[: len(data) // 4 * 4]), dtype=torch.float32)
    values = low + values % 16 + (values // 16) / 16
    corners = values.reshape(-1, 2, 2).sort(dim=1).values  # (N, 2 corners, xy): x1 <= x2, y1 <= y2
    return corners.reshape(-1, 4)  # (N, 4) x1, y1, x2, y2


def box_sets(max_boxes: int = 6, low: float = 0.0):
    return st.binary(max_size=4 * max_boxes).map(lambda data: boxes_from_bytes(data, low))


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """allclose at rtol 1e-5, atol 1e-6 (torch.testing.assert_close costs more than the op under test)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, (actual, expected)
    assert torch.allclose(actual, expected, rtol=1e-5, atol=1e-6), (actual, expected)


def assert_matches_torchvision(ours: torch.Tensor, theirs: torch.Tensor, instead_of_nan: torch.Tensor):
    """Equal to torchvision where it has a number, to ``instead_of_nan`` where it has NaN; never NaN."""
    assert not ours.isnan().any()
    assert_close(ours, torch.where(theirs.isnan(), instead_of_nan, theirs))


# ---- hand-computed cases ------------------------------------------------------------------------


def test_box_iou_by_hand():
    # A 2x2 square and the same square shifted by 1: overlap 2, union 6.
    boxes1 = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    boxes2 = torch.tensor([[1.0, 0, 3, 2], [0.0, 0, 2, 2], [5.0, 5, 6, 6], [0.0, 0, 1, 1]])
    torch.testing.assert_close(box_iou(boxes1, boxes2), torch.tensor([[2 / 6, 1.0, 0.0, 0.25]]))


def test_generalized_box_iou_by_hand():
    # Disjoint unit squares 1 apart: IoU 0, enclosing box 3 x 1, union 2 -> GIoU = -(3 - 2) / 3.
    boxes1 = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    boxes2 = torch.tensor([[2.0, 0.0, 3.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    torch.testing.assert_close(generalized_box_iou(boxes1, boxes2), torch.tensor([[-1 / 3, 1.0]]))


def test_box_area_and_convert_by_hand():
    boxes = torch.tensor([[1.0, 2.0, 4.0, 6.0]])
    assert box_area(boxes).tolist() == [12.0]
    assert box_convert(boxes, "xyxy", "xywh").tolist() == [[1.0, 2.0, 3.0, 4.0]]
    assert box_convert(boxes, "xyxy", "cxcywh").tolist() == [[2.5, 4.0, 3.0, 4.0]]
    assert box_convert(torch.tensor([[2.5, 4.0, 3.0, 4.0]]), "cxcywh", "xyxy").tolist() == boxes.tolist()


def test_clip_boxes_by_hand():
    boxes = torch.tensor([[-5.0, -5.0, 50.0, 20.0], [10.0, 10.0, 20.0, 20.0]])
    clipped = clip_boxes_to_image(boxes, (15, 40))  # (height, width)
    assert clipped.tolist() == [[0.0, 0.0, 40.0, 15.0], [10.0, 10.0, 20.0, 15.0]]
    assert boxes[0, 0] == -5.0  # the input is not modified


def test_box_coder_by_hand():
    # Proposal 10x10 centred at (5, 5); target 20x10 centred at (10, 5): dx = 0.5, dw = log 2.
    coder = BoxCoder()
    deltas = coder.encode(torch.tensor([[0.0, 0.0, 20.0, 10.0]]), torch.tensor([[0.0, 0.0, 10.0, 10.0]]))
    torch.testing.assert_close(deltas, torch.tensor([[0.5, 0.0, math.log(2.0), 0.0]]))
    weighted = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    torch.testing.assert_close(
        weighted.encode(torch.tensor([[0.0, 0.0, 20.0, 10.0]]), torch.tensor([[0.0, 0.0, 10.0, 10.0]])),
        torch.tensor([[5.0, 0.0, 5 * math.log(2.0), 0.0]]),
    )


# ---- degenerate boxes: where we deviate from torchvision ------------------------------------------


def test_identical_empty_boxes_give_zero_not_nan():
    point = torch.tensor([[3.0, 3.0, 3.0, 3.0]])
    assert torch.isnan(tv_ops.box_iou(point, point)).all()  # the deviation we document
    assert box_iou(point, point).tolist() == [[0.0]]
    assert torch.isnan(tv_ops.generalized_box_iou(point, point)).all()
    assert generalized_box_iou(point, point).tolist() == [[0.0]]
    # Two segments on one line: union 0 and enclosing area 0.
    segments = torch.tensor([[0.0, 1.0, 2.0, 1.0], [5.0, 1.0, 6.0, 1.0]])
    assert not generalized_box_iou(segments, segments).isnan().any()


def test_empty_box_against_real_box_is_zero():
    point, square = torch.tensor([[1.0, 1.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    assert box_iou(point, square).tolist() == [[0.0]]


# ---- oracle: seeded random boxes ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_iou_matches_torchvision_on_random_boxes(dtype):
    boxes1, boxes2 = seeded_boxes(300, seed=0, dtype=dtype), seeded_boxes(200, seed=1, dtype=dtype)
    # bit for bit: the same float operations in the same order
    assert torch.equal(box_iou(boxes1, boxes2), tv_ops.box_iou(boxes1, boxes2))
    assert torch.equal(generalized_box_iou(boxes1, boxes2), tv_ops.generalized_box_iou(boxes1, boxes2))
    assert torch.equal(box_area(boxes1), tv_ops.box_area(boxes1))


@pytest.mark.parametrize("in_fmt", BOX_FORMATS)
@pytest.mark.parametrize("out_fmt", BOX_FORMATS)
def test_box_convert_matches_torchvision_and_round_trips(in_fmt, out_fmt):
    boxes = box_convert(seeded_boxes(100, seed=2), "xyxy", in_fmt)
    converted = box_convert(boxes, in_fmt, out_fmt)
    torch.testing.assert_close(converted, tv_ops.box_convert(boxes, in_fmt, out_fmt))
    torch.testing.assert_close(box_convert(converted, out_fmt, in_fmt), boxes, rtol=1e-5, atol=1e-4)


def test_box_coder_matches_torchvision_on_random_boxes():
    generator = torch.Generator().manual_seed(3)
    gt, proposals = seeded_boxes(500, seed=4), seeded_boxes(500, seed=5)
    gt[:, 2:] += 2  # sizes >= 2: ratios to the proposals stay below the decode clip, 1000 / 16
    proposals[:, 2:] += 2
    deltas = torch.randn(500, 8, generator=generator) * 3  # two classes; some dw > the clip
    for weights in [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]:
        ours, theirs = BoxCoder(weights), TvBoxCoder(weights)
        torch.testing.assert_close(ours.encode(gt, proposals), theirs.encode_single(gt, proposals))
        torch.testing.assert_close(ours.decode(deltas, proposals), theirs.decode_single(deltas, proposals))
        # decode inverts encode
        round_trip = ours.decode(ours.encode(gt, proposals), proposals)
        torch.testing.assert_close(round_trip, gt, rtol=1e-5, atol=1e-3)


# ---- hypothesis fuzzing against torchvision, >= 1000 cases per op --------------------------------


@FUZZ
@given(boxes1=box_sets(), boxes2=box_sets())
def test_fuzz_box_iou(boxes1, boxes2):
    ours = box_iou(boxes1, boxes2)
    assert ours.shape == (len(boxes1), len(boxes2))
    assert ((ours >= 0) & (ours <= 1)).all()
    # torchvision's NaN (two boxes of zero area) is our 0
    assert_matches_torchvision(ours, tv_ops.box_iou(boxes1, boxes2), instead_of_nan=torch.zeros(()))


@FUZZ
@given(boxes1=box_sets(), boxes2=box_sets())
def test_fuzz_generalized_box_iou(boxes1, boxes2):
    ours = generalized_box_iou(boxes1, boxes2)
    assert ((ours >= -1) & (ours <= 1)).all()
    # torchvision's NaN (two boxes of zero area) is our -1 when they are apart, 0 when they coincide
    top_left = torch.minimum(boxes1[:, None, :2], boxes2[:, :2])  # (N, M, 2)
    bottom_right = torch.maximum(boxes1[:, None, 2:], boxes2[:, 2:])  # (N, M, 2)
    apart = -((bottom_right - top_left).prod(dim=2) > 0).float()  # (N, M)
    assert_matches_torchvision(ours, tv_ops.generalized_box_iou(boxes1, boxes2), instead_of_nan=apart)


@FUZZ
@given(boxes=box_sets())
def test_fuzz_box_area(boxes):
    assert torch.equal(box_area(boxes), tv_ops.box_area(boxes))


@FUZZ
@given(boxes=box_sets(), in_fmt=st.sampled_from(BOX_FORMATS), out_fmt=st.sampled_from(BOX_FORMATS))
def test_fuzz_box_convert(boxes, in_fmt, out_fmt):
    assert_close(box_convert(boxes, in_fmt, out_fmt), tv_ops.box_convert(boxes, in_fmt, out_fmt))


@FUZZ
@given(boxes=box_sets(low=-4.0), height=st.integers(0, 12), width=st.integers(0, 12))
def test_fuzz_clip_boxes_to_image(boxes, height, width):
    clipped = clip_boxes_to_image(boxes, (height, width))
    assert torch.equal(clipped, tv_ops.clip_boxes_to_image(boxes, (height, width)))
    assert (clipped[:, 0::2] <= width).all() and (clipped[:, 1::2] <= height).all() and (clipped >= 0).all()


@FUZZ
@given(
    data=st.binary(max_size=4 * 6 * 3),
    weights=st.sampled_from([(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0), (2.0, 3.0, 0.5, 4.0)]),
)
def test_fuzz_box_coder(data, weights):
    # 12 bytes a row: a proposal, a reference box, the deltas; sides >= 1/16 so that log and 1 / w exist.
    n = len(data) // 12
    proposals, reference = boxes_from_bytes(data[: 4 * n]), boxes_from_bytes(data[4 * n : 8 * n])
    proposals[:, 2:] += 1 / 16
    reference[:, 2:] += 1 / 16
    deltas = torch.tensor(list(data[8 * n : 12 * n]), dtype=torch.float32).reshape(n, 4)
    deltas = (deltas - 128) / 16  # in [-8, 8): dw, dh above the clip log(1000 / 16) = 4.1 too
    ours, theirs = BoxCoder(weights), TvBoxCoder(weights)
    encoded = ours.encode(reference, proposals)
    assert_close(encoded, theirs.encode_single(reference, proposals))
    decoded = ours.decode(deltas, proposals)
    assert_close(decoded, theirs.decode_single(deltas, proposals))
    assert torch.isfinite(encoded).all() and torch.isfinite(decoded).all()


# ---- invariants -----------------------------------------------------------------------------------


def test_iou_invariants():
    boxes1, boxes2 = seeded_boxes(50, seed=6), seeded_boxes(40, seed=7)
    iou = box_iou(boxes1, boxes2)
    assert torch.equal(box_iou(boxes2, boxes1), iou.T)  # symmetric
    permutation = torch.randperm(50, generator=torch.Generator().manual_seed(8))
    assert torch.equal(box_iou(boxes1[permutation], boxes2), iou[permutation])
    assert torch.equal(box_iou(boxes1[:1], boxes2), iou[:1])  # a batch of one is one of the batch
    torch.testing.assert_close(box_iou(boxes1, boxes1).diagonal(), torch.ones(50))
    # GIoU <= IoU, with equality when one box encloses the other
    assert (generalized_box_iou(boxes1, boxes2) <= iou + 1e-6).all()
    # translation invariance
    shifted = torch.tensor([7.0, -3.0, 7.0, -3.0])
    torch.testing.assert_close(box_iou(boxes1 + shifted, boxes2 + shifted), iou, rtol=1e-4, atol=1e-5)


# ---- edge cases ---------------------------------------------------------------------------------


def test_empty_inputs_give_typed_empty_results():
    empty, boxes = torch.zeros(0, 4), seeded_boxes(3, seed=9)
    assert box_iou(empty, boxes).shape == (0, 3)
    assert box_iou(boxes, empty).shape == (3, 0)
    assert generalized_box_iou(empty, empty).shape == (0, 0)
    assert box_area(empty).shape == (0,)
    assert box_convert(empty, "xyxy", "cxcywh").shape == (0, 4)
    assert clip_boxes_to_image(empty, (10, 10)).shape == (0, 4)
    assert BoxCoder().encode(empty, empty).shape == (0, 4)
    assert BoxCoder().decode(torch.zeros(0, 4), empty).shape == (0, 4)
    assert box_iou(empty.double(), empty.double()).dtype == torch.float64


def test_half_precision_is_computed_in_float32():
    boxes = torch.tensor([[0.0, 0.0, 300.0, 300.0]], dtype=torch.float16)  # area overflows float16
    assert box_area(boxes).tolist() == [90000.0]
    assert box_iou(boxes, boxes).tolist() == [[1.0]]


def test_upcast_boxes_computes_half_precision_in_float32_and_leaves_the_rest():
    boxes = seeded_boxes(3, seed=11)
    assert upcast_boxes(boxes) is boxes and upcast_boxes(boxes.double()).dtype == torch.float64
    for low_precision in (torch.float16, torch.bfloat16):
        upcast = upcast_boxes(boxes.to(low_precision))
        assert upcast.dtype == torch.float32 and torch.equal(upcast, boxes.to(low_precision).float())


def test_box_inter_union_by_hand_and_against_torchvision():
    boxes1 = torch.tensor([[0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    boxes2 = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
    area1, area2 = box_area(boxes1), box_area(boxes2)
    inter, union = box_inter_union(boxes1.T.contiguous(), area1, boxes2.T.contiguous(), area2)
    assert inter.tolist() == [[1.0], [0.0]] and union.tolist() == [[7.0], [5.0]]  # overlap 1 x 1; disjoint
    boxes1, boxes2 = seeded_boxes(40, seed=12), seeded_boxes(30, seed=13)
    inter, union = box_inter_union(boxes1.T, box_area(boxes1), boxes2.T, box_area(boxes2))  # (40, 30) each
    assert torch.equal(inter / union, tv_ops.box_iou(boxes1, boxes2))  # the same floats, bit for bit


def test_decode_clamps_huge_width_deltas():
    proposals = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    decoded = BoxCoder().decode(torch.tensor([[0.0, 0.0, 50.0, 50.0]]), proposals)
    assert torch.isfinite(decoded).all()
    torch.testing.assert_close(decoded[0, 2] - decoded[0, 0], torch.tensor(1000.0))


def test_box_convert_same_format_returns_a_copy():
    boxes = seeded_boxes(2, seed=10)
    converted = box_convert(boxes, "xyxy", "xyxy")
    converted += 1
    assert not torch.equal(converted, boxes)


# ---- bad input ----------------------------------------------------------------------------------


def test_bad_input_raises_with_a_clear_message():
    good = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"expected a Tensor\[N, 4\], got shape \(4,\)"):
        box_iou(good[0], good)
    with pytest.raises(ValueError, match="x2 >= x1"):
        box_iou(torch.tensor([[2.0, 0.0, 1.0, 1.0]]), good)  # xywh passed as xyxy, say
    with pytest.raises(ValueError, match="x2 >= x1"):
        box_area(torch.tensor([[0.0, 2.0, 1.0, 1.0]]))
    with pytest.raises(ValueError, match="finite"):
        generalized_box_iou(torch.tensor([[0.0, 0.0, float("nan"), 1.0]]), good)
    with pytest.raises(TypeError, match="floating-point"):
        box_convert(good.long(), "xyxy", "xywh")  # integer boxes: only area, IoU and GIoU take them
    with pytest.raises(TypeError, match="torch.Tensor"):
        box_area([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="'xyxy', 'xywh', 'cxcywh', got 'yxyx'"):
        box_convert(good, "yxyx", "xyxy")
    with pytest.raises(ValueError, match=r"expected \(height, width\)"):
        clip_boxes_to_image(good, 10)
    with pytest.raises(ValueError, match="positive width and height"):
        BoxCoder().encode(good, torch.tensor([[0.0, 0.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="same shape"):
        BoxCoder().encode(good, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"Tensor\[N, 4 \* K\]"):
        BoxCoder().decode(torch.zeros(1, 3), good)
    with pytest.raises(ValueError, match="weights"):
        BoxCoder(weights=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="positive"):
        BoxCoder(weights=(1.0, 0.0, 1.0, 1.0))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.uint8])
def test_integer_boxes_are_accepted_as_torchvision_accepts_them(dtype):
    # A student swapping torchvision.ops for course_lib with integer boxes should not trip.
    generator = torch.Generator().manual_seed(0)
    corners = torch.randint(0, 50, (30, 2), generator=generator)
    sides = torch.randint(1, 40, (30, 2), generator=generator)
    boxes = torch.cat([corners, corners + sides], dim=1).to(dtype)
    others = boxes.flip(0)
    as_float = boxes.double(), others.double()
    area = box_area(boxes)
    assert not area.is_floating_point() and torch.equal(area.double(), box_area(as_float[0]))
    iou, giou = box_iou(boxes, others), generalized_box_iou(boxes, others)
    assert iou.dtype == giou.dtype == torch.float32
    torch.testing.assert_close(iou.double(), box_iou(*as_float), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(giou.double(), generalized_box_iou(*as_float), rtol=1e-6, atol=1e-7)
    if dtype in (torch.int32, torch.int64):  # torchvision computes uint8 and int16 intersections in
        # the input dtype, which overflows; we upcast first, as its own areas do
        assert torch.equal(area, tv_ops.box_area(boxes))
        assert torch.equal(iou, tv_ops.box_iou(boxes, others))
        assert torch.equal(giou, tv_ops.generalized_box_iou(boxes, others))


def test_boolean_boxes_and_integer_boxes_elsewhere_get_a_clear_error():
    expected = "boxes1: expected a floating-point or integer tensor, got dtype torch.bool"
    with pytest.raises(TypeError, match=expected):
        box_iou(torch.ones(1, 4, dtype=torch.bool), torch.ones(1, 4))
    with pytest.raises(TypeError, match="boxes: expected a floating-point tensor, got dtype torch.int64"):
        box_convert(torch.tensor([[0, 0, 2, 2]]), "xyxy", "cxcywh")
