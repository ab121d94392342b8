"""Masks and heatmaps over an image: instance masks in their colours, a saliency or CAM map over it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.image import AxesImage
from torch import Tensor

from course_lib._checks import check_number
from course_lib.plotting.colors import class_color
from course_lib.plotting.images import show_image


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
