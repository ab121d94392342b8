"""Filter weights: hand-made kernels, grid layout against make_grid, bad input, the zoo model."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torchvision.utils import make_grid

from course_lib import zoo
from course_lib.visualization.filters import channel_filters, filter_grid, first_layer_filters


def hand_net():
    """Conv(3 -> 2, k=2) with known weights, ReLU, Conv(2 -> 3, k=1)."""
    net = nn.Sequential(nn.Conv2d(3, 2, 2, bias=False), nn.ReLU(), nn.Conv2d(2, 3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2))
        net[0].weight[1] *= 2.0  # filter 1: values 24..46 step 2
        net[2].weight.copy_(torch.tensor([[[[1.0]], [[3.0]]], [[[-1.0]], [[-1.0]]], [[[0.0]], [[2.0]]]]))
    return net


def test_first_layer_filters_hand_case_per_filter():
    filters = first_layer_filters(hand_net())
    assert filters.shape == (2, 3, 2, 2)
    expected0 = torch.arange(12, dtype=torch.float32).reshape(3, 2, 2) / 11.0
    torch.testing.assert_close(filters[0], expected0)
    torch.testing.assert_close(filters[1], expected0)  # same pattern, twice the scale, same image


def test_first_layer_filters_shared_scale():
    filters = first_layer_filters(hand_net(), per_filter=False)
    weights = hand_net()[0].weight.detach()
    torch.testing.assert_close(filters, weights / 46.0)  # min 0, max 46 over all filters
    assert filters.min() == 0.0 and filters.max() == 1.0


def test_first_layer_filters_by_name_and_constant_filter_is_half_not_nan():
    net = hand_net()  # conv "2": output channel 1 is constant (-1, -1), channel 2 is (0, 2)
    filters = first_layer_filters(net, layer="2")
    assert filters.shape == (3, 2, 1, 1)
    torch.testing.assert_close(filters[:, :, 0, 0], torch.tensor([[0.0, 1.0], [0.5, 0.5], [0.0, 1.0]]))


def test_filter_grid_positions_by_hand():
    filters = torch.arange(5, dtype=torch.float32).reshape(5, 1, 1, 1).expand(5, 1, 2, 2)
    grid = filter_grid(filters, ncols=3, pad_value=-1.0)
    assert grid.shape == (1, 2 * 3 - 1, 3 * 3 - 1)  # 2 rows, 3 cols of 2x2 with 1-px separators
    expected = torch.tensor(
        [
            [0, 0, -1, 1, 1, -1, 2, 2],
            [0, 0, -1, 1, 1, -1, 2, 2],
            [-1, -1, -1, -1, -1, -1, -1, -1],
            [3, 3, -1, 4, 4, -1, -1, -1],
            [3, 3, -1, 4, 4, -1, -1, -1],
        ],
        dtype=torch.float32,
    )
    torch.testing.assert_close(grid[0], expected)


@settings(max_examples=25)
@given(num=st.integers(2, 11), ncols=st.integers(1, 6), size=st.integers(1, 4), seed=st.integers(0, 99))
def test_filter_grid_equals_make_grid_without_its_border(num, ncols, size, seed):
    filters = torch.rand(num, 3, size, size, generator=torch.Generator().manual_seed(seed))
    reference = make_grid(filters, nrow=ncols, padding=1, pad_value=1.0)[:, 1:-1, 1:-1]
    torch.testing.assert_close(filter_grid(filters, ncols=ncols), reference)


def test_filter_grid_edge_cases():
    one = torch.rand(1, 3, 3, 3)
    torch.testing.assert_close(filter_grid(one, ncols=4), one[0])  # one filter: no separator
    assert filter_grid(torch.zeros(0, 3, 3, 3)).shape == (3, 0, 0)
    assert filter_grid(torch.rand(4, 1, 3, 3), ncols=4).shape == (1, 3, 15)


def test_channel_filters_hand_case():
    net = hand_net()
    raw = channel_filters(net, "2", 0, normalize=False)
    torch.testing.assert_close(raw, torch.tensor([[[1.0]], [[3.0]]]))
    torch.testing.assert_close(channel_filters(net, "2", 0), torch.tensor([[[0.0]], [[1.0]]]))
    torch.testing.assert_close(channel_filters(net, "2", 1), torch.tensor([[[0.5]], [[0.5]]]))
    # a shared scale over the kernel: slice 1 of filter 1 of conv "0" keeps its place in the range
    kernel = channel_filters(net, net[0], 1)
    torch.testing.assert_close(kernel, torch.arange(12, dtype=torch.float32).reshape(3, 2, 2) / 11.0)


def test_bad_input():
    net = hand_net()
    with pytest.raises(ValueError, match=r"expected an nn.Conv2d \(one of '0', '2'\), got ReLU '1'"):
        channel_filters(net, "1", 0)
    with pytest.raises(ValueError, match=r"got ReLU '1'"):
        first_layer_filters(net, layer="1")
    with pytest.raises(ValueError, match="unknown name 'conv9'"):
        first_layer_filters(net, layer="conv9")
    with pytest.raises(ValueError, match=r"expected 0\.\.2, got 3"):
        channel_filters(net, "2", 3)
    with pytest.raises(ValueError, match=r"expected 0\.\.2, got -1"):
        channel_filters(net, "2", -1)
    with pytest.raises(TypeError, match="expected an int"):
        channel_filters(net, "2", 1.0)
    with pytest.raises(ValueError, match="at least one nn.Conv2d"):
        first_layer_filters(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match=r"expected a Tensor\[N, C, k, k\], got shape \(3, 3, 3\)"):
        filter_grid(torch.rand(3, 3, 3))
    with pytest.raises(ValueError, match=r"ncols: expected a value in \[1, inf\], got 0"):
        filter_grid(torch.rand(2, 3, 3, 3), ncols=0)
    with pytest.raises(TypeError, match="expected a torch.Tensor"):
        filter_grid([[1.0]])


def test_shapes_classifier_first_layer():
    model = zoo.load("shapes_classifier")
    filters = first_layer_filters(model)
    assert filters.shape == (32, 3, 3, 3)
    assert filters.amin(dim=(1, 2, 3)).eq(0).all() and filters.amax(dim=(1, 2, 3)).eq(1).all()
    assert filter_grid(filters, ncols=8).shape == (3, 4 * 4 - 1, 8 * 4 - 1)
    kernel = channel_filters(model, "features.conv2", 63)
    assert kernel.shape == (32, 3, 3)
    with pytest.raises(ValueError, match=r"expected 0\.\.63, got 64"):
        channel_filters(model, "features.conv2", 64)
    with pytest.raises(ValueError, match="got BatchNorm2d 'features.bn1'"):
        channel_filters(model, "features.bn1", 0)
