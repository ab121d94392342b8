"""Tests for course_lib.widgets.hog: the HOG explorer and its pure functions."""

import base64
import io
import re

import numpy as np
import pytest
import skimage.feature
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from course_lib.classical.hog import cell_histograms, hog, hog_glyph, normalize_blocks
from course_lib.data import load_photo
from course_lib.widgets.base import shrink
from course_lib.widgets.hog import HOGExplorer, hog_view, normalized_cell_histograms

PHOTO_SIDE = 192  # the astronaut, shrunk: every test stays fast


@pytest.fixture(scope="module")
def photo():
    return shrink(load_photo("astronaut"), PHOTO_SIDE)  # (192, 192, 3) float in [0, 1]


def _shown_png(explorer):
    (output,) = explorer.output.outputs
    assert output["output_type"] == "display_data"
    return base64.b64decode(output["data"]["image/png"])


def _vertical_edge(size=16):
    image = np.zeros((size, size))
    image[:, size // 2 :] = 1.0  # dark left half, bright right half
    return image


# --- hog_view ---------------------------------------------------------------------------------
def test_hog_view_hand_computed_vertical_edge():
    # The edge columns 7 and 8 have gradient (row 0, col 1): angle 0, halfway between the centres of
    # bin 8 (170 deg) and bin 0 (10 deg), so each pixel puts 1/2 in each. A cell of 8 x 8 holds 8
    # such pixels: 8 * 1/2 / 64 in bins 0 and 8; with 1-cell blocks and L1 each cell becomes 1/2, 1/2.
    view = hog_view(_vertical_edge(), pixels_per_cell=8, orientations=9, block_norm="L1", cells_per_block=1)
    assert view["cells"] == (2, 2) and view["blocks"] == (2, 2)
    assert view["num_features"] == view["formula_num_features"] == 2 * 2 * 1 * 1 * 9
    expected = np.zeros((4, 9))
    expected[:, [0, 8]] = (1 / 16) / (1 / 8 + 1e-5)  # L1: v / (|v|_1 + eps), eps = 1e-5 as in scikit-image
    np.testing.assert_allclose(view["features"].reshape(4, 9), expected, rtol=1e-12)
    assert view["glyph"].shape == (16, 16) and view["normalized_glyph"].shape == (16, 16)


@pytest.mark.parametrize("block_norm", ["L1", "L1-sqrt", "L2", "L2-Hys"])
@pytest.mark.parametrize("pixels_per_cell, orientations, cells_per_block",
                         [(8, 9, 2), (6, 12, 3), (16, 4, 1)])
def test_hog_view_is_the_library_hog_and_has_skimage_length(photo, block_norm, pixels_per_cell, orientations,
                                                            cells_per_block):
    view = hog_view(photo, pixels_per_cell, orientations, block_norm, cells_per_block)
    cell, block = (pixels_per_cell,) * 2, (cells_per_block,) * 2
    np.testing.assert_array_equal(view["features"], hog(photo, orientations, cell, block, block_norm))
    reference = skimage.feature.hog(photo, orientations, cell, block, block_norm, channel_axis=-1)
    assert view["num_features"] == view["formula_num_features"] == reference.size
    np.testing.assert_array_equal(view["glyph"], hog_glyph(cell_histograms(photo, orientations, cell), cell))
    assert view["value_counts"].sum() == view["num_features"]
    assert np.isfinite(view["normalized_glyph"]).all()


def test_hog_view_glyph_draws_the_same_lines_as_skimage(photo):
    # skimage's picture is as large as the image; ours covers the whole cells. Without interpolation the
    # histograms are skimage's, so the glyphs agree where both are drawn (up to float32 sums).
    grey = photo.mean(axis=2)
    _, reference = skimage.feature.hog(grey, 9, (8, 8), (2, 2), visualize=True)
    ours = hog_glyph(cell_histograms(grey, 9, (8, 8), interpolate=False), (8, 8))
    np.testing.assert_allclose(ours, reference[: ours.shape[0], : ours.shape[1]], atol=1e-5)


@settings(max_examples=25)
@given(height=st.integers(8, 60), width=st.integers(8, 60), pixels_per_cell=st.integers(2, 8),
       orientations=st.integers(1, 12), cells_per_block=st.integers(1, 3), seed=st.integers(0, 1000))
def test_hog_view_length_matches_the_formula(height, width, pixels_per_cell, orientations, cells_per_block,
                                             seed):
    cell, block = pixels_per_cell, cells_per_block
    if min(height, width) // cell < block:
        return  # no whole block: tested below
    image = np.random.default_rng(seed).random((height, width))
    view = hog_view(image, cell, orientations, "L2-Hys", block)
    rows, cols = height // cell - block + 1, width // cell - block + 1
    assert view["num_features"] == view["formula_num_features"] == rows * cols * block**2 * orientations
    assert view["glyph"].shape == (height // pixels_per_cell * pixels_per_cell,
                                   width // pixels_per_cell * pixels_per_cell)


def test_normalized_cell_histograms_averages_each_cell_over_its_blocks(photo):
    histograms = cell_histograms(photo, 9, (8, 8))
    one_cell_blocks = normalize_blocks(histograms, (1, 1), "L2")
    np.testing.assert_array_equal(normalized_cell_histograms(one_cell_blocks), one_cell_blocks[:, :, 0, 0])
    blocks = normalize_blocks(histograms, (2, 2), "L2")  # (Hb, Wb, 2, 2, 9)
    average = normalized_cell_histograms(blocks)
    assert average.shape == histograms.shape
    # The corner cell is in one block only; an inner cell in four.
    np.testing.assert_allclose(average[0, 0], blocks[0, 0, 0, 0])
    inner = np.mean([blocks[4, 4, 1, 1], blocks[4, 5, 1, 0], blocks[5, 4, 0, 1], blocks[5, 5, 0, 0]], axis=0)
    np.testing.assert_allclose(average[5, 5], inner)


def test_hog_view_block_norms(photo):
    # Every block has norm 1, but for eps: in flat regions (the black corner) the norm falls to 0.
    l1 = hog_view(photo, 8, 9, "L1", 2)["features"].reshape(-1, 36).sum(axis=1)
    l2 = np.linalg.norm(hog_view(photo, 8, 9, "L2", 2)["features"].reshape(-1, 36), axis=1)
    hys = hog_view(photo, 8, 9, "L2-Hys", 2)["features"].reshape(-1, 36)
    for norms in (l1, l2, np.linalg.norm(hys, axis=1)):
        assert norms.max() <= 1 + 1e-9 and np.mean(norms > 0.999) > 0.95
    assert hys.max() < l2.max()  # clipping at 0.2 flattens the strongest bins


def test_hog_view_flat_image_gives_zeros_not_nan():
    for block_norm in ("L1", "L1-sqrt", "L2", "L2-Hys"):
        view = hog_view(np.full((32, 32), 0.5), 8, 9, block_norm, 2)
        assert np.all(view["features"] == 0) and not np.isnan(view["normalized_glyph"]).any()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"block_norm": "L3"}, ValueError, "block_norm.*L2-Hys"),
        ({"pixels_per_cell": 0}, ValueError, r"pixels_per_cell: expected a value in \[1, inf\], got 0"),
        ({"orientations": 2.5}, TypeError, "orientations: expected an int"),
        ({"cells_per_block": 5}, ValueError, "expected at least one block of 5 x 5 cells, got 4 x 4 cells"),
        ({"pixels_per_cell": 64}, ValueError, "expected at least one cell of 64 x 64 pixels"),
    ],
)
def test_hog_view_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        hog_view(np.random.default_rng(0).random((32, 32)), **kwargs)


def test_hog_view_rejects_bad_images():
    with pytest.raises(ValueError, match="RGBA"):
        hog_view(np.zeros((32, 32, 4)))
    with pytest.raises(ValueError, match="non-empty"):
        hog_view(np.zeros((0, 32)))


# --- HOGExplorer ------------------------------------------------------------------------------
STATUS_HOG = re.compile(
    r"feature length (\d+) ([=≠]) (\d+) x (\d+) blocks x (\d) x (\d) cells x (\d+) bins = (\d+)")


def _status_hog(explorer):
    match = STATUS_HOG.search(explorer.status.value)
    assert match, explorer.status.value
    return match.groups()


def test_hog_explorer_controls_change_the_features(photo):
    explorer = HOGExplorer(photo)
    length, sign, *_, total = _status_hog(explorer)
    assert (int(length), sign, int(total)) == (23 * 23 * 2 * 2 * 9, "=", 23 * 23 * 2 * 2 * 9)  # 24 x 24 cells
    assert int(length) == hog(photo).size
    explorer.controls["orientations"].value = 12
    assert int(_status_hog(explorer)[0]) == 23 * 23 * 2 * 2 * 12
    explorer.controls["pixels_per_cell"].value = 16  # 12 x 12 cells, 11 x 11 blocks
    assert _status_hog(explorer)[2:4] == ("11", "11")
    before = explorer.result["features"]
    explorer.controls["block_norm"].value = "L1"
    assert explorer.result["block_norm"] == "L1" and not np.allclose(before, explorer.result["features"])
    photo_ax, glyph_ax, normalized_ax, values_ax = explorer.axes
    assert len(photo_ax.images) == len(glyph_ax.images) == len(normalized_ax.images) == 1
    assert len(values_ax.lines) == 0 and len(values_ax.patches) == 1  # no L2-Hys clip line for L1
    explorer.controls["block_norm"].value = "L2-Hys"
    assert len(values_ax.lines) == 1
    assert _shown_png(explorer).startswith(b"\x89PNG")
    explorer.close()


def test_hog_explorer_at_the_slider_extremes(photo):
    explorer = HOGExplorer(photo)
    controls = explorer.controls
    assert (controls["pixels_per_cell"].min, controls["pixels_per_cell"].max) == (2, 32)
    low = {name: controls[name].min for name in ("pixels_per_cell", "cells_per_block", "orientations")}
    high = {name: controls[name].max for name in low}
    settings_ = ({**low, "cells_per_block": 4, "orientations": 18}, high, {**high, "cells_per_block": 1}, low)
    for setting in settings_:
        for name, value in setting.items():
            controls[name].value = value
        length, sign, *_, total = _status_hog(explorer)
        assert sign == "=" and length == total
        cell, block, bins = setting["pixels_per_cell"], setting["cells_per_block"], setting["orientations"]
        assert explorer.result["num_features"] == hog(photo, bins, (cell, cell), (block, block)).size
    assert _shown_png(explorer).startswith(b"\x89PNG")


def test_hog_explorer_shows_a_palette_png(photo):
    explorer = HOGExplorer(photo)
    png = _shown_png(explorer)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "P"  # 256 colours
    assert image.size == explorer.figure.canvas.get_width_height()
    explorer.palette = False
    assert len(png) < len(explorer.render_png()) / 2  # the true-colour PNG of the same figure
    pixels = np.asarray(image.convert("RGB")).astype(int)
    canvas = np.asarray(explorer.figure.canvas.buffer_rgba())[..., :3].astype(int)
    assert np.abs(pixels - canvas).mean() < 3  # and looks the same


def test_hog_explorer_shrinks_large_photos_and_refuses_tiny_ones():
    explorer = HOGExplorer(load_photo("astronaut"), max_side=128)
    assert explorer.image.shape == (128, 128, 3) and 0 <= explorer.image.min() and explorer.image.max() <= 1
    assert explorer.controls["pixels_per_cell"].max == 32
    small = HOGExplorer(np.random.default_rng(0).random((40, 24)))
    assert small.image.shape == (40, 24) and small.controls["pixels_per_cell"].max == 6
    with pytest.raises(ValueError, match=r"image: expected at least 16 x 16 pixels, got \(12, 40\)"):
        HOGExplorer(np.zeros((12, 40)))
