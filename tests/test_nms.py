"""Tests for course_lib.nms: torchvision.ops is the oracle for nms and batched_nms, a slow
reference written here is the oracle for Soft-NMS, and nms_steps must agree with nms."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.ops as tv_ops
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.nms import batched_nms, nms, nms_steps, soft_nms

FUZZ = settings(max_examples=1000)
THRESHOLDS = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.7, 1.0]) | st.floats(0.0, 1.0)


# ---- inputs -------------------------------------------------------------------------------------


def random_boxes(num_boxes: int, generator: torch.Generator) -> torch.Tensor:
    """As in torchvision's NMS tests: heavy, unstructured overlap."""
    boxes = torch.rand(num_boxes, 4, generator=generator) * 100
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def clustered_boxes(num_boxes: int, generator: torch.Generator) -> torch.Tensor:
    """As a detector's output before NMS: jittered copies of one box per object."""
    num_objects = max(1, num_boxes // 50)
    centres = torch.rand(num_objects, 2, generator=generator) * 800
    sizes = 16 + torch.rand(num_objects, 2, generator=generator) * 200
    owner = torch.randint(0, num_objects, (num_boxes,), generator=generator)
    centre = centres[owner] + 0.1 * sizes[owner] * torch.randn(num_boxes, 2, generator=generator)
    size = sizes[owner] * (1 + 0.15 * torch.randn(num_boxes, 2, generator=generator)).clamp(min=0.3)
    return torch.cat((centre - size / 2, centre + size / 2), dim=1)


def detection_set(kind: str, num_boxes: int, dtype: torch.dtype, seed: int = 0):
    """Boxes, scores with many ties (two decimals) and every 10th box duplicated with its score."""
    generator = torch.Generator().manual_seed(seed)
    boxes = (random_boxes if kind == "random" else clustered_boxes)(num_boxes, generator).to(dtype)
    scores = (torch.rand(num_boxes, generator=generator) * 100).round().to(dtype) / 100
    boxes[1::10], scores[1::10] = boxes[0::10][: len(boxes[1::10])], scores[0::10][: len(scores[1::10])]
    classes = torch.randint(0, 5, (num_boxes,), generator=generator)
    return boxes, scores, classes


def from_bytes(data: bytes) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decode hypothesis bytes, 6 a box: xyxy on a 1/16-pixel grid, a score with ties, a class."""
    values = torch.tensor(list(data[: len(data) // 6 * 6]), dtype=torch.float32).reshape(-1, 6)
    coords = values[:, :4] % 16 + (values[:, :4] // 16) / 16
    corners = coords.reshape(-1, 2, 2).sort(dim=1).values  # (N, 2 corners, xy)
    return corners.reshape(-1, 4), (values[:, 4] % 8) / 8, values[:, 5].long() % 3


def stable_order(keep: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """``keep`` by decreasing score, lower index first on ties."""
    keep = keep.sort().values
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]


def soft_nms_reference(boxes, scores, iou_threshold=0.3, sigma=0.5, score_threshold=0.001, method="gaussian"):
    """Plain-Python Soft-NMS, straight from Algorithm 1 of Bodla et al. 2017."""

    def iou(a, b):
        width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = width * height
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    boxes, current = boxes.tolist(), scores.tolist()
    remaining = [i for i in range(len(boxes)) if current[i] >= score_threshold]
    keep, kept_scores = [], []
    while remaining:
        best = max(remaining, key=lambda i: (current[i], -i))
        keep.append(best)
        kept_scores.append(current[best])
        remaining.remove(best)
        for i in remaining:
            overlap = iou(boxes[best], boxes[i])
            if method == "linear":
                current[i] *= 1 - overlap if overlap >= iou_threshold else 1.0
            else:
                current[i] *= math.exp(-overlap * overlap / sigma)
        remaining = [i for i in remaining if current[i] >= score_threshold]
    return keep, kept_scores


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


def test_soft_nms_by_hand():
    boxes = torch.tensor([[0.0, 0, 2, 1], [0.0, 0, 1, 1], [5.0, 5, 6, 6]])  # IoU(0, 1) = 0.5
    scores = torch.tensor([0.9, 0.8, 0.7])
    keep, new_scores = soft_nms(boxes, scores)  # Gaussian: 0.8 * exp(-0.5**2 / 0.5)
    assert keep.tolist() == [0, 2, 1]
    torch.testing.assert_close(new_scores, torch.tensor([0.9, 0.7, 0.8 * math.exp(-0.5)]))
    keep, new_scores = soft_nms(boxes, scores, iou_threshold=0.5, method="linear")  # IoU >= N_t: * (1 - 0.5)
    torch.testing.assert_close(new_scores, torch.tensor([0.9, 0.7, 0.4]))
    keep, new_scores = soft_nms(boxes, scores, iou_threshold=0.6, method="linear")  # below N_t: unchanged
    assert keep.tolist() == [0, 1, 2]
    keep, _ = soft_nms(boxes, scores, iou_threshold=0.5, method="linear", score_threshold=0.5)
    assert keep.tolist() == [0, 2]  # 0.4 fell below the score threshold


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
        if num_boxes <= 1000:  # the offset-trick path: torchvision's order is ours exactly
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
    expected = torch.cat([index[nms(boxes[index], scores[index], 0.5)] for index in members])
    assert torch.equal(batched_nms(boxes, scores, classes, 0.5), stable_order(expected, scores))


def test_nms_steps_equals_nms_on_random_sets():
    for kind in ("random", "clustered"):
        boxes, scores, _ = detection_set(kind, 400, torch.float32, seed=3)
        for iou_threshold in (0.0, 0.3, 0.5, 1.0):
            steps = nms_steps(boxes, scores, iou_threshold)
            assert [step["selected"] for step in steps] == nms(boxes, scores, iou_threshold).tolist()


@pytest.mark.parametrize("method", ["gaussian", "linear"])
def test_soft_nms_equals_slow_reference(method):
    generator = torch.Generator().manual_seed(4)
    for kind in ("random", "clustered"):
        boxes = (random_boxes if kind == "random" else clustered_boxes)(150, generator).double()
        scores = torch.rand(150, generator=generator, dtype=torch.float64)
        for iou_threshold, sigma, score_threshold in [(0.3, 0.5, 0.001), (0.5, 0.1, 0.05), (0.0, 2.0, 0.0)]:
            keep, new_scores = soft_nms(boxes, scores, iou_threshold, sigma, score_threshold, method)
            expected_keep, expected_scores = soft_nms_reference(
                boxes, scores, iou_threshold, sigma, score_threshold, method
            )
            assert keep.tolist() == expected_keep
            torch.testing.assert_close(new_scores, torch.tensor(expected_scores, dtype=torch.float64))


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


@FUZZ
@given(
    data=st.binary(max_size=6 * 8),
    iou_threshold=THRESHOLDS,
    sigma=st.sampled_from([0.1, 0.5, 1.0]),
    method=st.sampled_from(["gaussian", "linear"]),
)
def test_fuzz_soft_nms(data, iou_threshold, sigma, method):
    boxes, scores, _ = from_bytes(data)
    boxes, scores = boxes.double(), scores.double() + 1e-3 * torch.arange(len(scores))  # no exact ties
    keep, new_scores = soft_nms(boxes, scores, iou_threshold, sigma, 0.01, method)
    expected_keep, expected_scores = soft_nms_reference(boxes, scores, iou_threshold, sigma, 0.01, method)
    assert keep.tolist() == expected_keep
    assert torch.allclose(new_scores, torch.tensor(expected_scores, dtype=torch.float64))
    assert (new_scores[1:] <= new_scores[:-1]).all()  # selected by decreasing decayed score


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


def test_soft_nms_with_tiny_sigma_is_hard_nms_on_overlaps():
    boxes, scores, _ = detection_set("clustered", 200, torch.float64, seed=7)
    scores = scores + 1e-4 * torch.rand(200, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    keep, _ = soft_nms(boxes, scores, sigma=1e-6, score_threshold=1e-3)
    # exp(-IoU**2 / 1e-6) removes every box with IoU > ~0.003: hard NMS at that threshold
    assert set(keep.tolist()) == set(nms(boxes, scores, 0.003).tolist())


# ---- edge cases ---------------------------------------------------------------------------------


def test_empty_and_single_inputs():
    empty_boxes, empty_scores = torch.zeros(0, 4), torch.zeros(0)
    for result in (nms(empty_boxes, empty_scores, 0.5), batched_nms(empty_boxes, empty_scores,
                                                                     torch.zeros(0, dtype=torch.int64), 0.5)):
        assert result.shape == (0,) and result.dtype == torch.int64
    assert nms_steps(empty_boxes, empty_scores, 0.5) == []
    keep, new_scores = soft_nms(empty_boxes, empty_scores)
    assert keep.shape == (0,) and keep.dtype == torch.int64 and new_scores.shape == (0,)
    one = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert nms(one, torch.tensor([0.3]), 0.5).tolist() == [0]
    assert soft_nms(one, torch.tensor([0.0001]))[0].tolist() == []  # below the score threshold


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
    with pytest.raises(ValueError, match="'gaussian', 'linear', got 'hard'"):
        soft_nms(boxes, scores, method="hard")
    with pytest.raises(ValueError, match="sigma: expected a positive number"):
        soft_nms(boxes, scores, sigma=0.0)
    with pytest.raises(TypeError, match="iou_threshold: expected a number"):
        nms_steps(boxes, scores, "0.5")


def test_long_suppression_chain_regression_slow_at_low_thresholds(monkeypatch):
    """Regression: 1,000 heavily overlapping boxes at IoU 0.3 took ~36-380 ms (one Cluster-NMS pass
    per link of the chain); past a few passes a block now scans box by box, with the same result."""
    import torchvision

    import course_lib.nms as nms_module

    calls = []
    original = nms_module._sequential_keep
    monkeypatch.setattr(nms_module, "_sequential_keep", lambda matrix: calls.append(1) or original(matrix))
    generator = torch.Generator().manual_seed(0)
    centres = torch.rand(1000, 2, generator=generator) * 40 + 40
    sizes = 20 + torch.rand(1000, 2, generator=generator) * 40
    boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1)
    scores = torch.rand(1000, generator=generator)
    for threshold in (0.1, 0.3, 0.5):
        expected = torchvision.ops.nms(boxes, scores, threshold)
        assert torch.equal(nms_module.nms(boxes, scores, threshold), expected)
    chain = torch.tensor([[float(i), 0.0, i + 10.0, 10.0] for i in range(200)])  # each overlaps the next 3
    chain_scores = torch.linspace(1, 0, 200)
    expected = torchvision.ops.nms(chain, chain_scores, 0.5)
    assert torch.equal(nms_module.nms(chain, chain_scores, 0.5), expected)
    assert calls  # the chain is longer than the Cluster-NMS passes: the box-by-box scan ran
