"""Anchors on an image, coloured by their RPN label: thousands of outlines, drawn fast."""

from __future__ import annotations

import torch
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from torch import Tensor

from course_lib.plotting.boxes import as_drawable_boxes, per_box_values

# Anchor labels as in Faster R-CNN's RPN: 1 positive, 0 negative, -1 ignored.
ANCHOR_STYLES = {
    1: {"name": "positive", "color": "#2ca02c", "linewidth": 2.0, "alpha": 1.0},
    -1: {"name": "ignored", "color": "#ff7f0e", "linewidth": 1.0, "alpha": 0.8},
    0: {"name": "negative", "color": "#1f77b4", "linewidth": 0.5, "alpha": 0.15},
}


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
    anchors = as_drawable_boxes(anchors, "anchors")
    labels_list = per_box_values(labels, anchors.shape[0], "labels")
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
        ax.legend(handles=handles, loc="upper right", framealpha=0.8)  # rc legend.fontsize: 11 points
    return collections
