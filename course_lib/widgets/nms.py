"""The NMS explorer of chapter 2: greedy non-maximum suppression step by step, and Soft-NMS.

It wraps ``course_lib.nms`` through one pure function that the tests check on its own,
``nms_view`` (the kept boxes and the state of every box at one step of the greedy loop); the class
only turns control values into arguments and results into matplotlib calls. ``BOX_STYLES`` says
how each state is drawn (notebook 02 uses it for its own figures).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from torch import Tensor

from course_lib._checks import check_boxes, check_choice, check_number, check_scores
from course_lib.nms import fast_nms, nms_steps, soft_nms
from course_lib.plotting import draw_boxes
from course_lib.widgets.base import WIDE_LABEL, Explorer, draw_canvas, plural

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
    kept = fast_nms(boxes, scores, iou_threshold)
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
        text = (f"kept {result['num_kept']} of {plural(result['num_boxes'], 'box', 'boxes')} "
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
