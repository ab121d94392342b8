"""Tests of course_lib.metrics.proposals: best overlaps, recall and MABO of ranked proposals."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops

from course_lib.metrics.proposals import best_overlaps, mabo, proposal_recall

GT = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
PROPOSALS = torch.tensor(
    [
        [0.0, 0.0, 10.0, 5.0],  # IoU 0.5 with gt 0
        [20.0, 20.0, 30.0, 30.0],  # IoU 1 with gt 1
        [0.0, 0.0, 10.0, 10.0],  # IoU 1 with gt 0
    ]
)


def test_hand_computed_recall_and_abo():
    best = best_overlaps(PROPOSALS, GT, counts=(0, 1, 2, 3, 10))
    assert best.tolist() == [[0, 0], [0.5, 0], [0.5, 1], [1, 1], [1, 1]]
    assert proposal_recall(PROPOSALS, GT, counts=(1, 2, 3)) == {1: 0.5, 2: 1.0, 3: 1.0}
    assert proposal_recall(PROPOSALS, GT, iou_threshold=0.6, counts=(1, 2, 3)) == {1: 0.0, 2: 0.5, 3: 1.0}
    assert mabo(PROPOSALS, GT, counts=(1, 2, 3)) == {1: 0.25, 2: 0.75, 3: 1.0}


def test_mabo_averages_per_class_first():
    gt = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]])
    proposals = torch.tensor([[0.0, 0, 10, 10]])  # finds only gt 0
    labels = torch.tensor([1, 2, 2])
    assert mabo(proposals, gt, labels, counts=(1,)) == {1: pytest.approx(0.5)}  # (1 + 0) / 2, not 1 / 3
    assert mabo(proposals, gt, counts=(1,)) == {1: pytest.approx(1 / 3)}


def test_oracle_brute_force_on_random_images():
    generator = torch.Generator().manual_seed(0)
    proposals, gt = [], []
    for _ in range(4):
        boxes = torch.rand(50, 4, generator=generator) * 60
        proposals.append(torch.cat((boxes[:, :2], boxes[:, :2] + boxes[:, 2:] + 1), dim=1))
        boxes = torch.rand(5, 4, generator=generator) * 60
        gt.append(torch.cat((boxes[:, :2], boxes[:, :2] + boxes[:, 2:] + 1), dim=1))
    counts = (1, 7, 30, 100)
    recall, overlap = proposal_recall(proposals, gt, 0.3, counts), mabo(proposals, gt, counts=counts)
    for count in counts:
        pairs = zip(proposals, gt, strict=True)
        best = torch.cat([torchvision.ops.box_iou(p[:count], g).max(dim=0).values for p, g in pairs])
        assert recall[count] == pytest.approx((best >= 0.3).float().mean().item())
        assert overlap[count] == pytest.approx(best.mean().item())
    # more proposals never hurt
    assert all(recall[a] <= recall[b] for a, b in zip(counts[:-1], counts[1:], strict=True))


def test_empty_inputs_give_zeros_not_nan():
    empty = torch.zeros(0, 4)
    assert best_overlaps(empty, GT, counts=(5,)).tolist() == [[0.0, 0.0]]
    assert best_overlaps(PROPOSALS, empty, counts=(5,)).shape == (1, 0)
    assert proposal_recall(empty, GT, counts=(5,)) == {5: 0.0}
    assert proposal_recall(PROPOSALS, empty, counts=(5,)) == {5: 0.0}
    assert mabo([], [], counts=(5,)) == {5: 0.0}


def test_bad_input():
    with pytest.raises(ValueError, match="as many proposal lists"):
        proposal_recall([PROPOSALS], [GT, GT])
    with pytest.raises(ValueError, match=r"Tensor\[N, 4\]"):
        proposal_recall(PROPOSALS[:, :3], GT)
    with pytest.raises(ValueError, match="iou_threshold"):
        proposal_recall(PROPOSALS, GT, iou_threshold=1.5)
    with pytest.raises(TypeError, match="counts"):
        proposal_recall(PROPOSALS, GT, counts=10)
    with pytest.raises(ValueError, match="counts"):
        proposal_recall(PROPOSALS, GT, counts=(-1,))
    with pytest.raises(ValueError, match="one label per"):
        mabo(PROPOSALS, GT, torch.tensor([1]))
    with pytest.raises(TypeError, match="list of Tensors"):
        mabo("boxes", GT)
