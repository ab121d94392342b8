"""The anchor explorer of chapter 2: which anchors become positives, negatives or ignored.

It wraps ``course_lib.anchors`` through one pure function that the tests check on its own,
``anchor_view`` (the anchors of an image and their RPN labels against one box); the class only
turns control values into arguments and results into matplotlib calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from torch import Tensor

from course_lib._checks import check_number
from course_lib.anchors import generate_anchors, label_anchors
from course_lib.boxes import box_iou
from course_lib.plotting import ANCHOR_STYLES, draw_anchor_grid, draw_boxes
from course_lib.widgets.base import WIDE_LABEL, Explorer, as_box, draw_canvas, plural


def anchor_view(
    gt_box: Sequence[float] | Tensor,
    sizes: Sequence[float],
    aspect_ratios: Sequence[float],
    stride: int,
    image_size: int,
    fg_iou_thresh: float = 0.7,
    bg_iou_thresh: float = 0.3,
) -> dict[str, Any]:
    """Anchors over an image and their RPN labels against one ground-truth box.

    Every ``stride`` pixels, one anchor per (size, aspect ratio); an anchor is positive when its
    IoU with the box is >= ``fg_iou_thresh``, negative when < ``bg_iou_thresh``, ignored in
    between; the best anchor is positive whatever its IoU (Sec. 3.1.2 of Ren et al. 2015,
    "Faster R-CNN"; ``course_lib.anchors.label_anchors``).

    Args:
        gt_box: ``(x1, y1, x2, y2)`` of the object.
        sizes: anchor sides in pixels (sqrt of the area); may be empty.
        aspect_ratios: height / width ratios; may be empty.
        stride: pixels between anchor centres.
        image_size: side of the square image.
        fg_iou_thresh, bg_iou_thresh: the two IoU thresholds, ``bg_iou_thresh <= fg_iou_thresh``.

    Returns:
        dict with ``anchors`` (Tensor[A, 4]), ``labels`` (int64 Tensor[A]: 1, 0, -1), ``ious``
        (Tensor[A], IoU with the box), ``counts`` (``{"positive", "negative", "ignored"}``),
        ``num_low_quality`` (positives below ``fg_iou_thresh``, kept by the best-match rule),
        ``best_iou`` (0.0 without anchors), ``num_anchors``, ``gt_box``, the two thresholds.
    """
    gt_box = as_box(gt_box, "gt_box")
    check_number(stride, "stride", 1, integer=True)
    check_number(image_size, "image_size", 1, integer=True)
    check_number(fg_iou_thresh, "fg_iou_thresh", 0.0, 1.0)
    check_number(bg_iou_thresh, "bg_iou_thresh", 0.0, 1.0)
    if bg_iou_thresh > fg_iou_thresh:
        raise ValueError(
            f"bg_iou_thresh: expected a value <= fg_iou_thresh={fg_iou_thresh}, got {bg_iou_thresh}"
        )
    for value in (*sizes, *aspect_ratios):
        check_number(value, "sizes and aspect_ratios", 1e-6)
    if len(sizes) and len(aspect_ratios):
        anchors = _anchors(sizes, aspect_ratios, stride, image_size)  # (A, 4)
        labels, _ = label_anchors(anchors, gt_box[None], fg_iou_thresh, bg_iou_thresh, True)
        ious = box_iou(anchors, gt_box[None])[:, 0]  # (A,)
    else:
        anchors, labels, ious = torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), torch.zeros(0)
    positive = labels == 1
    return {
        "anchors": anchors,
        "labels": labels,
        "ious": ious,
        "counts": {"positive": int(positive.sum()), "negative": int((labels == 0).sum()),
                   "ignored": int((labels == -1).sum())},
        "num_low_quality": int((positive & (ious < fg_iou_thresh)).sum()),
        "best_iou": float(ious.max()) if ious.numel() else 0.0,
        "num_anchors": int(anchors.shape[0]),
        "gt_box": gt_box.tolist(),
        "fg_iou_thresh": float(fg_iou_thresh),
        "bg_iou_thresh": float(bg_iou_thresh),
    }


def _anchors(sizes: Sequence[float], aspect_ratios: Sequence[float], stride: int, image_size: int) -> Tensor:
    """All anchors of a square image: one feature map of ``ceil(image_size / stride)`` cells a side,
    anchors at each cell's top-left pixel as in torchvision (``generate_anchors``' default)."""
    return generate_anchors(sizes, aspect_ratios, stride, math.ceil(image_size / stride))


class AnchorExplorer(Explorer):
    """Change anchor sizes, ratios, stride, the two IoU thresholds and the object's box; see the labels.

    Controls: ``sizes`` and ``aspect_ratios`` (multiple choice: shift- or ctrl-click), ``stride``,
    ``fg_iou_thresh`` ("positive IoU ≥"), ``bg_iou_thresh`` ("negative IoU <", pulled down to
    stay <= the positive threshold), and ``x``, ``y``, ``w``, ``h`` of the ground-truth box.

    Args:
        gt_box: the initial object box, ``xyxy``.
        sizes, aspect_ratios, stride: the initial anchor settings.
        image_size: side of the square image.
        image (Tensor[3, H, W], optional): drawn under the anchors.
    """

    SIZE_CHOICES = (8, 16, 32, 64, 128)
    RATIO_CHOICES = (0.25, 0.5, 1.0, 2.0, 4.0)
    STRIDE_CHOICES = (8, 16, 32)

    def __init__(
        self,
        gt_box: Sequence[float] = (40, 30, 90, 100),
        sizes: Sequence[int] = (16, 32, 64),
        aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
        stride: int = 16,
        image_size: int = 128,
        image: Tensor | None = None,
    ) -> None:
        check_number(image_size, "image_size", 8, integer=True)
        x1, y1, x2, y2 = (round(v) for v in as_box(gt_box, "gt_box").tolist())
        self.image_size, self.image = image_size, image

        def choice(name: str, choices: tuple, value: Sequence) -> widgets.SelectMultiple:
            options = tuple(sorted(set(choices) | set(value)))
            return widgets.SelectMultiple(options=options, value=tuple(value), rows=len(options),
                                          description=name, style=WIDE_LABEL)

        def threshold(name: str, value: float) -> widgets.FloatSlider:
            return widgets.FloatSlider(value=value, min=0.0, max=1.0, step=0.05, description=name,
                                       readout_format=".2f", continuous_update=True, style=WIDE_LABEL)

        def pixels(name: str, value: int, low: int, high: int) -> widgets.IntSlider:
            return widgets.IntSlider(value=min(max(value, low), high), min=low, max=high, description=name,
                                     continuous_update=True, style=WIDE_LABEL)

        controls = {
            "sizes": choice("sizes", self.SIZE_CHOICES, sizes),
            "aspect_ratios": choice("ratios", self.RATIO_CHOICES, aspect_ratios),
            "stride": widgets.Dropdown(options=sorted(set(self.STRIDE_CHOICES) | {stride}), value=stride,
                                       description="stride", style=WIDE_LABEL),
            "fg_iou_thresh": threshold("positive IoU ≥", 0.7),
            "bg_iou_thresh": threshold("negative IoU <", 0.3),
            "x": pixels("x", x1, 0, image_size - 1),
            "y": pixels("y", y1, 0, image_size - 1),
            "w": pixels("w", x2 - x1, 1, image_size),
            "h": pixels("h", y2 - y1, 1, image_size),
        }
        key = " &nbsp; ".join(
            f"<span style='color: {style['color']}'>▭ {style['name']}</span>"
            for style in ANCHOR_STYLES.values()
        )
        caption = f"<div style='font-size: 0.9em'>{key} &nbsp; ▭ white: the object's box</div>"
        super().__init__(controls, caption=caption)

    def compute(
        self, sizes: tuple, aspect_ratios: tuple, stride: int, fg_iou_thresh: float, bg_iou_thresh: float,
        x: int, y: int, w: int, h: int,
    ) -> dict[str, Any]:
        return anchor_view(
            (x, y, x + w, y + h), list(sizes), list(aspect_ratios), stride, self.image_size,
            round(fg_iou_thresh, 4), round(min(bg_iou_thresh, fg_iou_thresh), 4),
        )

    def sync_controls(self, result: dict[str, Any]) -> bool:
        background = self.controls["bg_iou_thresh"]
        if background.value > self.controls["fg_iou_thresh"].value:
            background.value = self.controls["fg_iou_thresh"].value
        return False  # compute already used min(bg, fg)

    def background_key(self, result: dict[str, Any]) -> Any:
        """The view's margin: the image is rasterized again only when the anchors reach further out."""
        # Anchors reach past the image border: show a little of what lies beyond it.
        margin = 0.0
        if result["num_anchors"]:
            anchors = result["anchors"]
            margin = max(-float(anchors.min()), float(anchors.max()) - self.image_size, 0.0)
            margin = min(margin, self.image_size / 8)
        return margin

    def draw_background(self, result: dict[str, Any], ax: Axes) -> None:
        draw_canvas(ax, self.image, result["anchors"], size=self.image_size)
        margin = self.background_key(result)
        ax.set_xlim(-margin, self.image_size + margin)
        ax.set_ylim(self.image_size + margin, -margin)

    def draw(self, result: dict[str, Any], ax: Axes) -> None:
        draw_anchor_grid(ax, result["anchors"], result["labels"])
        if ax.get_legend() is not None:
            # The caption is the colour key and the status line counts: a legend redrawn at every
            # move would cost as much as the thousands of anchors.
            ax.get_legend().remove()
        draw_boxes(ax, torch.tensor([result["gt_box"]]), color="white", linewidth=3)

    def summary(self, result: dict[str, Any]) -> str:
        counts = result["counts"]
        text = (f"positive {counts['positive']}, negative {counts['negative']}, ignored {counts['ignored']} "
                f"of {plural(result['num_anchors'], 'anchor')} "
                f"(positive: IoU ≥ {result['fg_iou_thresh']:.2f}, "
                f"negative: IoU < {result['bg_iou_thresh']:.2f}); best IoU {result['best_iou']:.2f}")
        if result["num_low_quality"]:
            text += f"; {result['num_low_quality']} positive only as the best match"
        return text
