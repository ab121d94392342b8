"""The HOG explorer of chapter 3: the HOG descriptor of a photo, knob by knob.

It wraps ``course_lib.classical.hog`` through one pure function that the tests check on its own,
``hog_view`` (everything the explorer draws, with the feature vector equal to ``hog(image, ...)``);
the class only turns control values into arguments and results into matplotlib calls. The
sliding-window detector built on these features has its explorer in
:mod:`course_lib.widgets.sliding_window`.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.axes import Axes

from course_lib._checks import check_choice, check_number
from course_lib.classical.hog import BLOCK_NORMS, cell_histograms, hog_glyph, normalize_blocks
from course_lib.classical.sliding_window import to_unit_float
from course_lib.plotting import show_image
from course_lib.widgets.base import WIDE_LABEL, Explorer, shrink

L2_HYS_CLIP = 0.2  # Dalal and Triggs' clipping value, drawn on the feature histogram
CLIP_COLOR = "#d62728"


def normalized_cell_histograms(blocks: np.ndarray) -> np.ndarray:
    """Each cell's histogram after block normalization, averaged over the blocks that contain it.

    A cell belongs to up to ``block_rows * block_cols`` overlapping blocks and is normalized
    differently in each; this average is only for the picture (the feature vector keeps every copy).

    Args:
        blocks: ``ndarray[Hb, Wb, block_rows, block_cols, n]`` from ``normalize_blocks``.

    Returns:
        ``ndarray[Hc, Wc, n]`` with ``Hc = Hb + block_rows - 1``.
    """
    num_block_rows, num_block_cols, block_rows, block_cols, n = blocks.shape
    total = np.zeros((num_block_rows + block_rows - 1, num_block_cols + block_cols - 1, n))  # (Hc, Wc, n)
    count = np.zeros(total.shape[:2] + (1,))  # (Hc, Wc, 1)
    for row in range(block_rows):
        for col in range(block_cols):
            total[row : row + num_block_rows, col : col + num_block_cols] += blocks[:, :, row, col]
            count[row : row + num_block_rows, col : col + num_block_cols] += 1
    return total / count


def hog_view(
    image: Any,
    pixels_per_cell: int = 8,
    orientations: int = 9,
    block_norm: str = "L2-Hys",
    cells_per_block: int = 2,
    num_bins: int = 40,
) -> dict[str, Any]:
    """Everything the HOG explorer shows, computed with ``course_lib.classical.hog``.

    Args:
        image: ``H x W`` or ``H x W x 3``, uint8 or float in [0, 1] (see ``to_unit_float``).
        pixels_per_cell: side of a square cell, in pixels.
        orientations: unsigned orientation bins over 0-180 degrees.
        block_norm: ``"L1"``, ``"L1-sqrt"``, ``"L2"`` or ``"L2-Hys"``.
        cells_per_block: side of a square block, in cells (blocks overlap with a one-cell stride).
        num_bins: bins of the histogram of feature values.

    Returns:
        dict with ``image`` (float in [0, 1]), ``cells`` ``(Hc, Wc)``, ``blocks`` ``(Hb, Wb)``,
        ``features`` (the HOG vector, equal to ``hog(image, ...)``), ``num_features`` (its length),
        ``formula_num_features`` (``Hb * Wb * cells_per_block**2 * orientations``), ``glyph`` (the
        classic picture of the cell histograms, ``H' x W'`` with ``H' = Hc * pixels_per_cell``, as
        ``skimage.feature.hog(..., visualize=True)`` draws it), ``normalized_glyph`` (the same for
        the block-normalized cells, see :func:`normalized_cell_histograms`), ``value_counts`` and
        ``value_edges`` (the histogram of feature values), and the arguments.
    """
    pixels_per_cell = int(check_number(pixels_per_cell, "pixels_per_cell", 1, integer=True))
    orientations = int(check_number(orientations, "orientations", 1, integer=True))
    cells_per_block = int(check_number(cells_per_block, "cells_per_block", 1, integer=True))
    check_choice(block_norm, BLOCK_NORMS, "block_norm")
    check_number(num_bins, "num_bins", 1, integer=True)
    image = to_unit_float(image)
    cell = (pixels_per_cell, pixels_per_cell)
    histograms = cell_histograms(image, orientations, cell)  # (Hc, Wc, n)
    blocks = normalize_blocks(histograms, (cells_per_block, cells_per_block), block_norm)  # (Hb, Wb, b, b, n)
    features = blocks.ravel()
    num_cells, num_blocks = histograms.shape[:2], blocks.shape[:2]
    formula = num_blocks[0] * num_blocks[1] * cells_per_block**2 * orientations
    counts, edges = np.histogram(features, bins=num_bins, range=(0.0, max(float(features.max()), 1e-12)))
    return {
        "image": image,
        "cells": tuple(num_cells),
        "blocks": tuple(num_blocks),
        "features": features,
        "num_features": int(features.size),
        "formula_num_features": int(formula),
        "glyph": hog_glyph(histograms, cell),
        "normalized_glyph": hog_glyph(normalized_cell_histograms(blocks), cell),
        "value_counts": counts,
        "value_edges": edges,
        "pixels_per_cell": pixels_per_cell,
        "orientations": orientations,
        "block_norm": block_norm,
        "cells_per_block": cells_per_block,
    }


class HOGExplorer(Explorer):
    """Change the cell size, the bin count, the block size and the block norm; see the HOG glyph.

    From left to right: the photo; the glyph of the cell histograms (one line per bin, along the
    edge direction, as bright as the bin); the same after block normalization (each cell averaged
    over its blocks); the histogram of the feature vector's values (L2-Hys clips them at 0.2 before
    normalizing again). The status gives the feature length and checks it against the formula.

    Args:
        image: a photo, ``H x W x 3`` or ``H x W`` (uint8 or float in [0, 1]).
        max_side: the photo is shrunk to this longer side first, so that a redraw stays fast.
    """

    def __init__(self, image: Any, max_side: int = 256) -> None:
        self.image = shrink(image, max_side)
        min_side = min(self.image.shape[:2])
        if min_side < 16:
            raise ValueError(f"image: expected at least 16 x 16 pixels, got {self.image.shape[:2]}")
        largest_cell = max(min(32, min_side // 4), 2)  # at least 4 cells, so a 4 x 4 block still fits
        controls = {
            "pixels_per_cell": widgets.IntSlider(value=min(8, largest_cell), min=2, max=largest_cell,
                                                 description="pixels per cell", style=WIDE_LABEL),
            "orientations": widgets.IntSlider(value=9, min=2, max=18, description="orientation bins",
                                              style=WIDE_LABEL),
            "cells_per_block": widgets.IntSlider(value=2, min=1, max=4, description="cells per block",
                                                 style=WIDE_LABEL),
            "block_norm": widgets.Dropdown(options=BLOCK_NORMS, value="L2-Hys", description="block norm",
                                           style=WIDE_LABEL),
        }
        caption = ("<div style='font-size: 0.9em'>Glyph: in every cell, one line per orientation bin, "
                   "along the edge (across the gradient), as bright as the bin. Block normalization evens "
                   "out strong and weak edges. Right: how the feature values spread (red dashes: L2-Hys's "
                   "clip at 0.2).</div>")
        super().__init__(controls, num_axes=4, figsize=(12.0, 3.4), dpi=100, caption=caption,
                         palette=True)

    def compute(self, pixels_per_cell: int, orientations: int, cells_per_block: int,
                block_norm: str) -> dict[str, Any]:
        return hog_view(self.image, pixels_per_cell, orientations, block_norm, cells_per_block)

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        photo_ax, glyph_ax, normalized_ax, values_ax = ax
        show_image(photo_ax, result["image"])
        cell = result["pixels_per_cell"]
        rows, cols = result["cells"]
        photo_ax.set_title(f"{rows} x {cols} cells of {cell} x {cell} px", fontsize=11)
        for glyph_axes, key, title in [(glyph_ax, "glyph", f"cell histograms, {result['orientations']} bins"),
                                       (normalized_ax, "normalized_glyph", f"after {result['block_norm']}")]:
            glyph = result[key]
            # A few strong edges would make every other line black: saturate the top 1 % instead.
            lit = glyph[glyph > 0]
            brightest = float(np.percentile(lit, 99)) if lit.size else 1.0
            # antialiased: a glyph has more pixels than the axes, and nearest sampling would drop lines
            glyph_axes.imshow(glyph, cmap="gray", vmin=0, vmax=max(brightest, 1e-12),
                              extent=(0, cols * cell, rows * cell, 0), interpolation="antialiased")
            glyph_axes.set_axis_off()
            glyph_axes.set_title(title, fontsize=11)
        values_ax.stairs(result["value_counts"], result["value_edges"], fill=True, color="#1f77b4")
        if result["block_norm"] == "L2-Hys":
            values_ax.axvline(L2_HYS_CLIP, color=CLIP_COLOR, linestyle="--", linewidth=1.5)
        values_ax.set_xlim(0, float(result["value_edges"][-1]))
        values_ax.set_ylim(0, max(float(result["value_counts"].max()), 1) * 1.05)
        values_ax.set_yticks([])
        values_ax.set_xticks([0, round(float(result["value_edges"][-1]), 2)])
        values_ax.set_title("feature values", fontsize=11)

    def summary(self, result: dict[str, Any]) -> str:
        (num_block_rows, num_block_cols), block = result["blocks"], result["cells_per_block"]
        check = "=" if result["num_features"] == result["formula_num_features"] else "≠"
        return (f"feature length {result['num_features']} {check} {num_block_rows} x {num_block_cols} blocks "
                f"x {block} x {block} cells x {result['orientations']} bins = "
                f"{result['formula_num_features']}")
