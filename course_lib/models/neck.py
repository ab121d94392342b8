"""Feature pyramids: the top-down pathway of FPN (Lin et al. 2017), and the R-CNN family's one map.

The stride-4 map sees too little for a 64-px shape and the stride-16 map is too coarse for a 6-px
one. FPN (Sec. 3) gives every level both: each backbone map is projected by a 1x1 convolution (the
*lateral* connection) to one width; starting from the coarsest, the merged map is upsampled 2x
(nearest) and **added** to the next finer projection (:func:`top_down_merge`). Adding, not
concatenating as U-Net does, keeps every level at the same width, so one head can be shared by all
levels. A 3x3 convolution then smooths each sum.

- :class:`FeaturePyramid` keeps every level, plus one coarser level made by a strided convolution
  (RetinaNet's P6, here at stride 32): the one-stage detectors predict on all of them.
- :class:`Stride4Neck` keeps only the finest sum, so the R-CNN family needs one RPN and one RoI head.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

LEVELS = ("stride4", "stride8", "stride16")  # finest first


def top_down_merge(coarser: Tensor, lateral: Tensor) -> Tensor:
    """One step of FPN's top-down pathway: upsample the coarser map to the lateral's size, add.

    Args:
        coarser (Tensor[B, D, h, w]): the merged map one level up.
        lateral (Tensor[B, D, H, W]): the 1x1-projected backbone map of this level (``H ~ 2h``).

    Returns:
        Tensor[B, D, H, W]: ``lateral + nearest_upsample(coarser)``.
    """
    if coarser.dim() != 4 or lateral.dim() != 4 or coarser.shape[:2] != lateral.shape[:2]:
        raise ValueError(
            "coarser, lateral: expected Tensor[B, D, h, w] and Tensor[B, D, H, W] with the same B and D, "
            f"got shapes {tuple(coarser.shape)} and {tuple(lateral.shape)}"
        )
    return lateral + F.interpolate(coarser, size=lateral.shape[-2:], mode="nearest")


def _check_in_channels(in_channels: dict[str, int]) -> None:
    missing = [level for level in LEVELS if level not in in_channels]
    if missing:
        raise ValueError(f"in_channels: expected the maps {LEVELS}, got {tuple(in_channels)}")


class FeaturePyramid(nn.Module):
    """``fpn(features) -> {"stride4", "stride8", "stride16", "stride32": Tensor[B, D, H/s, W/s]}``.

    Args:
        in_channels: ``backbone.out_channels``, channels of each map by name (``LEVELS``).
        out_channels: width ``D`` of every level.
    """

    def __init__(self, in_channels: dict[str, int], out_channels: int = 64) -> None:
        super().__init__()
        _check_in_channels(in_channels)
        self.out_channels = out_channels
        self.levels = (*LEVELS, "stride32")
        self.lateral = nn.ModuleDict(
            {level: nn.Conv2d(in_channels[level], out_channels, 1) for level in LEVELS}
        )
        self.smooth = nn.ModuleDict(
            {level: nn.Conv2d(out_channels, out_channels, 3, padding=1) for level in LEVELS}
        )
        # RetinaNet's P6: a strided 3x3 convolution on the coarsest backbone map.
        self.extra = nn.Conv2d(in_channels["stride16"], out_channels, 3, stride=2, padding=1)

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        merged = {"stride16": self.lateral["stride16"](features["stride16"])}  # (B, D, H/16, W/16)
        for level, coarser in (("stride8", "stride16"), ("stride4", "stride8")):
            merged[level] = top_down_merge(merged[coarser], self.lateral[level](features[level]))
        pyramid = {level: self.smooth[level](merged[level]) for level in LEVELS}
        pyramid["stride32"] = self.extra(features["stride16"])  # (B, D, H/32, W/32)
        return {level: pyramid[level] for level in self.levels}  # finest first


class Stride4Neck(nn.Module):
    """``neck(features) -> Tensor[B, out_channels, H/4, W/4]`` from ``backbone.features(images)``.

    Args:
        in_channels: ``backbone.out_channels``, channels of each map by name (``LEVELS``).
        out_channels: width of the merged map.
    """

    def __init__(self, in_channels: dict[str, int], out_channels: int = 64) -> None:
        super().__init__()
        _check_in_channels(in_channels)
        self.out_channels = out_channels
        self.lateral = nn.ModuleDict(
            {level: nn.Conv2d(in_channels[level], out_channels, 1) for level in LEVELS}
        )
        self.smooth = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        merged = self.lateral["stride16"](features["stride16"])  # (B, D, H/16, W/16)
        for level in ("stride8", "stride4"):
            merged = top_down_merge(merged, self.lateral[level](features[level]))
        return F.relu(self.smooth(merged))  # (B, D, H/4, W/4)
