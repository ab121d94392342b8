"""ShapesBackbone: shapes of its maps, its receptive field, frozen batch norm."""

import pytest
import torch

from course_lib.models.backbone import ShapesBackbone, freeze_batchnorm


def test_feature_maps_have_strides_4_and_8_and_the_classifier_has_K_outputs():
    model = ShapesBackbone().eval()
    features = model.features(torch.rand(2, 3, 64, 48))
    assert features["stride4"].shape == (2, 64, 16, 12)
    assert features["stride8"].shape == (2, 128, 8, 6)
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 5)
    assert model.embed(torch.rand(2, 3, 64, 64)).shape == (2, 128)
    assert model.out_channels == {"stride4": 64, "stride8": 128}


def test_the_stride8_unit_sees_exactly_43_pixels():
    """The docstring's receptive field, measured: the input pixels with a non-zero gradient."""
    torch.manual_seed(0)
    model = ShapesBackbone().eval()
    image = torch.rand(1, 3, 96, 96, requires_grad=True)
    model.features(image)["stride8"][0, :, 6, 6].sum().backward()
    rows = torch.nonzero(image.grad[0].abs().sum(dim=(0, 2)))[:, 0]
    cols = torch.nonzero(image.grad[0].abs().sum(dim=(0, 1)))[:, 0]
    assert int(rows.max() - rows.min() + 1) == 43 and int(cols.max() - cols.min() + 1) == 43


def test_freeze_batchnorm_keeps_running_statistics_in_training():
    model = ShapesBackbone().train()
    freeze_batchnorm(model)
    before = model.stem[1].running_mean.clone()
    model(torch.rand(4, 3, 32, 32))
    assert torch.equal(model.stem[1].running_mean, before)
    assert model.training and not model.stem[1].training


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"Tensor\[B, 3, H, W\]"):
        ShapesBackbone().features(torch.rand(3, 32, 32))
    with pytest.raises(TypeError, match="expected a torch.Tensor"):
        ShapesBackbone().features([[0.0]])
