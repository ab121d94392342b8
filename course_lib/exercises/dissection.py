"""Checker for the GAN dissection chapter's exercise: the IoU of one unit with one concept (Eq. 1).

GAN dissection (Bau et al., ICLR 2019, Sec. 2.1) asks whether a unit ``u`` of a generator draws a
concept ``c``: it thresholds the unit's map, upsamples it to the image and measures its overlap with
the concept's mask, over many samples. The student writes
``unit_iou(unit_maps, threshold, concept_masks)``: ``unit_maps`` the unit's map on each of ``B``
samples, a ``Tensor[B, h, w]``; ``threshold`` its level ``t_u``; ``concept_masks`` where the
segmenter sees the concept, a bool ``Tensor[B, H, W]``. The answer is one float::

    up = F.interpolate(unit_maps[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
    active = up > threshold                                    # after upsampling, strictly above
    IoU = (active & concept_masks).sum() / (active | concept_masks).sum()   # totals over all B
                                                               # 0 when the union is empty

Reference: :func:`course_lib.visualization.dissection.unit_concept_iou` for one unit and one concept.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise, to_float
from course_lib.visualization.dissection import unit_concept_iou


def reference_unit_iou(unit_maps: Tensor, threshold: float, concept_masks: Tensor) -> float:
    """The expected answer: the library's Eq. 1 for one unit and one concept, a float in [0, 1]."""
    iou = unit_concept_iou(unit_maps[:, None], concept_masks[:, None], torch.tensor([float(threshold)]))
    return float(iou[0, 0])


def _variant(unit_maps: Tensor, threshold: float, concept_masks: Tensor, upsample: str = "bilinear",
             align_corners: bool = False, order: str = "upsample first", compare: str = ">",
             pooled: bool = True, denominator: str = "union") -> float:
    """Eq. 1 written out, with switches that reproduce the typical mistakes."""
    B, H, W = concept_masks.shape  # samples, image height and width
    maps, masks = unit_maps[:, None].double(), concept_masks[:, None].bool()  # (B, 1, h, w), (B, 1, H, W)
    corners = {"align_corners": align_corners} if upsample == "bilinear" else {}
    if order == "downsample the mask":  # compare at the unit's resolution
        masks = F.interpolate(masks.double(), size=maps.shape[-2:], mode="nearest").bool()  # (B, 1, h, w)
        active = maps > threshold
    elif order == "upsample first":
        upsampled = F.interpolate(maps, size=(H, W), mode=upsample, **corners)  # (B, 1, H, W)
        active = upsampled >= threshold if compare == ">=" else upsampled > threshold
    else:  # threshold first, then upsample the 0/1 map bilinearly and round it
        active = F.interpolate((maps > threshold).double(), size=(H, W), mode="bilinear",
                               align_corners=False) > 0.5  # (B, 1, H, W)
    intersection = (active & masks).flatten(1).sum(1).double()  # (B,)
    union = (active | masks).flatten(1).sum(1).double() if denominator == "union" else (
        masks.flatten(1).sum(1).double())  # (B,)
    if not pooled:  # a mean of per-image IoUs
        ious = torch.where(union > 0, intersection / union.clamp(min=1), torch.zeros_like(union))
        return float(ious.mean())
    return float(intersection.sum() / union.sum()) if union.sum() > 0 else 0.0


def _compare(got: float, expected: float) -> str | None:
    if abs(got - expected) <= 1e-5:  # float32 or float64 answers; NaN never matches
        return None
    return "" if math.isfinite(got) else "not a finite number (an empty union has IoU 0)"


def _case(seed: int, B: int, h: int, threshold: float | None = None, H: int = 16, concept: str = "blobs",
          relu: bool = False) -> tuple[Tensor, float, Tensor]:
    """Seeded inputs ``(unit_maps, threshold, concept_masks)``; maps in hundredths (short to print).

    The masks are the unit's own map, upsampled and shifted, plus noise, above the maps' 80th
    percentile: they overlap the unit's region in part, as a unit that learned a concept does.
    ``threshold`` defaults to that level. Levels end in a thousandth (0.811): a bilinear mean of
    hundredths never equals them exactly, so float32 and float64 answers agree (ties only where a
    case wants them).
    """
    generator = torch.Generator().manual_seed(seed)
    maps = torch.randn(B, h, h, generator=generator)  # (B, h, h)
    maps = (maps.clamp(min=0) if relu else maps).mul(100).round() / 100
    level = round(float(torch.quantile(maps, 0.8)), 2) + 0.001
    threshold = level if threshold is None else threshold
    smooth = F.interpolate(maps[:, None], size=(H, H), mode="bilinear", align_corners=False)[:, 0]
    noise = torch.randn(B, 1, 4, 4, generator=generator)  # (B, 1, 4, 4): blobs a quarter of the side
    noise = F.interpolate(noise, size=(H, H), mode="bilinear", align_corners=False)[:, 0]  # (B, H, H)
    masks = (smooth.roll(max(1, H // 16), dims=-1) + 0.5 * noise) > level  # (B, H, H)
    if concept == "none":
        masks = torch.zeros_like(masks)
    return maps, threshold, masks


UNIT_IOU = Exercise(
    name="unit_iou",
    signature="unit_iou(unit_maps Tensor[B, h, w], threshold float, concept_masks Tensor[B, H, W] bool) "
    "-> float",
    reference=reference_unit_iou,
    cases=[
        Case("3 samples, 4 x 4 maps", _case(0, B=3, h=4),
             hint="upsample the maps bilinearly to (H, W) (align_corners=False), threshold them with > "
             "threshold, then divide the total intersection by the total union, summed over all images."),
        Case("2 samples, 8 x 8 maps", _case(1, B=2, h=8)),
        Case("4 samples, a high threshold", _case(2, B=4, h=4, threshold=1.501)),
        Case("one sample", _case(3, B=1, h=8)),
        Case("ReLU maps, many exactly 0, threshold 0", _case(4, B=2, h=4, threshold=0.0, relu=True),
             hint="a unit is active where its upsampled map is strictly above the threshold (>), not equal."),
        Case("no concept pixels", _case(5, B=2, h=4, concept="none"),
             hint="with an empty concept, the intersection is 0 and the IoU 0."),
        Case("the unit never fires", _case(6, B=2, h=8, threshold=100.0),
             hint="a unit never above its threshold has no intersection with the concept: IoU 0."),
        Case("nothing at all: empty union", _case(7, B=2, h=4, threshold=100.0, concept="none"),
             hint="when the union is empty (no active pixel, no concept pixel), the IoU is 0, not NaN: "
             "return 0.0 instead of dividing 0 by 0."),
    ],
    normalize=to_float,
    compare=_compare,
    mistakes=[
        Mistake("pool over the whole set: sum the intersections of all images and divide by the sum of the "
                "unions (Eq. 1's expectations are taken before the division), not the mean of per-image "
                "IoUs.", lambda *a: _variant(*a, pooled=False)),
        Mistake("upsample the map bilinearly (mode=\"bilinear\"), not by nearest neighbour: the library "
                "measures the IoU on the smooth, upsampled map.",
                lambda *a: _variant(*a, upsample="nearest")),
        Mistake("use align_corners=False (half-pixel centres), as the library does; align_corners=True "
                "shifts the upsampled map.", lambda *a: _variant(*a, align_corners=True)),
        Mistake("upsample the unit's map first, then threshold it: thresholding the small map and upsampling "
                "the 0/1 result gives blockier regions.", lambda *a: _variant(*a, order="threshold first")),
        Mistake("active means strictly above the threshold: use > threshold, not >=.",
                lambda *a: _variant(*a, compare=">=")),
        Mistake("upsample the unit's map to the masks' size (H, W); do not downsample the concept masks to "
                "the map's (h, w).", lambda *a: _variant(*a, order="downsample the mask")),
        Mistake("divide by the union, |active ∪ concept| = |active| + |concept| - |active ∩ concept|, not "
                "by the concept's area alone.", lambda *a: _variant(*a, denominator="concept")),
    ],
    start_hint="up = F.interpolate(unit_maps[:, None].float(), size=concept_masks.shape[-2:], "
    "mode=\"bilinear\", align_corners=False)[:, 0]; active = up > threshold; "
    "then the total intersection / the total union.",
)


def check_unit_iou(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(unit_maps, threshold, concept_masks) -> float``: one unit's IoU with one concept (Eq. 1).

    Bilinear upsampling (``align_corners=False``) to the masks' size, ``> threshold``, then the
    intersection over the union summed over all images (0 for an empty union), as
    ``course_lib.visualization.dissection.unit_concept_iou`` computes for every unit and concept.
    """
    return run_exercise(UNIT_IOU, fn, verbose=verbose)
