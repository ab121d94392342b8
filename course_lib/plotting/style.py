"""The course's one figure convention: readable from the back row of a lecture room.

Every figure is rendered at 100 dpi or more, with fonts of 11 points at least (13 for text, 14 for
titles): a 7-inch figure is 700 pixels wide, the width of a notebook's output area, and its text
stays legible when projected. Every panel has a title, and every axis that carries a quantity has
a label with its unit; image panels have no axes at all (``show_image`` turns them off).

``nb.setup()``, the first cell of every notebook, calls :func:`apply_style`; a script uses
``with matplotlib.rc_context(PROJECTOR_RC):``. :func:`figure_grid` makes a grid of panels of a
given size, so that a figure with many panels does not shrink each one to a thumbnail.
"""

from __future__ import annotations

from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from course_lib._checks import check_number

MIN_DPI = 100  # the lowest resolution of a course figure
PROJECTOR_RC = {
    "figure.figsize": (7.0, 4.5),
    "figure.dpi": MIN_DPI,
    "savefig.dpi": MIN_DPI,
    "font.size": 13,
    "axes.titlesize": 14,
    "axes.labelsize": 13,
    "legend.fontsize": 11,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "lines.linewidth": 2.0,
    "image.interpolation": "nearest",  # small generated images: show the pixels, do not blur them
    "axes.grid": False,
}


def apply_style() -> None:
    """Make :data:`PROJECTOR_RC` matplotlib's defaults for every figure made from now on."""
    mpl.rcParams.update(PROJECTOR_RC)


def figure_grid(
    nrows: int,
    ncols: int,
    panel_size: tuple[float, float] = (3.2, 3.2),
    **subplots_kw: Any,
) -> tuple[Figure, np.ndarray]:
    """A pyplot figure of ``nrows x ncols`` panels, each ``panel_size`` inches, at the course's dpi.

    The figure grows with the number of panels instead of squeezing them, and uses matplotlib's
    constrained layout, so titles and axis labels never overlap the next panel. At 100 dpi a
    3.2-inch panel shows a 128-pixel image at 2.5 screen pixels per image pixel.

    Args:
        nrows, ncols: the number of rows and columns (positive ints).
        panel_size: ``(width, height)`` of one panel in inches.
        **subplots_kw: passed to ``plt.subplots`` (``sharex``, ``width_ratios``, ...).

    Returns:
        ``(figure, axes)``, ``axes`` always a 2-D array of shape ``(nrows, ncols)``.
    """
    check_number(nrows, "nrows", 1, integer=True)
    check_number(ncols, "ncols", 1, integer=True)
    if not (isinstance(panel_size, tuple | list) and len(panel_size) == 2):
        raise ValueError(f"panel_size: expected (width, height) in inches, got {panel_size!r}")
    width, height = (check_number(side, "panel_size", 0.1) for side in panel_size)
    subplots_kw.setdefault("layout", "constrained")
    subplots_kw.setdefault("dpi", max(MIN_DPI, mpl.rcParams["figure.dpi"]))
    figure, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                                **subplots_kw)
    return figure, axes
