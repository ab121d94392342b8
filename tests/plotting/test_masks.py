"""Tests for course_lib.plotting.masks: instance masks and heatmaps over an image, empty and bad input."""

import numpy as np
import pytest
import torch

from course_lib.plotting.colors import class_color
from course_lib.plotting.masks import draw_masks, overlay_heatmap


def test_draw_masks_paints_each_mask_in_its_colour(ax):
    masks = torch.zeros(2, 4, 5, dtype=torch.uint8)
    masks[0, :2, :2] = 1
    masks[1, 1:3, 1:4] = 1  # overlaps mask 0 at pixel (1, 1): the later mask wins
    overlay = draw_masks(ax, masks, colors=["red", "blue"], alpha=0.5)
    rgba = overlay.get_array()
    assert len(ax.images) == 1 and overlay.get_extent() == [0, 5, 4, 0]
    np.testing.assert_allclose(rgba[0, 0], [1, 0, 0, 0.5])
    np.testing.assert_allclose(rgba[1, 1], [0, 0, 1, 0.5])
    np.testing.assert_allclose(rgba[3, 4], [0, 0, 0, 0])  # outside every mask: transparent
    assert int((rgba[..., 3] > 0).sum()) == 4 + 6 - 1


def test_draw_masks_default_colours_bool_and_float_masks(ax):
    masks = torch.zeros(2, 3, 3)
    masks[0, 0, 0] = 0.9
    masks[1, 2, 2] = 0.4  # below 0.5: outside
    rgba = draw_masks(ax, masks).get_array()
    np.testing.assert_allclose(rgba[0, 0, :3], class_color(0))
    assert rgba[2, 2, 3] == 0
    whole = draw_masks(ax, np.ones((1, 3, 3), dtype=bool), alpha=0.25).get_array()  # numpy bool
    np.testing.assert_allclose(whole[..., 3], np.full((3, 3), 0.25))  # every pixel inside


def test_draw_masks_with_zero_masks_draws_nothing(ax):
    assert draw_masks(ax, torch.zeros(0, 8, 8, dtype=torch.uint8)) is None
    assert len(ax.images) == 0


@pytest.mark.parametrize(
    "masks, kwargs, error, match",
    [
        (torch.zeros(8, 8), {}, ValueError, r"expected a Tensor\[N, H, W\], got shape \(8, 8\)"),
        ([[0, 1]], {}, TypeError, "expected a Tensor"),
        (torch.zeros(2, 8, 8), {"colors": ["red"]}, ValueError, "expected 2 colours"),
        (torch.zeros(2, 8, 8), {"alpha": 1.5}, ValueError, r"expected a value in \[0.0, 1.0\]"),
    ],
)
def test_draw_masks_rejects_bad_input(ax, masks, kwargs, error, match):
    with pytest.raises(error, match=match):
        draw_masks(ax, masks, **kwargs)


def test_overlay_heatmap_stretches_a_small_map_over_the_image(ax):
    heatmap = torch.arange(49.0).view(7, 7)
    artist = overlay_heatmap(ax, torch.rand(3, 56, 64), heatmap, alpha=0.3, cmap="viridis")
    assert len(ax.images) == 2
    assert artist.get_extent() == [0, 64, 56, 0]
    assert artist.get_alpha() == 0.3 and artist.get_cmap().name == "viridis"
    assert artist.get_clim() == (0.0, 48.0)  # its own range: maps are not normalized


def test_overlay_heatmap_accepts_a_constant_map(ax):
    overlay_heatmap(ax, np.zeros((8, 8, 3), dtype=np.uint8), np.zeros((8, 8)))
    assert len(ax.images) == 2


@pytest.mark.parametrize(
    "heatmap, kwargs, match",
    [
        (torch.zeros(1, 7, 7), {}, r"expected a non-empty Tensor\[h, w\], got shape \(1, 7, 7\)"),
        (torch.zeros(0, 7), {}, "expected a non-empty"),
        (torch.full((3, 3), float("inf")), {}, "expected finite values"),
        (torch.zeros(3, 3), {"cmap": "no-such-map"}, "expected a matplotlib colormap name"),
        (torch.zeros(3, 3), {"alpha": -0.1}, r"expected a value in \[0.0, 1.0\]"),
    ],
)
def test_overlay_heatmap_rejects_bad_input(ax, heatmap, kwargs, match):
    with pytest.raises(ValueError, match=match):
        overlay_heatmap(ax, torch.rand(3, 8, 8), heatmap, **kwargs)
