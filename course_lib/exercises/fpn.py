"""Checker for the FPN chapter's exercise: one step of the top-down pathway.

The student writes ``top_down_merge(coarser, lateral)``: ``coarser`` the merged map one level up, a
``Tensor[B, D, h, w]``, and ``lateral`` the 1x1-projected backbone map of this level, a ``Tensor[B, D,
H, W]`` with ``H ~ 2h``; the answer is the ``Tensor[B, D, H, W]`` (Lin et al. 2017, "Feature Pyramid
Networks for Object Detection", Sec. 3 and Fig. 3)::

    merged = lateral + nearest_upsample(coarser, size=(H, W))

The coarser map is upsampled by nearest neighbour, the simplest choice the paper names, to the
lateral's own size (an odd 5 x 5 map under a 3 x 3 one: ``F.interpolate(coarser,
size=lateral.shape[-2:])``, not ``scale_factor=2``), then **added**: U-Net concatenates, FPN adds,
so every level keeps the same width ``D`` and one head serves them all.

Reference: ``course_lib.models.neck.top_down_merge``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise
from course_lib.models.neck import top_down_merge


def reference_top_down_merge(coarser: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
    """The expected answer: ``Tensor[B, D, H, W]``."""
    return top_down_merge(coarser, lateral)


def _variant(coarser, lateral, mode="nearest", merge="add", direction="up"):
    """The merge with switches that reproduce the typical mistakes."""
    if direction == "down":  # the lateral brought down to the coarser map's size instead
        return coarser + F.interpolate(lateral, size=coarser.shape[-2:], mode="nearest")
    if mode == "bilinear":
        upsampled = F.interpolate(coarser, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
    else:
        upsampled = F.interpolate(coarser, size=lateral.shape[-2:], mode="nearest")  # (B, D, H, W)
    if merge == "concat":
        return torch.cat([lateral, upsampled], dim=1)  # (B, 2D, H, W)
    if merge == "upsampled only":
        return upsampled
    return lateral + upsampled


def _to_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.as_tensor(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected a Tensor[B, D, H, W], got {type(value).__name__}")
    if value.dim() != 4:
        raise TypeError(f"expected a Tensor[B, D, H, W], got shape {tuple(value.shape)}")
    return value.detach().to(torch.float64)


def _compare(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    if got.shape != expected.shape:
        note = f"expected shape {tuple(expected.shape)} (the lateral's), got {tuple(got.shape)}"
        if got.shape[-2] < expected.shape[-2] and got.shape[-1] < expected.shape[-1]:
            # Whatever way the lateral was brought down (interpolate, pooling, striding), say so.
            note += ": smaller than the lateral, upsample the coarser map, do not downsample the lateral"
        return note
    wrong = ~torch.isclose(got, expected, rtol=1e-5, atol=1e-5)  # NaN never close
    if not wrong.any():
        return None
    b, d, y, x = (int(v) for v in wrong.nonzero()[0])
    return f"first difference at [{b}, {d}, {y}, {x}]"


def _map(values) -> torch.Tensor:
    """A one-image, one-channel map from its rows."""
    return torch.tensor(values, dtype=torch.float32)[None, None]  # (1, 1, h, w)


def _random_case(batch: int, channels: int, size: tuple[int, int], seed: int) -> tuple:
    generator = torch.Generator().manual_seed(seed)
    h, w = size
    coarser = torch.randn(batch, channels, h, w, generator=generator)
    lateral = torch.randn(batch, channels, 2 * h, 2 * w, generator=generator)
    return coarser, lateral


_LATERAL_4X4 = _map([[10 * (4 * y + x) for x in range(4)] for y in range(4)])  # 0, 10, ..., 150

TOP_DOWN_MERGE = Exercise(
    name="top_down_merge",
    signature="top_down_merge(coarser, lateral) -> Tensor[B, D, H, W]",
    reference=reference_top_down_merge,
    cases=[
        Case("a 2 x 2 map onto a 4 x 4 one", (_map([[1, 2], [3, 4]]), _LATERAL_4X4),
             hint="nearest upsampling copies each value into a 2 x 2 block: [[1, 2], [3, 4]] becomes "
             "[[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]; then add the lateral map."),
        Case("a lateral of zeros", (_map([[1, -2], [0.5, 3]]), _map([[0.0] * 4] * 4)),
             hint="with a lateral of zeros the answer is the upsampled coarser map alone."),
        Case("two images, three channels", _random_case(2, 3, (3, 4), seed=0),
             hint="upsample every image and channel alike: F.interpolate works on Tensor[B, D, h, w]."),
        Case("a wide map (2 x 3 onto 4 x 6)", _random_case(1, 2, (2, 3), seed=1)),
        Case("odd sizes: 3 x 3 onto 5 x 5",
             (torch.arange(9, dtype=torch.float32).reshape(1, 1, 3, 3),
              torch.randn(1, 1, 5, 5, generator=torch.Generator().manual_seed(2))),
             hint="an odd map (5 x 5) has a coarser map of 3 x 3, and 2 x 3 = 6 != 5: upsample to the "
             "lateral's own size, F.interpolate(coarser, size=lateral.shape[-2:], mode='nearest')."),
    ],
    normalize=_to_tensor,
    compare=_compare,
    mistakes=[
        Mistake("FPN adds the two maps (lateral + upsampled); concatenating them is U-Net's merge, which "
                "doubles the channels.", lambda c, l: _variant(c, l, merge="concat")),
        Mistake("FPN upsamples by nearest neighbour (mode='nearest'), not bilinear interpolation.",
                lambda c, l: _variant(c, l, mode="bilinear")),
        Mistake("the coarser map goes up to the lateral's size, not the lateral down to the coarser "
                "one's: the answer has the lateral's shape.", lambda c, l: _variant(c, l, direction="down")),
        Mistake("add the lateral map: the merge is lateral + upsampled coarser, not the upsampled map alone.",
                lambda c, l: _variant(c, l, merge="upsampled only")),
    ],
    start_hint="upsample the coarser map to the lateral's own height and width (F.interpolate with size= "
    "and mode='nearest'), then add the two: the sum, not torch.cat.",
)


def check_top_down_merge(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(coarser, lateral) -> Tensor[B, D, H, W]``: one step of FPN's top-down pathway.

    The answer is ``lateral + F.interpolate(coarser, size=lateral.shape[-2:], mode="nearest")``
    (Sec. 3 of the FPN paper). Reference: ``course_lib.models.neck.top_down_merge``.
    """
    return run_exercise(TOP_DOWN_MERGE, fn, verbose=verbose)
