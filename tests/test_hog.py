"""Tests of course_lib.classical.hog: hand-computed cells, scikit-image as the oracle, invariants, bad input.

Tolerance against ``skimage.feature.hog`` (with ``interpolate=False``): 1e-6 absolute on the
feature vector (scikit-image accumulates each cell in float32; we see about 1e-7).
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import skimage.feature
import torch

from course_lib.classical import hog, hog_glyph
from course_lib.classical.hog import cell_histograms, image_gradients, normalize_blocks

ORACLE_ATOL = 1e-6
NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")


def step_image(value: float = 10.0) -> np.ndarray:
    image = np.zeros((8, 8))
    image[:, 4:] = value  # a vertical edge: gradient along the columns, angle 0
    return image


# ----------------------------------------------------------------------------- hand-computed


def test_vertical_edge_by_hand():
    # columns 3 and 4 have g_col = 10 (centred difference), 16 pixels: sum 160, mean over 64 pixels 2.5
    hard = cell_histograms(step_image(), pixels_per_cell=(8, 8), interpolate=False)[0, 0]
    np.testing.assert_allclose(hard, [2.5, 0, 0, 0, 0, 0, 0, 0, 0])
    # angle 0 lies halfway between the centres of bin 8 (170 deg) and bin 0 (10 deg)
    soft = cell_histograms(step_image(), pixels_per_cell=(8, 8))[0, 0]
    np.testing.assert_allclose(soft, [1.25, 0, 0, 0, 0, 0, 0, 0, 1.25])


def test_diagonal_ramp_by_hand():
    rows, cols = np.mgrid[0:24, 0:24]
    image = (rows + cols).astype(float)  # interior: g_row = g_col = 2, angle 45, magnitude 2 sqrt 2
    histogram = cell_histograms(image, pixels_per_cell=(8, 8))[1, 1]  # the middle cell: no border pixel
    total = 2 * np.sqrt(2)  # the mean of 64 equal votes
    # 45 deg is 0.75 of the way from bin 1's centre (30) to bin 2's (50)
    np.testing.assert_allclose(histogram[1:3], [0.25 * total, 0.75 * total])
    assert np.count_nonzero(histogram) == 2


def test_block_norms_by_hand():
    histograms = np.zeros((2, 2, 9))
    histograms[0, 0, 0] = 3.0  # one strong vote, the rest zero
    histograms[1, 1, 4] = 4.0
    l2 = normalize_blocks(histograms, (2, 2), "L2")[0, 0]
    np.testing.assert_allclose([l2[0, 0, 0], l2[1, 1, 4]], [0.6, 0.8], atol=1e-9)
    l1 = normalize_blocks(histograms, (2, 2), "L1")[0, 0]
    np.testing.assert_allclose([l1[0, 0, 0], l1[1, 1, 4]], [3 / 7, 4 / 7], atol=1e-6)
    # L2-Hys clips 0.6 and 0.8 to 0.2 each, then renormalizes: 1 / sqrt 2 each
    hys = normalize_blocks(histograms, (2, 2), "L2-Hys")[0, 0]
    np.testing.assert_allclose([hys[0, 0, 0], hys[1, 1, 4]], [2**-0.5, 2**-0.5], atol=1e-9)


def test_feature_length():
    image = np.random.default_rng(0).random((64, 40))
    # 8 x 5 cells, 7 x 4 blocks of 2 x 2 cells, 9 bins
    assert hog(image).shape == (7 * 4 * 2 * 2 * 9,)


# ----------------------------------------------------------------------------- oracle: scikit-image


def random_image(rng, shape, kind):
    if kind == "uint8":
        return rng.integers(0, 256, shape).astype(np.uint8)
    if kind == "float32":
        return (rng.integers(0, 256, shape) / 255).astype(np.float32)
    return rng.random(shape)


@pytest.mark.parametrize("block_norm", NORMS)
@pytest.mark.parametrize("seed", range(6))
def test_matches_skimage(seed, block_norm):
    rng = np.random.default_rng(seed)
    colour = seed % 2 == 0
    height, width = (int(v) for v in rng.integers(20, 70, 2))  # rarely multiples of the cell size
    shape = (height, width, 3) if colour else (height, width)
    image = random_image(rng, shape, ("uint8", "float32", "float64")[seed % 3])
    orientations = int(rng.integers(4, 13))
    pixels_per_cell = (int(rng.integers(4, 9)), int(rng.integers(4, 9)))
    cells_per_block = (int(rng.integers(1, 3)), int(rng.integers(1, 4)))
    expected = skimage.feature.hog(image, orientations, pixels_per_cell, cells_per_block, block_norm,
                                   channel_axis=-1 if colour else None)
    got = hog(image, orientations, pixels_per_cell, cells_per_block, block_norm, interpolate=False)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=ORACLE_ATOL)


def test_matches_skimage_on_a_photo_and_glyph():
    image = skimage.data.astronaut()[100:260, 150:300]
    expected, expected_glyph = skimage.feature.hog(image, 9, (8, 8), (2, 2), "L2-Hys", visualize=True,
                                                   channel_axis=-1)
    np.testing.assert_allclose(hog(image, interpolate=False), expected, rtol=0, atol=ORACLE_ATOL)
    glyph = hog_glyph(cell_histograms(image, interpolate=False), (8, 8))
    assert glyph.shape == (160, 144)  # whole cells only; scikit-image's picture keeps the last 6 columns
    np.testing.assert_allclose(glyph, expected_glyph[:, :144], rtol=1e-6, atol=1e-4)
    assert np.all(expected_glyph[:, 144:] == 0)


def test_interpolation_differs_from_skimage_but_stays_close():
    image = skimage.data.camera()[:128, :128]
    hard, soft = hog(image, interpolate=False), hog(image)
    assert np.abs(hard - soft).max() > 1e-2  # the two really differ ...
    assert np.corrcoef(hard, soft)[0, 1] > 0.6  # ... but describe the same picture


# ----------------------------------------------------------------------------- invariants


def test_grey_equals_grey_repeated_on_three_channels():
    grey = np.random.default_rng(1).integers(0, 256, (33, 41)).astype(np.uint8)
    np.testing.assert_allclose(hog(grey), hog(np.repeat(grey[:, :, None], 3, axis=2)))
    np.testing.assert_allclose(hog(grey), hog(grey[:, :, None]))


def test_tensor_input_equals_array_input():
    image = np.random.default_rng(2).random((40, 48, 3))
    tensor = torch.from_numpy(image).permute(2, 0, 1)  # (3, H, W)
    np.testing.assert_array_equal(hog(tensor), hog(image))


def test_mirror_reverses_the_bins():
    image = np.random.default_rng(3).random((32, 40))
    histograms = cell_histograms(image, 9, (8, 8))
    mirrored = cell_histograms(image[:, ::-1], 9, (8, 8))
    # a left-right flip maps the angle t to 180 - t, so bin i to bin 8 - i, and cell column c to Wc-1-c
    np.testing.assert_allclose(mirrored, histograms[:, ::-1, ::-1], atol=1e-12)


def test_contrast_invariance():
    image = np.random.default_rng(4).random((48, 48))
    np.testing.assert_allclose(hog(image * 3.0 + 0.5), hog(image), atol=1e-6)


def test_votes_sum_to_the_magnitudes():
    image = np.random.default_rng(5).random((24, 24))
    g_row, g_col = image_gradients(image)
    total = np.hypot(g_row, g_col).sum() / 64
    for interpolate in (True, False):
        assert cell_histograms(image, 9, (8, 8), interpolate).sum() == pytest.approx(total)


def test_flat_image_gives_zeros_not_nan():
    features = hog(np.full((32, 32), 7, dtype=np.uint8))
    assert np.all(features == 0)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((0, 0)), "non-empty"),
        (np.zeros((5, 16)), "at least one cell"),
        (np.zeros((8, 8)), "at least one block"),  # one cell, but a 2 x 2 block needs 16 x 16
        (np.zeros((16, 16, 4)), "RGBA"),
        (np.zeros((16, 16, 2)), "H x W x 3"),
        (np.zeros((2, 16, 16, 3)), "H x W x 3"),
        (np.full((16, 16), np.nan), "finite"),
    ],
)
def test_bad_images(image, match):
    with pytest.raises(ValueError, match=match):
        hog(image)


def test_bad_types_and_arguments():
    with pytest.raises(TypeError, match="numpy array"):
        hog([[0, 1], [2, 3]])
    with pytest.raises(TypeError, match="dtype bool"):
        hog(np.zeros((16, 16), dtype=bool))
    with pytest.raises(ValueError, match="block_norm: expected one of"):
        hog(np.zeros((16, 16)), block_norm="L3")
    with pytest.raises(ValueError, match="pixels_per_cell"):
        hog(np.zeros((16, 16)), pixels_per_cell=(8, 8, 8))
    with pytest.raises(ValueError, match="orientations"):
        hog(np.zeros((16, 16)), orientations=0)
