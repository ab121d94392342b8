"""A grid of titled images in one pyplot figure (a batch, the patches of a channel, a set of filters)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor

from course_lib._checks import check_number
from course_lib.plotting.images import show_image, to_image_array


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
    images = [to_image_array(image) for image in images]  # check them all before making a figure
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
