"""RetinaNet: the prior initialization, the anchors per level, and the loss against torchvision's ops."""

import math

import pytest
import torch
from torch.nn import functional as F
from torchvision.models.detection._utils import BoxCoder as TorchvisionBoxCoder
from torchvision.ops import sigmoid_focal_loss

from course_lib.anchors import label_anchors
from course_lib.models.retinanet import SCALES, RetinaNet, subnet

LEVELS = {"stride4": 4, "stride8": 8, "stride16": 16, "stride32": 32}


def zero_pyramid(size):
    return {level: torch.zeros(1, 1, size // stride, size // stride) for level, stride in LEVELS.items()}


def target(boxes, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def test_subnet_layers_and_init():
    torch.manual_seed(0)
    net = subnet(8, 12, depth=2)
    convs = [layer for layer in net if isinstance(layer, torch.nn.Conv2d)]
    assert len(convs) == 3 and convs[-1].out_channels == 12
    assert all(conv.bias.abs().sum() == 0 for conv in convs)
    assert all(abs(float(conv.weight.detach().std()) - 0.01) < 0.002 for conv in convs)


def test_the_prior_makes_every_initial_score_about_001():
    torch.manual_seed(0)
    model = RetinaNet().eval()
    with torch.no_grad():
        pyramid, _ = model.pyramid([torch.rand(3, 64, 64)])
        logits, _ = model.head(pyramid)  # (1, N, K)
    scores = torch.sigmoid(logits)
    assert logits.shape == (1, (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2) * 9, 5)
    assert torch.allclose(scores, torch.full_like(scores, 0.01), atol=1e-3)
    assert math.isclose(float(model.class_subnet[-1].bias[0].detach()), -math.log(99), rel_tol=1e-6)


def test_a_128px_image_has_12240_anchors_of_the_level_sizes():
    model = RetinaNet()
    anchors = model.anchors(zero_pyramid(128))
    assert [len(level) for level in anchors.values()] == [32 * 32 * 9, 16 * 16 * 9, 8 * 8 * 9, 4 * 4 * 9]
    assert sum(len(level) for level in anchors.values()) == 12240
    for level, stride in LEVELS.items():
        first_cell = anchors[level][:9]  # (9, 4)
        sides = first_cell[:, 2:] - first_cell[:, :2]
        sizes = sides.prod(dim=1).sqrt()
        expected = torch.tensor([2 * stride * scale for scale in SCALES]).repeat(3)
        # half-sides are rounded to whole pixels: sizes within a pixel or so of 2 * stride * scale
        assert ((sizes - expected).abs() / expected < 0.07).all(), level
        centres = (first_cell[:, :2] + first_cell[:, 2:]) / 2
        assert torch.equal(centres, torch.full_like(centres, stride / 2))  # centred in the cell


def random_outputs(num_anchors, seed):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, num_anchors, 5, generator=generator) * 2 - 2  # (B, N, K)
    deltas = torch.randn(2, num_anchors, 4, generator=generator) * 0.2
    return logits, deltas


TARGETS = [target([[10, 10, 30, 26], [36, 40, 60, 62], [3, 3, 9, 11]], [2, 5, 1]), target([], [])]


def independent_matching(model, anchors):
    """Per image: the non-ignored anchors, their one-hot classes, the positives and their goals."""
    result = []
    for t in TARGETS:
        state, matched = label_anchors(anchors, t["boxes"], 0.5, 0.4)
        classes = torch.zeros(len(anchors), 5)
        positive = state == 1
        if positive.any():
            classes[positive, t["labels"][matched[positive]] - 1] = 1.0
        result.append((state >= 0, classes, positive, matched))
    return result


@pytest.mark.parametrize("seed", [0, 1])
def test_with_gamma_0_and_alpha_minus_1_the_loss_is_the_cross_entropy(seed):
    model = RetinaNet(gamma=0.0, alpha=-1.0)
    anchors = torch.cat(list(model.anchors(zero_pyramid(64)).values()))  # (N, 4)
    logits, deltas = random_outputs(len(anchors), seed)
    losses = model.losses(logits, deltas, anchors, TARGETS)
    total, num_positive = 0.0, 0
    for image_logits, (valid, classes, positive, _) in zip(
        logits, independent_matching(model, anchors), strict=True
    ):
        total += F.binary_cross_entropy_with_logits(image_logits[valid], classes[valid], reduction="sum")
        num_positive += int(positive.sum())
    assert num_positive >= 3 and set(losses) == {"loss_classifier", "loss_box_reg"}
    torch.testing.assert_close(losses["loss_classifier"], total / num_positive)


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (0.5, 1.0)])
def test_the_loss_equals_torchvision_sigmoid_focal_loss_on_the_same_targets(alpha, gamma):
    model = RetinaNet(alpha=alpha, gamma=gamma)
    anchors = torch.cat(list(model.anchors(zero_pyramid(64)).values()))
    logits, deltas = random_outputs(len(anchors), 3)
    losses = model.losses(logits, deltas, anchors, TARGETS)
    coder = TorchvisionBoxCoder((1.0, 1.0, 1.0, 1.0))
    class_total, box_total, num_positive = 0.0, 0.0, 0
    for image_logits, image_deltas, t, (valid, classes, positive, matched) in zip(
        logits, deltas, TARGETS, independent_matching(model, anchors), strict=True
    ):
        class_total += sigmoid_focal_loss(image_logits[valid], classes[valid], alpha, gamma, reduction="sum")
        if positive.any():
            goal = coder.encode_single(t["boxes"][matched[positive]], anchors[positive])
            box_total += F.smooth_l1_loss(image_deltas[positive], goal, beta=1 / 9, reduction="sum")
        num_positive += int(positive.sum())
    torch.testing.assert_close(losses["loss_classifier"], class_total / num_positive)
    torch.testing.assert_close(losses["loss_box_reg"], box_total / num_positive)


def test_an_image_without_objects_has_a_zero_box_loss_and_counts_every_anchor_as_background():
    model = RetinaNet(gamma=0.0, alpha=-1.0)
    anchors = torch.cat(list(model.anchors(zero_pyramid(64)).values()))
    logits, deltas = random_outputs(len(anchors), 4)
    deltas.requires_grad_(True)
    losses = model.losses(logits[1:], deltas[1:], anchors, TARGETS[1:])
    assert losses["loss_box_reg"] == 0
    expected = F.binary_cross_entropy_with_logits(logits[1], torch.zeros_like(logits[1]), reduction="sum")
    torch.testing.assert_close(losses["loss_classifier"], expected)  # divided by max(1, 0 positives)
    losses["loss_box_reg"].backward()  # connected to the graph even when it is 0
    assert deltas.grad is not None and deltas.grad.abs().sum() == 0
