import numpy as np
import pytest
import skimage.data

from course_lib.data import PHOTO_NAMES, TEXTURE_NAMES, load_photo

GREY = {"brick", "camera", "coins", "grass", "gravel", "moon"}
# The files behind TEXTURE_NAMES: all PNG (lossless), so the generated backgrounds are the same
# bytes on every machine.
TEXTURE_FILES = {
    "astronaut": "astronaut.png",
    "brick": "brick.png",
    "camera": "camera.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "immunohistochemistry": "ihc.png",
}


@pytest.mark.parametrize("name", PHOTO_NAMES)
def test_every_photo_is_uint8_rgb_and_matches_skimage(name):
    photo = load_photo(name)
    assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
    reference = getattr(skimage.data, name)()  # the oracle: scikit-image's own loader
    if name in GREY:
        assert reference.ndim == 2
        for channel in range(3):
            np.testing.assert_array_equal(photo[:, :, channel], reference)
    else:
        np.testing.assert_array_equal(photo, reference[:, :, :3])


def test_photos_are_cached_and_read_only():
    first, second = load_photo("astronaut"), load_photo("astronaut")
    assert first is second
    assert not first.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first[0, 0, 0] = 0
    copy = first.copy()
    copy[0, 0, 0] = 0  # a copy is the student's to draw on


def test_textures_are_bundled_png_files():
    assert set(TEXTURE_NAMES) <= set(PHOTO_NAMES)
    assert set(TEXTURE_NAMES) == set(TEXTURE_FILES)
    assert "coins" not in TEXTURE_NAMES and "moon" not in TEXTURE_NAMES  # round things: false circles
    folder = skimage.data.data_dir
    for file_name in TEXTURE_FILES.values():
        with open(f"{folder}/{file_name}", "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def test_photo_shapes_by_hand():
    assert load_photo("astronaut").shape == (512, 512, 3)
    assert load_photo("chelsea").shape == (300, 451, 3)
    assert load_photo("coins").shape == (303, 384, 3)


@pytest.mark.parametrize("name", ["lena", "Astronaut", "", "cat"])
def test_unknown_photo_lists_the_choices(name):
    with pytest.raises(ValueError, match="expected one of 'astronaut', 'brick'"):
        load_photo(name)
