"""DETR: the matching cost and matching, the set loss, the transformer pieces, and the detector's I/O."""

import itertools
import math

import pytest
import torch
import torchvision.ops

from course_lib.boxes import box_convert, generalized_box_iou
from course_lib.losses import generalized_box_iou_loss
from course_lib.models.detr import ALPHA, DETR, GAMMA, WEIGHTS, match, matching_cost, set_loss
from course_lib.models.transformer import DecoderLayer, EncoderLayer, box_positions, sine_positions


def random_boxes(count, generator):
    centres = 0.2 + 0.6 * torch.rand(count, 2, generator=generator)
    sizes = 0.05 + 0.3 * torch.rand(count, 2, generator=generator)
    return torch.cat([centres, sizes], dim=1)  # cxcywh, normalized


def test_matching_cost_equals_its_three_terms_written_out():
    generator = torch.Generator().manual_seed(0)
    logits, boxes = torch.randn(4, 5, generator=generator), random_boxes(4, generator)
    labels, targets = torch.tensor([2, 0, 2]), random_boxes(3, generator)
    cost = matching_cost(logits, boxes, labels, targets)
    for i, j in itertools.product(range(4), range(3)):
        p = torch.sigmoid(logits[i, labels[j]]).item()
        focal = ALPHA * (1 - p) ** GAMMA * -math.log(p + 1e-8) - (1 - ALPHA) * p**GAMMA * -math.log(
            1 - p + 1e-8
        )
        l1 = (boxes[i] - targets[j]).abs().sum().item()
        corners = box_convert(torch.stack([boxes[i], targets[j]]), "cxcywh", "xyxy")
        giou = generalized_box_iou(corners[:1], corners[1:]).item()
        expected = WEIGHTS["class"] * focal + WEIGHTS["l1"] * l1 - WEIGHTS["giou"] * giou
        assert cost[i, j].item() == pytest.approx(expected, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_match_finds_the_cheapest_assignment_by_brute_force(seed):
    generator = torch.Generator().manual_seed(seed)
    logits, boxes = torch.randn(5, 3, generator=generator), random_boxes(5, generator)
    labels, targets = torch.randint(0, 3, (3,), generator=generator), random_boxes(3, generator)
    rows, cols = match(logits, boxes, labels, targets)
    cost = matching_cost(logits, boxes, labels, targets)
    best = min(sum(cost[p[j], j].item() for j in range(3)) for p in itertools.permutations(range(5), 3))
    assert cost[rows, cols].sum().item() == pytest.approx(best, rel=1e-6)
    assert sorted(cols.tolist()) == [0, 1, 2]
    empty = match(logits, boxes, torch.zeros(0, dtype=torch.int64), torch.zeros(0, 4))
    assert empty[0].numel() == 0 and empty[1].numel() == 0


def test_set_loss_is_near_zero_for_perfect_predictions_and_positive_otherwise():
    targets = [
        {"labels": torch.tensor([1, 3]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.1, 0.3]])}
    ]
    logits = torch.full((1, 4, 5), -20.0)
    logits[0, 1, 1] = logits[0, 3, 3] = 20.0
    boxes = torch.tensor(
        [[[0.5, 0.5, 0.1, 0.1], [0.3, 0.3, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2], [0.7, 0.6, 0.1, 0.3]]]
    )
    losses = set_loss(logits, boxes, targets, num_objects=2)
    assert all(value.item() < 1e-5 for value in losses.values())
    worse = set_loss(logits, boxes.flip(1), targets, num_objects=2)
    assert worse["l1"] + worse["class"] > 0.1


def test_generalized_box_iou_loss_equals_torchvision_with_gradients():
    generator = torch.Generator().manual_seed(1)
    boxes1 = box_convert(random_boxes(6, generator), "cxcywh", "xyxy").requires_grad_()
    boxes2 = box_convert(random_boxes(6, generator), "cxcywh", "xyxy").requires_grad_()
    ours = generalized_box_iou_loss(boxes1, boxes2)
    theirs = torchvision.ops.generalized_box_iou_loss(boxes1, boxes2)
    torch.testing.assert_close(ours, theirs)
    grads = torch.autograd.grad(ours.sum(), (boxes1, boxes2))
    expected = torch.autograd.grad(theirs.sum(), (boxes1, boxes2))
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert generalized_box_iou_loss(boxes1, boxes2, "sum").shape == ()
    with pytest.raises(ValueError, match="one shape"):
        generalized_box_iou_loss(boxes1, boxes2[:3])


def test_sine_positions_and_box_positions():
    positions = sine_positions(2, 3, 8)
    assert positions.shape == (6, 8)
    y = (0 + 0.5) / 2 * 2 * math.pi  # row 0
    assert positions[0, 0].item() == pytest.approx(math.sin(y), abs=1e-6)
    assert positions[0, 1].item() == pytest.approx(math.cos(y), abs=1e-6)
    assert not torch.equal(positions[0], positions[1])  # columns differ
    assert box_positions(torch.rand(2, 5, 4), 16).shape == (2, 5, 32)
    with pytest.raises(ValueError, match="multiple of 4"):
        sine_positions(2, 2, 6)


def test_transformer_layers_keep_shapes_and_the_decoder_returns_its_attention():
    tokens, positions = torch.rand(2, 12, 16), torch.rand(12, 16)
    assert EncoderLayer(16, 4, 32)(tokens, positions).shape == (2, 12, 16)
    out, attention = DecoderLayer(16, 4, 32)(torch.rand(2, 5, 16), torch.rand(2, 5, 16), tokens, positions)
    assert out.shape == (2, 5, 16) and attention.shape == (2, 5, 12)
    torch.testing.assert_close(attention.sum(dim=-1), torch.ones(2, 5))


def test_training_and_evaluation_io():
    torch.manual_seed(0)
    model = DETR(dim=32, heads=4, hidden=64, encoder_layers=1, decoder_layers=2, num_queries=6)
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 64)]
    targets = [
        {
            "boxes": torch.tensor([[4.0, 4.0, 20.0, 30.0], [30.0, 30.0, 60.0, 50.0]]),
            "labels": torch.tensor([3, 1]),
        },
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    model.train()
    losses = model(images, targets)
    assert len(losses) == 3 * 3  # class, l1, giou for 2 decoder layers and the proposals
    sum(losses.values()).backward()
    assert all(torch.isfinite(value) for value in losses.values())
    model.eval()
    with torch.no_grad():
        detections = model(images)
    for detection in detections:
        assert len(detection["boxes"]) <= model.detections_per_img
        assert (detection["labels"] >= 1).all() and (detection["labels"] <= 5).all()
        assert (detection["boxes"] >= 0).all() and (detection["boxes"] <= 64).all()
