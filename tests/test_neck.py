"""FPN's top-down pathway: top_down_merge, the one-stage FeaturePyramid, the stride-4 neck."""

import pytest
import torch
from torch.nn import functional as F

from course_lib.models.backbone import ShapesBackbone
from course_lib.models.neck import FeaturePyramid, Stride4Neck, top_down_merge


def test_the_neck_sums_the_upsampled_coarser_levels_into_the_stride4_map():
    torch.manual_seed(0)
    neck = Stride4Neck({"stride4": 8, "stride8": 16, "stride16": 32}, out_channels=6)
    features = {
        "stride4": torch.randn(2, 8, 12, 10),
        "stride8": torch.randn(2, 16, 6, 5),
        "stride16": torch.randn(2, 32, 3, 3),
    }
    top = neck.lateral["stride16"](features["stride16"])
    middle = neck.lateral["stride8"](features["stride8"]) + F.interpolate(top, size=(6, 5), mode="nearest")
    fine = neck.lateral["stride4"](features["stride4"]) + F.interpolate(middle, size=(12, 10), mode="nearest")
    expected = F.relu(neck.smooth(fine))
    result = neck(features)
    assert result.shape == (2, 6, 12, 10)
    torch.testing.assert_close(result, expected)


def test_a_missing_level_is_refused_by_name():
    with pytest.raises(ValueError, match="stride16"):
        Stride4Neck({"stride4": 8, "stride8": 16})


# --- top_down_merge and the FeaturePyramid of the one-stage detectors ---------------------------------


@pytest.mark.parametrize(("coarse", "fine"), [((3, 3), (6, 6)), ((3, 5), (5, 9)), ((1, 1), (2, 3))])
def test_top_down_merge_is_nearest_upsampling_plus_the_lateral(coarse, fine):
    generator = torch.Generator().manual_seed(0)
    coarser, lateral = (
        torch.randn(2, 4, *coarse, generator=generator),
        torch.randn(2, 4, *fine, generator=generator),
    )
    expected = lateral + F.interpolate(coarser, size=fine, mode="nearest")
    torch.testing.assert_close(top_down_merge(coarser, lateral), expected)


def test_top_down_merge_copies_each_coarse_cell_to_a_2x2_block():
    coarser = torch.tensor([[1.0, 2.0], [3.0, 4.0]])[None, None]
    merged = top_down_merge(coarser, torch.zeros(1, 1, 4, 4))
    assert merged[0, 0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]


@pytest.mark.parametrize(
    ("coarser", "lateral"),
    [((2, 4, 3, 3), (2, 5, 6, 6)), ((1, 4, 3, 3), (2, 4, 6, 6)), ((4, 3, 3), (2, 4, 6, 6))],
)
def test_top_down_merge_refuses_maps_that_do_not_match(coarser, lateral):
    with pytest.raises(ValueError, match="same B and D"):
        top_down_merge(torch.zeros(coarser), torch.zeros(lateral))


CHANNELS = {"stride4": 8, "stride8": 16, "stride16": 32}


def backbone_like(height, width, generator=None):
    return {
        level: torch.randn(2, channels, -(-height // stride), -(-width // stride), generator=generator)
        for (level, channels), stride in zip(CHANNELS.items(), (4, 8, 16), strict=True)
    }


@pytest.mark.parametrize(("height", "width"), [(128, 128), (96, 160), (100, 36)])
def test_the_pyramid_has_four_levels_of_one_width(height, width):
    pyramid = FeaturePyramid(CHANNELS, out_channels=6)(backbone_like(height, width))
    assert list(pyramid) == ["stride4", "stride8", "stride16", "stride32"]  # finest first
    for level, stride in zip(pyramid, (4, 8, 16, 32), strict=True):
        assert pyramid[level].shape == (2, 6, -(-height // stride), -(-width // stride)), level


def test_the_pyramid_on_the_real_backbone():
    backbone = ShapesBackbone()
    with torch.no_grad():
        features = backbone.features(torch.rand(1, 3, 96, 160))
        pyramid = FeaturePyramid(backbone.out_channels, out_channels=8)(features)
    assert [tuple(level.shape[-2:]) for level in pyramid.values()] == [(24, 40), (12, 20), (6, 10), (3, 5)]


def test_with_identity_weights_each_level_is_the_sum_of_itself_and_the_levels_above():
    channels = {"stride4": 3, "stride8": 3, "stride16": 3}
    fpn = FeaturePyramid(channels, out_channels=3)
    with torch.no_grad():
        for level in channels:
            fpn.lateral[level].weight.copy_(torch.eye(3)[:, :, None, None])
            fpn.smooth[level].weight.zero_()
            fpn.smooth[level].weight[:, :, 1, 1] = torch.eye(3)
            fpn.lateral[level].bias.zero_()
            fpn.smooth[level].bias.zero_()
        features = {
            "stride4": torch.rand(1, 3, 8, 8),
            "stride8": torch.rand(1, 3, 4, 4),
            "stride16": torch.rand(1, 3, 2, 2),
        }
        pyramid = fpn(features)
    top = features["stride16"]
    middle = features["stride8"] + top.repeat_interleave(2, -1).repeat_interleave(2, -2)
    fine = features["stride4"] + middle.repeat_interleave(2, -1).repeat_interleave(2, -2)
    torch.testing.assert_close(pyramid["stride16"], top)
    torch.testing.assert_close(pyramid["stride8"], middle)
    torch.testing.assert_close(pyramid["stride4"], fine)
    torch.testing.assert_close(pyramid["stride32"], fpn.extra(features["stride16"]))


def test_the_pyramid_equals_a_manual_computation():
    torch.manual_seed(0)
    fpn = FeaturePyramid(CHANNELS, out_channels=5)
    features = backbone_like(40, 56, torch.Generator().manual_seed(1))
    top = fpn.lateral["stride16"](features["stride16"])
    middle = fpn.lateral["stride8"](features["stride8"]) + F.interpolate(top, size=(5, 7), mode="nearest")
    fine = fpn.lateral["stride4"](features["stride4"]) + F.interpolate(middle, size=(10, 14), mode="nearest")
    pyramid = fpn(features)
    torch.testing.assert_close(pyramid["stride4"], fpn.smooth["stride4"](fine))
    torch.testing.assert_close(pyramid["stride8"], fpn.smooth["stride8"](middle))
    torch.testing.assert_close(pyramid["stride16"], fpn.smooth["stride16"](top))
    assert pyramid["stride32"].shape == (2, 5, 2, 2)


def test_the_pyramid_refuses_a_missing_level_by_name():
    with pytest.raises(ValueError, match="stride8"):
        FeaturePyramid({"stride4": 8, "stride16": 32})
