"""Receptive fields: hand-computed stacks, and the field equals where the input gradient is non-zero."""

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_lib import zoo
from course_lib.visualization.hooks import record
from course_lib.visualization.receptive_field import RF, receptive_field, unit_box


def positive_copy(model: nn.Module) -> nn.Module:
    """The same geometry with every path open: positive weights, identity batch norm, and max pools
    replaced by average pools of the same window (a max pool sends the gradient to one pixel only)."""
    model = copy.deepcopy(model).eval()
    generator = torch.Generator().manual_seed(0)
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Conv2d):
            with torch.no_grad():
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.1)
                if module.bias is not None:
                    module.bias.fill_(0.1)
        elif isinstance(module, nn.BatchNorm2d):
            module.reset_parameters()
            module.reset_running_stats()
        elif isinstance(module, nn.MaxPool2d):
            assert module.dilation in (1, (1, 1))
            pool = nn.AvgPool2d(module.kernel_size, module.stride, module.padding, module.ceil_mode)
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, pool)
    return model


def gradient_box(model: nn.Module, layer: str, row: int, col: int, image_size: int, in_channels: int):
    """Bounding box (xyxy, pixel edges) of the input pixels whose gradient for unit (row, col) is not 0."""
    image = (torch.rand(1, in_channels, image_size, image_size, generator=torch.Generator().manual_seed(1))
             + 0.1).requires_grad_(True)
    with record(model, layer) as recorded:
        model(image)
    recorded.activations[layer][0, 0, row, col].backward()
    nonzero = image.grad[0].abs().sum(0) > 0  # (H, W)
    rows, cols = nonzero.any(1).nonzero()[:, 0], nonzero.any(0).nonzero()[:, 0]
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def small_stack() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 3, 3, stride=2, dilation=2),
        nn.BatchNorm2d(3),
        nn.AvgPool2d(3, stride=1, padding=1),
        nn.Sequential(nn.Conv2d(3, 2, 5, padding=2), nn.ReLU()),
        nn.Flatten(),
    )


def test_two_3x3_convolutions_see_5x5():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.ReLU(), nn.Conv2d(1, 1, 3, padding=1))
    assert receptive_field(model, "0") == RF(size=3, stride=1, start=-1)
    assert receptive_field(model, "2") == RF(size=5, stride=1, start=-2)


def test_a_strided_convolution_doubles_the_growth_of_the_next_one():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 3))
    assert receptive_field(model, "1") == RF(size=7, stride=2, start=0)
    # Unit (1, 2) sees input rows 2..8 and columns 4..10.
    assert unit_box(receptive_field(model, "1"), 1, 2, 20) == (4, 2, 11, 9)


def test_dilation_and_padding_same():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2, padding="same"), nn.Conv2d(1, 1, 3, padding="valid"))
    assert receptive_field(model, "0") == RF(size=5, stride=1, start=-2)
    assert receptive_field(model, "1") == RF(size=7, stride=1, start=-2)


def test_shapes_classifier_fields_by_hand():
    model = zoo.load("shapes_classifier")
    expected = {
        "features.conv1": RF(3, 1, -1), "features.relu1": RF(3, 1, -1), "features.pool1": RF(4, 2, -1),
        "features.conv2": RF(8, 2, -3), "features.pool2": RF(10, 4, -3), "features.conv3": RF(18, 4, -7),
        "features.relu3": RF(18, 4, -7), "features.pool3": RF(22, 8, -7), "features.conv4": RF(38, 8, -15),
        "features": RF(38, 8, -15),
    }
    assert {layer: receptive_field(model, layer) for layer in expected} == expected
    assert receptive_field(model, "features.pool1").center(0) == 0.5


@pytest.mark.parametrize("layer", ["features.relu2", "features.pool2", "features.relu3", "features.conv4"])
def test_shapes_classifier_field_equals_the_nonzero_gradient(layer):
    model, size = positive_copy(zoo.load("shapes_classifier")), 64
    rf = receptive_field(model, layer)
    with torch.no_grad(), record(model, layer) as recorded:
        model(torch.zeros(1, 3, size, size))
    height, width = recorded.activations[layer].shape[-2:]
    for row, col in [(height // 2, width // 2), (0, 0), (height - 1, width - 1), (0, width // 2)]:
        assert gradient_box(model, layer, row, col, size, 3) == unit_box(rf, row, col, size), (row, col)
    assert unit_box(rf, height // 2, width // 2, size)[2] - unit_box(rf, height // 2, width // 2, size)[0] \
        == rf.size  # the middle unit is not clipped, so the test covers the full size


def test_trained_max_pools_send_the_gradient_inside_the_field():
    model = zoo.load("shapes_classifier")
    rf = receptive_field(model, "features.conv4")
    x1, y1, x2, y2 = gradient_box(model, "features.conv4", 4, 3, 64, 3)
    bx1, by1, bx2, by2 = unit_box(rf, 4, 3, 64)
    assert bx1 <= x1 and by1 <= y1 and x2 <= bx2 and y2 <= by2


@settings(max_examples=15)
@given(row=st.integers(0, 12), col=st.integers(0, 12))
def test_small_stack_field_equals_the_nonzero_gradient(row, col):
    model = positive_copy(small_stack())  # a 60x60 input gives a 13x13 map at "6.1"
    rf = receptive_field(model, "6.1")
    assert rf == RF(size=36, stride=4, start=-13)
    assert gradient_box(model, "6.1", row, col, 60, 2) == unit_box(rf, row, col, 60)


@settings(max_examples=10)
@given(size=st.integers(9, 24))
def test_ceil_mode_pools_and_odd_sizes_every_unit(size):
    pool = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
    model = positive_copy(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), pool, nn.Conv2d(1, 1, 3, stride=2)))
    rf = receptive_field(model, "2")
    assert rf == RF(size=9, stride=4, start=-2)  # 3 (start -1), 3 + 2 = 5 (jump 2, start -2), 5 + 2 * 2
    with torch.no_grad():
        height = model(torch.zeros(1, 1, size, size)).shape[-1]
    for row in range(height):
        col = height - 1 - row
        assert gradient_box(model, "2", row, col, size, 1) == unit_box(rf, row, col, size)


def test_small_stack_by_hand():
    # conv3 p1: 3, j1, s-1; pool2: 4, j2, s-1; conv3 d2 s2: 4 + 4*2 = 12, j4, s-1;
    # avgpool3 p1: 12 + 2*4 = 20, j4, s-5; conv5 p2: 20 + 4*4 = 36, j4, s-13.
    model = small_stack()
    assert receptive_field(model, "3") == RF(12, 4, -1)
    assert receptive_field(model, "5") == RF(20, 4, -5)
    assert receptive_field(model, "6") == RF(36, 4, -13)


def test_unit_box_leaves_out_the_pixels_a_strided_layer_drops():
    # A 3x3 conv with stride 2 on 8 pixels has 3 units; pixel 7 feeds none of them.
    model = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 3, padding=1))
    rf = receptive_field(model, "1")
    assert rf == RF(size=7, stride=2, start=-2)
    assert unit_box(rf, 2, 2, 8) == (2, 2, 7, 7)  # the formula's window is 2..8, clipped 2..7
    assert unit_box(RF(7, 2, -2), 2, 2, 8) == (2, 2, 8, 8)  # a hand-made RF only knows the image border
    assert gradient_box(positive_copy(model), "1", 2, 2, 8, 1) == (2, 2, 7, 7)


def test_unit_box_clips_to_the_image():
    rf = RF(size=10, stride=4, start=-3)
    assert unit_box(rf, 0, 0, 32) == (0, 0, 7, 7)
    assert unit_box(rf, 2, 1, (32, 40)) == (1, 5, 11, 15)
    assert unit_box(rf, 7, 9, (30, 40)) == (33, 25, 40, 30)


def test_unsupported_layers_on_the_path():
    model = nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))
    with pytest.raises(ValueError, match="got AdaptiveAvgPool2d on the path"):
        receptive_field(model, "3")
    with pytest.raises(ValueError, match="unknown name 'nope'"):
        receptive_field(model, "nope")
    with pytest.raises(ValueError, match="both axes"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, (3, 5))), "0")
    with pytest.raises(ValueError, match="padding_mode"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")), "0")
    with pytest.raises(ValueError, match="fc"):  # fc is not the first child: what runs before it is unknown
        receptive_field(zoo.load("shapes_classifier"), "fc")


def test_unit_box_bad_input():
    rf = RF(size=5, stride=2, start=-2)
    with pytest.raises(ValueError, match="expected a value in"):
        unit_box(rf, -1, 0, 16)
    with pytest.raises(ValueError, match="col: expected a unit whose field overlaps the 16 pixels, got 10"):
        unit_box(rf, 0, 10, 16)
    real = receptive_field(zoo.load("shapes_classifier"), "features.pool3")
    with pytest.raises(ValueError, match=r"row: expected 0\.\.7 for an input of 64 pixels, got 8"):
        unit_box(real, 8, 0, 64)
    with pytest.raises(ValueError, match=r"expected 0\.\.-1"):  # the map is empty for a 4x4 input
        unit_box(real, 0, 0, 4)
    with pytest.raises(TypeError, match="expected an int"):
        unit_box(rf, 0.5, 0, 16)
