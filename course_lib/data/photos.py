"""Real photos that ship inside scikit-image, loaded once and cached.

Nothing here downloads: every name in ``PHOTO_NAMES`` is a file bundled in the installed
``skimage/data`` folder (the ones that would need ``pooch`` and the network are left out).
The generated datasets cut their textured backgrounds from ``TEXTURE_NAMES``, the subset stored
as PNG: PNG decoding is lossless, so a crop has the same bytes on every machine, whereas JPEG
decoders (``rocket``, ``retina``, ``hubble_deep_field``) may differ by a grey level between
library versions.
"""

from __future__ import annotations

import functools

import numpy as np
import skimage.data

from course_lib._checks import check_choice

PHOTO_NAMES = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "retina",
    "rocket",
)

# Lossless (PNG) photos only: the backgrounds of ShapeScenes / ShapeCrops must be the same
# bytes on every machine. Not ``coins`` or ``moon``: their round coins and craters would be
# unlabelled circles.
TEXTURE_NAMES = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "grass",
    "gravel",
    "immunohistochemistry",
)


def load_photo(name: str) -> np.ndarray:
    """Return one of scikit-image's bundled photos as an ``H x W x 3`` uint8 array.

    Grey photos (``brick``, ``camera``, ``coins``, ``grass``, ``gravel``, ``moon``) are repeated
    on the three channels, so every photo has the same layout. The array is cached and shared
    between calls, hence read-only: take ``.copy()`` before drawing on it.

    Args:
        name: one of ``PHOTO_NAMES``.

    Returns:
        ``np.ndarray[H, W, 3]`` of dtype uint8 (not writeable).
    """
    check_choice(name, PHOTO_NAMES, "name")
    return _load(name)


@functools.cache
def _load(name: str) -> np.ndarray:
    photo = np.asarray(getattr(skimage.data, name)())
    if photo.ndim == 2:
        photo = np.repeat(photo[:, :, None], 3, axis=2)  # (H, W, 3)
    photo = np.ascontiguousarray(photo[:, :, :3], dtype=np.uint8)
    photo.setflags(write=False)
    return photo
