"""fast_occlusion (incremental inference) against occlusion, Captum and the model on each occluded copy.

The kernel must give the full forward passes' scores up to float rounding for every geometry:
windows cut at the borders, a window as large as the image, stride 1, rectangular windows, odd
image sizes that max pooling floors, strided, dilated and grouped convolutions, padded pooling.
The random classifiers get random batch-norm statistics, so batch norm is not the identity.
"""

import pytest
import torch
from torch import nn

from course_lib import zoo
from course_lib.data import ShapeCrops
from course_lib.models.classifier import GAPClassifier
from course_lib.references import captum_occlusion
from course_lib.visualization.fast_occlusion import changed_span, fast_occlusion, occluded_outputs
from course_lib.visualization.hooks import has_hooks
from course_lib.visualization.occlusion import occlude, occlusion

CLASSES = ("a", "b", "c", "d")


def random_gap(seed: int, widths=(4, 6, 5), pools=(True, False, False), features=None) -> GAPClassifier:
    """A seeded GAPClassifier with random batch-norm statistics and affine parameters, in eval mode."""
    torch.manual_seed(seed)
    model = GAPClassifier(3, widths, pools, CLASSES)
    if features is not None:  # a last layer of widths[-1] channels
        model.features = features
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def images_of(size, count: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, *size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("widths", "pools", "size", "window", "stride", "baseline"),
    [
        ((4, 6, 5), (True, False, False), (16, 16), 4, 4, 0.0),
        ((4, 6, 5), (True, False, False), (13, 11), 3, 2, 0.5),  # odd sizes: pooling floors them
        ((4, 6, 5), (True, False, False), (13, 11), (13, 11), 1, 0.0),  # the window is the image
        ((4, 6, 5), (True, False, False), (9, 12), (2, 5), (1, 3), -1.0),  # rectangular
        ((4, 6, 5), (True, False, False), (10, 10), 1, 1, 0.2),  # every pixel alone
        ((5, 7), (True, True), (15, 17), 5, 3, 0.3),  # windows cut at both far borders
        ((3, 4, 5), (False, True, True), (21, 20), 6, 5, -0.5),
        ((6,), (False,), (7, 9), (7, 2), (1, 2), 0.0),
    ],
)
def test_equals_occlusion_on_random_gap_classifiers(widths, pools, size, window, stride, baseline):
    model = random_gap(sum(size), widths, pools)
    images = images_of(size, seed=sum(widths))
    classes = torch.tensor([2, 0])
    expected = occlusion(model, images, classes, window, stride, baseline)
    torch.testing.assert_close(
        fast_occlusion(model, images, classes, window, stride, baseline), expected, rtol=0, atol=1e-5
    )


def test_equals_captum():
    model = random_gap(1)
    images = images_of((14, 12), count=3, seed=2)
    classes = torch.tensor([3, 1, 0])
    expected = captum_occlusion(model, images, classes, 4, 3, 0.25)
    torch.testing.assert_close(
        fast_occlusion(model, images, classes, 4, 3, 0.25), expected, rtol=0, atol=1e-5
    )


def test_strided_dilated_grouped_convolutions_and_padded_pooling():
    features = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Conv2d(4, 6, 3, padding=2, dilation=2, bias=True),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(6, 6, (3, 1), padding=(1, 0), groups=3),
        nn.ReLU(),
        nn.MaxPool2d((2, 1), stride=(1, 2), dilation=(2, 1)),
        nn.Conv2d(6, 6, 1),
        nn.BatchNorm2d(6),
    )
    model = random_gap(3, widths=(6,), pools=(False,), features=features)
    for size, window, stride in (((23, 19), 5, 3), ((24, 24), (3, 7), (2, 4)), ((17, 18), 1, 1)):
        images = images_of(size, seed=size[0])
        expected = occlusion(model, images, [1, 3], window, stride, -0.2)
        got = fast_occlusion(model, images, [1, 3], window, stride, -0.2)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_a_first_in_place_relu_leaves_the_images_alone():
    features = nn.Sequential(
        nn.ReLU(inplace=True), nn.Conv2d(3, 6, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(True)
    )
    model = random_gap(11, widths=(6,), pools=(False,), features=features)
    images = torch.randn(2, 3, 9, 10, generator=torch.Generator().manual_seed(12))
    before = images.clone()
    got = fast_occlusion(model, images, [0, 1], 3, 2, -0.5)
    torch.testing.assert_close(images, before, rtol=0, atol=0)
    torch.testing.assert_close(got, occlusion(model, images.clone(), [0, 1], 3, 2, -0.5), rtol=0, atol=1e-5)


def test_equals_occlusion_on_the_shapes_classifier():
    model = zoo.load("shapes_classifier")
    test = ShapeCrops.split("test")
    images = torch.stack([test[index][0] for index in range(2)])
    labels = torch.stack([test[index][1]["label"] for index in range(2)])
    torch.testing.assert_close(
        fast_occlusion(model, images, labels), occlusion(model, images, labels), rtol=0, atol=1e-5
    )
    expected = occlusion(model, images, labels, (10, 6), (5, 6), 0.3)
    torch.testing.assert_close(
        fast_occlusion(model, images, labels, (10, 6), (5, 6), 0.3), expected, rtol=0, atol=1e-5
    )
    assert not model.training and not has_hooks(model)


def test_occluded_outputs_equal_the_model_on_any_masks():
    model = random_gap(4)
    image = images_of((12, 10), count=1, seed=5)[0]
    masks = torch.rand(7, 12, 10, generator=torch.Generator().manual_seed(6)) < 0.1  # scattered pixels
    masks[0] = False  # nothing hidden: the original scores
    masks[1] = True  # everything hidden
    masks[2, 11, 9] = True  # a lone pixel in the far corner
    baseline = torch.tensor([0.0, 0.5, 1.0])[:, None, None]  # one value per channel
    expected = model(occlude(image, masks, baseline)).detach()  # (7, 4)
    for batch_size in (7, 3, 1):
        got = occluded_outputs(model, image, masks, baseline, batch_size)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(occluded_outputs(model, image, masks[:1])[0], expected[0])
    assert occluded_outputs(model, image, masks[:0]).shape == (0, 4)


def test_changed_span_by_hand():
    start = torch.tensor([4, 0, 14])
    # A 3 x 3 convolution, padding 1, on 16 rows: input rows [4, 8) change outputs [3, 9), 6 rows.
    first, n = changed_span(start, 4, kernel=3, stride=1, padding=1, size=16)
    assert n == 6 and first.tolist() == [3, 0, 10]  # [0, 5) and [13, 16) are cut, then moved inside
    # A 2 x 2 max pooling on 16 rows: input rows [4, 8) change outputs [2, 4).
    first, n = changed_span(start, 4, kernel=2, stride=2, padding=0, size=8)
    assert n == 2 and first.tolist() == [2, 0, 6]
    # A 2 x 2 max pooling floors 15 rows to 7: a change on row 14 alone changes nothing.
    first, n = changed_span(torch.tensor([14]), 1, kernel=2, stride=2, padding=0, size=7)
    assert n == 1 and first.tolist() == [6]


def test_target_forms_batch_size_and_one_image_at_a_time():
    model = random_gap(5)
    images = images_of((12, 12), count=3, seed=7)
    expected = fast_occlusion(model, images, 2, 4, 2)
    torch.testing.assert_close(fast_occlusion(model, images, [2, 2, 2], 4, 2, batch_size=5), expected)
    torch.testing.assert_close(fast_occlusion(model, images, torch.tensor(2), 4, 2), expected)
    torch.testing.assert_close(fast_occlusion(model, images, lambda scores: scores[:, 2], 4, 2), expected)
    torch.testing.assert_close(fast_occlusion(model, images[1:2], 2, 4, 2), expected[1:2])
    callable_map = occlusion(model, images, lambda out: out[:, 1] - out[:, 0], 4, 2)
    got = fast_occlusion(model, images, lambda scores: scores[:, 1] - scores[:, 0], 4, 2)
    torch.testing.assert_close(got, callable_map, rtol=0, atol=1e-5)


def test_double_precision():
    model = random_gap(6).double()
    images = images_of((11, 13), seed=8).double()
    expected = occlusion(model, images, [0, 1], 3, 2, 0.5)
    torch.testing.assert_close(fast_occlusion(model, images, [0, 1], 3, 2, 0.5), expected, rtol=0, atol=1e-12)


def test_the_model_and_images_are_left_alone_and_empty_batch():
    model = random_gap(7).train()
    model.features.bn1.train(False)  # a mixed state must survive
    for module in model.features:
        if isinstance(module, nn.ReLU):
            module.inplace = True
    state = {name: value.clone() for name, value in model.state_dict().items()}
    images = images_of((10, 10), seed=9)
    before = images.clone()
    got = fast_occlusion(model, images, 1, 4, 2)
    assert model.training and not model.features.bn1.training and model.features.conv1.training
    assert not has_hooks(model) and all(parameter.grad is None for parameter in model.parameters())
    for name, value in model.state_dict().items():  # batch norm's running statistics included
        torch.testing.assert_close(value, state[name])
    torch.testing.assert_close(images, before)
    torch.testing.assert_close(got, occlusion(model, images, 1, 4, 2), rtol=0, atol=1e-5)
    assert fast_occlusion(model, torch.zeros(0, 3, 10, 10), 1, 4, 2).shape == (0, 10, 10)


def test_bad_input():
    model = random_gap(8)
    image = torch.rand(1, 3, 8, 8)
    with pytest.raises(TypeError, match="expected a Tensor"):
        fast_occlusion(model, [image[0]], 0)
    with pytest.raises(ValueError, match="expected a Tensor\\[B, 3, H, W\\]"):
        fast_occlusion(model, torch.rand(1, 1, 8, 8), 0)
    with pytest.raises(ValueError, match="Tensor\\[B, C, H, W\\]"):
        fast_occlusion(model, image[0], 0)
    with pytest.raises(ValueError, match="window: expected at most the image size"):
        fast_occlusion(model, image, 0, 9, 1)
    with pytest.raises(ValueError, match="stride: expected at most the window"):
        fast_occlusion(model, image, 0, 2, 3)
    with pytest.raises(ValueError, match="batch_size"):
        fast_occlusion(model, image, 0, 4, 4, batch_size=0)
    with pytest.raises(ValueError, match="target: expected class indices in \\[0, 3\\]"):
        fast_occlusion(model, image, 4, 4, 4)
    with pytest.raises(ValueError, match="expected the callable to return a Tensor"):
        fast_occlusion(model, image, lambda scores: scores, 4, 4)
    with pytest.raises(ValueError, match="masks: expected a bool Tensor\\[P, 8, 8\\]"):
        occluded_outputs(model, image[0], torch.zeros(2, 8, 7, dtype=torch.bool))
    with pytest.raises(ValueError, match="masks: expected a bool"):
        occluded_outputs(model, image[0], torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match="image: expected a Tensor\\[3, H, W\\]"):
        occluded_outputs(model, image, torch.zeros(2, 8, 8, dtype=torch.bool))


class Doubled(GAPClassifier):
    def forward(self, images):
        return 2 * super().forward(images)


@pytest.mark.parametrize(
    ("name", "layer"),
    [
        ("pool1", nn.AvgPool2d(2)),
        ("relu2", nn.Sigmoid()),
        ("pool1", nn.MaxPool2d(2, ceil_mode=True)),
        ("bn2", nn.BatchNorm2d(6, track_running_stats=False)),  # batch statistics would mix the windows
        ("conv2", nn.Conv2d(4, 6, 3, padding="same")),
        ("conv2", nn.Conv2d(4, 6, 3, padding=1, padding_mode="reflect")),
    ],
)
def test_unsupported_layers_are_sent_to_occlusion(name, layer):
    model = random_gap(9)
    setattr(model.features, name, layer)
    with pytest.raises(TypeError, match="use occlusion"):
        fast_occlusion(model.eval(), torch.rand(1, 3, 8, 8), 0)


def test_unsupported_models_are_sent_to_occlusion():
    gap = random_gap(10)
    sequential = nn.Sequential(gap.features, nn.AdaptiveAvgPool2d(1), nn.Flatten(), gap.fc).eval()
    for model in (sequential, Doubled(3, (4, 6, 5), (True, False, False), CLASSES).eval()):
        with pytest.raises(TypeError, match="expected a GAPClassifier.*use occlusion"):
            fast_occlusion(model, torch.rand(1, 3, 8, 8), 0)
