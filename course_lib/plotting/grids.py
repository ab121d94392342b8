"""A grid of titled images in one pyplot figure (a batch, the patches of a channel, a set of filters).

The figure follows the course's convention (``course_lib.plotting.style``): 100 dpi or more, a
title per panel that fits the panel, and a title per row where the rows mean something (the
channel whose top patches a row shows, the query and its neighbours).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor

from course_lib._checks import check_number
from course_lib.plotting.images import show_image, to_image_array
from course_lib.plotting.style import MIN_DPI, figure_grid

TITLE_FONTSIZE = 12  # points: readable on a projector, short enough for a 2.5-inch panel


def image_grid(
    images: Sequence[Any] | Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    size: float = 2.5,
    row_titles: Sequence[str] | None = None,
) -> Figure:
    """Lay out images in a grid of ``ncols`` columns, one titled axes each.

    Args:
        images: a list of anything :func:`show_image` accepts, or a ``Tensor[B, 3, H, W]``.
        titles (sequence of str, optional): one title per image.
        ncols: the number of columns (fewer when there are fewer images).
        size: the side of each cell, in inches.
        row_titles (sequence of str, optional): one title per row, written left of the row
            ("channel 12", "query"): what a row of untitled panels shows.

    Returns:
        The pyplot ``Figure`` (shown by Jupyter at the end of the cell; close it in scripts).
        With zero images, a small empty figure.
    """
    check_number(ncols, "ncols", 1, integer=True)
    check_number(size, "size", 0.1)
    images = list(images.unbind(0)) if isinstance(images, Tensor) and images.dim() == 4 else list(images)
    images = [to_image_array(image) for image in images]  # check them all before making a figure
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles: expected {len(images)} titles (one per image), got {len(titles)}")
    ncols = min(ncols, max(len(images), 1))
    nrows = math.ceil(len(images) / ncols)
    if row_titles is not None and len(row_titles) != nrows:
        raise ValueError(f"row_titles: expected {nrows} titles (one per row), got {len(row_titles)}")
    if not images:
        return plt.figure(figsize=(size, size), dpi=max(MIN_DPI, plt.rcParams["figure.dpi"]))
    figure, axes = figure_grid(nrows, ncols, panel_size=(size, size))
    for index, ax in enumerate(axes.flat):
        if index >= len(images):
            ax.set_axis_off()
            continue
        show_image(ax, images[index])
        if titles is not None:
            ax.set_title(titles[index], fontsize=TITLE_FONTSIZE)
    for ax, row_title in zip(axes[:, 0], row_titles or [], strict=False):
        # show_image turned the axis off, which hides a y label: show the frame-less axis again.
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
        ax.set_ylabel(row_title, fontsize=TITLE_FONTSIZE, rotation=0, ha="right", va="center")
    return figure
