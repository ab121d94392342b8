"""Explorer for Fast R-CNN's RoI pooling and Mask R-CNN's RoIAlign: where do the bins really fall?

RoI pooling (Girshick 2015, "Fast R-CNN", Sec. 2.1) rounds the box to whole feature cells and each
bin to whole cells again, so the region it pools snaps to the backbone's ``stride``-pixel grid and
can differ from the proposal by up to a stride; bins come out uneven and may overlap. RoIAlign
(He et al. 2017, "Mask R-CNN", Sec. 3) keeps the exact box and reads each bin at a few bilinearly
interpolated points. ``roi_view`` computes both pictures; ``RoIPoolExplorer`` draws them.

The computing lives in ``course_lib.widgets.roi_geometry`` (``roi_view``, ``pooled_regions``,
``quantization_iou``, ``default_proposal``) and the writing of the pooled values in
``course_lib.widgets.cell_values`` (``value_format``); this module re-exports them.
"""

from __future__ import annotations

import math
from typing import Any

import ipywidgets as widgets
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from torch import Tensor

from course_lib._checks import check_boxes, check_number, check_pair, check_tensor
from course_lib.plotting import show_image
from course_lib.widgets.base import WIDE_LABEL, Explorer, outline_boxes
from course_lib.widgets.cell_values import CHAR_ADVANCE, VALUE_WIDTH, value_format, write_values
from course_lib.widgets.roi_geometry import (
    ROI_METHODS,
    SAMPLING_RATIO,
    SMALL_SIDE,
    check_feature_map,
    default_proposal,
    pooled_regions,
    quantization_iou,
    roi_view,
)

__all__ = [
    "BIN_COLOR",
    "CHAR_ADVANCE",
    "COVERED_COLOR",
    "MAX_WRITTEN",
    "POINT_COLOR",
    "PROPOSAL_COLOR",
    "ROI_METHODS",
    "SAMPLING_RATIO",
    "SMALL_SIDE",
    "TITLE_SIZE",
    "VALUE_WIDTH",
    "RoIPoolExplorer",
    "default_proposal",
    "pooled_regions",
    "quantization_iou",
    "roi_view",
    "value_format",
]

MAX_WRITTEN = 10  # pooled grids up to this many columns get their values written on them
PROPOSAL_COLOR, BIN_COLOR, COVERED_COLOR, POINT_COLOR = "#7fff00", "#ffd700", "#ff4500", "#00e5ff"
TITLE_SIZE = 12  # points, at 100 dpi


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

    def __init__(
        self,
        image: Tensor,
        feature_map: Tensor,
        proposals: Tensor,
        stride: int = 4,
        output_size: int | tuple[int, int] = 7,
        initial_proposal: int | None = None,
    ) -> None:
        check_tensor(image, "image")
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image: expected a Tensor[3, H, W], got shape {tuple(image.shape)}")
        check_number(stride, "stride", 1, integer=True)
        check_feature_map(feature_map, tuple(image.shape[1:]), stride)
        check_boxes(proposals, "proposals", allow_degenerate=False)
        if len(proposals) == 0:
            raise ValueError("proposals: expected at least one box, got 0")
        self.image, self.feature_map, self.proposals = image, feature_map, proposals.float()
        self.stride, self.output_size = stride, check_pair(output_size, "output_size", low=1)
        if initial_proposal is None:
            initial_proposal = default_proposal(
                self.proposals, stride, self.output_size, tuple(feature_map.shape[1:])
            )
        check_number(initial_proposal, "initial_proposal", 0, len(proposals) - 1, integer=True)
        controls = {
            "proposal": widgets.IntSlider(
                value=initial_proposal,
                min=0,
                max=len(proposals) - 1,
                description="proposal",
                continuous_update=True,
                style=WIDE_LABEL,
            ),
            "method": widgets.Dropdown(
                options=ROI_METHODS, value="RoI pool", description="method", style=WIDE_LABEL
            ),
            "channel": widgets.IntSlider(
                value=0,
                min=0,
                max=feature_map.shape[0] - 1,
                description="channel",
                continuous_update=True,
                style=WIDE_LABEL,
            ),
        }
        caption = (
            f"<div style='font-size: 0.9em'><span style='color: #4caf00'>▭ proposal</span> &nbsp; "
            f"<span style='color: #b8a000'>▭ bins</span> &nbsp; <span style='color: {COVERED_COLOR}'>"
            f"▭ region the bins cover</span> &nbsp; <span style='color: #00a0b0'>• RoIAlign's "
            f"sampling points</span> &nbsp; faint lines: feature cells ({stride} px)</div>"
        )
        # A photo: a 256-colour PNG is several times smaller.
        super().__init__(
            controls,
            num_axes=3,
            figsize=(10.0, 3.6),
            dpi=100,
            caption=caption,
            palette=True,
            margins={"left": 0.02, "right": 0.98, "top": 0.9, "bottom": 0.03, "wspace": 0.1},
        )

    def compute(self, proposal: int, method: str, channel: int) -> dict[str, Any]:
        view = roi_view(
            tuple(self.image.shape[1:]),
            self.feature_map,
            self.proposals[proposal],
            self.stride,
            self.output_size,
            method,
            channel,
        )
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
        outline_boxes(
            image_ax, result["covered_box"][None], edgecolors=COVERED_COLOR, linewidths=1.5, linestyles="--"
        )
        out_h, out_w = result["output_size"]
        image_ax.set_title(f"{out_h}x{out_w} {result['method']} bins", fontsize=TITLE_SIZE)

        feature, pooled = result["feature"], result["pooled"]
        low = min(float(feature.min()), float(pooled.min()))
        high = max(float(feature.max()), float(pooled.max()), low + 1e-6)
        h, w = feature.shape
        feature_ax.imshow(
            feature.numpy(), extent=(0, w, h, 0), cmap="viridis", vmin=low, vmax=high, interpolation="nearest"
        )
        outline_boxes(feature_ax, result["roi_feature"][None], edgecolors=PROPOSAL_COLOR, linewidths=2)
        if result["method"] == "RoI pool":
            outline_boxes(
                feature_ax,
                result["covered_box"][None] / stride,
                edgecolors=COVERED_COLOR,
                linewidths=1.5,
                linestyles="--",
            )
        name = "mean over channels" if result["channel"] is None else f"channel {result['channel']}"
        feature_ax.set_title(f"{name} ({h}x{w} cells)", fontsize=TITLE_SIZE)

        pooled_ax.imshow(
            pooled.numpy(),
            extent=(0, out_w, out_h, 0),
            cmap="viridis",
            vmin=low,
            vmax=high,
            interpolation="nearest",
        )
        if out_w <= MAX_WRITTEN:
            write_values(pooled_ax, pooled.numpy(), middle=(low + high) / 2)
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
        head = (
            f"proposal {result['index']} of {len(self.proposals)} · {result['method']} · {out_h}x{out_w} bins"
        )
        if result["method"] == "RoI pool":
            return (
                f"{head} snap to the {result['stride']}-px grid: covered region IoU "
                f"{result['covered_iou']:.2f} with the proposal (sides moved up to "
                f"{result['max_shift']:.1f} px)"
            )
        return (
            f"{head} split the proposal exactly, {SAMPLING_RATIO}x{SAMPLING_RATIO} bilinear samples "
            f"each: covered region IoU {result['covered_iou']:.2f} (RoI pool: {result['pool_iou']:.2f})"
        )
