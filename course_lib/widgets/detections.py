"""Explorer for chapter 8: what goes wrong in R-CNN, Fast R-CNN and Faster R-CNN's detections.

AP says how good a detector is, not what it gets wrong. ``detections_view`` sorts the detections
of one image that pass a score threshold into the error categories of
``course_lib.metrics.error_categories`` (correct, duplicate, localization, wrong class,
background; after Hoiem et al. 2012 and TIDE) and finds the objects no detection matched
(missed); ``DetectionsExplorer`` puts the ground truth and one detector's boxes side by side,
each box in its category's colour (``CATEGORY_COLORS``).

The detectors score on different scales: R-CNN's scores are SVM margins (negative below the
decision boundary), Fast and Faster R-CNN's are softmax probabilities. The threshold slider
therefore takes the range of the selected detector's scores (``score_range``), and remembers the
value last used with each detector.

The computing (``detections_view``, ``score_range``, ``counts_text``, ``CATEGORY_COLORS``) lives in
``course_lib.widgets.detection_errors``; this module holds the explorer and re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
from matplotlib.axes import Axes
from torch import Tensor

from course_lib._checks import check_boxes, check_choice, check_number, check_scores, check_tensor
from course_lib.data import CLASSES
from course_lib.plotting import draw_boxes, show_image
from course_lib.widgets.base import WIDE_LABEL, Explorer, plural
from course_lib.widgets.detection_errors import (
    CATEGORY_COLORS,
    SCORE_STEP,
    counts_text,
    detections_view,
    score_range,
)

__all__ = [
    "CATEGORY_COLORS",
    "MAX_TAGS",
    "SCORE_STEP",
    "DetectionsExplorer",
    "counts_text",
    "detections_view",
    "score_range",
]

# Text is the slowest thing matplotlib draws: tag the best-scored boxes only (draw_boxes places the
# tags apart, and hides those with no free spot).
MAX_TAGS = 12


def _wrap(text: str, width: int = 48, separator: str = " · ") -> str:
    """``text`` on lines of at most ``width`` characters, broken after a separator."""
    lines = [""]
    for part in text.split(separator):
        if lines[-1] and len(lines[-1]) + len(separator) + len(part) > width:
            lines.append(part)
        else:
            lines[-1] = f"{lines[-1]}{separator}{part}" if lines[-1] else part
    return "\n".join(lines)


def _check_records(records: Any, keys: tuple[str, ...], num_images: int, name: str) -> None:
    """``records`` is a list of ``num_images`` dicts holding ``keys``, with matching lengths."""
    if not isinstance(records, list | tuple):
        raise TypeError(f"{name}: expected a list of dicts, got {type(records).__name__}")
    if len(records) != num_images:
        raise ValueError(f"{name}: expected {num_images} entries (one per image), got {len(records)}")
    for index, record in enumerate(records):
        where = f"{name}[{index}]"
        if not isinstance(record, dict):
            raise TypeError(f"{where}: expected a dict, got {type(record).__name__}")
        missing = [key for key in keys if key not in record]
        if missing:
            raise ValueError(f"{where}: expected keys {list(keys)}, got {sorted(record)}")
        boxes = check_boxes(record["boxes"], f"{where}['boxes']", allow_integer=True)
        for key in keys[1:]:
            check_scores(record[key], len(boxes), f"{where}[{key!r}]")


class DetectionsExplorer(Explorer):
    """Compare detectors on the same scenes: which of their boxes are right, and what the others are.

    Left: the ground truth with class names. Right: the selected detector's detections scored at
    least the threshold, each in the colour of its error category (the key under the figure),
    tagged with class and score; the objects no detection found, dashed. The right panel's title
    counts each category ("4 correct · 1 localization · 2 missed").

    Controls: ``scene`` (the image), ``detector`` (one button per detector) and
    ``score_threshold`` ("score ≥"; its range follows the selected detector's scores, see
    :func:`score_range`, and it remembers the value last used with each detector).

    Args:
        images: list of Tensor[3, H, W], floats in [0, 1].
        targets: per image, ``boxes`` (Tensor[M, 4] xyxy) and ``labels`` (int Tensor[M]).
        detections: detector name -> its outputs, per image (``boxes``, ``scores``, ``labels``).
        class_names: names of the labels, index 0 the background.
        thresholds: detector name -> the threshold it starts at. Default: 0.5 for probabilities,
            0.0 (the SVM's decision boundary) for scores outside [0, 1].
        detector: the detector shown first (default: the first one).
        iou_threshold, background_iou: as in ``course_lib.metrics.error_categories``.
    """

    def __init__(
        self,
        images: Sequence[Tensor],
        targets: Sequence[dict[str, Tensor]],
        detections: dict[str, Sequence[dict[str, Tensor]]],
        class_names: Sequence[str] = CLASSES,
        thresholds: dict[str, float] | None = None,
        detector: str | None = None,
        iou_threshold: float = 0.5,
        background_iou: float = 0.1,
    ) -> None:
        if not isinstance(images, list | tuple) or not images:
            raise ValueError(f"images: expected a non-empty list of Tensor[3, H, W], got {images!r:.60}")
        for index, image in enumerate(images):
            check_tensor(image, f"images[{index}]")
            if image.dim() != 3 or image.shape[0] != 3:
                raise ValueError(
                    f"images[{index}]: expected a Tensor[3, H, W], got shape {tuple(image.shape)}"
                )
        _check_records(targets, ("boxes", "labels"), len(images), "targets")
        if not isinstance(detections, dict) or not detections:
            raise ValueError(
                f"detections: expected a non-empty dict name -> predictions, got {detections!r:.60}"
            )
        for name, predictions in detections.items():
            _check_records(predictions, ("boxes", "scores", "labels"), len(images), f"detections[{name!r}]")
        names = tuple(detections)
        thresholds = dict(thresholds or {})
        for name, value in thresholds.items():
            check_choice(name, names, "thresholds")
            check_number(value, f"thresholds[{name!r}]")
        detector = names[0] if detector is None else check_choice(detector, names, "detector")
        check_number(iou_threshold, "iou_threshold", 0.0, 1.0)
        check_number(background_iou, "background_iou", 0.0, iou_threshold)

        self.images, self.targets, self.detections = list(images), list(targets), dict(detections)
        self.class_names, self.iou_threshold, self.background_iou = class_names, iou_threshold, background_iou
        self.score_ranges: dict[str, tuple[float, float]] = {}
        self.thresholds: dict[str, float] = {}  # the value last used with each detector
        for name in names:
            low, high = score_range(detections[name])
            probabilities = (low, high) == (0.0, 1.0)
            value = float(thresholds.get(name, 0.5 if probabilities else 0.0))
            self.score_ranges[name] = (min(low, value), max(high, value))
            self.thresholds[name] = value
        self._slider_detector = detector  # whose range and value the threshold slider holds
        low, high = self.score_ranges[detector]
        controls = {
            "scene": widgets.IntSlider(
                value=0,
                min=0,
                max=len(images) - 1,
                description="scene",
                continuous_update=True,
                style=WIDE_LABEL,
            ),
            "detector": widgets.ToggleButtons(
                options=names, value=detector, description="detector", style=WIDE_LABEL
            ),
            "score_threshold": widgets.FloatSlider(
                value=self.thresholds[detector],
                min=low,
                max=high,
                step=SCORE_STEP,
                description="score ≥",
                readout_format=".2f",
                continuous_update=True,
                style=WIDE_LABEL,
            ),
        }
        # A photo: a 256-colour PNG is several times smaller.
        super().__init__(
            controls,
            num_axes=2,
            figsize=(9.0, 4.6),
            dpi=100,
            caption=self._caption(),
            palette=True,
            margins={"left": 0.01, "right": 0.99, "bottom": 0.02, "top": 0.88, "wspace": 0.04},
        )

    def _caption(self) -> str:
        iou, background = self.iou_threshold, self.background_iou
        # The colour key is HTML, not a figure legend: a legend costs as much to draw as both images.
        key = " &nbsp; ".join(
            f"<span style='color: {color}; font-weight: bold'>{'- -' if name == 'missed' else '■'}</span> "
            f"{name}"
            for name, color in CATEGORY_COLORS.items()
        )
        return (
            f"<div style='font-size: 0.9em'>{key}<br>A detection is <b>correct</b> with IoU ≥ "
            f"{iou:g} on an object of its class that no better-scored box took, a <b>duplicate</b> "
            f"when that object was taken, a <b>localization</b> error with IoU in [{background:g}, "
            f"{iou:g}) on its class, a <b>wrong class</b> with IoU ≥ {background:g} on another "
            f"class, <b>background</b> below IoU {background:g} on everything. Dashed: "
            "<b>missed</b> objects, found by no correct detection.</div>"
        )

    def compute(self, scene: int, detector: str, score_threshold: float) -> dict[str, Any]:
        # Slider floats such as 0.35000000000000003 are rounded so a threshold reads as it shows.
        view = detections_view(
            self.images[scene],
            self.targets[scene],
            self.detections[detector][scene],
            round(score_threshold, 4),
            self.iou_threshold,
            self.background_iou,
            self.class_names,
        )
        return {**view, "scene": scene, "detector": detector}

    def sync_controls(self, result: dict[str, Any]) -> bool:
        if result["detector"] == self._slider_detector:
            return False
        slider = self.controls["score_threshold"]
        self.thresholds[self._slider_detector] = slider.value  # back to it later, back to this value
        low, high = self.score_ranges[result["detector"]]
        value = self.thresholds[result["detector"]]
        with slider.hold_sync():
            # Widen first, so that neither bound nor the value is ever clamped on the way.
            slider.min, slider.max = min(slider.min, low), max(slider.max, high)
            slider.value = value
            slider.min, slider.max = low, high
        self._slider_detector = result["detector"]
        return True

    def background_key(self, result: dict[str, Any]) -> Any:
        return result["scene"]  # the two images and the ground truth change with the scene only

    def draw_background(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        truth_ax, detections_ax = ax
        show_image(truth_ax, result["image"])
        draw_boxes(
            truth_ax,
            result["gt_boxes"],
            labels=result["gt_labels"],
            class_names=self.class_names,
            max_tags=MAX_TAGS,
        )
        show_image(detections_ax, result["image"])

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        truth_ax, detections_ax = ax
        num_objects = plural(len(result["gt_boxes"]), "object")
        truth_ax.set_title(f"ground truth · scene {result['scene']}\n{num_objects}", fontsize=11)
        draw_boxes(
            detections_ax,
            result["gt_boxes"][result["missed"]],
            color=CATEGORY_COLORS["missed"],
            linestyle="--",
            linewidth=2,
        )
        # The MAX_TAGS best-scored boxes are tagged and drawn last, each box's worse ones before it: the
        # best ends on top.
        boxes, colors = result["boxes"], result["colors"]
        untagged = list(range(len(boxes) - 1, MAX_TAGS - 1, -1))
        draw_boxes(detections_ax, boxes[untagged], color=[colors[i] for i in untagged])
        tagged = list(range(min(len(boxes), MAX_TAGS) - 1, -1, -1))
        draw_boxes(
            detections_ax,
            boxes[tagged],
            labels=result["labels"][tagged],
            scores=result["scores"][tagged],
            class_names=self.class_names,
            color=[colors[i] for i in tagged],
        )
        detections_ax.set_title(
            f"{result['detector']} · score ≥ {result['score_threshold']:.2f}\n{_wrap(result['counts_text'])}",
            fontsize=11,
        )

    def summary(self, result: dict[str, Any]) -> str:
        return (
            f"scene {result['scene']} · {result['detector']}: {len(result['kept'])} of "
            f"{plural(result['num_detections'], 'detection')} scored ≥ {result['score_threshold']:.2f} · "
            f"{result['counts_text']}"
        )
