"""Tests for course_lib.plotting.style: the projector defaults and the grid of panels."""

import matplotlib as mpl
import matplotlib.pyplot as plt
import pytest

from course_lib.plotting.style import MIN_DPI, PROJECTOR_RC, apply_style, figure_grid


def test_projector_rc_is_readable_from_the_back_row():
    assert PROJECTOR_RC["figure.dpi"] >= 100 and PROJECTOR_RC["savefig.dpi"] >= 100
    sizes = [PROJECTOR_RC[key] for key in ("font.size", "axes.titlesize", "axes.labelsize",
                                           "legend.fontsize", "xtick.labelsize", "ytick.labelsize")]
    assert min(sizes) >= 11
    with mpl.rc_context():  # every key and value is valid: RcParams raises on a wrong one
        for key, value in PROJECTOR_RC.items():
            mpl.rcParams[key] = value


def test_apply_style_sets_the_defaults_of_new_figures():
    with mpl.rc_context({"figure.dpi": 72, "font.size": 8}):
        apply_style()
        assert mpl.rcParams["figure.dpi"] == 100 and mpl.rcParams["font.size"] == 13
        figure = plt.figure()
        try:
            assert figure.dpi == 100 and tuple(figure.get_size_inches()) == pytest.approx((7.0, 4.5))
        finally:
            plt.close(figure)
    assert mpl.rcParams["figure.dpi"] != 72  # the context is restored


def test_figure_grid_sizes_the_figure_by_its_panels():
    with mpl.rc_context({"figure.dpi": 72}):  # an inline backend's low default
        figure, axes = figure_grid(2, 3, panel_size=(2.0, 1.5))
    try:
        assert axes.shape == (2, 3) and len(figure.axes) == 6
        assert tuple(figure.get_size_inches()) == pytest.approx((6.0, 3.0))
        assert figure.dpi == MIN_DPI
        assert figure.get_layout_engine() is not None  # constrained: titles never overlap
    finally:
        plt.close(figure)
    figure, axes = figure_grid(1, 1, sharex=True)
    try:
        assert axes.shape == (1, 1)
    finally:
        plt.close(figure)


def test_figure_grid_rejects_bad_input():
    with pytest.raises(ValueError, match=r"nrows: expected a value in \[1, inf\], got 0"):
        figure_grid(0, 2)
    with pytest.raises(TypeError, match="ncols: expected an int, got float"):
        figure_grid(1, 2.0)
    with pytest.raises(ValueError, match=r"panel_size: expected \(width, height\) in inches, got 3"):
        figure_grid(1, 1, panel_size=3)
    with pytest.raises(ValueError, match=r"panel_size: expected a value in \[0.1, inf\], got -1"):
        figure_grid(1, 1, panel_size=(2, -1))
