"""Boxes on an image: ``xyxy`` rectangles with a ``"name 0.87"`` tag next to each.

A tag sits just above the box's top-left corner, in the box's colour, unless that spot is taken or
outside the axes: then it moves inside the box, below it or to its right edge, and a tag that finds
no free spot is not drawn (``course_lib.plotting.tags``). No tag covers another or crosses the
axes' edge, and the best-scored boxes choose first. An explorer that redraws often also caps the
number of tags (``max_tags``), text being the slowest thing matplotlib draws. Colours default to
:func:`~course_lib.plotting.colors.class_color`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from torch import Tensor

from course_lib._checks import check_boxes, check_number
from course_lib.plotting.colors import class_color
from course_lib.plotting.tags import TAG_FONTSIZE, TAG_PAD, tag_layout


def as_drawable_boxes(boxes: Any, name: str = "boxes") -> Tensor:
    """Boxes to draw as a float CPU ``Tensor[N, 4]`` xyxy, checked: what every drawing helper accepts.

    Args:
        boxes: a ``Tensor[N, 4]`` (float, or integer pixels), a numpy array or a (nested) list.
        name: the argument's name in error messages.

    Raises:
        TypeError: not a tensor, array or list (or a bool tensor).
        ValueError: not ``N x 4``, or a NaN or infinite coordinate. Degenerate boxes (x2 < x1) are
            drawn as they are.
    """
    if isinstance(boxes, np.ndarray | list | tuple):
        boxes = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
    elif isinstance(boxes, Tensor) and not boxes.is_floating_point() and boxes.dtype != torch.bool:
        boxes = boxes.float()  # integer pixel boxes draw just as well
    return check_boxes(boxes, name).detach().cpu()


def per_box_values(values: Any, num_boxes: int, name: str) -> list | None:
    """``values`` (labels, scores) as a plain list of one value per box, or None when not given.

    Args:
        values: a tensor, array or sequence of ``num_boxes`` values, or None.
        num_boxes: how many boxes are drawn.
        name: the argument's name in error messages.

    Raises:
        ValueError: when there is not exactly one value per box.
    """
    if values is None:
        return None
    values = values.detach().cpu() if isinstance(values, Tensor) else np.asarray(values)
    values = list(values.tolist())
    if len(values) != num_boxes:
        raise ValueError(f"{name}: expected {num_boxes} values (one per box), got {len(values)}")
    return values


def _box_colors(color: Any, labels: list | None, num_boxes: int) -> list:
    if color is None:
        if labels is None:
            return [class_color(0)] * num_boxes
        return [class_color(label) for label in labels]
    if mpl.colors.is_color_like(color):
        return [color] * num_boxes
    colors = list(color)
    if len(colors) != num_boxes or not all(mpl.colors.is_color_like(c) for c in colors):
        raise ValueError(f"color: expected one matplotlib colour or {num_boxes} of them, got {color!r:.80}")
    return colors


def tag_text(label: int | None, score: float | None, class_names: Sequence[str] | None = None) -> str:
    """A box's tag: ``"circle 0.87"``, ``"circle"``, ``"0.87"`` (the class name, or its index)."""
    parts = [] if label is None else [class_names[label] if class_names is not None else str(label)]
    parts += [] if score is None else [f"{score:.2f}"]
    return " ".join(parts)


def draw_boxes(
    ax: Axes,
    boxes: Tensor,
    labels: Tensor | Sequence[int] | None = None,
    scores: Tensor | Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
    color: Any = None,
    linestyle: str = "-",
    linewidth: float = 2,
    alpha: float = 1.0,
    max_tags: int | None = None,
) -> list[Rectangle]:
    """Draw ``xyxy`` boxes as rectangles, with a ``"name 0.87"`` tag when labels or scores are given.

    Args:
        ax: the axes to draw on.
        boxes (Tensor[N, 4]): boxes in ``(x1, y1, x2, y2)`` pixels (a numpy array or list also works).
        labels (Tensor[N], optional): class indices; they pick each box's colour and tag.
        scores (Tensor[N], optional): confidences, shown with two decimals in the tag.
        class_names (sequence of str, optional): ``class_names[label]`` is written instead of the index.
        color: one matplotlib colour for every box, or one per box; default: the class colour.
        linestyle, linewidth, alpha: passed to each rectangle.
        max_tags: tag at most this many boxes, those with the highest scores (the first ones
            without scores). Text is the slowest thing matplotlib draws; an explorer that must
            redraw at once caps it.

    Tags are placed when the figure is drawn, best score first (box order without scores; the
    tags of an earlier call on the same axes before a later call's): above the box's top-left
    corner if free, else at the first free spot inside the box's top, below it or inside its
    bottom, left- or right-aligned. A tag with no free spot inside the axes is hidden, so a
    crowded scene shows fewer tags, never overlapping or cut ones (``ax.texts`` still holds one
    text per tagged box; the hidden ones have ``get_visible() == False`` after a draw).

    On axes without an image the view is fitted to the boxes, with y pointing down as in an image;
    with an image (or limits set with ``set_xlim``/``set_ylim``), the view is left alone.

    Returns:
        The rectangles added, one per box (an empty list for zero boxes).
    """
    boxes = as_drawable_boxes(boxes)
    num_boxes = boxes.shape[0]
    labels = per_box_values(labels, num_boxes, "labels")
    scores = per_box_values(scores, num_boxes, "scores")
    colors = _box_colors(color, labels, num_boxes)
    # Tag order: best score first. The layout gives the earlier tags the better spots.
    order = list(range(num_boxes))
    if scores is not None:
        order.sort(key=lambda i: -scores[i])  # stable: equal scores keep the box order
    if max_tags is not None:
        check_number(max_tags, "max_tags", 0, integer=True)
        order = order[:max_tags]
    tagged = set(order) if labels is not None or scores is not None else set()
    rectangles, tags = [], {}
    for index, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        rectangle = Rectangle(
            (x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colors[index],
            linestyle=linestyle, linewidth=linewidth, alpha=alpha,
        )
        ax.add_artist(rectangle)  # add_patch would recompute the data limits box by box: slow
        rectangles.append(rectangle)
        if index in tagged:  # texts are added in box order, placed in score order (below)
            label = None if labels is None else int(labels[index])
            score = None if scores is None else scores[index]
            tags[index] = ax.text(
                x1, y1, tag_text(label, score, class_names), color="white", fontsize=TAG_FONTSIZE,
                va="bottom", ha="left", clip_on=True,  # a safety net: the layout keeps tags inside
                bbox={"facecolor": colors[index], "alpha": 0.8 * alpha, "pad": TAG_PAD, "edgecolor": "none"},
            )
    if tags:
        layout = tag_layout(ax)
        for index in order:
            layout.add(tags[index], boxes[index].tolist())
    if num_boxes:
        ax.update_datalim(boxes.reshape(-1, 2).numpy())  # (2N, 2) corners, as add_patch would do
        if not ax.images:  # no image to frame the view: fit it to the boxes, y pointing down
            ax.autoscale_view()
            if not ax.yaxis_inverted():
                ax.invert_yaxis()
    return rectangles
