"""Images in the course's one convention: pixel ``(i, j)`` covers ``[j, j+1] x [i, i+1]``.

Images are drawn with ``extent=(0, W, H, 0)``, so a box in torchvision's pixel convention
(``[0, 0, W, H]`` is the whole image) lines up with pixel edges, and every helper of
``course_lib.plotting`` that draws over an image (boxes, masks, heatmaps) uses the same coordinates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.image import AxesImage
from torch import Tensor


def to_image_array(image: Any) -> np.ndarray:
    """Return ``image`` as matplotlib draws it: an ``HxW`` or ``HxWx3/4`` array, uint8 or float in [0, 1].

    Args:
        image: ``Tensor[3, H, W]`` (or ``[1, H, W]``, ``[H, W]``) with floats in [0, 1], or a numpy
            ``HxW`` / ``HxWx3`` / ``HxWx4`` array, uint8 or float in [0, 1].

    Returns:
        uint8 arrays as they are; floats as float32, clipped to [0, 1] (values up to 1e-3 outside
        are rounding, further out is an error).

    Raises:
        TypeError: not a tensor or array, or integer values other than uint8.
        ValueError: another layout, or float values outside [0, 1] (or NaN).
    """
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
    array = to_image_array(image)
    height, width = array.shape[:2]
    grey = {}
    if array.ndim == 2:
        grey = {"cmap": "gray", "vmin": 0, "vmax": 255 if array.dtype == np.uint8 else 1}
    artist = ax.imshow(array, extent=(0, width, height, 0), interpolation="nearest", **grey)
    ax.set_axis_off()
    return artist
