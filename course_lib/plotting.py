"""Matplotlib helpers shared by every notebook and explorer: images, boxes, masks, anchors, heatmaps.

Only drawing lives here; what to draw is computed elsewhere. Images are drawn with
``extent=(0, W, H, 0)`` so that pixel ``(i, j)`` covers ``[j, j+1] x [i, i+1]``: a box in
torchvision's pixel convention (``[0, 0, W, H]`` is the whole image) then lines up with pixel edges.
Colours are fixed per class index (matplotlib's ``tab10`` cycle), so class 3 has the same colour in
every figure of the course.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from torch import Tensor

from course_lib._checks import check_boxes, check_number

# Anchor labels as in Faster R-CNN's RPN: 1 positive, 0 negative, -1 ignored.
ANCHOR_STYLES = {
    1: {"name": "positive", "color": "#2ca02c", "linewidth": 2.0, "alpha": 1.0},
    -1: {"name": "ignored", "color": "#ff7f0e", "linewidth": 1.0, "alpha": 0.8},
    0: {"name": "negative", "color": "#1f77b4", "linewidth": 0.5, "alpha": 0.15},
}


def class_color(index: int) -> tuple[float, float, float]:
    """Return the fixed RGB colour of a class index (``tab10``, repeating after 10 classes)."""
    palette = mpl.colormaps["tab10"].colors
    return tuple(palette[int(index) % len(palette)])


def _to_numpy_image(image: Any) -> np.ndarray:
    """Return ``image`` as an ``HxW`` or ``HxWx3/4`` array with floats in [0, 1] or uint8."""
    if isinstance(image, Tensor):
        array = image.detach().cpu()
        if array.dim() == 3 and array.shape[0] in (1, 3):
            array = array.permute(1, 2, 0)  # (H, W, C)
            array = array[..., 0] if array.shape[-1] == 1 else array
        elif array.dim() != 2:
            raise ValueError(
                f"image: expected a Tensor[3, H, W] or Tensor[H, W], got shape {tuple(image.shape)}"
            )
        array = array.numpy()
    elif isinstance(image, np.ndarray):
        array = image
        if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))):
            raise ValueError(f"image: expected an HxW or HxWx3 array, got shape {array.shape}")
    else:
        raise TypeError(f"image: expected a torch.Tensor or numpy array, got {type(image).__name__}")
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"image: expected uint8 or float values, got dtype {array.dtype}")
    array = array.astype(np.float32, copy=False)
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 1.0)
    if not (math.isfinite(low) and math.isfinite(high)) or low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(f"image: expected float values in [0, 1], got range [{low:.3g}, {high:.3g}]")
    return np.clip(array, 0.0, 1.0)


def show_image(ax: Axes, image: Tensor | np.ndarray) -> AxesImage:
    """Draw an image with pixel-edge coordinates and no axis ticks.

    Args:
        ax: the axes to draw on.
        image: ``Tensor[3, H, W]`` (or ``[1, H, W]``, ``[H, W]``) with floats in [0, 1], or a numpy
            ``HxWx3`` / ``HxW`` array, uint8 or float in [0, 1]. Grey images use the grey colormap.

    Returns:
        The ``AxesImage`` that was added.
    """
    array = _to_numpy_image(image)
    height, width = array.shape[:2]
    grey = {}
    if array.ndim == 2:
        grey = {"cmap": "gray", "vmin": 0, "vmax": 255 if array.dtype == np.uint8 else 1}
    artist = ax.imshow(array, extent=(0, width, height, 0), interpolation="nearest", **grey)
    ax.set_axis_off()
    return artist


def _as_float_boxes(boxes: Any, name: str = "boxes") -> Tensor:
    if isinstance(boxes, np.ndarray | list | tuple):
        boxes = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
    elif isinstance(boxes, Tensor) and not boxes.is_floating_point() and boxes.dtype != torch.bool:
        boxes = boxes.float()  # integer pixel boxes draw just as well
    return check_boxes(boxes, name).detach().cpu()


def _as_list(values: Any, num_boxes: int, name: str) -> list | None:
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

    On axes without an image the view is fitted to the boxes, with y pointing down as in an image;
    with an image (or limits set with ``set_xlim``/``set_ylim``), the view is left alone.

    Returns:
        The rectangles added, one per box (an empty list for zero boxes).
    """
    boxes = _as_float_boxes(boxes)
    num_boxes = boxes.shape[0]
    labels = _as_list(labels, num_boxes, "labels")
    scores = _as_list(scores, num_boxes, "scores")
    colors = _box_colors(color, labels, num_boxes)
    tagged = set(range(num_boxes))
    if max_tags is not None:
        check_number(max_tags, "max_tags", 0, integer=True)
        order = sorted(range(num_boxes), key=lambda i: -scores[i]) if scores is not None else range(num_boxes)
        tagged = set(list(order)[:max_tags])
    rectangles = []
    for index, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        rectangle = Rectangle(
            (x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colors[index],
            linestyle=linestyle, linewidth=linewidth, alpha=alpha,
        )
        ax.add_artist(rectangle)  # add_patch would recompute the data limits box by box: slow
        rectangles.append(rectangle)
        tag = []
        if labels is not None:
            label = int(labels[index])
            tag.append(class_names[label] if class_names is not None else str(label))
        if scores is not None:
            tag.append(f"{scores[index]:.2f}")
        if tag and index in tagged:
            ax.text(
                x1, y1, " ".join(tag), color="white", fontsize=9, va="bottom", ha="left", clip_on=True,
                bbox={"facecolor": colors[index], "alpha": 0.8 * alpha, "pad": 1, "edgecolor": "none"},
            )
    if num_boxes:
        ax.update_datalim(boxes.reshape(-1, 2).numpy())  # (2N, 2) corners, as add_patch would do
        if not ax.images:  # no image to frame the view: fit it to the boxes, y pointing down
            ax.autoscale_view()
            if not ax.yaxis_inverted():
                ax.invert_yaxis()
    return rectangles


def draw_masks(
    ax: Axes,
    masks: Tensor,
    colors: Sequence[Any] | None = None,
    alpha: float = 0.4,
) -> AxesImage | None:
    """Overlay instance masks, each in its own colour, as one translucent image.

    Args:
        ax: the axes to draw on (usually after :func:`show_image`).
        masks (Tensor[N, H, W]): bool, uint8 or float masks; a pixel is inside when it is > 0.5.
        colors (sequence, optional): one matplotlib colour per mask; default ``class_color(i)``.
        alpha: opacity of the mask colour, in [0, 1].

    Returns:
        The overlay image, or ``None`` when there are no masks.
    """
    check_number(alpha, "alpha", 0.0, 1.0)
    if not isinstance(masks, Tensor | np.ndarray):
        raise TypeError(f"masks: expected a Tensor[N, H, W], got {type(masks).__name__}")
    masks = torch.as_tensor(masks).detach().cpu()
    if masks.dim() != 3:
        raise ValueError(f"masks: expected a Tensor[N, H, W], got shape {tuple(masks.shape)}")
    num_masks, height, width = masks.shape
    if num_masks == 0:
        return None
    if colors is None:
        colors = [class_color(index) for index in range(num_masks)]
    if len(colors) != num_masks:
        raise ValueError(f"colors: expected {num_masks} colours (one per mask), got {len(colors)}")
    overlay = np.zeros((height, width, 4), dtype=np.float32)  # RGBA, transparent
    inside = (masks.float() > 0.5).numpy()  # (N, H, W)
    for index in range(num_masks):  # later masks are painted over earlier ones
        overlay[inside[index]] = (*mpl.colors.to_rgb(colors[index]), alpha)
    return ax.imshow(overlay, extent=(0, width, height, 0), interpolation="nearest")


def draw_anchor_grid(ax: Axes, anchors: Tensor, labels: Tensor | None = None) -> list[PolyCollection]:
    """Draw anchors as outlines, coloured by their RPN label, with a legend that counts them.

    Positives (label 1) are bold green, ignored anchors (-1, between the two IoU thresholds)
    orange, negatives (0) faint blue so that the thousands of them do not hide the rest
    (Sec. 3.1.2 of Ren et al. 2015, "Faster R-CNN"). Without labels every anchor is faint grey.
    One ``PolyCollection`` per label keeps this fast for thousands of anchors.

    Args:
        ax: the axes to draw on.
        anchors (Tensor[A, 4]): ``xyxy`` anchors in pixels.
        labels (Tensor[A], optional): 1 positive, 0 negative, -1 ignored.

    Returns:
        The collections added (none for zero anchors).
    """
    anchors = _as_float_boxes(anchors, "anchors")
    labels_list = _as_list(labels, anchors.shape[0], "labels")
    if labels_list is None:
        groups = [({"name": "anchor", "color": "0.5", "linewidth": 0.5, "alpha": 0.5}, anchors)]
    else:
        if not set(labels_list) <= {-1, 0, 1}:
            raise ValueError(f"labels: expected values in {{1, 0, -1}}, got {sorted(set(labels_list))}")
        label_tensor = torch.as_tensor(labels_list, dtype=torch.int64)
        # Draw negatives first so positives end on top.
        groups = [(ANCHOR_STYLES[value], anchors[label_tensor == value]) for value in (0, -1, 1)]
    collections, handles = [], []
    for style, group in groups:
        x1, y1, x2, y2 = group.unbind(-1)
        corners = torch.stack([x1, y1, x2, y1, x2, y2, x1, y2], dim=-1).view(-1, 4, 2)  # (A, 4, 2)
        if group.shape[0]:
            collection = PolyCollection(
                corners.numpy(), facecolors="none", edgecolors=style["color"],
                linewidths=style["linewidth"], alpha=style["alpha"],
            )
            ax.add_collection(collection)
            collections.append(collection)
        handles.append(Line2D([], [], color=style["color"], linewidth=max(style["linewidth"], 1.5),
                              label=f"{style['name']} ({group.shape[0]})"))
    if anchors.shape[0]:
        ax.legend(handles=handles, loc="upper right", fontsize=9, framealpha=0.8)
    return collections


def overlay_heatmap(
    ax: Axes,
    image: Tensor | np.ndarray,
    heatmap: Tensor | np.ndarray,
    alpha: float = 0.5,
    cmap: str = "jet",
) -> AxesImage:
    """Draw ``image`` and a heatmap stretched over it (a saliency map, Grad-CAM, an occlusion map).

    The heatmap may be smaller than the image (a 7x7 CAM over a 224x224 image); it is shown
    over the whole image with bilinear interpolation and its own min-max colour range, since
    Grad-CAM and saliency maps are not normalized (Selvaraju et al. 2017, Eq. 2).

    Args:
        ax: the axes to draw on.
        image: anything :func:`show_image` accepts.
        heatmap (Tensor[h, w]): the map to overlay.
        alpha: opacity of the heatmap, in [0, 1].
        cmap: a matplotlib colormap name.

    Returns:
        The heatmap ``AxesImage`` (pass it to ``plt.colorbar`` for a scale).
    """
    check_number(alpha, "alpha", 0.0, 1.0)
    if cmap not in mpl.colormaps:
        raise ValueError(f"cmap: expected a matplotlib colormap name such as 'jet', got {cmap!r}")
    if isinstance(heatmap, Tensor):
        heatmap = heatmap.detach().cpu().float().numpy()
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim != 2 or heatmap.size == 0:
        raise ValueError(f"heatmap: expected a non-empty Tensor[h, w], got shape {heatmap.shape}")
    if not np.isfinite(heatmap).all():
        raise ValueError("heatmap: expected finite values, got NaN or inf")
    background = show_image(ax, image)
    height, width = background.get_array().shape[:2]
    return ax.imshow(heatmap, extent=(0, width, height, 0), cmap=cmap, alpha=alpha, interpolation="bilinear")


def image_grid(
    images: Sequence[Any] | Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    size: float = 2.5,
) -> Figure:
    """Lay out images in a grid of ``ncols`` columns, one titled axes each.

    Args:
        images: a list of anything :func:`show_image` accepts, or a ``Tensor[B, 3, H, W]``.
        titles (sequence of str, optional): one title per image.
        ncols: the number of columns (fewer when there are fewer images).
        size: the side of each cell, in inches.

    Returns:
        The pyplot ``Figure`` (shown by Jupyter at the end of the cell; close it in scripts).
        With zero images, a small empty figure.
    """
    check_number(ncols, "ncols", 1, integer=True)
    check_number(size, "size", 0.1)
    images = list(images.unbind(0)) if isinstance(images, Tensor) and images.dim() == 4 else list(images)
    images = [_to_numpy_image(image) for image in images]  # check them all before making a figure
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles: expected {len(images)} titles (one per image), got {len(titles)}")
    if not images:
        return plt.figure(figsize=(size, size))
    ncols = min(ncols, len(images))
    nrows = math.ceil(len(images) / ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(images):
            ax.set_axis_off()
            continue
        show_image(ax, images[index])
        if titles is not None:
            ax.set_title(titles[index], fontsize=10)
    figure.tight_layout()
    return figure
