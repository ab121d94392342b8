"""ShapesBackbone: shapes of its maps, its residual blocks, its receptive field, frozen batch norm."""

import pytest
import torch

from course_lib.data import CLASSES
from course_lib.models.backbone import BasicBlock, ShapesBackbone, freeze_batchnorm


def test_feature_maps_have_strides_4_8_16_and_the_classifier_one_output_per_class_name():
    model = ShapesBackbone().eval()
    features = model.features(torch.rand(2, 3, 64, 48))
    assert {name: tuple(value.shape) for name, value in features.items()} == {
        "stride4": (2, 64, 16, 12),
        "stride8": (2, 128, 8, 6),
        "stride16": (2, 256, 4, 3),
    }
    assert model.out_channels == {name: value.shape[1] for name, value in features.items()}
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, len(CLASSES))
    assert model.classes == CLASSES
    assert model.embed(torch.rand(2, 3, 64, 64)).shape == (2, 256)


def test_odd_sizes_round_up_at_every_stride():
    features = ShapesBackbone().eval().features(torch.rand(1, 3, 65, 33))
    assert [tuple(value.shape[-2:]) for value in features.values()] == [(17, 9), (9, 5), (5, 3)]


def test_basic_block_adds_its_shortcut_before_the_last_relu():
    torch.manual_seed(0)
    block = BasicBlock(4, 8).eval()
    x = torch.randn(2, 4, 8, 8)
    residual = block.bn2(block.conv2(block.bn1(block.conv1(x)).relu()))
    expected = (residual + block.shortcut(x)).clamp(min=0)
    torch.testing.assert_close(block(x), expected)
    assert block(x).shape == (2, 8, 4, 4)


def test_the_stride16_unit_sees_the_receptive_field_the_layers_add_up_to():
    """Measured via the gradient: the input pixels that reach one unit of the deepest map."""
    torch.manual_seed(0)
    model = ShapesBackbone().eval()
    image = torch.rand(1, 3, 192, 192, requires_grad=True)
    model.features(image)["stride16"][0, :, 6, 6].sum().backward()
    rows = torch.nonzero(image.grad[0].abs().sum(dim=(0, 2)))[:, 0]
    cols = torch.nonzero(image.grad[0].abs().sum(dim=(0, 1)))[:, 0]
    # Each 3x3 convolution adds 2 x (the stride of its input) pixels to the field:
    # 1 + 2 * (1 + 1 + 2 + 4 + 4 + 8 + 8 + 16) = 89 (the 1x1 shortcuts add nothing).
    assert int(rows.max() - rows.min() + 1) == 89 and int(cols.max() - cols.min() + 1) == 89


def test_freeze_batchnorm_keeps_running_statistics_in_training():
    model = ShapesBackbone().train()
    freeze_batchnorm(model)
    norm = model.stem[0][1]
    before = norm.running_mean.clone()
    model(torch.rand(4, 3, 32, 32))
    assert torch.equal(norm.running_mean, before)
    assert model.training and not norm.training


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"Tensor\[B, 3, H, W\]"):
        ShapesBackbone().features(torch.rand(3, 32, 32))
    with pytest.raises(TypeError, match="expected a torch.Tensor"):
        ShapesBackbone().features([[0.0]])
