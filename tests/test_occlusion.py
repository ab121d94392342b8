"""Occlusion against Captum's ``Occlusion`` and against one forward pass per window, by hand."""

import pytest
import torch
from torch import nn

from course_lib import zoo
from course_lib.data import ShapeCrops
from course_lib.references import captum_occlusion
from course_lib.visualization.hooks import has_hooks
from course_lib.visualization.occlusion import occlude, occlusion, window_masks, window_positions


def random_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 5, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(5, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    ).eval()


@pytest.mark.parametrize(
    ("size", "window", "stride", "baseline"),
    [
        ((12, 12), 4, 2, 0.0),
        ((12, 10), 3, 3, 0.5),
        ((9, 11), 4, 3, -1.0),
        ((8, 8), 8, 1, 0.0),
        ((10, 10), 1, 1, 0.2),
    ],
)
def test_equals_captum(size, window, stride, baseline):
    net = random_net(sum(size) + window)
    images = torch.rand(3, 3, *size, generator=torch.Generator().manual_seed(window))
    classes = torch.tensor([2, 0, 1])
    ours = occlusion(net, images, classes, window, stride, baseline)
    reference = captum_occlusion(net, images, classes, window, stride, baseline)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


def test_equals_captum_on_the_shapes_classifier_with_rectangular_windows():
    model = zoo.load("shapes_classifier")
    test = ShapeCrops.split("test")
    images = torch.stack([test[index][0] for index in range(2)])
    labels = torch.stack([test[index][1]["label"] for index in range(2)])
    from captum.attr import Occlusion

    reference = Occlusion(model).attribute(
        images, target=labels, sliding_window_shapes=(3, 10, 6), strides=(3, 5, 6), baselines=0.3
    )
    torch.testing.assert_close(occlusion(model, images, labels, (10, 6), (5, 6), 0.3), reference[:, 0])


def test_equals_one_forward_pass_per_window():
    net = random_net(0)
    image = torch.rand(3, 7, 9, generator=torch.Generator().manual_seed(1))
    original = net(image[None])[0, 1]
    total, count = torch.zeros(7, 9), torch.zeros(7, 9)
    for top in (0, 2, 4):  # ceil((7 - 3) / 2) + 1 = 3 rows
        for left in (0, 2, 4, 6):  # ceil((9 - 3) / 2) + 1 = 4 columns; the last is cut at the border
            hidden = image.clone()
            hidden[:, top : top + 3, left : left + 3] = 0.25
            total[top : top + 3, left : left + 3] += original - net(hidden[None])[0, 1]
            count[top : top + 3, left : left + 3] += 1
    ours = occlusion(net, image[None], 1, window=3, stride=2, baseline=0.25)[0]
    torch.testing.assert_close(ours, total / count, rtol=0, atol=1e-6)


def test_window_positions_and_masks_by_hand():
    assert window_positions((5, 4), (2, 3), (2, 1)) == [(0, 0), (0, 1), (2, 0), (2, 1), (4, 0), (4, 1)]
    masks = window_masks((5, 4), (2, 3), (2, 1))
    assert masks.shape == (6, 5, 4)
    assert masks[4].sum() == 3  # the last row of windows is cut at the border: one row of three
    assert masks.any(dim=0).all()  # every pixel is hidden at least once


def test_occlude_leaves_the_image_alone():
    image = torch.rand(3, 4, 4)
    before = image.clone()
    copies = occlude(image, window_masks((4, 4), 2, 2), baseline=torch.tensor([0.0, 0.5, 1.0])[:, None, None])
    torch.testing.assert_close(image, before)
    assert copies.shape == (4, 3, 4, 4)
    torch.testing.assert_close(copies[0, :, 0, 0], torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(copies[0, :, 3, 3], image[:, 3, 3])


def test_batch_size_and_target_form_do_not_change_the_map():
    net = random_net(3)
    images = torch.rand(2, 3, 10, 10)
    reference = occlusion(net, images, 2, 4, 2)
    torch.testing.assert_close(occlusion(net, images, 2, 4, 2, batch_size=1), reference)
    torch.testing.assert_close(occlusion(net, images, [2, 2], 4, 2, batch_size=5), reference)
    torch.testing.assert_close(occlusion(net, images, lambda out: out[:, 2], 4, 2), reference)


def test_the_model_is_restored_and_empty_and_bad_input():
    net = random_net(4).train()
    occlusion(net, torch.rand(1, 3, 8, 8), 0, 4, 4)
    assert net.training and not has_hooks(net)
    assert occlusion(net, torch.zeros(0, 3, 8, 8), 0, 4, 4).shape == (0, 8, 8)
    with pytest.raises(ValueError, match="window: expected at most the image size"):
        occlusion(net, torch.rand(1, 3, 8, 8), 0, 9, 1)
    with pytest.raises(ValueError, match="stride: expected at most the window"):
        occlusion(net, torch.rand(1, 3, 8, 8), 0, 2, 3)
    with pytest.raises(ValueError, match="window"):
        occlusion(net, torch.rand(1, 3, 8, 8), 0, 0, 1)
    with pytest.raises(ValueError, match="Tensor\\[1\\]"):
        occlusion(net, torch.rand(1, 3, 8, 8), lambda out: out, 4, 4)
