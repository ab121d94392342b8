"""Tests for course_lib.plotting.grids: titled images in a grid, batches, zero images, bad input."""

import matplotlib.pyplot as plt
import pytest
import torch

from course_lib.plotting.grids import image_grid


def test_image_grid_lays_out_rows_and_titles():
    figure = image_grid([torch.rand(3, 8, 8) for _ in range(5)], titles=list("abcde"), ncols=3)
    try:
        assert len(figure.axes) == 6
        assert [ax.get_title() for ax in figure.axes] == ["a", "b", "c", "d", "e", ""]
        assert [len(ax.images) for ax in figure.axes] == [1, 1, 1, 1, 1, 0]
    finally:
        plt.close(figure)


def test_image_grid_accepts_a_batch_tensor_and_fewer_images_than_columns():
    figure = image_grid(torch.rand(2, 3, 8, 8))
    try:
        assert len(figure.axes) == 2
    finally:
        plt.close(figure)


def test_image_grid_follows_the_figure_convention_and_titles_rows():
    figure = image_grid([torch.rand(3, 8, 8) for _ in range(6)], ncols=3, size=1.5,
                        row_titles=["channel 3", "channel 7"])
    try:
        assert figure.dpi >= 100 and tuple(figure.get_size_inches()) == pytest.approx((4.5, 3.0))
        assert [ax.get_ylabel() for ax in figure.axes] == ["channel 3", "", "", "channel 7", "", ""]
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        label = figure.axes[0].yaxis.label.get_window_extent(renderer)
        assert label.x0 >= 0 and label.x1 <= figure.axes[0].get_window_extent(renderer).x0  # inside, at left
        assert figure.axes[0].get_xticks().size == 0 and not figure.axes[0].spines["left"].get_visible()
    finally:
        plt.close(figure)
    with pytest.raises(ValueError, match=r"row_titles: expected 2 titles \(one per row\), got 1"):
        image_grid([torch.rand(3, 4, 4)] * 4, ncols=2, row_titles=["one"])


def test_image_grid_with_zero_images_is_an_empty_figure():
    figure = image_grid([])
    try:
        assert figure.axes == []
    finally:
        plt.close(figure)


def test_image_grid_checks_before_opening_a_figure():
    with pytest.raises(ValueError, match="expected 2 titles"):
        image_grid([torch.rand(3, 4, 4)] * 2, titles=["one"])
    with pytest.raises(ValueError, match="got shape"):
        image_grid([torch.rand(3, 4, 4), torch.rand(2, 4, 4)])
    with pytest.raises(ValueError, match=r"ncols: expected a value in \[1, inf\]"):
        image_grid([torch.rand(3, 4, 4)], ncols=0)
    # the no_figures_left fixture checks that none of these left a figure open
