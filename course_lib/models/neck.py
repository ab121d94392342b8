"""One stride-4 feature map for the R-CNN family, from the backbone's stride-4, 8 and 16 maps.

The stride-4 map sees too little for a 64-px shape and the stride-16 map is too coarse for a 6-px
one. As in a feature pyramid's top-down pathway (Lin et al. 2017, FPN, Sec. 3), every map is
projected by a 1x1 convolution to the same width; starting from the coarsest, each is upsampled 2x
(nearest) and **added** to the next finer projection, and the finest sum is smoothed by a 3x3
convolution. FPN keeps every level; the R-CNN family here uses the stride-4 one, so a single RPN
and a single RoI head suffice (the one-stage chapters keep all levels).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

LEVELS = ("stride4", "stride8", "stride16")  # finest first


class Stride4Neck(nn.Module):
    """``neck(features) -> Tensor[B, out_channels, H/4, W/4]`` from ``backbone.features(images)``.

    Args:
        in_channels: ``backbone.out_channels``, channels of each map by name (``LEVELS``).
        out_channels: width of the merged map.
    """

    def __init__(self, in_channels: dict[str, int], out_channels: int = 64) -> None:
        super().__init__()
        missing = [level for level in LEVELS if level not in in_channels]
        if missing:
            raise ValueError(f"in_channels: expected the maps {LEVELS}, got {tuple(in_channels)}")
        self.out_channels = out_channels
        self.lateral = nn.ModuleDict(
            {level: nn.Conv2d(in_channels[level], out_channels, 1) for level in LEVELS}
        )
        self.smooth = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        merged = self.lateral["stride16"](features["stride16"])  # (B, D, H/16, W/16)
        for level in ("stride8", "stride4"):
            finer = self.lateral[level](features[level])  # (B, D, H/s, W/s)
            merged = finer + F.interpolate(merged, size=finer.shape[-2:], mode="nearest")
        return F.relu(self.smooth(merged))  # (B, D, H/4, W/4)
