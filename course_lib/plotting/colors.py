"""The colour of each class, fixed across the course: class 3 has the same colour in every figure."""

from __future__ import annotations

import matplotlib as mpl


def class_color(index: int) -> tuple[float, float, float]:
    """Return the fixed RGB colour of a class index (``tab10``, repeating after 10 classes)."""
    palette = mpl.colormaps["tab10"].colors
    return tuple(palette[int(index) % len(palette)])
