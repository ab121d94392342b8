"""One stride-4 feature map for the R-CNN family, from the backbone's stride-4 and stride-8 maps.

The stride-4 map sees 19 px, too little for a 64-px shape; the stride-8 map sees 43 px but is
coarse for a 6-px one. As in one level of a feature pyramid (Lin et al. 2017, FPN, Sec. 3), the
stride-8 map is projected by a 1x1 convolution, upsampled 2x and added to the projected stride-4
map, then smoothed by a 3x3 convolution. FPN keeps every level; the R-CNN family here uses this
one map, so a single RPN and a single RoI head suffice.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F


class Stride4Neck(nn.Module):
    """``neck(features) -> Tensor[B, out_channels, H/4, W/4]`` from ``backbone.features(images)``."""

    def __init__(self, in_channels: dict[str, int], out_channels: int = 64) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.lateral4 = nn.Conv2d(in_channels["stride4"], out_channels, 1)
        self.lateral8 = nn.Conv2d(in_channels["stride8"], out_channels, 1)
        self.smooth = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        fine = self.lateral4(features["stride4"])  # (B, D, H/4, W/4)
        coarse = F.interpolate(
            self.lateral8(features["stride8"]), size=fine.shape[-2:], mode="nearest"
        )  # (B, D, H/4, W/4)
        return F.relu(self.smooth(fine + coarse))  # (B, D, H/4, W/4)
