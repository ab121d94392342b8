"""The geometry behind the RoI explorer: where RoI pooling's and RoIAlign's bins fall, and what they read.

Pure functions, no drawing. ``roi_view`` computes one proposal's bins in image pixels, its pooled
output and how far RoI pooling's rounding (Girshick 2015, "Fast R-CNN", Sec. 2.1) moves the region
it reads from the proposal; RoIAlign (He et al. 2017, "Mask R-CNN", Sec. 3) keeps the exact box.
``pooled_regions``, ``quantization_iou`` and ``default_proposal`` do the same rounding for many
proposals at once, to pick the one the explorer (``course_lib.widgets.roi``) opens on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from course_lib._checks import check_boxes, check_choice, check_number, check_pair, check_tensor
from course_lib.boxes import box_iou
from course_lib.roi import bin_bounds, fast_roi_align, fast_roi_pool, round_half_away
from course_lib.widgets.base import as_box

ROI_METHODS = ("RoI pool", "RoIAlign")
SAMPLING_RATIO = 2  # RoIAlign's points per bin along each axis (Mask R-CNN uses 2 or adaptive)
SMALL_SIDE = 32  # pixels: the explorer opens on a proposal no larger, where the quantization shows


def check_feature_map(feature_map: Tensor, image_size: tuple[int, int], stride: int) -> None:
    """Raise ``ValueError`` unless ``feature_map`` is a float Tensor[C, H/stride, W/stride].

    Args:
        feature_map: one image's features, no batch dimension.
        image_size: ``(H, W)`` of the image, in pixels.
        stride: image pixels per feature cell; each spatial side may be rounded down or up.
    """
    check_tensor(feature_map, "feature_map")
    if feature_map.dim() != 3 or not feature_map.is_floating_point():
        raise ValueError(
            f"feature_map: expected a float Tensor[C, H/stride, W/stride], got shape "
            f"{tuple(feature_map.shape)} and dtype {feature_map.dtype}"
        )
    expected = [(size // stride, math.ceil(size / stride)) for size in image_size]
    got = tuple(feature_map.shape[1:])
    if any(side not in sides for side, sides in zip(got, expected, strict=True)) or 0 in got:
        raise ValueError(
            f"feature_map: expected a spatial size of image_size / stride = "
            f"{image_size[0] / stride:g} x {image_size[1] / stride:g} (floor or ceil), "
            f"got {got}"
        )


def roi_view(
    image_size: int | Sequence[int],
    feature_map: Tensor,
    proposal: Sequence[float] | Tensor,
    stride: int,
    output_size: int | tuple[int, int] = 7,
    method: str = "RoI pool",
    channel: int | None = 0,
) -> dict[str, Any]:
    """The bins of one proposal in image pixels, its pooled feature, and what the rounding costs.

    RoI pool (``course_lib.roi.roi_pool``, torchvision's rounding): the box becomes feature cells
    ``round(x1 / stride) .. round(x2 / stride)``, both ends included; bin ``i`` covers cells
    ``floor(i * bin) .. ceil((i + 1) * bin)`` of them, clipped to the map. Feature cell ``j`` is drawn
    over image pixels ``[j * stride, (j + 1) * stride)``, so the bins' union (the *covered* box) is
    whole cells, in general not the proposal. RoIAlign (``roi_align`` with ``aligned=True`` and
    ``sampling_ratio=2``): the bins split the proposal exactly and the covered box is the proposal;
    the ``2 x 2`` points of a bin sit at ``(k + 0.5) / 2`` of its width and height.

    Args:
        image_size: ``(H, W)`` of the image, or an int for a square one.
        feature_map (Tensor[C, h, w]): one image's features, ``h = H / stride`` (floor or ceil).
        proposal: ``(x1, y1, x2, y2)`` in image pixels, ``x2 > x1`` and ``y2 > y1``.
        stride: image pixels per feature cell (``spatial_scale = 1 / stride``).
        output_size: ``(out_h, out_w)`` bins, or an int for a square grid.
        method: ``"RoI pool"`` or ``"RoIAlign"``.
        channel: the feature channel shown, or ``None`` for the mean over channels (of the map and
            of the per-channel pooled outputs).

    Returns:
        dict with ``bins`` (Tensor[out_h * out_w, 4], ``xyxy`` image pixels, row-major),
        ``points`` (Tensor[P, 2], RoIAlign's sampling points ``(x, y)`` in pixels; empty for RoI
        pool), ``pooled`` (Tensor[out_h, out_w], the op's output for the channel), ``feature``
        (Tensor[h, w], the channel shown), ``roi_feature`` (Tensor[4], the proposal in feature
        cells), ``covered_box`` (Tensor[4], the union of the bins), ``roi_area``, ``covered_area``,
        ``covered_iou`` (IoU of the covered box with the proposal), ``pool_iou`` (RoI pool's
        covered IoU, whatever the method, for comparison), ``max_shift`` (largest distance in
        pixels between a side of the proposal and the same side of the covered box),
        ``method``, ``channel``, ``num_channels``, ``stride``, ``output_size``, ``proposal``.
    """
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2:
        raise ValueError(f"image_size: expected an int or (H, W), got {image_size!r}")
    for side in size:
        check_number(side, "image_size", 1, integer=True)
    check_number(stride, "stride", 1, integer=True)
    check_feature_map(feature_map, size, stride)
    proposal = as_box(proposal, "proposal")
    out_h, out_w = check_pair(output_size, "output_size", low=1)
    check_choice(method, ROI_METHODS, "method")
    C, h, w = feature_map.shape  # channels, feature height, feature width
    if channel is not None:
        check_number(channel, "channel", 0, C - 1, integer=True)
    features = feature_map.detach().float()
    chosen = features if channel is None else features[channel : channel + 1]  # (C or 1, h, w)

    pool_bins, pool_covered = _quantized_bins(proposal, stride, (out_h, out_w), (h, w))
    if method == "RoI pool":
        pooled = fast_roi_pool(chosen[None], [proposal[None]], (out_h, out_w), 1 / stride)[
            0
        ]  # (C or 1, out_h, out_w)
        bins, covered, points = pool_bins, pool_covered, torch.zeros(0, 2)
    else:
        pooled = fast_roi_align(
            chosen[None],
            [proposal[None]],
            (out_h, out_w),
            1 / stride,
            sampling_ratio=SAMPLING_RATIO,
            aligned=True,
        )[0]  # (C or 1, out_h, out_w)
        bins, points = _exact_bins(proposal, (out_h, out_w))
        covered = proposal.clone()
    covered_area = float((covered[2] - covered[0]) * (covered[3] - covered[1]))
    return {
        "bins": bins,
        "points": points,
        "pooled": pooled.mean(dim=0),  # (out_h, out_w)
        "feature": chosen.mean(dim=0),  # (h, w)
        "roi_feature": proposal / stride,
        "covered_box": covered,
        "roi_area": float((proposal[2] - proposal[0]) * (proposal[3] - proposal[1])),
        "covered_area": covered_area,
        "covered_iou": _iou(proposal, covered),
        "pool_iou": _iou(proposal, pool_covered),
        "max_shift": float((covered - proposal).abs().max()),
        "method": method,
        "channel": channel,
        "num_channels": C,
        "stride": stride,
        "output_size": (out_h, out_w),
        "proposal": proposal,
    }


def pooled_regions(
    proposals: Tensor, stride: int, output_size: int | tuple[int, int], map_size: tuple[int, int]
) -> Tensor:
    """The region RoI pooling really reads for each proposal: the union of its bins, in image pixels.

    The same rounding as ``roi_view``'s ``covered_box`` (and ``course_lib.roi.roi_pool``), for many
    proposals at once.

    Args:
        proposals (Tensor[N, 4]): ``xyxy`` proposals in image pixels.
        stride: image pixels per feature cell.
        output_size: bins per side (an int) or ``(out_h, out_w)``.
        map_size: ``(h, w)`` feature cells of the map (bins are clipped to it).

    Returns:
        Tensor[N, 4]: ``xyxy`` regions, multiples of ``stride``; zero area for a proposal off the map.
    """
    check_boxes(proposals, "proposals")
    check_number(stride, "stride", 1, integer=True)
    out_h, out_w = check_pair(output_size, "output_size", low=1)
    corners = round_half_away(proposals.float() * torch.tensor(1 / stride, dtype=torch.float32))  # (N, 4)
    row_start, row_end = bin_bounds(corners[:, 1], corners[:, 3], out_h, map_size[0])  # (N, out_h) each
    col_start, col_end = bin_bounds(corners[:, 0], corners[:, 2], out_w, map_size[1])  # (N, out_w) each
    return (
        torch.stack([col_start.amin(1), row_start.amin(1), col_end.amax(1), row_end.amax(1)], dim=1).float()
        * stride
    )  # (N, 4)


def quantization_iou(
    proposals: Tensor, stride: int, output_size: int | tuple[int, int], map_size: tuple[int, int]
) -> Tensor:
    """IoU of each proposal with the region RoI pooling reads (:func:`pooled_regions`): Tensor[N].

    Never quite 1: the last cell is included, so the region reaches at least half a stride beyond
    the proposal's right and bottom sides. Lowest for small proposals, which a stride's worth of
    rounding changes most. 0.0 for a region of zero area (never NaN).
    """
    regions = pooled_regions(proposals, stride, output_size, map_size)  # (N, 4)
    # The diagonal of the pairwise IoU: N x N numbers, nothing for the few hundred proposals shown.
    iou = box_iou(proposals.float(), regions).diagonal()  # (N,)
    return torch.nan_to_num(iou, nan=0.0)  # 0 / 0 for a zero-area proposal on a zero-area region


def default_proposal(
    proposals: Tensor,
    stride: int,
    output_size: int | tuple[int, int],
    map_size: tuple[int, int],
    max_side: float = SMALL_SIDE,
) -> int:
    """The proposal an RoI explorer opens on: a small one where the quantization shows most.

    Among the proposals whose width and height are both at most ``max_side`` pixels, the one with the
    lowest :func:`quantization_iou` (the first on ties); without such a proposal, the one with the
    shortest longer side.

    Returns:
        An index into ``proposals`` (which must hold at least one box).
    """
    check_boxes(proposals, "proposals")
    if len(proposals) == 0:
        raise ValueError("proposals: expected at least one box, got 0")
    check_number(max_side, "max_side", 0)
    sides = (proposals[:, 2:] - proposals[:, :2]).float().amax(dim=1)  # (N,) the longer side
    small = sides <= max_side
    if not small.any():
        return int(torch.argmin(sides))
    iou = quantization_iou(proposals, stride, output_size, map_size)  # (N,)
    iou = torch.where(small, iou, torch.full_like(iou, float("inf")))
    return int(torch.argmin(iou))  # argmin returns the first of equal minima


def _iou(box: Tensor, other: Tensor) -> float:
    if not (other[2] > other[0] and other[3] > other[1]):
        return 0.0  # nothing covered (a box off the map): no NaN
    return float(box_iou(box[None], other[None])[0, 0])


def _quantized_bins(
    proposal: Tensor, stride: int, output_size: tuple[int, int], map_size: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """RoI pool's bins in image pixels (Tensor[out_h * out_w, 4]) and their union (Tensor[4])."""
    out_h, out_w = output_size
    # The same float32 arithmetic as roi_pool: scale, round half away from zero, then bin bounds.
    corners = round_half_away(proposal[None] * torch.tensor(1 / stride, dtype=torch.float32))  # (1, 4)
    row_start, row_end = bin_bounds(corners[:, 1], corners[:, 3], out_h, map_size[0])  # (1, out_h) each
    col_start, col_end = bin_bounds(corners[:, 0], corners[:, 2], out_w, map_size[1])  # (1, out_w) each
    x1 = col_start[0][None, :].expand(out_h, out_w)  # (out_h, out_w)
    x2 = col_end[0][None, :].expand(out_h, out_w)
    y1 = row_start[0][:, None].expand(out_h, out_w)
    y2 = row_end[0][:, None].expand(out_h, out_w)
    bins = torch.stack([x1, y1, x2, y2], dim=-1).reshape(-1, 4).float() * stride  # (out_h * out_w, 4)
    # Consecutive bins touch or overlap (floor <= ceil), so their union is one box.
    covered = torch.stack([col_start.min(), row_start.min(), col_end.max(), row_end.max()]).float() * stride
    return bins, covered


def _exact_bins(proposal: Tensor, output_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """RoIAlign's bins (Tensor[out_h * out_w, 4]) and sampling points (Tensor[P, 2]) in image pixels.

    With ``aligned=True`` a point at image pixel ``x`` reads the feature at ``x / stride - 0.5`` in
    cell-centre coordinates, i.e. at ``x`` on the drawn map: the points need no shift.
    """
    out_h, out_w = output_size
    x1, y1, x2, y2 = proposal.tolist()
    xs = torch.linspace(x1, x2, out_w + 1)  # (out_w + 1,) bin edges
    ys = torch.linspace(y1, y2, out_h + 1)  # (out_h + 1,)
    bins = torch.stack(
        [
            xs[:-1][None, :].expand(out_h, out_w),
            ys[:-1][:, None].expand(out_h, out_w),
            xs[1:][None, :].expand(out_h, out_w),
            ys[1:][:, None].expand(out_h, out_w),
        ],
        dim=-1,
    ).reshape(-1, 4)  # (out_h * out_w, 4)
    fractions = (torch.arange(out_w * SAMPLING_RATIO) + 0.5) / (out_w * SAMPLING_RATIO)  # (out_w * 2,)
    point_x = x1 + fractions * (x2 - x1)
    fractions = (torch.arange(out_h * SAMPLING_RATIO) + 0.5) / (out_h * SAMPLING_RATIO)  # (out_h * 2,)
    point_y = y1 + fractions * (y2 - y1)
    grid_y, grid_x = torch.meshgrid(point_y, point_x, indexing="ij")  # (out_h * 2, out_w * 2) each
    return bins, torch.stack([grid_x.flatten(), grid_y.flatten()], dim=-1)  # (P, 2)
