"""Tests for course_lib.plotting.images: the pixel-edge convention and the image layouts accepted."""

import numpy as np
import pytest
import torch

from course_lib.plotting.images import show_image, to_image_array


@pytest.mark.parametrize(
    "image",
    [
        torch.rand(3, 20, 30),
        torch.rand(1, 20, 30),
        torch.rand(20, 30),
        (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8),
        np.random.default_rng(0).random((20, 30, 3)),
        np.zeros((20, 30), dtype=np.uint8),
    ],
    ids=["tensor-chw", "tensor-1hw", "tensor-hw", "numpy-uint8", "numpy-float", "numpy-grey"],
)
def test_show_image_accepts_every_layout_with_pixel_edge_extent(ax, image):
    artist = show_image(ax, image)
    assert len(ax.images) == 1
    assert artist.get_extent() == [0, 30, 20, 0]
    assert artist.get_array().shape[:2] == (20, 30)
    assert not ax.axison


def test_show_image_keeps_values_and_uses_grey_map_for_2d(ax):
    image = torch.linspace(0, 1, 12).view(3, 4)
    artist = show_image(ax, image)
    assert artist.get_cmap().name == "gray"
    assert artist.get_clim() == (0, 1)
    np.testing.assert_allclose(artist.get_array(), image.numpy())


@pytest.mark.parametrize(
    "image, error, match",
    [
        (torch.rand(2, 5, 5), ValueError, r"expected a Tensor\[3, H, W\] or Tensor\[H, W\], got shape"),
        (torch.rand(1, 3, 5, 5), ValueError, "got shape"),
        (np.zeros((5, 5, 2)), ValueError, r"expected an HxW or HxWx3 array, got shape \(5, 5, 2\)"),
        (torch.rand(3, 5, 5) * 255, ValueError, r"expected float values in \[0, 1\]"),
        (torch.full((5, 5), float("nan")), ValueError, r"expected float values in \[0, 1\]"),
        (np.zeros((5, 5), dtype=np.int64), TypeError, "expected uint8 or float values"),
        ([[0.0, 1.0]], TypeError, "expected a torch.Tensor or numpy array, got list"),
    ],
)
def test_show_image_rejects_bad_images(ax, image, error, match):
    with pytest.raises(error, match=match):
        show_image(ax, image)


def test_to_image_array_keeps_uint8_and_clips_float_rounding():
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert to_image_array(image) is image  # uint8 is drawn as it is
    rounded = to_image_array(torch.tensor([[-0.0005, 0.5], [1.0005, 1.0]]))  # float rounding past [0, 1]
    assert rounded.dtype == np.float32 and rounded.tolist() == [[0.0, 0.5], [1.0, 1.0]]
    rgba = np.ones((4, 5, 4))
    assert to_image_array(rgba).shape == (4, 5, 4)
    assert to_image_array(torch.rand(1, 4, 5)).shape == (4, 5)  # one channel: a grey image
    with pytest.raises(ValueError, match=r"expected float values in \[0, 1\], got range \[0, 2\]"):
        to_image_array(np.array([[0.0, 2.0]]))
    with pytest.raises(TypeError, match="expected uint8 or float values, got dtype int64"):
        to_image_array(np.zeros((2, 2), dtype=np.int64))
