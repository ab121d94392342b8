"""Explorer for Fast R-CNN's RoI pooling and Mask R-CNN's RoIAlign: where do the bins really fall?

RoI pooling (Girshick 2015, "Fast R-CNN", Sec. 2.1) rounds the box to whole feature cells and each
bin to whole cells again, so the region it pools snaps to the backbone's ``stride``-pixel grid and
can differ from the proposal by up to a stride; bins come out uneven and may overlap. RoIAlign
(He et al. 2017, "Mask R-CNN", Sec. 3) keeps the exact box and reads each bin at a few bilinearly
interpolated points. ``roi_view`` computes both pictures; ``RoIPoolExplorer`` draws them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.font_manager import FontProperties
from matplotlib.text import Text
from torch import Tensor

from course_lib._checks import check_boxes, check_choice, check_number, check_pair, check_tensor
from course_lib.boxes import box_iou
from course_lib.plotting import show_image
from course_lib.roi import bin_bounds, fast_roi_align, fast_roi_pool, round_half_away
from course_lib.widgets.base import WIDE_LABEL, Explorer, as_box, outline_boxes

ROI_METHODS = ("RoI pool", "RoIAlign")
SAMPLING_RATIO = 2  # RoIAlign's points per bin along each axis (Mask R-CNN uses 2 or adaptive)
MAX_WRITTEN = 10  # pooled grids up to this many columns get their values written on them
VALUE_WIDTH = 5  # characters per written value, spaces included ("0.62" and a space)
CHAR_ADVANCE = 0.64  # DejaVu Sans's digit width, in em (to size the written values)
SMALL_SIDE = 32  # pixels: the explorer opens on a proposal no larger, where the quantization shows
PROPOSAL_COLOR, BIN_COLOR, COVERED_COLOR, POINT_COLOR = "#7fff00", "#ffd700", "#ff4500", "#00e5ff"
TITLE_SIZE = 12  # points, at 100 dpi


def _check_feature_map(feature_map: Tensor, image_size: tuple[int, int], stride: int) -> None:
    check_tensor(feature_map, "feature_map")
    if feature_map.dim() != 3 or not feature_map.is_floating_point():
        raise ValueError(f"feature_map: expected a float Tensor[C, H/stride, W/stride], got shape "
                         f"{tuple(feature_map.shape)} and dtype {feature_map.dtype}")
    expected = [(size // stride, math.ceil(size / stride)) for size in image_size]
    got = tuple(feature_map.shape[1:])
    if any(side not in sides for side, sides in zip(got, expected, strict=True)) or 0 in got:
        raise ValueError(f"feature_map: expected a spatial size of image_size / stride = "
                         f"{image_size[0] / stride:g} x {image_size[1] / stride:g} (floor or ceil), "
                         f"got {got}")


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
    _check_feature_map(feature_map, size, stride)
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
        pooled = fast_roi_pool(chosen[None], [proposal[None]], (out_h, out_w),
                               1 / stride)[0]  # (C or 1, out_h, out_w)
        bins, covered, points = pool_bins, pool_covered, torch.zeros(0, 2)
    else:
        pooled = fast_roi_align(chosen[None], [proposal[None]], (out_h, out_w), 1 / stride,
                                sampling_ratio=SAMPLING_RATIO, aligned=True)[0]  # (C or 1, out_h, out_w)
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
    return torch.stack([col_start.amin(1), row_start.amin(1), col_end.amax(1), row_end.amax(1)],
                       dim=1).float() * stride  # (N, 4)


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
    proposals: Tensor, stride: int, output_size: int | tuple[int, int], map_size: tuple[int, int],
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
    bins = torch.stack([
        xs[:-1][None, :].expand(out_h, out_w), ys[:-1][:, None].expand(out_h, out_w),
        xs[1:][None, :].expand(out_h, out_w), ys[1:][:, None].expand(out_h, out_w),
    ], dim=-1).reshape(-1, 4)  # (out_h * out_w, 4)
    fractions = (torch.arange(out_w * SAMPLING_RATIO) + 0.5) / (out_w * SAMPLING_RATIO)  # (out_w * 2,)
    point_x = x1 + fractions * (x2 - x1)
    fractions = (torch.arange(out_h * SAMPLING_RATIO) + 0.5) / (out_h * SAMPLING_RATIO)  # (out_h * 2,)
    point_y = y1 + fractions * (y2 - y1)
    grid_y, grid_x = torch.meshgrid(point_y, point_x, indexing="ij")  # (out_h * 2, out_w * 2) each
    return bins, torch.stack([grid_x.flatten(), grid_y.flatten()], dim=-1)  # (P, 2)


def _write_values(ax: Axes, values: np.ndarray, middle: float) -> None:
    """Write each value centred on its cell of an ``imshow`` drawn with ``extent=(0, w, h, 0)``.

    Text is the slowest thing matplotlib draws, and a 7x7 grid written value by value (49 texts)
    took half a redraw. So each column is written as two multi-line texts, one in white for the
    values on dark cells and one in black for those on bright cells (a blank line where the other
    colour writes): 14 texts. Each line is centred on its column (``ha="center"``, so the position
    does not depend on how wide the font draws a character; an earlier version wrote rows as
    monospace strings sized from an assumed character width, and the values drifted right), and the
    line spacing is set from the font's measured line height so that consecutive lines are exactly
    one cell apart. The font is sized so that ``VALUE_WIDTH`` characters fit in a cell.
    """
    ax.apply_aspect()  # the axes' final (square-cell) size, to size the font
    rows, cols = values.shape
    if values.size == 0:
        return
    spec = value_format(values)
    cell_points = ax.get_position().width * ax.get_figure().get_figwidth() * 72 / cols
    fontsize = min(cell_points / (VALUE_WIDTH * CHAR_ADVANCE), 9.0)
    figure = ax.get_figure()
    font = FontProperties(size=fontsize)
    cell_pixels = ax.get_position().height * figure.get_figheight() * figure.dpi / rows
    linespacing = _linespacing(figure, font, cell_pixels)
    texts = [[format(float(value), spec) for value in row] for row in values]
    for j in range(cols):
        for color, bright in (("black", True), ("white", False)):
            lines = [texts[i][j] if (values[i, j] > middle) == bright else "" for i in range(rows)]
            if any(lines):
                ax.text(j + 0.5, rows / 2, "\n".join(lines), ha="center", va="center", ma="center",
                        fontproperties=font, linespacing=linespacing, color=color, clip_on=True)


def _linespacing(figure: Any, font: FontProperties, pixels: float) -> float:
    """The ``linespacing`` that puts consecutive lines of a text in ``font`` ``pixels`` apart.

    Measured rather than computed from the font's metrics, whose use differs between matplotlib
    versions: the step between lines (a two-line text's height minus a one-line text's) grows
    linearly with the line spacing, so two measurements give it.
    """
    renderer = figure.canvas.get_renderer()

    def step(spacing: float) -> float:
        heights = [Text(0, 0, text, fontproperties=font, linespacing=spacing, figure=figure)
                   .get_window_extent(renderer).height for text in ("0", "0\n0")]
        return heights[1] - heights[0]

    one, two = step(1.0), step(2.0)
    return 1.0 + (pixels - one) / max(two - one, 1e-6)


def value_format(values: np.ndarray) -> str:
    """The one fixed-point format of a grid's written values: ``".2f"``, ``".1f"`` or ``".0f"``.

    Every cell of a grid is written the same way (``0.62``, ``0.07``, ``0.00``), so that it reads as
    a table; an earlier version chose per value and mixed ``7e-2`` with ``0.94``. Two decimals
    while every value is below 10 in magnitude, then fewer, so that values stay about
    ``VALUE_WIDTH - 1`` characters.
    """
    largest = float(np.abs(values).max()) if values.size else 0.0
    return ".2f" if largest < 9.995 else ".1f" if largest < 99.95 else ".0f"


class RoIPoolExplorer(Explorer):
    """Pick a proposal and see the 7x7 bins RoI pooling and RoIAlign really read.

    Left: the image, the proposal (green), the feature-cell grid around it (faint), the bins
    (yellow; RoI pool's snap to the grid and may overlap) and what they cover (orange, dashed); for
    RoIAlign also its sampling points (cyan). Middle: the chosen feature channel with the proposal in
    feature cells. Right: the pooled ``out_h x out_w`` output of that channel, with its values.
    Middle and right share one colour scale.

    Controls: ``proposal`` (index into ``proposals``), ``method`` ("RoI pool" / "RoIAlign") and
    ``channel`` (one feature channel; ``roi_view`` also offers the mean over channels, which the
    explorer leaves out to keep one slider).

    Args:
        image (Tensor[3, H, W]): the image, floats in [0, 1].
        feature_map (Tensor[C, H/stride, W/stride]): its features (one image, no batch dimension).
        proposals (Tensor[N, 4]): ``xyxy`` proposals in image pixels, at least one.
        stride: image pixels per feature cell.
        output_size: bins per side (an int) or ``(out_h, out_w)``.
        initial_proposal: the index shown first; by default :func:`default_proposal`'s choice, a
            proposal of side <= 32 px whose RoI pool region differs most from it.
    """

    def __init__(self, image: Tensor, feature_map: Tensor, proposals: Tensor, stride: int = 4,
                 output_size: int | tuple[int, int] = 7, initial_proposal: int | None = None) -> None:
        check_tensor(image, "image")
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image: expected a Tensor[3, H, W], got shape {tuple(image.shape)}")
        check_number(stride, "stride", 1, integer=True)
        _check_feature_map(feature_map, tuple(image.shape[1:]), stride)
        check_boxes(proposals, "proposals", allow_degenerate=False)
        if len(proposals) == 0:
            raise ValueError("proposals: expected at least one box, got 0")
        self.image, self.feature_map, self.proposals = image, feature_map, proposals.float()
        self.stride, self.output_size = stride, check_pair(output_size, "output_size", low=1)
        if initial_proposal is None:
            initial_proposal = default_proposal(self.proposals, stride, self.output_size,
                                                tuple(feature_map.shape[1:]))
        check_number(initial_proposal, "initial_proposal", 0, len(proposals) - 1, integer=True)
        controls = {
            "proposal": widgets.IntSlider(value=initial_proposal, min=0, max=len(proposals) - 1,
                                          description="proposal",
                                          continuous_update=True, style=WIDE_LABEL),
            "method": widgets.Dropdown(options=ROI_METHODS, value="RoI pool", description="method",
                                       style=WIDE_LABEL),
            "channel": widgets.IntSlider(value=0, min=0, max=feature_map.shape[0] - 1, description="channel",
                                         continuous_update=True, style=WIDE_LABEL),
        }
        caption = (
            f"<div style='font-size: 0.9em'><span style='color: #4caf00'>▭ proposal</span> &nbsp; "
            f"<span style='color: #b8a000'>▭ bins</span> &nbsp; <span style='color: {COVERED_COLOR}'>"
            f"▭ region the bins cover</span> &nbsp; <span style='color: #00a0b0'>• RoIAlign's "
            f"sampling points</span> &nbsp; faint lines: feature cells ({stride} px)</div>"
        )
        # A photo: a 256-colour PNG is several times smaller.
        super().__init__(controls, num_axes=3, figsize=(10.0, 3.6), dpi=100, caption=caption, palette=True,
                         margins={"left": 0.02, "right": 0.98, "top": 0.9, "bottom": 0.03, "wspace": 0.1})

    def compute(self, proposal: int, method: str, channel: int) -> dict[str, Any]:
        view = roi_view(tuple(self.image.shape[1:]), self.feature_map, self.proposals[proposal],
                        self.stride, self.output_size, method, channel)
        return {**view, "index": proposal}

    def background_key(self, result: dict[str, Any]) -> Any:
        return ("photo", self.output_size)  # the photo and the axes: rasterized once

    def draw_background(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, feature_ax, pooled_ax = ax
        show_image(image_ax, self.image)
        h, w = self.feature_map.shape[1:]
        out_h, out_w = self.output_size
        for axes, (rows, cols) in ((feature_ax, (h, w)), (pooled_ax, (out_h, out_w))):
            axes.set_xlim(0, cols)  # the limits imshow(extent=...) sets, fixed for the redraws
            axes.set_ylim(rows, 0)
            axes.set_aspect("equal")
            axes.set_axis_off()

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, feature_ax, pooled_ax = ax
        stride, proposal = result["stride"], result["proposal"]
        self._cell_grid(image_ax, proposal, result["covered_box"])
        outline_boxes(image_ax, result["bins"], edgecolors=BIN_COLOR, linewidths=0.8, alpha=0.9)
        if len(result["points"]):
            points = result["points"].numpy()
            image_ax.scatter(points[:, 0], points[:, 1], s=3, c=POINT_COLOR, linewidths=0)
        outline_boxes(image_ax, proposal[None], edgecolors=PROPOSAL_COLOR, linewidths=2)
        outline_boxes(image_ax, result["covered_box"][None], edgecolors=COVERED_COLOR, linewidths=1.5,
                      linestyles="--")
        out_h, out_w = result["output_size"]
        image_ax.set_title(f"{out_h}x{out_w} {result['method']} bins", fontsize=TITLE_SIZE)

        feature, pooled = result["feature"], result["pooled"]
        low = min(float(feature.min()), float(pooled.min()))
        high = max(float(feature.max()), float(pooled.max()), low + 1e-6)
        h, w = feature.shape
        feature_ax.imshow(feature.numpy(), extent=(0, w, h, 0), cmap="viridis", vmin=low, vmax=high,
                          interpolation="nearest")
        outline_boxes(feature_ax, result["roi_feature"][None], edgecolors=PROPOSAL_COLOR, linewidths=2)
        if result["method"] == "RoI pool":
            outline_boxes(feature_ax, result["covered_box"][None] / stride, edgecolors=COVERED_COLOR,
                          linewidths=1.5, linestyles="--")
        name = "mean over channels" if result["channel"] is None else f"channel {result['channel']}"
        feature_ax.set_title(f"{name} ({h}x{w} cells)", fontsize=TITLE_SIZE)

        pooled_ax.imshow(pooled.numpy(), extent=(0, out_w, out_h, 0), cmap="viridis", vmin=low, vmax=high,
                         interpolation="nearest")
        if out_w <= MAX_WRITTEN:
            _write_values(pooled_ax, pooled.numpy(), middle=(low + high) / 2)
        pooled_ax.set_title(f"pooled {out_h}x{out_w}", fontsize=TITLE_SIZE)

    def _cell_grid(self, ax: Axes, proposal: Tensor, covered: Tensor) -> None:
        """Faint feature-cell boundaries around the proposal, one cell beyond what the bins cover."""
        stride = self.stride
        height, width = self.image.shape[1:]
        proposal, covered = proposal.tolist(), covered.tolist()
        x1 = max(math.floor(min(proposal[0], covered[0]) / stride) - 1, 0) * stride
        y1 = max(math.floor(min(proposal[1], covered[1]) / stride) - 1, 0) * stride
        x2 = min((math.ceil(max(proposal[2], covered[2]) / stride) + 1) * stride, width)
        y2 = min((math.ceil(max(proposal[3], covered[3]) / stride) + 1) * stride, height)
        segments = [((x, y1), (x, y2)) for x in range(x1, x2 + 1, stride)]
        segments += [((x1, y), (x2, y)) for y in range(y1, y2 + 1, stride)]
        ax.add_collection(LineCollection(segments, colors="white", linewidths=0.4, alpha=0.35))

    def summary(self, result: dict[str, Any]) -> str:
        out_h, out_w = result["output_size"]
        head = (f"proposal {result['index']} of {len(self.proposals)} · {result['method']} · "
                f"{out_h}x{out_w} bins")
        if result["method"] == "RoI pool":
            return (f"{head} snap to the {result['stride']}-px grid: covered region IoU "
                    f"{result['covered_iou']:.2f} with the proposal (sides moved up to "
                    f"{result['max_shift']:.1f} px)")
        return (f"{head} split the proposal exactly, {SAMPLING_RATIO}x{SAMPLING_RATIO} bilinear samples "
                f"each: covered region IoU {result['covered_iou']:.2f} (RoI pool: {result['pool_iou']:.2f})")
