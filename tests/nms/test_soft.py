"""Tests for course_lib.nms.soft: a slow reference written here, straight from the paper, is the
oracle for Soft-NMS."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.nms import nms, soft_nms

from .inputs import THRESHOLDS, clustered_boxes, detection_set, from_bytes, random_boxes

FUZZ = settings(max_examples=1000)


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


def test_soft_nms_with_tiny_sigma_is_hard_nms_on_overlaps():
    boxes, scores, _ = detection_set("clustered", 200, torch.float64, seed=7)
    scores = scores + 1e-4 * torch.rand(200, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    keep, _ = soft_nms(boxes, scores, sigma=1e-6, score_threshold=1e-3)
    # exp(-IoU**2 / 1e-6) removes every box with IoU > ~0.003: hard NMS at that threshold
    assert set(keep.tolist()) == set(nms(boxes, scores, 0.003).tolist())


def test_empty_and_single_inputs():
    keep, new_scores = soft_nms(torch.zeros(0, 4), torch.zeros(0))
    assert keep.shape == (0,) and keep.dtype == torch.int64 and new_scores.shape == (0,)
    one = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert soft_nms(one, torch.tensor([0.0001]))[0].tolist() == []  # below the score threshold


def test_bad_input_raises_with_a_clear_message():
    boxes, scores = torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([0.5])
    with pytest.raises(ValueError, match="'gaussian', 'linear', got 'hard'"):
        soft_nms(boxes, scores, method="hard")
    with pytest.raises(ValueError, match="sigma: expected a positive number"):
        soft_nms(boxes, scores, sigma=0.0)
    with pytest.raises(ValueError, match=r"iou_threshold: expected a value in \[0.0, 1.0\], got 1.5"):
        soft_nms(boxes, scores, iou_threshold=1.5)
