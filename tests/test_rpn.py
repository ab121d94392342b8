"""The RPN against torchvision's RegionProposalNetwork: proposal selection and the two losses."""

import pytest
import torch
from torchvision.models.detection import rpn as tv_rpn
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler

from course_lib import references
from course_lib.anchors import label_anchors, sample_anchors
from course_lib.models.rpn import RegionProposalNetwork, RPNHead


def random_boxes(n, size, generator):
    return references.random_boxes(n, generator, corner_range=size * 0.8, min_side=4, side_range=size * 0.4)


def torchvision_rpn(ours):
    tv = tv_rpn.RegionProposalNetwork(
        anchor_generator=None,
        head=None,
        fg_iou_thresh=ours.fg_iou_thresh,
        bg_iou_thresh=ours.bg_iou_thresh,
        batch_size_per_image=ours.batch_size_per_image,
        positive_fraction=ours.positive_fraction,
        pre_nms_top_n={"training": 50, "testing": 50},
        post_nms_top_n={"training": 20, "testing": 20},
        nms_thresh=ours.nms_thresh,
    ).eval()
    tv.min_size = ours.min_size  # torchvision 0.29 sets 1e-3 in __init__
    return tv


def test_head_outputs_are_in_anchor_order():
    head = RPNHead(8, num_anchors=3)
    objectness, deltas = head(torch.randn(2, 8, 5, 6))
    assert objectness.shape == (2, 5 * 6 * 3) and deltas.shape == (2, 5 * 6 * 3, 4)
    raw = head.objectness(torch.relu(head.conv(torch.randn(1, 8, 5, 6))))
    assert raw.shape == (1, 3, 5, 6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_select_proposals_equals_torchvision_filter_proposals(seed):
    generator = torch.Generator().manual_seed(seed)
    ours = RegionProposalNetwork(8, min_size=1e-3, nms_thresh=0.7).eval()
    anchors = random_boxes(300, 64, generator)
    objectness = torch.randn(300, generator=generator)
    deltas = torch.randn(300, 4, generator=generator) * 0.3
    boxes, scores = ours.select_proposals(anchors, objectness, deltas, (64, 64), 50, 20, 0.7)
    decoded = ours.box_coder.decode(deltas, anchors)
    tv_boxes, tv_scores = torchvision_rpn(ours).filter_proposals(
        decoded[None], objectness[None], [(64, 64)], [300]
    )
    torch.testing.assert_close(boxes, tv_boxes[0])
    torch.testing.assert_close(scores, tv_scores[0])


@pytest.mark.parametrize("seed", [0, 1])
def test_losses_equal_torchvision_compute_loss_on_the_same_sample(seed):
    generator = torch.Generator().manual_seed(seed)
    ours = RegionProposalNetwork(8)
    anchors = ours.anchors((8, 8))  # (576, 4)
    targets = [
        {"boxes": random_boxes(3, 32, generator), "labels": torch.ones(3, dtype=torch.int64)},
        {"boxes": random_boxes(2, 32, generator), "labels": torch.ones(2, dtype=torch.int64)},
    ]
    objectness = torch.randn(2, len(anchors), generator=generator)
    deltas = torch.randn(2, len(anchors), 4, generator=generator) * 0.2
    torch.manual_seed(seed)
    losses = ours.losses(anchors, objectness, deltas, targets)

    tv = torchvision_rpn(ours)
    labels, matched_gt = tv.assign_targets_to_anchors([anchors, anchors], targets)
    regression_targets = tv.box_coder.encode(matched_gt, [anchors, anchors])
    torch.manual_seed(seed)  # our sample, replayed for torchvision (its own draws differ)
    ours_labels = [label_anchors(anchors, t["boxes"])[0] for t in targets]
    picks = [sample_anchors(lab, 256, 0.5) for lab in ours_labels]

    class Replay(BalancedPositiveNegativeSampler):
        def __call__(self, matched_idxs):
            pos = [
                torch.zeros_like(m, dtype=torch.uint8).index_fill_(0, p, 1)
                for m, (p, _) in zip(matched_idxs, picks, strict=True)
            ]
            neg = [
                torch.zeros_like(m, dtype=torch.uint8).index_fill_(0, n, 1)
                for m, (_, n) in zip(matched_idxs, picks, strict=True)
            ]
            return pos, neg

    tv.fg_bg_sampler = Replay(256, 0.5)
    tv_objectness, tv_box = tv.compute_loss(
        objectness.reshape(-1, 1), deltas.reshape(-1, 4), labels, regression_targets
    )
    torch.testing.assert_close(losses["loss_objectness"], tv_objectness)
    torch.testing.assert_close(losses["loss_rpn_box_reg"], tv_box)


def test_an_image_without_objects_gives_finite_losses_and_no_box_loss():
    ours = RegionProposalNetwork(8)
    anchors = ours.anchors((4, 4))
    deltas = torch.randn(1, len(anchors), 4, requires_grad=True)
    losses = ours.losses(
        anchors,
        torch.zeros(1, len(anchors)),
        deltas,
        [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}],
    )
    assert torch.isfinite(losses["loss_objectness"]) and losses["loss_rpn_box_reg"] == 0
    losses["loss_rpn_box_reg"].backward()  # the graph stays connected: a zero gradient, not None
    assert torch.equal(deltas.grad, torch.zeros_like(deltas))


def test_forward_returns_at_most_post_nms_top_n_proposals_inside_the_image():
    torch.manual_seed(0)
    ours = RegionProposalNetwork(8, post_nms_top_n={"training": 30, "testing": 10}).eval()
    proposals, scores, losses = ours(torch.randn(2, 8, 8, 8), [(32, 32), (32, 32)])
    assert losses == {} and len(proposals) == 2
    for boxes, probs in zip(proposals, scores, strict=True):
        assert len(boxes) <= 10 and len(boxes) == len(probs)
        assert boxes.min() >= 0 and boxes.max() <= 32
        assert torch.all(probs[:-1] >= probs[1:])


def test_candidates_are_the_top_anchors_decoded_before_nms():
    torch.manual_seed(0)
    ours = RegionProposalNetwork(8).eval()
    feature_map = torch.randn(1, 8, 6, 6)
    boxes, scores = ours.candidates(feature_map, (24, 24), top_n=50)
    assert len(boxes) == 50 and torch.all(scores[:-1] >= scores[1:])
    objectness, deltas = ours.head(feature_map)
    top = objectness[0].topk(50).indices
    expected = ours.box_coder.decode(deltas[0, top], ours.anchors((6, 6))[top]).clamp(0, 24)
    torch.testing.assert_close(boxes, expected)
    proposals, _, _ = ours(feature_map, [(24, 24)])  # the same top 1000 (all 324 anchors), then NMS
    every, _ = ours.candidates(feature_map, (24, 24), top_n=1000)
    assert len(proposals[0]) < len(every) == 324
