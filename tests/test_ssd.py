"""SSD: default boxes by hand, matching against torchvision's SSDMatcher, hard negative mining."""

import math

import pytest
import torch
from torch.nn import functional as F
from torchvision.models.detection._utils import BoxCoder as TorchvisionBoxCoder
from torchvision.models.detection._utils import SSDMatcher
from torchvision.ops import box_iou

from course_lib import references
from course_lib.models.ssd import SSD, default_boxes, hard_negative_mining, match_default_boxes


def test_default_boxes_of_a_2x2_grid_by_hand():
    boxes = default_boxes(2, stride=8, size=8, next_size=16, aspect_ratios=(2.0,))
    assert boxes.shape == (16, 4)  # 2 x 2 cells, 4 boxes each
    big, long = math.sqrt(8 * 16) / 2, 8 * math.sqrt(2) / 2  # half sides
    short = 8 / math.sqrt(2) / 2
    first_cell = torch.tensor(
        [
            [0, 0, 8, 8],  # the square of side s_k
            [4 - big, 4 - big, 4 + big, 4 + big],  # the square of side sqrt(s_k * s_k+1)
            [4 - long, 4 - short, 4 + long, 4 + short],  # ratio 2: wide
            [4 - short, 4 - long, 4 + short, 4 + long],  # ratio 1/2: tall
        ]
    )
    torch.testing.assert_close(boxes[:4], first_cell)
    for cell, (dx, dy) in enumerate([(0, 0), (8, 0), (0, 8), (8, 8)]):  # row-major: (0, 1) is second
        torch.testing.assert_close(
            boxes[4 * cell : 4 * cell + 4], first_cell + torch.tensor([dx, dy, dx, dy])
        )


def test_default_boxes_of_a_rectangular_grid_and_two_ratios():
    boxes = default_boxes((2, 3), stride=10, size=20, next_size=30, aspect_ratios=(2.0, 3.0))
    assert boxes.shape == (2 * 3 * 6, 4)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert centres[:, 0].round(decimals=4).unique().tolist() == [5.0, 15.0, 25.0]
    assert centres[:, 1].round(decimals=4).unique().tolist() == [5.0, 15.0]
    sides = boxes[:6, 2:] - boxes[:6, :2]
    expected = [
        (20, 20),
        (math.sqrt(600),) * 2,
        (20 * 2**0.5, 20 / 2**0.5),
        (20 / 2**0.5, 20 * 2**0.5),
        (20 * 3**0.5, 20 / 3**0.5),
        (20 / 3**0.5, 20 * 3**0.5),
    ]
    torch.testing.assert_close(sides, torch.tensor(expected, dtype=torch.float32))


def test_the_ssd300_configuration_has_8732_default_boxes():
    grids, ratios = (38, 19, 10, 5, 3, 1), ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
    sizes = (30, 60, 111, 162, 213, 264, 315)
    counts = [
        len(default_boxes(grid, 300 / grid, sizes[k], sizes[k + 1], ratios[k]))
        for k, grid in enumerate(grids)
    ]
    assert counts == [38 * 38 * 4, 19 * 19 * 6, 10 * 10 * 6, 5 * 5 * 6, 3 * 3 * 4, 4]
    assert sum(counts) == 8732


def test_the_model_has_5440_default_boxes_for_a_128px_image():
    model = SSD()
    maps = {f"stride{s}": torch.zeros(1, 1, 128 // s, 128 // s) for s in (4, 8, 16, 32)}
    per_level = model.default_boxes(maps)
    assert [len(level) for level in per_level] == [32 * 32 * 4, 16 * 16 * 4, 8 * 8 * 4, 4 * 4 * 4]
    assert sum(len(level) for level in per_level) == 5440
    for level, size in zip(per_level, (8, 16, 32, 64), strict=True):
        assert torch.allclose(level[0, 2:] - level[0, :2], torch.tensor([float(size)] * 2))


def test_bad_default_box_arguments_are_refused():
    with pytest.raises(ValueError, match="aspect_ratios"):
        default_boxes(2, 8, 8, 16, aspect_ratios=(-1.0,))
    with pytest.raises(ValueError, match="sizes"):
        SSD(sizes=(8, 16, 32))


def test_a_zero_aspect_ratio_is_refused():
    with pytest.raises(ValueError, match="aspect_ratios"):
        default_boxes(2, 8, 8, 16, aspect_ratios=(0.0,))


def test_matching_by_hand():
    defaults = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]])
    gt = torch.tensor([[0.0, 0, 10, 5], [40, 40, 44, 44]])  # IoU exactly 0.5 with box 0; 0.16 with box 2
    classes, matched = match_default_boxes(defaults, gt, torch.tensor([3, 2]))
    assert classes.tolist() == [3, 0, 2, 0]  # 0.5 is positive; the second object still takes its best box
    assert matched[[0, 2]].tolist() == [0, 1] and classes.dtype == torch.int64
    classes, _ = match_default_boxes(defaults, gt, torch.tensor([3, 2]), iou_threshold=0.6)
    assert classes.tolist() == [3, 0, 2, 0]  # both now only by the "best box of an object" rule


def test_matching_without_objects_is_all_background():
    classes, matched = match_default_boxes(
        default_boxes(2, 8, 8, 16), torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)
    )
    assert classes.shape == (16,) and (classes == 0).all() and (matched == 0).all()


def test_matching_refuses_labels_of_the_wrong_length():
    with pytest.raises(ValueError, match="one per box"):
        match_default_boxes(default_boxes(2, 8, 8, 16), torch.tensor([[0.0, 0, 4, 4]]), torch.tensor([1, 2]))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matching_equals_torchvision_ssd_matcher(seed):
    generator = torch.Generator().manual_seed(seed)
    defaults = default_boxes(8, 8, 12, 20, (2.0,))  # 256 boxes over 64 px
    gt = references.random_boxes(5, generator, corner_range=44, min_side=6, side_range=14)
    labels = torch.randint(1, 6, (5,), generator=generator)
    classes, matched = match_default_boxes(defaults, gt, labels)
    iou = box_iou(gt, defaults)  # (M, N)
    tv_matches = SSDMatcher(0.5)(iou)  # -1 for background
    # Ours also makes positive the boxes tied with an object's best box; torchvision only its argmax.
    best = iou.max(dim=1, keepdim=True).values  # (M, 1)
    tied = ((iou == best) & (best > 0)).any(dim=0)  # (N,)
    assert torch.equal(classes > 0, (tv_matches >= 0) | tied)
    # torchvision hands an object's best box to that object even if the box overlaps another object
    # more; ours keeps the box's own best object (documented in label_anchors). Elsewhere they agree.
    forced = iou.argmax(dim=1)
    free = (classes > 0) & ~tied
    assert torch.equal(matched[free], tv_matches[free])
    assert torch.equal(matched[forced], iou[:, forced].argmax(dim=0))
    assert torch.equal(classes[classes > 0], labels[matched[classes > 0]])


def test_hard_negative_mining_by_hand():
    loss = torch.tensor([5.0, 3.0, 1.0, 3.0, 3.0, 0.0, 9.0])
    positive = torch.tensor([False, False, False, False, False, False, True])
    mined = hard_negative_mining(loss, positive)
    assert mined.tolist() == [True, True, False, True, False, False, False]  # 3 x 1; the tie at 3 by index
    assert hard_negative_mining(loss, positive, neg_pos_ratio=1).nonzero()[:, 0].tolist() == [0]


def test_hard_negative_mining_with_no_positives_or_too_few_negatives():
    loss = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    assert not hard_negative_mining(loss, torch.zeros(5, dtype=torch.bool)).any()
    positive = torch.tensor([True, False, True, False, True])
    assert hard_negative_mining(loss, positive).tolist() == [False, True, False, True, False]
    assert not hard_negative_mining(torch.zeros(0), torch.zeros(0, dtype=torch.bool)).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_negative_mining_takes_the_highest_losses(seed):
    generator = torch.Generator().manual_seed(seed)
    loss = torch.randint(0, 20, (200,), generator=generator).float()  # many ties
    positive = torch.rand(200, generator=generator) < 0.05
    mined = hard_negative_mining(loss, positive)
    negatives = sorted((i for i in range(200) if not positive[i]), key=lambda i: (-loss[i], i))
    expected = torch.zeros(200, dtype=torch.bool)
    expected[negatives[: 3 * int(positive.sum())]] = True
    assert int(mined.sum()) == 3 * int(positive.sum())
    assert torch.equal(mined, expected)


def test_hard_negative_mining_refuses_a_non_bool_mask():
    with pytest.raises(ValueError, match="bool"):
        hard_negative_mining(torch.zeros(3), torch.zeros(3))


def test_the_loss_is_cross_entropy_on_positives_and_mined_negatives_plus_smooth_l1():
    generator = torch.Generator().manual_seed(0)
    model = SSD()
    maps = {f"stride{s}": torch.zeros(1, 1, 64 // s, 64 // s) for s in (4, 8, 16, 32)}
    boxes = torch.cat(model.default_boxes(maps))  # (N, 4)
    logits = torch.randn(2, len(boxes), 6, generator=generator)  # (B, N, K + 1)
    deltas = torch.randn(2, len(boxes), 4, generator=generator) * 0.5
    targets = [
        {"boxes": torch.tensor([[10.0, 12, 26, 30], [40, 8, 48, 16]]), "labels": torch.tensor([4, 1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    losses = model.losses(logits, deltas, boxes, targets)
    coder = TorchvisionBoxCoder((10.0, 10.0, 5.0, 5.0))
    class_total, box_total, num_positive = 0.0, 0.0, 0
    for image_logits, image_deltas, target in zip(logits, deltas, targets, strict=True):
        classes, matched = match_default_boxes(boxes, target["boxes"], target["labels"])
        positive = classes > 0
        class_loss = F.cross_entropy(image_logits, classes, reduction="none")
        negatives = sorted(
            (i for i in range(len(boxes)) if not positive[i]), key=lambda i: (-class_loss[i], i)
        )
        counted = positive.clone()
        counted[negatives[: 3 * int(positive.sum())]] = True
        class_total += class_loss[counted].sum()
        if positive.any():
            goal = coder.encode_single(target["boxes"][matched[positive]], boxes[positive])
            box_total += F.smooth_l1_loss(image_deltas[positive], goal, reduction="sum")
        num_positive += int(positive.sum())
    assert num_positive >= 2
    torch.testing.assert_close(losses["loss_classifier"], class_total / num_positive)
    torch.testing.assert_close(losses["loss_box_reg"], box_total / num_positive)
