"""The sliding-window detector explorer of chapter 3 (HOG + linear SVM): threshold, scales and NMS.

It wraps ``course_lib.classical.sliding_window`` through two pure functions that the tests check on
their own: ``scored_windows`` (every window of the image pyramid with its SVM score, computed once)
and ``detector_view`` (thresholding, scale selection and NMS of those windows, at every slider
move). The class only turns control values into arguments and results into matplotlib calls.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from torch import Tensor

from course_lib._checks import check_boxes, check_number, check_scores
from course_lib.boxes import box_iou
from course_lib.classical.sliding_window import SlidingWindowDetector, to_unit_float
from course_lib.nms import fast_nms
from course_lib.plotting import draw_boxes
from course_lib.widgets.base import WIDE_LABEL, Explorer, plural, shrink

GT_COLOR, TP_COLOR, FP_COLOR, DETECTION_COLOR = "white", "#2ca02c", "#d62728", "#ff7f0e"
MAX_DRAWN = 150  # boxes drawn at most (the best scoring): a redraw must stay well under 250 ms
MAX_TAGS = 5
MAX_CANDIDATES = 1000  # windows above the lowest score threshold offered


def scored_windows(detector: SlidingWindowDetector, image: Any) -> dict[str, Any]:
    """Every window of the detector's image pyramid with its SVM score (the slow part, done once).

    Args:
        detector: a trained :class:`SlidingWindowDetector`.
        image: what ``detector.detect`` takes.

    Returns:
        dict with ``boxes`` (Tensor[N, 4] xyxy image pixels), ``scores`` (Tensor[N], the SVM's
        decision values, as ``detect`` computes them), ``levels`` (int64 Tensor[N], the pyramid
        level of each window), ``pyramid_scales`` (list of L floats: image size / level size) and
        ``window_size`` ``(rows, cols)``.
    """
    if detector.svm is None:
        raise ValueError("detector: expected a trained detector, got one without an SVM; call fit(...) first")
    boxes, features = detector.windows(image)  # (N, 4), (N, D)
    scores = torch.from_numpy(features @ detector.svm.coef_[0] + detector.svm.intercept_[0]).float()  # (N,)
    height, width = to_unit_float(image).shape[:2]
    pyramid_scales = detector.scales(height, width)
    window_scale = (boxes[:, 3] - boxes[:, 1]) / detector.window_size[0]  # (N,) window side / base side
    levels = (window_scale[:, None] - torch.tensor(pyramid_scales)[None]).abs().argmin(dim=1)  # (N,)
    return {"boxes": boxes, "scores": scores, "levels": levels, "pyramid_scales": pyramid_scales,
            "window_size": detector.window_size}


def detector_view(
    boxes: Tensor,
    scores: Tensor,
    levels: Tensor,
    score_threshold: float,
    min_level: int = 0,
    max_level: int | None = None,
    iou_threshold: float | None = 0.3,
    gt_boxes: Tensor | None = None,
    match_iou: float = 0.5,
) -> dict[str, Any]:
    """The detections for one setting of the detector's knobs, from precomputed windows.

    Keeps the windows of pyramid levels ``min_level..max_level`` scoring above ``score_threshold``,
    then merges them with ``course_lib.nms.nms`` (``iou_threshold=None``: no NMS, every window).
    At the detector's threshold, all levels and its IoU threshold this is ``detector.detect``.

    With ground truth, a detection is a true positive when its IoU with some ground-truth box is
    at least ``match_iou`` and a false positive otherwise (as ``faces.evaluate_face_detections``
    counts; two detections on one object are both true positives here, unlike in COCO's AP).

    Args:
        boxes (Tensor[N, 4]): the windows, xyxy (from :func:`scored_windows`).
        scores (Tensor[N]): their SVM scores.
        levels (Tensor[N]): their pyramid levels (int).
        score_threshold: windows scoring at most this are dropped.
        min_level, max_level: the pyramid levels searched (``None``: up to the last).
        iou_threshold: NMS threshold in [0, 1], or None for no NMS.
        gt_boxes (Tensor[M, 4], optional): ground-truth boxes.
        match_iou: IoU for a detection to count as a true positive.

    Returns:
        dict with ``boxes`` and ``scores`` of the detections (best first), ``num_windows`` (windows
        at the chosen levels), ``num_above`` (of those, above the threshold), ``num_detections``;
        with ground truth also ``is_true_positive`` (bool Tensor[K]), ``best_iou``,
        ``false_positives`` and ``num_found`` (ground-truth boxes matched by some detection).
    """
    check_boxes(boxes, "boxes")
    check_scores(scores, boxes.shape[0], "scores")
    if not isinstance(levels, Tensor) or levels.shape != scores.shape or levels.is_floating_point():
        raise ValueError(f"levels: expected an integer Tensor[{scores.shape[0]}], got {levels!r:.60}")
    check_number(score_threshold, "score_threshold")
    check_number(min_level, "min_level", 0, integer=True)
    if max_level is not None:
        check_number(max_level, "max_level", 0, integer=True)
    if iou_threshold is not None:
        check_number(iou_threshold, "iou_threshold", 0.0, 1.0)
    check_number(match_iou, "match_iou", 0.0, 1.0)
    if gt_boxes is not None:
        check_boxes(gt_boxes, "gt_boxes")
    in_levels = levels >= min_level
    if max_level is not None:
        in_levels &= levels <= max_level
    above = in_levels & (scores > score_threshold)
    kept_boxes, kept_scores = boxes[above], scores[above]
    if iou_threshold is None:
        order = torch.argsort(kept_scores, descending=True, stable=True)
    else:
        order = fast_nms(kept_boxes, kept_scores, iou_threshold)
    result = {"boxes": kept_boxes[order], "scores": kept_scores[order], "num_windows": int(in_levels.sum()),
              "num_above": int(above.sum()), "num_detections": int(order.numel()),
              "score_threshold": float(score_threshold), "min_level": int(min_level), "max_level": max_level}
    if gt_boxes is not None:
        if result["boxes"].numel() and gt_boxes.numel():
            ious = box_iou(result["boxes"].float(), gt_boxes.float())  # (K, M)
            best = ious.amax(dim=1)  # (K,)
            num_found = int((ious >= match_iou).any(dim=0).sum())
        else:
            best, num_found = torch.zeros(result["num_detections"]), 0
        is_true_positive = best >= match_iou
        result.update({"is_true_positive": is_true_positive,
                       "best_iou": float(best.max()) if best.numel() else 0.0,
                       "false_positives": int((~is_true_positive).sum()), "num_found": num_found,
                       "num_gt": int(gt_boxes.shape[0])})
    return result


class DetectorExplorer(Explorer):
    """Move the score threshold and the pyramid levels of a trained sliding-window detector.

    The windows of every pyramid level are described and scored once, when the explorer is made
    (about half a second on a 512 x 512 photo), and NMS runs once per range of levels (see
    :meth:`merged`); a threshold move only filters. The threshold slider starts where about
    ``MAX_CANDIDATES`` windows are above it.

    Left: the photo with the detections (green: IoU >= 0.5 with the ground truth, red: false
    positive; orange without ground truth); right: the histogram of the scores of the windows at
    the chosen levels (log scale), and the threshold.

    Args:
        detector: a trained :class:`SlidingWindowDetector`.
        image: the photo to scan.
        gt_boxes (Tensor[M, 4], optional): ground-truth boxes, xyxy.
    """

    def __init__(self, detector: SlidingWindowDetector, image: Any, gt_boxes: Tensor | None = None) -> None:
        if gt_boxes is not None:
            check_boxes(gt_boxes, "gt_boxes")
        self.detector, self.gt_boxes = detector, gt_boxes
        self.image = to_unit_float(image)
        self.height, self.width = self.image.shape[:2]
        self.display_image = shrink(self.image, 360)  # what fits the axes anyway; faster to draw
        self.windows = scored_windows(detector, image)
        window_rows = self.windows["window_size"][0]
        levels = [(f"{scale:.2f} ({round(window_rows * scale)} px)", level)
                  for level, scale in enumerate(self.windows["pyramid_scales"])]
        scores = self.windows["scores"]
        # The slider starts where about MAX_CANDIDATES windows are above it: lower, NMS would take long.
        ranked = torch.sort(scores, descending=True).values
        floor = float(ranked[min(MAX_CANDIDATES, len(ranked)) - 1])
        low = float(np.floor(min(floor, detector.score_threshold - 0.25) * 4) / 4)
        high = float(np.ceil(max(float(ranked[0]), detector.score_threshold) * 4) / 4)
        self.candidates = torch.nonzero(scores > low)[:, 0]  # (C,) the windows any threshold can keep
        self._merged: dict[tuple[int, int, bool], Tensor] = {}
        controls = {
            "score_threshold": widgets.FloatSlider(value=detector.score_threshold, min=low, max=high,
                                                   step=0.05, description="score threshold", style=WIDE_LABEL,
                                                   readout_format=".2f"),
            "levels": widgets.SelectionRangeSlider(options=levels, index=(0, len(levels) - 1),
                                                   description="pyramid scales", style=WIDE_LABEL,
                                                   layout=widgets.Layout(width="480px")),
            "use_nms": widgets.Checkbox(value=True, description="NMS"),
        }
        caption = (f"<div style='font-size: 0.9em'><span style='color: {TP_COLOR}'>■ IoU ≥ 0.5 with the "
                   f"ground truth</span> &nbsp; <span style='color: {FP_COLOR}'>■ false positive</span> "
                   "&nbsp; ▭ white dashed: ground truth. A pyramid scale s searches objects of about s times "
                   f"the window ({window_rows} px); at most {MAX_DRAWN} boxes are drawn, the best first."
                   "</div>")
        super().__init__(controls, num_axes=2, figsize=(8.5, 4.25), dpi=100, caption=caption,
                         palette=True)

    def merged(self, min_level: int, max_level: int, use_nms: bool) -> Tensor:
        """Indices of the candidate windows at these levels that NMS keeps (all, without NMS), cached.

        Greedy NMS decides on a box from the better boxes alone, so NMS over the windows above a
        threshold keeps exactly those of this list above it: one NMS per level range serves every
        threshold, and a threshold move is a filter.
        """
        key = (min_level, max_level, use_nms)
        if key not in self._merged:
            windows, index = self.windows, self.candidates
            index = index[(windows["levels"][index] >= min_level) & (windows["levels"][index] <= max_level)]
            scores = windows["scores"][index]
            if use_nms:
                order = fast_nms(windows["boxes"][index], scores, self.detector.iou_threshold)
            else:
                order = torch.argsort(scores, descending=True, stable=True)
            self._merged[key] = index[order]
        return self._merged[key]

    def compute(self, score_threshold: float, levels: tuple[int, int], use_nms: bool) -> dict[str, Any]:
        windows, (min_level, max_level) = self.windows, levels
        merged = self.merged(min_level, max_level, use_nms)
        iou_threshold = self.detector.iou_threshold if use_nms else None
        result = detector_view(windows["boxes"][merged], windows["scores"][merged], windows["levels"][merged],
                               round(score_threshold, 4), min_level, max_level, iou_threshold, self.gt_boxes)
        chosen = (windows["levels"] >= min_level) & (windows["levels"] <= max_level)
        chosen_scores = windows["scores"][chosen]
        result["num_windows"] = int(chosen.sum())  # counted over every window, not the merged ones
        result["num_above"] = int((chosen_scores > round(score_threshold, 4)).sum())
        slider = self.controls["score_threshold"]
        counts, edges = np.histogram(chosen_scores.numpy(), bins=40, range=(slider.min, slider.max))
        scales = windows["pyramid_scales"]
        return {**result, "score_counts": counts, "score_edges": edges, "use_nms": use_nms,
                "scale_range": (scales[min_level], scales[max_level])}

    def background_key(self, result: dict[str, Any]) -> Any:
        return result["scale_range"]  # the photo, the objects and the histogram of these levels' scores

    def draw_background(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, score_ax = ax
        image_ax.imshow(self.display_image, extent=(0, self.width, self.height, 0),
                        interpolation="antialiased")
        image_ax.set_axis_off()
        if self.gt_boxes is not None:
            draw_boxes(image_ax, self.gt_boxes, color=GT_COLOR, linestyle="--", linewidth=2)
        score_ax.stairs(result["score_counts"], result["score_edges"], fill=True, color="0.6")
        score_ax.set_yscale("symlog")
        score_ax.set_xlim(float(result["score_edges"][0]), float(result["score_edges"][-1]))
        score_ax.set_ylim(0, max(float(result["score_counts"].max()), 1) * 2)
        score_ax.set_yticks([])  # tick labels are text, the slowest thing to draw; the title has the counts
        score_ax.set_xlabel("SVM score of a window", fontsize=10)
        score_ax.set_ylabel("windows (log scale)", fontsize=10)

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, score_ax = ax
        boxes, scores = result["boxes"][:MAX_DRAWN], result["scores"][:MAX_DRAWN]
        if "is_true_positive" in result:
            colors = [TP_COLOR if tp else FP_COLOR for tp in result["is_true_positive"][:MAX_DRAWN].tolist()]
        else:
            colors = [DETECTION_COLOR] * len(boxes)
        # One collection for all the boxes (one artist per box is slow), then tags on the best few.
        x1, y1, x2, y2 = boxes.T.numpy()
        corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1),
                            np.stack([x1, y2], 1)], axis=1)  # (K, 4, 2)
        image_ax.add_collection(PolyCollection(corners, closed=True, facecolors="none", edgecolors=colors,
                                               linewidths=2), autolim=False)
        draw_boxes(image_ax, boxes[:MAX_TAGS], scores=scores[:MAX_TAGS], color=colors[:MAX_TAGS], linewidth=2)
        count = result["num_detections"]
        image_ax.set_title(plural(count, "detection"), fontsize=11)
        score_ax.axvline(result["score_threshold"], color=FP_COLOR, linewidth=2)
        score_ax.set_title(f"{result['num_above']} of {plural(result['num_windows'], 'window')} above",
                           fontsize=11)

    def summary(self, result: dict[str, Any]) -> str:
        low, high = result["scale_range"]
        count = result["num_detections"]
        text = (f"{plural(count, 'detection')} (score > {result['score_threshold']:.2f}, "
                f"scales {low:.2f} to {high:.2f}, {'NMS' if result['use_nms'] else 'no NMS'})")
        if "best_iou" in result:
            text += (f"; best IoU {result['best_iou']:.2f}, {result['num_found']} of {result['num_gt']} "
                     f"found, {result['false_positives']} false positives")
        return text
