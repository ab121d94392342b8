"""Writing a heatmap's values on its cells: legible, centred, and fast enough for a slider.

``write_values`` writes a grid drawn by ``imshow`` (the RoI explorer's pooled output) as a few
multi-line texts in one fixed-point format (``value_format``), black on bright cells and white
on dark ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.font_manager import FontProperties
from matplotlib.text import Text

VALUE_WIDTH = 5  # characters per written value, spaces included ("0.62" and a space)
CHAR_ADVANCE = 0.64  # DejaVu Sans's digit width, in em (to size the written values)


def write_values(ax: Axes, values: np.ndarray, middle: float) -> None:
    """Write each value centred on its cell of an ``imshow`` drawn with ``extent=(0, w, h, 0)``.

    Text is the slowest thing matplotlib draws, and a 7x7 grid written value by value (49 texts)
    took half a redraw. So each column is written as two multi-line texts, one in white for the
    values on dark cells and one in black for those on bright cells (a blank line where the other
    colour writes): 14 texts. Each line is centred on its column (``ha="center"``, so the position
    does not depend on how wide the font draws a character; an earlier version wrote rows as
    monospace strings sized from an assumed character width, and the values drifted right), and the
    line spacing is set from the font's measured line height so that consecutive lines are exactly
    one cell apart. The font is sized so that ``VALUE_WIDTH`` characters fit in a cell.

    Args:
        ax: the axes the grid is drawn on, one unit per cell.
        values (ndarray[h, w]): the grid's values, row by row.
        middle: values above it are on bright cells (written black), the others on dark ones (white).
    """
    ax.apply_aspect()  # the axes' final (square-cell) size, to size the font
    rows, cols = values.shape
    if values.size == 0:
        return
    spec = value_format(values)
    cell_points = ax.get_position().width * ax.get_figure().get_figwidth() * 72 / cols
    fontsize = min(cell_points / (VALUE_WIDTH * CHAR_ADVANCE), 9.0)
    figure = ax.get_figure()
    font = FontProperties(size=fontsize)
    cell_pixels = ax.get_position().height * figure.get_figheight() * figure.dpi / rows
    linespacing = _linespacing(figure, font, cell_pixels)
    texts = [[format(float(value), spec) for value in row] for row in values]
    for j in range(cols):
        for color, bright in (("black", True), ("white", False)):
            lines = [texts[i][j] if (values[i, j] > middle) == bright else "" for i in range(rows)]
            if any(lines):
                ax.text(
                    j + 0.5,
                    rows / 2,
                    "\n".join(lines),
                    ha="center",
                    va="center",
                    ma="center",
                    fontproperties=font,
                    linespacing=linespacing,
                    color=color,
                    clip_on=True,
                )


def _linespacing(figure: Any, font: FontProperties, pixels: float) -> float:
    """The ``linespacing`` that puts consecutive lines of a text in ``font`` ``pixels`` apart.

    Measured rather than computed from the font's metrics, whose use differs between matplotlib
    versions: the step between lines (a two-line text's height minus a one-line text's) grows
    linearly with the line spacing, so two measurements give it.
    """
    renderer = figure.canvas.get_renderer()

    def step(spacing: float) -> float:
        heights = [
            Text(0, 0, text, fontproperties=font, linespacing=spacing, figure=figure)
            .get_window_extent(renderer)
            .height
            for text in ("0", "0\n0")
        ]
        return heights[1] - heights[0]

    one, two = step(1.0), step(2.0)
    return 1.0 + (pixels - one) / max(two - one, 1e-6)


def value_format(values: np.ndarray) -> str:
    """The one fixed-point format of a grid's written values: ``".2f"``, ``".1f"`` or ``".0f"``.

    Every cell of a grid is written the same way (``0.62``, ``0.07``, ``0.00``), so that it reads as
    a table; an earlier version chose per value and mixed ``7e-2`` with ``0.94``. Two decimals
    while every value is below 10 in magnitude, then fewer, so that values stay about
    ``VALUE_WIDTH - 1`` characters.
    """
    largest = float(np.abs(values).max()) if values.size else 0.0
    return ".2f" if largest < 9.995 else ".1f" if largest < 99.95 else ".0f"
