"""Explorers for chapter 2 (anchors and NMS): which anchors become positives, and NMS step by step.

Each explorer wraps a pure function (``anchor_view``, ``nms_view``) that the tests check on its
own; the classes only turn control values into arguments and results into matplotlib calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from torch import Tensor

from course_lib._checks import check_boxes, check_choice, check_number, check_scores
from course_lib.anchors import generate_anchors, label_anchors
from course_lib.boxes import box_iou
from course_lib.nms import nms, nms_steps, soft_nms
from course_lib.plotting import ANCHOR_STYLES, draw_anchor_grid, draw_boxes
from course_lib.widgets.base import WIDE_LABEL, Explorer, as_box, draw_canvas

NMS_METHODS = ("greedy", "soft-linear", "soft-gaussian")
# How each box looks at a step of greedy NMS; drawn in this order, so the highlights end on top.
BOX_STYLES = {
    "suppressed": {"color": "0.6", "linestyle": ":", "linewidth": 1.0, "alpha": 0.6},  # removed earlier
    "remaining": {"color": "#1f77b4", "linestyle": "-", "linewidth": 1.0, "alpha": 0.8},
    "removed": {"color": "#d62728", "linestyle": "--", "linewidth": 2.0, "alpha": 1.0},  # at this step
    "kept": {"color": "#2ca02c", "linestyle": "-", "linewidth": 2.0, "alpha": 1.0},  # selected before
    "selected": {"color": "#7fff00", "linestyle": "-", "linewidth": 3.5, "alpha": 1.0},  # at this step
}


MAX_TAGS = 10  # text is the slowest thing matplotlib draws: tag only the boxes that matter most
NMS_KEY = {
    "selected": "selected at this step (tag: score)",
    "removed": "removed at this step (tag: IoU with the selected box)",
    "kept": "kept at an earlier step",
    "remaining": "still a candidate",
    "suppressed": "removed earlier",
}


def _colour_key(labels: dict[str, str]) -> str:
    """HTML for a one-line colour key of ``BOX_STYLES`` (shown under the figure, drawn once)."""
    items = [
        f"<span style='border-bottom: 3px {'dashed' if BOX_STYLES[state]['linestyle'] != '-' else 'solid'} "
        f"{BOX_STYLES[state]['color']}; margin-right: 1em'>{text}</span>"
        for state, text in labels.items()
    ]
    return "<div style='font-size: 0.9em'>" + "".join(items) + "</div>"


# --------------------------------------------------------------------------------------------
# Non-maximum suppression
# --------------------------------------------------------------------------------------------
def noisy_detections(
    gt_boxes: Tensor, boxes_per_object: int = 6, jitter: float = 0.1, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """A detector's raw output for NMS demos: several jittered, scored copies of each object's box.

    Copy ``k`` of a box has its centre moved and its size scaled by Gaussian noise of standard
    deviation ``jitter`` (relative to the box size; the first copy gets a fifth of it), and a score
    that grows with its IoU with the true box, as a trained detector's would. Deterministic.

    Args:
        gt_boxes (Tensor[M, 4]): ``xyxy`` boxes of the objects.
        boxes_per_object: copies per object (K).
        jitter: relative noise, >= 0.
        seed: seed of the noise.

    Returns:
        ``(boxes, scores)``: Tensor[M * K, 4] ``xyxy`` boxes (object after object) and Tensor[M * K]
        scores in (0, 1).
    """
    check_boxes(gt_boxes, "gt_boxes", allow_degenerate=False)
    check_number(boxes_per_object, "boxes_per_object", 1, integer=True)
    check_number(jitter, "jitter", 0.0)
    generator = torch.Generator().manual_seed(seed)
    num_objects, K = gt_boxes.shape[0], boxes_per_object
    gt_boxes = gt_boxes.float()
    centers = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2  # (M, 2)
    sizes = (gt_boxes[:, 2:] - gt_boxes[:, :2]).clamp(min=1.0)  # (M, 2)
    noise = torch.randn(num_objects, K, 4, generator=generator) * jitter  # (M, K, 4)
    noise[:, 0] /= 5  # one good detection per object
    new_centers = centers[:, None] + noise[..., :2] * sizes[:, None]  # (M, K, 2)
    new_sizes = sizes[:, None] * noise[..., 2:].exp()  # (M, K, 2)
    boxes = torch.cat([new_centers - new_sizes / 2, new_centers + new_sizes / 2], dim=-1)  # (M, K, 4)
    ious = torch.zeros(num_objects, K)  # (M, K) IoU of each copy with its own object
    for m in range(num_objects):
        ious[m] = box_iou(boxes[m], gt_boxes[m, None])[:, 0]
    confidence = torch.rand(num_objects, K, generator=generator) * 0.2 + 0.75  # (M, K)
    scores = (confidence * (0.3 + 0.7 * ious)).clamp(0.01, 0.99)  # (M, K)
    return boxes.reshape(-1, 4), scores.reshape(-1)


def nms_view(
    boxes: Tensor,
    scores: Tensor,
    iou_threshold: float,
    step: int | None = None,
    method: str = "greedy",
) -> dict[str, Any]:
    """What the NMS figure shows: the kept boxes, and the state of every box at one greedy step.

    Step ``k`` of greedy NMS (the lecture's loop, ``course_lib.nms.nms_steps``) selects the best
    remaining box, compares it with the other remaining boxes and removes those with IoU above
    ``iou_threshold``. ``step=0`` shows the input, ``step=k`` the state right after step ``k``;
    ``None`` (or anything past the last step) means the last step, i.e. the final result.
    Soft-NMS (Bodla et al. 2017) has no such steps: it lowers scores instead of removing boxes.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes.
        scores (Tensor[N]): their scores.
        iou_threshold: in [0, 1] (the soft-gaussian method does not use it).
        step: the greedy step to show, clamped to ``[0, num_steps]``.
        method: ``"greedy"``, ``"soft-linear"`` or ``"soft-gaussian"``.

    Returns:
        dict with ``kept`` (int64 Tensor[K], as ``nms``/``soft_nms`` return), ``num_kept``,
        ``num_boxes``, ``scores`` (Tensor[N]: the input scores, or for soft-NMS the decayed
        scores, 0 for dropped boxes), ``steps`` (``nms_steps``' list; empty for soft-NMS),
        ``num_steps``, ``step`` (after clamping), ``states`` (a key of ``BOX_STYLES`` per box),
        ``selected`` (int or None), ``ious`` (Tensor[N], IoU with the selected box, 0 elsewhere),
        ``removed`` (int64 Tensor, removed at this step), ``method``, ``iou_threshold``.
    """
    check_boxes(boxes, "boxes")
    check_scores(scores, boxes.shape[0], "scores")
    check_number(iou_threshold, "iou_threshold", 0.0, 1.0)
    check_choice(method, NMS_METHODS, "method")
    if step is not None:
        check_number(step, "step", 0, integer=True)
    num_boxes = boxes.shape[0]
    result = {"num_boxes": num_boxes, "method": method, "iou_threshold": float(iou_threshold),
              "selected": None, "ious": torch.zeros(num_boxes), "removed": torch.empty(0, dtype=torch.int64)}
    if method != "greedy":
        kept, kept_scores = soft_nms(boxes, scores, iou_threshold=iou_threshold, method=method[len("soft-"):])
        new_scores = torch.zeros(num_boxes, dtype=kept_scores.dtype)
        new_scores[kept] = kept_scores
        states = ["suppressed"] * num_boxes
        for index in kept.tolist():
            states[index] = "kept"
        return {**result, "kept": kept, "num_kept": int(kept.numel()), "scores": new_scores, "steps": [],
                "num_steps": 0, "step": 0, "states": states}

    steps = nms_steps(boxes, scores, iou_threshold)
    kept = nms(boxes, scores, iou_threshold)
    step = len(steps) if step is None else min(step, len(steps))
    states = ["remaining"] * num_boxes
    for done in steps[:step]:  # replay the first `step` steps
        states[done["selected"]] = "kept"
        for index in done["removed"].tolist():
            states[index] = "suppressed"
    if step > 0:
        current = steps[step - 1]
        states[current["selected"]] = "selected"
        for index in current["removed"].tolist():
            states[index] = "removed"
        ious = torch.zeros(num_boxes)
        ious[current["candidates"]] = current["ious"].float()
        result.update(selected=current["selected"], ious=ious, removed=current["removed"])
    return {**result, "kept": kept, "num_kept": int(kept.numel()), "scores": scores, "steps": steps,
            "num_steps": len(steps), "step": step, "states": states}


class NMSExplorer(Explorer):
    """Move the IoU threshold and step through greedy NMS; switch to Soft-NMS.

    Controls: ``iou_threshold`` ("IoU threshold", 0 to 1), ``step`` (0 = the input, then one
    step of the greedy loop each; it follows the last step while it sits at the end) and
    ``method`` (greedy, soft-linear, soft-gaussian). The status reads ``kept k of n boxes ...``.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes, e.g. a detector's output before NMS.
        scores (Tensor[N]): their scores.
        image (Tensor[3, H, W], optional): drawn under the boxes.
    """

    def __init__(self, boxes: Tensor, scores: Tensor, image: Tensor | None = None) -> None:
        check_boxes(boxes, "boxes")
        check_scores(scores, boxes.shape[0], "scores")
        self.boxes, self.scores, self.image = boxes, scores, image
        controls = {
            "iou_threshold": widgets.FloatSlider(
                value=0.5, min=0.0, max=1.0, step=0.05, description="IoU threshold",
                continuous_update=True, readout_format=".2f", style=WIDE_LABEL,
            ),
            # Starts past the end: nms_view clamps it to the last step, sync_controls sets the range.
            "step": widgets.IntSlider(value=boxes.shape[0], min=0, max=boxes.shape[0], description="step",
                                      continuous_update=True, style=WIDE_LABEL),
            "method": widgets.Dropdown(options=NMS_METHODS, value="greedy", description="method",
                                       style=WIDE_LABEL),
        }
        super().__init__(controls, caption=_colour_key(NMS_KEY))

    def compute(self, iou_threshold: float, step: int, method: str) -> dict[str, Any]:
        # Slider floats such as 0.35000000000000003 are rounded so a threshold reads as it shows.
        return nms_view(self.boxes, self.scores, round(iou_threshold, 4), step, method)

    def sync_controls(self, result: dict[str, Any]) -> bool:
        slider = self.controls["step"]
        at_end = slider.value >= slider.max  # it was showing the final result: keep showing it
        with slider.hold_sync():
            slider.max = result["num_steps"]
            slider.disabled = result["method"] != "greedy"
            if at_end:
                slider.value = result["num_steps"]
        return slider.value != result["step"]

    def draw(self, result: dict[str, Any], ax: Axes) -> None:
        draw_canvas(ax, self.image, self.boxes)
        if result["method"] != "greedy":
            self._draw_soft(result, ax)
            return
        final = result["step"] == result["num_steps"]
        for state, style in BOX_STYLES.items():
            indices = [i for i, s in enumerate(result["states"]) if s == state]
            if not indices:
                continue
            index = torch.tensor(indices)
            # Tag only the few boxes the eye should read: the kept ones at the end, the selected
            # box (its score) and the removed ones (their IoU with it).
            if state == "removed":  # tagged "IoU 0.62"
                tags = {"scores": result["ious"][index], "labels": [0] * len(indices), "class_names": ["IoU"]}
            elif state == "selected" or (state == "kept" and final):
                tags = {"scores": result["scores"][index]}
            else:
                tags = {}
            draw_boxes(ax, self.boxes[index], **tags, **style, max_tags=MAX_TAGS)

    def _draw_soft(self, result: dict[str, Any], ax: Axes) -> None:
        scores = result["scores"]
        top = float(scores.max()) if scores.numel() and scores.max() > 0 else 1.0
        for index in range(result["num_boxes"]):
            # Fade each box with its decayed score: Soft-NMS lowers scores, it does not delete boxes.
            alpha = max(float(scores[index]) / top, 0.05)
            draw_boxes(ax, self.boxes[index, None], color="#2ca02c", linewidth=2, alpha=alpha)
        top_five = result["kept"][:5]
        draw_boxes(ax, self.boxes[top_five], scores=scores[top_five], color="#2ca02c")

    def summary(self, result: dict[str, Any]) -> str:
        text = (f"kept {result['num_kept']} of {result['num_boxes']} boxes "
                f"({result['method']}, IoU threshold {result['iou_threshold']:.2f})")
        if result["method"] == "soft-gaussian":
            return text + " · soft-gaussian decays every overlap (sigma 0.5); the threshold is not used"
        if result["method"] != "greedy":
            return text + " · boxes are dropped only when their decayed score falls below 0.001"
        if result["step"] == 0:
            return text + f" · step 0 of {result['num_steps']}: nothing selected yet"
        selected = result["selected"]
        return (text + f" · step {result['step']} of {result['num_steps']}: box {selected} "
                f"(score {float(result['scores'][selected]):.2f}) selected, "
                f"{result['removed'].numel()} removed")


# --------------------------------------------------------------------------------------------
# Anchors
# --------------------------------------------------------------------------------------------
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

    def draw(self, result: dict[str, Any], ax: Axes) -> None:
        draw_canvas(ax, self.image, result["anchors"], size=self.image_size)
        draw_anchor_grid(ax, result["anchors"], result["labels"])
        draw_boxes(ax, torch.tensor([result["gt_box"]]), color="white", linewidth=3)
        # Anchors reach past the image border: show a little of what lies beyond it.
        margin = 0.0
        if result["num_anchors"]:
            anchors = result["anchors"]
            margin = max(-float(anchors.min()), float(anchors.max()) - self.image_size, 0.0)
            margin = min(margin, self.image_size / 8)
        ax.set_xlim(-margin, self.image_size + margin)
        ax.set_ylim(self.image_size + margin, -margin)

    def summary(self, result: dict[str, Any]) -> str:
        counts = result["counts"]
        text = (f"positive {counts['positive']}, negative {counts['negative']}, ignored {counts['ignored']} "
                f"of {result['num_anchors']} anchors (positive: IoU ≥ {result['fg_iou_thresh']:.2f}, "
                f"negative: IoU < {result['bg_iou_thresh']:.2f}); best IoU {result['best_iou']:.2f}")
        if result["num_low_quality"]:
            text += f"; {result['num_low_quality']} positive only as the best match"
        return text
