"""Explorer for YOLO v1 (chapter 9): what one grid cell predicts, and which of its boxes survive.

YOLO v1 reads every box from one ``S x S`` grid: each cell predicts ``B`` boxes with a confidence
each, and one class distribution that its boxes share; a box's score for class ``c`` is
``confidence * P(c)`` (Redmon et al. 2016, "You Only Look Once", Sec. 2, Eq. 1).
``yolo_cell_view`` reads one cell of the model's activated output; ``YOLOCellExplorer`` draws the
image with the grid, the chosen cell and its boxes, and the cell's class distribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.patches import Rectangle
from torch import Tensor

from course_lib._checks import check_boxes, check_number, check_tensor
from course_lib.data import CLASSES, NUM_CLASSES
from course_lib.models.yolo import YOLOv1, check_output, decode_yolo
from course_lib.plotting import class_color, draw_boxes, show_image
from course_lib.widgets.base import WIDE_LABEL, Explorer, plural

BOX_COLORS = ("#00e5ff", "#ffd700", "#ff66cc", "#7fff00")  # box 1, 2, ... of the cell (repeating)
CELL_COLOR, GRID_COLOR = "#ffffff", "#ffffff"
TITLE_SIZE, LABEL_SIZE = 12, 11  # points, at 100 dpi: readable on a projector


def yolo_cell_view(
    output: Tensor, row: int, col: int, num_boxes: int, cell_size: float, threshold: float
) -> dict[str, Any]:
    """The ``B`` boxes of one grid cell, their confidences and the cell's class distribution.

    A box passes when its class-specific confidence ``confidence * max_c P(c)`` is >= ``threshold``
    (Eq. 1 of Redmon et al. 2016; ``YOLOv1.forward`` then keeps each class's score). As the model
    does at test time, the confidence, linear in this implementation, is clamped to [0, 1] first.

    Args:
        output (Tensor[S, S', 5B + C]): one image's activated output (``YOLOv1.predict(...)[0][i]``).
        row, col: the cell, ``0 <= row < S``, ``0 <= col < S'``.
        num_boxes: ``B``.
        cell_size: pixels per cell.
        threshold: in [0, 1].

    Returns:
        dict with ``boxes`` (Tensor[B, 4] ``xyxy`` pixels), ``confidences`` (Tensor[B], clamped to
        [0, 1]), ``raw_confidences`` (Tensor[B], as output), ``class_probs`` (Tensor[C]),
        ``best_class`` (index in 0..C-1 of the most probable class, first on ties),
        ``best_prob``, ``scores`` (Tensor[B], ``confidences * best_prob``), ``passes`` (bool
        Tensor[B]), ``num_passing``, ``cell_box`` (the cell in pixels, a list of 4), ``grid_size``
        ``(S, S')``, ``row``, ``col``, ``threshold``.
    """
    check_number(num_boxes, "num_boxes", 1, integer=True)
    rows, cols, _ = check_output(output, num_boxes)
    check_number(row, "row", 0, rows - 1, integer=True)
    check_number(col, "col", 0, cols - 1, integer=True)
    check_number(cell_size, "cell_size", 1e-6)
    check_number(threshold, "threshold", 0.0, 1.0)
    output = output.detach().float().cpu()
    boxes, raw_confidences, class_probs = decode_yolo(output, num_boxes, cell_size)  # (S*S'*B, 4), ...
    first = (row * cols + col) * num_boxes  # decode_yolo's order: cell by cell, then box by box
    cell = slice(first, first + num_boxes)
    raw = raw_confidences[cell]  # (B,)
    confidences = raw.clamp(0, 1)
    probs = class_probs[first]  # (C,) shared by the cell's boxes
    best_prob, best_class = probs.max(dim=0)
    scores = confidences * best_prob  # (B,)
    passes = scores >= threshold
    return {
        "boxes": boxes[cell],
        "confidences": confidences,
        "raw_confidences": raw,
        "class_probs": probs,
        "best_class": int(best_class),
        "best_prob": float(best_prob),
        "scores": scores,
        "passes": passes,
        "num_passing": int(passes.sum()),
        "cell_box": [col * cell_size, row * cell_size, (col + 1) * cell_size, (row + 1) * cell_size],
        "grid_size": (rows, cols),
        "row": row,
        "col": col,
        "threshold": float(threshold),
    }


def check_scenes(images: Any, targets: Any, name: str = "images") -> None:
    """Check a non-empty list of ``Tensor[3, H, W]`` and, if given, one ``{"boxes", "labels"}`` per image."""
    if not isinstance(images, list | tuple) or not images:
        raise ValueError(f"{name}: expected a non-empty list of Tensor[3, H, W], got {images!r:.60}")
    for index, image in enumerate(images):
        check_tensor(image, f"{name}[{index}]")
        if image.dim() != 3 or image.shape[0] != 3 or not image.is_floating_point():
            raise ValueError(f"{name}[{index}]: expected a float Tensor[3, H, W], got shape "
                             f"{tuple(image.shape)} and dtype {image.dtype}")
    if targets is None:
        return
    if not isinstance(targets, list | tuple) or len(targets) != len(images):
        raise ValueError(f"targets: expected a list of {len(images)} dicts (one per image), "
                         f"got {targets!r:.60}")
    for index, target in enumerate(targets):
        if not isinstance(target, dict) or not {"boxes", "labels"} <= set(target):
            raise ValueError(f"targets[{index}]: expected a dict with 'boxes' and 'labels', "
                             f"got {target!r:.60}")
        check_boxes(target["boxes"], f"targets[{index}]['boxes']")
        if target["labels"].shape != target["boxes"].shape[:1]:
            raise ValueError(f"targets[{index}]['labels']: expected a Tensor[{len(target['boxes'])}], "
                             f"got shape {tuple(target['labels'].shape)}")


def grid_lines(rows: int, cols: int, cell_size: float) -> list[list[tuple[float, float]]]:
    """The inner lines of an ``rows x cols`` grid of ``cell_size`` pixels, as line segments."""
    width, height = cols * cell_size, rows * cell_size
    vertical = [[(k * cell_size, 0.0), (k * cell_size, height)] for k in range(1, cols)]
    horizontal = [[(0.0, k * cell_size), (width, k * cell_size)] for k in range(1, rows)]
    return vertical + horizontal


class YOLOCellExplorer(Explorer):
    """Choose an image, a grid cell and a threshold; see the cell's boxes and its class distribution.

    Left: the image, the grid, the chosen cell (white), its ``B`` boxes (solid when their score
    ``confidence * max P(c)`` passes the threshold, dashed otherwise) and the ground truth (in its
    class colour, tagged). Right: the cell's class probabilities, then each box's confidence (light) and score
    (dark) against the threshold (dotted line).

    Controls: ``image``, ``row``, ``col`` (one slider per axis of the grid) and ``threshold``. The
    model runs once per image (cached); moving a cell or the threshold only reads the cached output.

    Args:
        model: a :class:`~course_lib.models.yolo.YOLOv1` in eval mode.
        images: Tensor[3, H, W] images of one size, floats in [0, 1].
        targets: per image ``{"boxes", "labels"}``, drawn as the ground truth (optional).
    """

    def __init__(
        self, model: YOLOv1, images: Sequence[Tensor], targets: Sequence[dict] | None = None
    ) -> None:
        if not isinstance(model, YOLOv1):
            raise TypeError(f"model: expected a course_lib.models.yolo.YOLOv1, got {type(model).__name__}")
        if model.training:
            raise ValueError("model: expected a model in eval mode (call model.eval()), got training mode")
        check_scenes(images, targets)
        self.model, self.images = model, list(images)
        self.targets = None if targets is None else list(targets)
        self.class_names = tuple(CLASSES[1:]) if model.num_classes == NUM_CLASSES else tuple(
            f"class {k}" for k in range(1, model.num_classes + 1))
        self._outputs: dict[int, Tensor] = {}
        rows, cols = self.model_output(0).shape[:2]

        def slider(name: str, maximum: int, value: int) -> widgets.IntSlider:
            return widgets.IntSlider(value=value, min=0, max=maximum, description=name,
                                     continuous_update=True, style=WIDE_LABEL)

        controls = {
            "image": slider("image", len(self.images) - 1, 0),
            "row": slider("cell row", rows - 1, rows // 2),
            "col": slider("cell column", cols - 1, cols // 2),
            "threshold": widgets.FloatSlider(value=0.2, min=0.0, max=1.0, step=0.05, description="score ≥",
                                             readout_format=".2f", continuous_update=True, style=WIDE_LABEL),
        }
        key = " &nbsp; ".join(f"<span style='color: {BOX_COLORS[b % len(BOX_COLORS)]}'>▭ box {b + 1}</span>"
                              for b in range(model.num_boxes))
        caption = (f"<div style='font-size: 0.9em'>{key} &nbsp; solid: score = confidence × max P(class) "
                   "≥ threshold, dashed: below &nbsp; ▭ in the class colour, tagged: ground truth &nbsp; "
                   "bars of the boxes: confidence (light), score (dark), threshold (dotted)</div>")
        super().__init__(controls, num_axes=2, figsize=(9.0, 4.4), dpi=100, caption=caption, palette=True,
                         margins={"left": 0.01, "right": 0.98, "bottom": 0.2, "top": 0.9, "wspace": 0.15})

    def model_output(self, index: int) -> Tensor:
        """The activated output ``Tensor[S, S', 5B + C]`` of image ``index`` (the model runs once)."""
        if index not in self._outputs:
            with torch.no_grad():
                output, _ = self.model.predict([self.images[index]])  # (1, S, S', 5B + C)
            self._outputs[index] = output[0].cpu()
        return self._outputs[index]

    def compute(self, image: int, row: int, col: int, threshold: float) -> dict[str, Any]:
        output = self.model_output(image)
        rows, cols = output.shape[:2]  # a smaller image has a smaller grid: stay inside it
        view = yolo_cell_view(output, min(row, rows - 1), min(col, cols - 1), self.model.num_boxes,
                              self.model.cell_size, round(threshold, 4))
        return {**view, "image": image}

    def background_key(self, result: dict[str, Any]) -> Any:
        return result["image"]  # the photo, its grid and ground truth, the bar chart's axes

    def draw_background(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, bar_ax = ax
        show_image(image_ax, self.images[result["image"]])
        rows, cols = result["grid_size"]
        lines = grid_lines(rows, cols, self.model.cell_size)
        image_ax.add_collection(LineCollection(lines, colors=GRID_COLOR, linewidths=0.5, alpha=0.35))
        if self.targets is not None:
            target = self.targets[result["image"]]
            draw_boxes(image_ax, target["boxes"], labels=target["labels"], class_names=CLASSES, linewidth=1.5,
                       max_tags=8)
        names = [*self.class_names, *(f"box {b + 1}" for b in range(self.model.num_boxes))]
        bar_ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=LABEL_SIZE)
        bar_ax.set_xlim(-0.6, len(names) - 0.4)
        bar_ax.set_ylim(0, 1.15)
        bar_ax.set_yticks([0, 0.5, 1])
        bar_ax.tick_params(axis="y", labelsize=LABEL_SIZE)
        bar_ax.set_ylabel("probability / confidence", fontsize=LABEL_SIZE)

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, bar_ax = ax
        x1, y1, x2, y2 = result["cell_box"]
        image_ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, facecolor=CELL_COLOR, alpha=0.35,
                                     edgecolor=CELL_COLOR, linewidth=2))
        num_boxes = len(result["boxes"])
        for b in range(num_boxes):
            passes = bool(result["passes"][b])
            # No tags: the scores are in the bar chart, and the caption says which colour is which box.
            draw_boxes(image_ax, result["boxes"][b:b + 1], color=BOX_COLORS[b % len(BOX_COLORS)],
                       linestyle="-" if passes else "--", linewidth=2.5 if passes else 1.5)
        num_classes = len(result["class_probs"])
        probs = result["class_probs"].tolist()
        bar_ax.bar(range(num_classes), probs, color=[class_color(k + 1) for k in range(num_classes)])
        positions = range(num_classes, num_classes + num_boxes)
        colors = [BOX_COLORS[b % len(BOX_COLORS)] for b in range(num_boxes)]
        bar_ax.bar(positions, result["confidences"].tolist(), color=colors, alpha=0.4, edgecolor="0.3")
        bar_ax.bar(positions, result["scores"].tolist(), width=0.4, color=colors, edgecolor="0.2")
        bar_ax.axhline(result["threshold"], color="0.2", linestyle=":", linewidth=1.5)
        best = result["best_class"]
        bar_ax.text(best, min(probs[best], 1.0) + 0.02, f"{probs[best]:.2f}", ha="center", va="bottom",
                    fontsize=LABEL_SIZE)
        image_ax.set_title(f"image {result['image']} · cell ({result['row']}, {result['col']}) · "
                           f"{result['num_passing']} of {plural(num_boxes, 'box', 'boxes')} ≥ "
                           f"{result['threshold']:.2f}", fontsize=TITLE_SIZE)
        bar_ax.set_title("the cell's P(class), its boxes' scores", fontsize=TITLE_SIZE)

    def summary(self, result: dict[str, Any]) -> str:
        name = self.class_names[result["best_class"]]
        parts = [f"box {b + 1}: {confidence:.2f} × P({name}) {result['best_prob']:.2f} = {score:.2f} "
                 f"{'≥' if passes else '<'} {result['threshold']:.2f}"
                 for b, (confidence, score, passes) in enumerate(zip(
                     result["confidences"].tolist(), result["scores"].tolist(), result["passes"].tolist(),
                     strict=True))]
        return (f"image {result['image']}, cell ({result['row']}, {result['col']}): " + " · ".join(parts)
                + f" · {result['num_passing']} of {plural(len(parts), 'box', 'boxes')} kept")
