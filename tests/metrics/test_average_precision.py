"""Tests of course_lib.metrics.average_precision: match, precision-recall, AP, the envelope."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.metrics import (
    average_precision,
    match_detections,
    precision_recall,
    to_coco,
)
from course_lib.references import pycocotools_eval

reference = pycocotools_eval  # pycocotools on copies of the json, silenced


# ---------------------------------------------------------------------------------------------
# Teaching helpers


def test_precision_recall_hand_computed_with_stable_ties():
    precision, recall = precision_recall(torch.tensor([0.7, 0.9, 0.7]), torch.tensor([True, True, False]), 4)
    # order: index 1 (0.9), then the tie 0.7 in index order: 0 (TP), 2 (FP)
    np.testing.assert_allclose(precision, [1.0, 1.0, 2 / 3])
    np.testing.assert_allclose(recall, [0.25, 0.5, 0.5])
    precision, recall = precision_recall([], [], 3)
    assert precision.shape == recall.shape == (0,) and precision.dtype == np.float64


def test_precision_recall_bad_input():
    with pytest.raises(ValueError, match="one per score"):
        precision_recall([0.5, 0.4], [True], 1)
    with pytest.raises(ValueError, match=r"num_gt: expected a value in \[1"):
        precision_recall([0.5], [False], 0)
    with pytest.raises(ValueError, match="at most num_gt=1 true positives"):
        precision_recall([0.5, 0.4], [True, True], 1)
    with pytest.raises(ValueError, match="finite"):
        precision_recall([float("nan")], [True], 1)
    with pytest.raises(ValueError, match="booleans"):
        precision_recall([0.5], [2], 1)


def test_average_precision_hand_computed():
    precision, recall = np.array([1.0, 0.5, 2 / 3]), np.array([0.5, 0.5, 1.0])
    assert average_precision(precision, recall) == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert average_precision(precision, recall, method="all_points") == pytest.approx(0.5 + 0.5 * 2 / 3)
    perfect = (np.ones(4), np.linspace(0.25, 1, 4))
    assert average_precision(*perfect) == 1.0 and average_precision(*perfect, method="all_points") == 1.0
    assert average_precision([], []) == 0.0 and average_precision([], [], method="all_points") == 0.0


@settings(max_examples=50)
@given(st.lists(st.booleans(), min_size=1, max_size=30), st.integers(0, 5))
def test_all_points_ap_equals_sum_over_true_positives(is_tp, extra_gt):
    num_gt = sum(is_tp) + extra_gt
    if num_gt == 0:
        return
    scores = np.linspace(1, 0, len(is_tp))
    precision, recall = precision_recall(scores, is_tp, num_gt)
    # VOC's area equals: for each TP, 1/num_gt times the best precision at that rank or later.
    brute = sum(precision[k:].max() for k in range(len(is_tp)) if is_tp[k]) / num_gt
    assert average_precision(precision, recall, method="all_points") == pytest.approx(brute, abs=1e-12)
    assert 0 <= average_precision(precision, recall) <= 1


def test_average_precision_bad_input():
    with pytest.raises(ValueError, match="'coco101', 'all_points'"):
        average_precision([1.0], [1.0], method="voc07")
    with pytest.raises(ValueError, match="recall: expected non-decreasing"):
        average_precision([1.0, 1.0], [0.5, 0.2])
    with pytest.raises(ValueError, match="precision: expected values in"):
        average_precision([1.5], [0.5])
    with pytest.raises(ValueError, match="as precision"):
        average_precision([1.0], [0.5, 1.0])


def test_match_detections_hand_computed():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [10.0, 0.0, 20.0, 10.0]])
    # The first prediction has IoU 1/3 with both boxes: like pycocotools it takes the later one,
    # which leaves the first box for the second prediction (IoU 0.8).
    pred = torch.tensor([[5.0, 0.0, 15.0, 10.0], [0.0, 0.0, 8.0, 10.0]])
    assert match_detections(pred, torch.tensor([0.9, 0.8]), gt, 0.3).tolist() == [True, True]
    scores = torch.tensor([0.9, 0.8])
    assert match_detections(pred, scores, gt, 0.8).tolist() == [False, True]  # IoU == threshold counts
    assert match_detections(pred, torch.tensor([0.9, 0.8]), gt, 0.81).tolist() == [False, False]
    same = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)  # identical predictions, one object
    assert match_detections(same, torch.tensor([0.3, 0.5, 0.5]), gt[:1], 0.5).tolist() == [False, True, False]


def test_match_detections_edge_cases():
    box = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    assert match_detections(torch.zeros(0, 4), torch.zeros(0), box, 0.5).tolist() == []
    assert match_detections(box, torch.ones(1), torch.zeros(0, 4), 0.5).tolist() == [False]
    assert match_detections(box, torch.ones(1), box, 1.0).tolist() == [True]
    far = torch.tensor([[10.0, 10.0, 12.0, 12.0]])
    assert match_detections(far, torch.ones(1), box, 0.0).tolist() == [True]  # IoU 0 >= 0, as COCO
    assert match_detections(box, torch.ones(1), box, 0.5).dtype == torch.bool


def test_match_detections_equals_pycocotools_matches():
    generator = torch.Generator().manual_seed(0)
    for trial in range(20):
        gt = torch.randint(0, 8, (6, 2), generator=generator).float()
        gt = torch.cat([gt, gt + torch.randint(1, 6, (6, 2), generator=generator)], dim=1)
        pred = torch.randint(0, 8, (12, 2), generator=generator).float()
        pred = torch.cat([pred, pred + torch.randint(1, 6, (12, 2), generator=generator)], dim=1)
        scores = torch.randint(0, 4, (12,), generator=generator).float() / 4
        labels = torch.ones(12, dtype=torch.int64)
        coco_gt, coco_dt = to_coco([{"boxes": pred, "scores": scores, "labels": labels}],
                                   [{"boxes": gt, "labels": labels[:6]}])
        ref = reference(coco_gt, coco_dt)
        image = next(e for e in ref.evalImgs if e is not None and e["aRng"] == [0, 1e10])
        expected = torch.zeros(12, dtype=torch.bool)
        expected[torch.tensor(image["dtIds"]) - 1] = torch.from_numpy(image["dtMatches"][0] > 0)
        is_tp = match_detections(pred, scores, gt, 0.5)
        assert torch.equal(is_tp, expected), trial
        precision, recall = precision_recall(scores, is_tp, 6)
        ap = average_precision(precision, recall)
        assert ap == pytest.approx(ref.eval["precision"][0, :, 0, 0, 2].mean(), abs=1e-9), trial


def test_match_detections_bad_input():
    box = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    with pytest.raises(ValueError, match=r"pred_scores: expected a Tensor\[1\]"):
        match_detections(box, torch.ones(2), box, 0.5)
    with pytest.raises(ValueError, match="x2 >= x1"):
        match_detections(box[:, [2, 3, 0, 1]], torch.ones(1), box, 0.5)
    with pytest.raises(ValueError, match=r"iou_threshold: expected a value in \[0.0, 1.0\]"):
        match_detections(box, torch.ones(1), box, -0.1)
    with pytest.raises(TypeError, match="gt_boxes: expected a torch.Tensor"):
        match_detections(box, torch.ones(1), [[0, 0, 4, 4]], 0.5)


def test_precision_envelope_by_hand_and_along_an_axis():
    from course_lib.metrics import precision_envelope

    assert precision_envelope(np.array([0.5, 1.0, 0.2, 0.4, 0.1])).tolist() == [1.0, 1.0, 0.4, 0.4, 0.1]
    table = np.array([[0.2, 0.9], [0.6, 0.1], [0.3, 0.5]])  # detections along axis 0, two columns
    assert precision_envelope(table, axis=0).tolist() == [[0.6, 0.9], [0.6, 0.5], [0.3, 0.5]]
    assert precision_envelope(np.zeros(0)).shape == (0,)
