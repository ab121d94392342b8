"""The Fast R-CNN head against torchvision's RoIHeads: multi-task loss and post-processing."""

import pytest
import torch
from torchvision.models.detection import roi_heads as tv_heads

from course_lib import references
from course_lib.boxes import box_iou
from course_lib.models.roi_heads import RoIHeads, jitter_boxes

K = 5


def random_boxes(n, size, generator):
    return references.random_boxes(n, generator, corner_range=size * 0.7, min_side=2, side_range=size * 0.3)


def with_background_column(box_deltas):
    """torchvision's predictor has 4 (K + 1) outputs, ours 4 K: background's 4 are never used."""
    return torch.cat([torch.zeros(len(box_deltas), 4), box_deltas], dim=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_postprocess_equals_torchvision_postprocess_detections(seed):
    generator = torch.Generator().manual_seed(seed)
    heads = RoIHeads(8, K, score_thresh=0.05, nms_thresh=0.5, detections_per_img=30, min_size=1e-2)
    proposals = [random_boxes(40, 64, generator), random_boxes(25, 64, generator)]
    logits = torch.randn(65, K + 1, generator=generator) * 2
    deltas = torch.randn(65, 4 * K, generator=generator)
    ours = heads.postprocess(logits, deltas, proposals, [(64, 64), (64, 48)])
    tv = tv_heads.RoIHeads(None, None, None, 0.5, 0.5, 128, 0.25, None, 0.05, 0.5, 30)
    boxes, scores, labels = tv.postprocess_detections(
        logits, with_background_column(deltas), proposals, [(64, 64), (64, 48)]
    )
    for index, result in enumerate(ours):
        torch.testing.assert_close(result["boxes"], boxes[index])
        torch.testing.assert_close(result["scores"], scores[index])
        assert torch.equal(result["labels"], labels[index])


@pytest.mark.parametrize("seed", [0, 1])
def test_losses_equal_torchvision_fastrcnn_loss(seed):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(50, K + 1, generator=generator)
    deltas = torch.randn(50, 4 * K, generator=generator)
    labels = torch.randint(0, K + 1, (50,), generator=generator)
    targets = torch.randn(50, 4, generator=generator)
    ours = RoIHeads(8, K).losses(logits, deltas, labels, targets)
    tv_cls, tv_box = tv_heads.fastrcnn_loss(logits, with_background_column(deltas), [labels], [targets])
    torch.testing.assert_close(ours["loss_classifier"], tv_cls)
    torch.testing.assert_close(ours["loss_box_reg"], tv_box)


def test_sample_adds_the_ground_truth_and_keeps_at_most_a_quarter_foreground():
    torch.manual_seed(0)
    heads = RoIHeads(8, K, batch_size_per_image=16, positive_fraction=0.25)
    gt = torch.tensor([[10.0, 10, 30, 30], [40, 40, 60, 60]])
    proposals = torch.tensor(
        [[11.0, 10, 30, 31], [0, 0, 5, 5], [40, 41, 59, 60], [2, 50, 9, 60]]
        + [[1.0 * i, 0, i + 3, 3] for i in range(30)]
    )
    boxes, labels, targets = heads.sample([proposals], [{"boxes": gt, "labels": torch.tensor([2, 4])}])
    assert len(boxes[0]) == 16 and len(labels) == 16
    foreground = labels > 0
    assert 1 <= int(foreground.sum()) <= 4
    best = box_iou(boxes[0], gt).max(dim=1)
    assert torch.all(best.values[foreground] >= 0.5) and torch.all(best.values[~foreground] < 0.5)
    assert torch.equal(labels[foreground], torch.tensor([2, 4])[best.indices[foreground]])
    assert torch.all(targets[~foreground] == 0)


def test_an_image_without_objects_samples_only_background():
    heads = RoIHeads(8, K, batch_size_per_image=8)
    proposals = torch.tensor([[0.0, 0, 10, 10], [5, 5, 20, 20]])
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    boxes, labels, _ = heads.sample([proposals], [empty])
    assert len(boxes[0]) == 2 and torch.all(labels == 0)
    losses = heads.losses(torch.randn(2, K + 1), torch.randn(2, 4 * K), labels, torch.zeros(2, 4))
    assert torch.isfinite(losses["loss_classifier"]) and losses["loss_box_reg"] == 0


@pytest.mark.parametrize("pooler", ["pool", "align"])
def test_forward_at_inference_returns_detections_for_every_image(pooler):
    torch.manual_seed(0)
    heads = RoIHeads(8, K, pooler=pooler, score_thresh=0.0).eval()
    proposals = [torch.tensor([[0.0, 0, 16, 16], [4, 4, 30, 20]]), torch.zeros(0, 4)]
    detections, losses = heads(torch.randn(2, 8, 8, 8), proposals, [(32, 32), (32, 32)])
    assert losses == {} and len(detections) == 2
    assert detections[0]["boxes"].shape[1] == 4 and len(detections[0]["boxes"]) <= 2 * K
    assert len(detections[1]["boxes"]) == 0 and detections[1]["labels"].dtype == torch.int64


def test_unknown_pooler_lists_the_choices():
    with pytest.raises(ValueError, match="pooler: expected one of 'pool', 'align'"):
        RoIHeads(8, K, pooler="max")


def test_jittered_ground_truth_copies_stay_on_their_object():
    torch.manual_seed(0)
    boxes = torch.tensor([[10.0, 10.0, 16.0, 16.0], [20.0, 30.0, 80.0, 60.0]])
    copies = jitter_boxes(boxes, 50)
    assert copies.shape == (100, 4)
    sources = boxes.repeat(50, 1)  # copy i jitters box i % M
    overlaps = box_iou(copies, boxes)[torch.arange(100), torch.arange(100) % 2]
    assert overlaps.min() >= 0.6 and overlaps.max() < 1.0  # moved, yet foreground for its object
    assert not torch.equal(copies, sources)
    assert jitter_boxes(boxes, 0).shape == (0, 4) and jitter_boxes(boxes[:0], 5).shape == (0, 4)


def test_sample_with_jitter_gives_every_object_foreground_rows():
    torch.manual_seed(0)
    head = RoIHeads(8, 3, batch_size_per_image=64, gt_jitter=8)
    target = {"boxes": torch.tensor([[4.0, 4.0, 10.0, 10.0]]), "labels": torch.tensor([2])}
    far_away = torch.tensor([[60.0, 60.0, 90.0, 90.0]]).repeat(20, 1)
    _, labels, _ = head.sample([far_away], [target])
    assert int((labels == 2).sum()) == 9  # the box itself and its 8 copies
    with pytest.raises(ValueError, match="gt_jitter"):
        RoIHeads(8, 3, gt_jitter=-1)
