"""Explorers for chapter 1 (boxes and evaluation): IoU / GIoU of two boxes, and AP at an IoU threshold.

Each explorer wraps a pure function (``iou_view``, ``ap_view``) that the tests check on its own;
the classes only turn slider values into arguments and results into matplotlib calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from torch import Tensor

from course_lib import metrics
from course_lib._checks import check_boxes, check_number, check_scores
from course_lib.boxes import box_iou, generalized_box_iou
from course_lib.plotting import draw_boxes
from course_lib.widgets.base import WIDE_LABEL, Explorer, as_box, draw_canvas, plural

GT_COLOR, TP_COLOR, FP_COLOR = "white", "#2ca02c", "#d62728"


def iou_view(box_a: Sequence[float] | Tensor, box_b: Sequence[float] | Tensor) -> dict[str, Any]:
    """Everything the IoU figure shows for two ``xyxy`` boxes.

    IoU = |A ∩ B| / |A ∪ B|; GIoU = IoU - |C \\ (A ∪ B)| / |C| with C the smallest enclosing box
    (Eq. 1 and Alg. 1 of Rezatofighi et al. 2019, "Generalized Intersection over Union").

    Args:
        box_a, box_b: ``(x1, y1, x2, y2)`` with positive width and height.

    Returns:
        dict with ``iou`` and ``giou`` (floats, from ``course_lib.boxes``), ``intersection_box``
        (a list of 4 floats, or None when the boxes do not overlap), ``enclosing_box``,
        ``intersection_area``, ``union_area`` and ``enclosing_area``.
    """
    box_a, box_b = as_box(box_a, "box_a"), as_box(box_b, "box_b")
    top_left, bottom_right = torch.maximum(box_a[:2], box_b[:2]), torch.minimum(box_a[2:], box_b[2:])
    overlaps = bool((bottom_right > top_left).all())
    intersection_area = float((bottom_right - top_left).prod()) if overlaps else 0.0
    area_a, area_b = float((box_a[2:] - box_a[:2]).prod()), float((box_b[2:] - box_b[:2]).prod())
    enclosing = torch.cat([torch.minimum(box_a[:2], box_b[:2]), torch.maximum(box_a[2:], box_b[2:])])
    return {
        "iou": float(box_iou(box_a[None], box_b[None])[0, 0]),
        "giou": float(generalized_box_iou(box_a[None], box_b[None])[0, 0]),
        "intersection_box": torch.cat([top_left, bottom_right]).tolist() if overlaps else None,
        "enclosing_box": enclosing.tolist(),
        "intersection_area": intersection_area,
        "union_area": area_a + area_b - intersection_area,
        "enclosing_area": float((enclosing[2:] - enclosing[:2]).prod()),
    }


class IoUExplorer(Explorer):
    """Move box B over a fixed box A and watch IoU and GIoU (sliders x, y, w, h of box B).

    Args:
        box_a: the fixed box, ``xyxy`` in pixels.
        image_size: the side of the square canvas, in pixels.
    """

    def __init__(self, box_a: Sequence[float] = (20, 20, 70, 70), image_size: int = 128) -> None:
        check_number(image_size, "image_size", 8, integer=True)
        self.box_a = as_box(box_a, "box_a").tolist()
        self.image_size = image_size

        def slider(name: str, value: int, low: int) -> widgets.IntSlider:
            return widgets.IntSlider(value=value, min=low, max=image_size, description=name,
                                     continuous_update=True, style=WIDE_LABEL)

        x1, y1, x2, y2 = self.box_a
        width, height = round(x2 - x1), round(y2 - y1)
        start = min(round(x1 + width / 2), image_size - 1)
        super().__init__({
            "x": slider("x", start, 0), "y": slider("y", min(round(y1 + height / 2), image_size - 1), 0),
            "w": slider("w", max(width, 1), 1), "h": slider("h", max(height, 1), 1),
        })

    def compute(self, x: int, y: int, w: int, h: int) -> dict[str, Any]:
        result = iou_view(self.box_a, (x, y, x + w, y + h))
        result["box_a"], result["box_b"] = self.box_a, [float(x), float(y), float(x + w), float(y + h)]
        return result

    def draw(self, result: dict[str, Any], ax: Axes) -> None:
        size = self.image_size
        ax.set_xlim(0, size)
        ax.set_ylim(size, 0)  # image coordinates: y grows downwards
        ax.set_aspect("equal")
        ax.set_facecolor("0.95")
        ax.set_xticks([])  # ticks are the slowest part of a redraw; the sliders show the numbers
        ax.set_yticks([])
        (ex1, ey1, ex2, ey2) = result["enclosing_box"]
        ax.add_patch(Rectangle((ex1, ey1), ex2 - ex1, ey2 - ey1, fill=False, edgecolor="0.4",
                               linestyle="--", linewidth=1.5, label="enclosing box C (GIoU)"))
        if result["intersection_box"] is not None:
            ix1, iy1, ix2, iy2 = result["intersection_box"]
            ax.add_patch(Rectangle((ix1, iy1), ix2 - ix1, iy2 - iy1, facecolor="#9467bd", alpha=0.5,
                                   edgecolor="none", label="A ∩ B"))
        draw_boxes(ax, torch.tensor([result["box_a"]]), color="#1f77b4", linewidth=2.5)
        draw_boxes(ax, torch.tensor([result["box_b"]]), color="#ff7f0e", linewidth=2.5)
        ax.text(result["box_a"][0] + 1, result["box_a"][1] + 1, "A", color="#1f77b4", va="top", fontsize=12)
        ax.text(result["box_b"][0] + 1, result["box_b"][1] + 1, "B", color="#ff7f0e", va="top", fontsize=12)
        ax.set_title(f"IoU = {result['iou']:.3f}   GIoU = {result['giou']:.3f}")
        ax.legend(loc="lower right", fontsize=9)

    def summary(self, result: dict[str, Any]) -> str:
        return (f"IoU = {result['iou']:.3f}, GIoU = {result['giou']:.3f} "
                f"(intersection {result['intersection_area']:.0f} px², union {result['union_area']:.0f} px²)")


def ap_view(
    pred_boxes: Tensor, pred_scores: Tensor, gt_boxes: Tensor, iou_threshold: float
) -> dict[str, Any]:
    """Match detections of one class in one image to the ground truth and compute the PR curve and AP.

    A detection is a true positive when it has IoU >= ``iou_threshold`` with a ground-truth box
    not already taken by a higher-scoring detection (Sec. 4.2 of Everingham et al. 2010, "The
    PASCAL VOC Challenge"; COCO uses the same greedy matching).

    Args:
        pred_boxes (Tensor[N, 4]): detections, ``xyxy``.
        pred_scores (Tensor[N]): their confidences.
        gt_boxes (Tensor[M, 4]): ground-truth boxes, ``xyxy``.
        iou_threshold: in [0, 1].

    Returns:
        dict with ``is_true_positive`` (bool Tensor[N], in the input order), ``precision`` and
        ``recall`` (float64 Tensor[N], by decreasing score), ``envelope`` (the interpolated
        precision, ``max`` of precision at recall >= r), ``ap`` (COCO's 101-point AP),
        ``ap_all_points`` (VOC 2010's area under the envelope), ``num_true_positives``,
        ``num_predictions``, ``num_gt``, ``iou_threshold``. Without ground truth, AP (undefined,
        -1 in COCO) is reported as 0.0, and precision and recall are 0.
    """
    check_boxes(pred_boxes, "pred_boxes")
    check_scores(pred_scores, pred_boxes.shape[0], "pred_scores")
    check_boxes(gt_boxes, "gt_boxes")
    check_number(iou_threshold, "iou_threshold", 0.0, 1.0)
    is_true_positive = metrics.match_detections(pred_boxes, pred_scores, gt_boxes, iou_threshold).bool()
    if gt_boxes.shape[0]:
        precision, recall = map(torch.from_numpy, metrics.precision_recall(
            pred_scores, is_true_positive, gt_boxes.shape[0]))
    else:  # nothing to find: every detection is a false positive, and recall stays 0
        precision = recall = torch.zeros(pred_boxes.shape[0], dtype=torch.float64)
    # Interpolated precision: the best precision at this recall or any higher one.
    envelope = precision.flip(0).cummax(0).values.flip(0) if precision.numel() else precision
    return {
        "is_true_positive": is_true_positive,
        "precision": precision,
        "recall": recall,
        "envelope": envelope,
        "ap": float(metrics.average_precision(precision, recall, method="coco101")),
        "ap_all_points": float(metrics.average_precision(precision, recall, method="all_points")),
        "num_true_positives": int(is_true_positive.sum()),
        "num_predictions": int(pred_boxes.shape[0]),
        "num_gt": int(gt_boxes.shape[0]),
        "iou_threshold": float(iou_threshold),
    }


class APExplorer(Explorer):
    """Change the IoU threshold and watch detections switch between TP and FP, and AP follow.

    Left: the image with ground truth (white, dashed), true positives (green) and false
    positives (red). Right: the precision-recall curve and its interpolated envelope, whose
    area is the AP.

    Args:
        pred_boxes (Tensor[N, 4]): detections of one class, ``xyxy``.
        pred_scores (Tensor[N]): their confidences.
        gt_boxes (Tensor[M, 4]): ground-truth boxes of that class.
        image (Tensor[3, H, W], optional): drawn under the boxes.
        max_tags: score tags are written on the best-scored detections only, so that a redraw
            stays fast (text is slow to draw).
    """

    def __init__(self, pred_boxes: Tensor, pred_scores: Tensor, gt_boxes: Tensor,
                 image: Tensor | None = None, max_tags: int = 10) -> None:
        check_boxes(pred_boxes, "pred_boxes")
        check_scores(pred_scores, pred_boxes.shape[0], "pred_scores")
        check_boxes(gt_boxes, "gt_boxes")
        self.pred_boxes, self.pred_scores, self.gt_boxes = pred_boxes, pred_scores, gt_boxes
        self.image = image
        self.max_tags = check_number(max_tags, "max_tags", 0, integer=True)
        threshold = widgets.FloatSlider(value=0.5, min=0.05, max=0.95, step=0.05, description="IoU threshold",
                                        continuous_update=True, readout_format=".2f", style=WIDE_LABEL)
        caption = (
            f"<div style='font-size: 0.9em'><span style='color: {TP_COLOR}'>■ true positive</span> &nbsp; "
            f"<span style='color: {FP_COLOR}'>■ false positive</span> &nbsp; ▭ dashed: ground truth &nbsp; "
            "PR curve: grey dots = precision after each detection, best score first; green = "
            "interpolated precision (its area is the AP)</div>"
        )
        super().__init__({"iou_threshold": threshold}, num_axes=2, figsize=(9.0, 4.5), caption=caption)

    def compute(self, iou_threshold: float) -> dict[str, Any]:
        return ap_view(self.pred_boxes, self.pred_scores, self.gt_boxes, round(iou_threshold, 4))

    def background_key(self, result: dict[str, Any]) -> Any:
        return "image"  # the image, the ground truth and the curve's axes never change

    def draw_background(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, curve_ax = ax
        draw_canvas(image_ax, self.image, torch.cat([self.pred_boxes, self.gt_boxes]))
        draw_boxes(image_ax, self.gt_boxes, color=GT_COLOR, linestyle="--", linewidth=2)
        curve_ax.set_xlim(0, 1.02)
        curve_ax.set_ylim(0, 1.05)
        curve_ax.set_xticks([0, 0.5, 1])  # few ticks: tick labels are text, the slowest to draw
        curve_ax.set_yticks([0, 0.5, 1])
        curve_ax.set_xlabel("recall")
        curve_ax.set_ylabel("precision")

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, curve_ax = ax
        colors = [TP_COLOR if tp else FP_COLOR for tp in result["is_true_positive"].tolist()]
        draw_boxes(image_ax, self.pred_boxes, scores=self.pred_scores, color=colors, linewidth=2,
                   max_tags=self.max_tags)
        image_ax.set_title(f"TP (green) {result['num_true_positives']}, FP (red) "
                           f"{result['num_predictions'] - result['num_true_positives']}", fontsize=12)
        recall, precision, envelope = result["recall"], result["precision"], result["envelope"]
        if recall.numel():
            # Start the curves at recall 0 with the first precision, as the interpolation does.
            recall_line = torch.cat([recall.new_zeros(1), recall]).tolist()
            curve_ax.plot(recall_line, torch.cat([precision[:1], precision]).tolist(), "o-", color="0.5",
                          markersize=3, linewidth=1, label="precision")
            curve_ax.fill_between(recall_line, torch.cat([envelope[:1], envelope]).tolist(), step="pre",
                                  alpha=0.25, color=TP_COLOR)
            curve_ax.step(recall_line, torch.cat([envelope[:1], envelope]).tolist(), where="pre",
                          color=TP_COLOR, linewidth=2, label="interpolated")
        curve_ax.set_title(f"AP@IoU={result['iou_threshold']:.2f} = {result['ap']:.3f}", fontsize=12)

    def summary(self, result: dict[str, Any]) -> str:
        return (f"AP@IoU={result['iou_threshold']:.2f} = {result['ap']:.3f} "
                f"(TP {result['num_true_positives']} of {plural(result['num_predictions'], 'detection')}, "
                f"{plural(result['num_gt'], 'ground-truth box', 'ground-truth boxes')})")

