"""The stride-4 neck: FPN's top-down pathway, summed (not concatenated), over three backbone maps."""

import pytest
import torch
from torch.nn import functional as F

from course_lib.models.neck import Stride4Neck


def test_the_neck_sums_the_upsampled_coarser_levels_into_the_stride4_map():
    torch.manual_seed(0)
    neck = Stride4Neck({"stride4": 8, "stride8": 16, "stride16": 32}, out_channels=6)
    features = {"stride4": torch.randn(2, 8, 12, 10), "stride8": torch.randn(2, 16, 6, 5),
                "stride16": torch.randn(2, 32, 3, 3)}
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
