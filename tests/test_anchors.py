"""Tests for course_lib.anchors against torchvision's AnchorGenerator, Matcher and RPN targets."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead

from course_lib.anchors import generate_anchors, label_anchors, sample_anchors
from course_lib.boxes import box_iou


def torchvision_anchors(sizes, aspect_ratios, image_size, grid_size, dtype=torch.float32):
    generator = AnchorGenerator((tuple(sizes),), (tuple(aspect_ratios),))
    images = ImageList(torch.zeros(1, 3, *image_size, dtype=dtype), [tuple(image_size)])
    return generator(images, [torch.zeros(1, 1, *grid_size, dtype=dtype)])[0]


def torchvision_rpn_targets(anchors, gt_boxes, fg_iou_thresh=0.7, bg_iou_thresh=0.3):
    rpn = RegionProposalNetwork(
        AnchorGenerator(), RPNHead(1, 1), fg_iou_thresh, bg_iou_thresh, 256, 0.5,
        {"training": 1, "testing": 1}, {"training": 1, "testing": 1}, 0.7,
    )
    labels, matched_gt_boxes = rpn.assign_targets_to_anchors([anchors], [{"boxes": gt_boxes}])
    return labels[0], matched_gt_boxes[0]


def random_gt_boxes(num_boxes: int, generator: torch.Generator, image_size: int = 160) -> torch.Tensor:
    corner = torch.rand(num_boxes, 2, generator=generator) * image_size
    size = 4 + torch.rand(num_boxes, 2, generator=generator) * image_size / 2
    return torch.cat((corner, corner + size), dim=1).round()  # whole pixels: IoU ties between anchors


# ---- generate_anchors ---------------------------------------------------------------------------


def test_generate_anchors_by_hand():
    anchors = generate_anchors((32,), (1.0,), stride=16, grid_size=(1, 2))
    assert anchors.tolist() == [[-16.0, -16.0, 16.0, 16.0], [0.0, -16.0, 32.0, 16.0]]
    # ratio = height / width: 2 is a tall anchor of the same area, sides 32 / sqrt(2), 32 * sqrt(2) rounded
    tall = generate_anchors((32,), (2.0,), stride=16, grid_size=1)
    assert tall.tolist() == [[-11.0, -23.0, 11.0, 23.0]]
    centred = generate_anchors((32,), (1.0,), stride=16, grid_size=(1, 2), offset=0.5)
    assert centred.tolist() == [[-8.0, -8.0, 24.0, 24.0], [8.0, -8.0, 40.0, 24.0]]


@pytest.mark.parametrize(
    "sizes, aspect_ratios, image_size, grid_size",
    [
        ((32, 64, 128), (0.5, 1.0, 2.0), (128, 160), (8, 10)),  # stride 16
        ((16,), (1.0,), (64, 64), (16, 16)),  # stride 4
        ((24, 48), (0.25, 0.7, 1.3, 3.0), (96, 200), (12, 25)),  # stride (8, 8), odd ratios
        ((128, 256, 512), (0.5, 1.0, 2.0), (800, 1216), (25, 38)),  # torchvision's defaults, stride 32
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_generate_anchors_equals_torchvision(sizes, aspect_ratios, image_size, grid_size, dtype):
    stride = (image_size[0] // grid_size[0], image_size[1] // grid_size[1])
    ours = generate_anchors(sizes, aspect_ratios, stride, grid_size, dtype=dtype)
    theirs = torchvision_anchors(sizes, aspect_ratios, image_size, grid_size, dtype)
    assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)  # same order, same rounding


def test_generate_anchors_layout():
    sizes, ratios, (grid_h, grid_w) = (32, 64), (0.5, 1.0, 2.0), (3, 4)
    anchors = generate_anchors(sizes, ratios, stride=(8, 16), grid_size=(grid_h, grid_w))
    grid = anchors.reshape(grid_h, grid_w, len(ratios), len(sizes), 4)  # the documented order
    centres = (grid[..., :2] + grid[..., 2:]) / 2
    torch.testing.assert_close(centres[2, 3, 1, 0], torch.tensor([3 * 16.0, 2 * 8.0]))
    assert torch.equal(grid[1, 2] - grid[0, 0], torch.tensor([2 * 16.0, 8.0, 2 * 16.0, 8.0]).expand(3, 2, 4))
    sides = grid[0, 0, :, :, 2:] - grid[0, 0, :, :, :2]  # (ratios, sizes, 2) width, height
    assert (sides[2, :, 1] > sides[2, :, 0]).all()  # ratio 2: taller than wide
    torch.testing.assert_close(sides.prod(dim=-1).sqrt(), torch.tensor([[32.0, 64.0]] * 3), rtol=0.05, atol=0)


def test_generate_anchors_edge_cases_and_bad_input():
    assert generate_anchors((32,), (1.0,), 16, (0, 5)).shape == (0, 4)
    with pytest.raises(ValueError, match="sizes: expected a non-empty sequence"):
        generate_anchors((), (1.0,), 16, 4)
    with pytest.raises(ValueError, match="aspect_ratios: expected positive values"):
        generate_anchors((32,), (0.0,), 16, 4)
    with pytest.raises(ValueError, match=r"grid_size: expected an int or a pair \(h, w\), got 3 values"):
        generate_anchors((32,), (1.0,), 16, (4, 4, 4))
    with pytest.raises(ValueError, match=r"stride: expected a value in \[1, inf\], got 0"):
        generate_anchors((32,), (1.0,), 0, 4)


# ---- label_anchors ------------------------------------------------------------------------------


def test_label_anchors_by_hand():
    anchors = torch.tensor([
        [0.0, 0, 10, 10],  # IoU 1 with the gt: positive
        [0.0, 0, 10, 8],  # IoU 0.8: positive
        [0.0, 0, 10, 5],  # IoU 0.5: ignored
        [0.0, 0, 10, 2],  # IoU 0.2: negative
        [50.0, 50, 60, 60],  # IoU 0: negative
    ])
    labels, matched = label_anchors(anchors, torch.tensor([[0.0, 0, 10, 10]]))
    assert labels.tolist() == [1, 1, -1, 0, 0]
    assert labels.dtype == matched.dtype == torch.int64 and matched.tolist() == [0] * 5
    # On the thresholds: IoU 0.8 >= 0.8 is positive, IoU 0.2 is not < 0.2 so it is ignored.
    labels, _ = label_anchors(anchors, torch.tensor([[0.0, 0, 10, 10]]), fg_iou_thresh=0.8, bg_iou_thresh=0.2)
    assert labels.tolist() == [1, 1, -1, -1, 0]


def test_low_quality_match_rescues_an_object_with_no_good_anchor():
    anchors = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 10], [20.0, 0, 30, 10]])  # two tie
    gt = torch.tensor([[0.0, 0, 10, 4]])  # IoU 0.4 with the first two: only "low quality"
    assert label_anchors(anchors, gt)[0].tolist() == [1, 1, 0]  # ties included
    assert label_anchors(anchors, gt, allow_low_quality_matches=False)[0].tolist() == [-1, -1, 0]


def test_low_quality_anchor_is_matched_to_its_own_best_gt():
    # Anchor 0 is gt 0's best anchor (IoU 0.5), but its own best gt is gt 1 (IoU 0.6), as torchvision.
    anchors = torch.tensor([[0.0, 0, 10, 10]])
    gt = torch.tensor([[0.0, 0, 10, 5], [0.0, 0, 10, 6]])
    labels, matched = label_anchors(anchors, gt)
    assert labels.tolist() == [1] and matched.tolist() == [1]


@pytest.mark.parametrize("seed", range(8))
def test_label_anchors_equals_torchvision_rpn(seed):
    generator = torch.Generator().manual_seed(seed)
    anchors = generate_anchors((16, 32, 64), (0.5, 1.0, 2.0), 16, (10, 10))  # (900, 4)
    gt_boxes = random_gt_boxes(seed % 5, generator)  # 0 to 4 objects, no gt at all for seed 0 and 5
    if seed == 7:
        gt_boxes = torch.cat((gt_boxes, gt_boxes[:1]))  # a duplicated object: ties between gt boxes
    labels, matched = label_anchors(anchors, gt_boxes)
    expected_labels, expected_boxes = torchvision_rpn_targets(anchors, gt_boxes)
    assert torch.equal(labels, expected_labels.long())
    positive = labels == 1
    if len(gt_boxes):
        assert torch.equal(gt_boxes[matched[positive]], expected_boxes[positive])
    assert positive.any() == (len(gt_boxes) > 0)


@pytest.mark.parametrize("fg_iou_thresh, bg_iou_thresh", [(0.7, 0.3), (0.5, 0.5), (0.6, 0.0), (1.0, 0.4)])
@pytest.mark.parametrize("allow_low_quality_matches", [True, False])
def test_label_anchors_equals_torchvision_matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches):
    generator = torch.Generator().manual_seed(9)
    anchors = torch.cat((generate_anchors((20, 40), (0.5, 1.0, 2.0), 8, (12, 12)),) * 2)  # duplicates tie
    gt_boxes = random_gt_boxes(6, generator, image_size=96)
    low_quality = allow_low_quality_matches
    labels, matched = label_anchors(anchors, gt_boxes, fg_iou_thresh, bg_iou_thresh, low_quality)
    matches = Matcher(fg_iou_thresh, bg_iou_thresh, low_quality)(box_iou(gt_boxes, anchors))
    expected = torch.where(matches >= 0, 1, torch.where(matches == Matcher.BELOW_LOW_THRESHOLD, 0, -1))
    assert torch.equal(labels, expected)
    assert torch.equal(matched[matches >= 0], matches[matches >= 0])
    assert torch.equal(matched, box_iou(gt_boxes, anchors).argmax(dim=0))  # the best gt, everywhere


def test_gt_box_that_overlaps_no_anchor_gives_no_positive():
    # The documented deviation: torchvision ties every anchor at IoU 0 and makes them all positive.
    anchors = generate_anchors((16,), (1.0,), 16, (2, 2))
    far_away = torch.tensor([[500.0, 500, 510, 510]])
    assert torchvision_rpn_targets(anchors, far_away)[0].tolist() == [1.0] * 4
    assert label_anchors(anchors, far_away)[0].tolist() == [0] * 4


def test_label_anchors_edge_cases_and_bad_input():
    anchors = generate_anchors((16,), (1.0,), 16, (2, 2))
    labels, matched = label_anchors(anchors, torch.zeros(0, 4))  # an image of background
    assert labels.tolist() == [0] * 4 and matched.tolist() == [0] * 4
    labels, matched = label_anchors(torch.zeros(0, 4), torch.tensor([[0.0, 0, 4, 4]]))
    assert labels.shape == matched.shape == (0,) and labels.dtype == torch.int64
    with pytest.raises(ValueError, match=r"bg_iou_thresh: expected a value in \[0.0, 0.5\], got 0.7"):
        label_anchors(anchors, anchors, fg_iou_thresh=0.5, bg_iou_thresh=0.7)
    with pytest.raises(ValueError, match=r"gt_boxes: expected a Tensor\[N, 4\]"):
        label_anchors(anchors, torch.zeros(4))


# ---- sample_anchors -----------------------------------------------------------------------------


def labels_with(num_positive: int, num_negative: int, num_ignored: int, seed: int = 0) -> torch.Tensor:
    labels = torch.tensor([1] * num_positive + [0] * num_negative + [-1] * num_ignored)
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


@pytest.mark.parametrize(
    "num_positive, num_negative, expected_counts",
    [(500, 5000, (128, 128)), (20, 5000, (20, 236)), (500, 50, (128, 50)), (3, 4, (3, 4)),
     (0, 300, (0, 256))],
)
def test_sample_anchors_counts_like_torchvision(num_positive, num_negative, expected_counts):
    labels = labels_with(num_positive, num_negative, 100)
    pos_idx, neg_idx = sample_anchors(labels, generator=torch.Generator().manual_seed(1))
    assert (len(pos_idx), len(neg_idx)) == expected_counts
    pos_mask, neg_mask = BalancedPositiveNegativeSampler(256, 0.5)([labels])  # other draws, same counts
    assert (int(pos_mask[0].sum()), int(neg_mask[0].sum())) == expected_counts
    assert (labels[pos_idx] == 1).all() and (labels[neg_idx] == 0).all()
    assert len(set(pos_idx.tolist())) == len(pos_idx) and len(set(neg_idx.tolist())) == len(neg_idx)
    assert torch.equal(pos_idx, pos_idx.sort().values) and pos_idx.dtype == torch.int64


def test_sample_anchors_fraction_cap_and_randomness():
    labels = labels_with(400, 400, 0)
    for fraction, batch in [(0.25, 100), (0.0, 64), (1.0, 64)]:
        pos_idx, neg_idx = sample_anchors(labels, batch, fraction)
        assert len(pos_idx) == int(batch * fraction) and len(pos_idx) + len(neg_idx) == batch
    first = sample_anchors(labels, generator=torch.Generator().manual_seed(2))
    again = sample_anchors(labels, generator=torch.Generator().manual_seed(2))
    other = sample_anchors(labels, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))  # seeded: reproducible
    assert not torch.equal(first[0], other[0])  # and really random


def test_sample_anchors_edge_cases_and_bad_input():
    pos_idx, neg_idx = sample_anchors(torch.zeros(0, dtype=torch.int64))
    assert pos_idx.shape == neg_idx.shape == (0,) and pos_idx.dtype == torch.int64
    assert [t.tolist() for t in sample_anchors(torch.tensor([-1, -1]))] == [[], []]
    assert sample_anchors(torch.tensor([1.0, 0.0, -1.0]))[0].tolist() == [0]  # float labels, as torchvision's
    with pytest.raises(ValueError, match=r"positive_fraction: expected a value in \[0.0, 1.0\], got 1.5"):
        sample_anchors(torch.zeros(3), positive_fraction=1.5)
    with pytest.raises(ValueError, match=r"labels: expected a Tensor\[N\]"):
        sample_anchors(torch.zeros(3, 2))
