"""Ground-truth boxes of two of scikit-image's photos, shipped in ``data/annotations/``.

* ``coins.json``: one box per coin of ``skimage.data.coins()``, derived by :func:`derive_coin_boxes`
  (the region-based segmentation of scikit-image's gallery example "Comparing edge-based and
  region-based segmentation": Sobel elevation map, watershed from dark and bright markers, holes
  filled), checked by eye: 24 coins, 24 tight boxes.
* ``astronaut_objects.json``: a few boxes drawn by hand on ``skimage.data.astronaut()``.

Boxes are xyxy pixels with ``x2`` = last column + 1, like ``ShapeScenes``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import skimage.data
import torch
from scipy import ndimage
from skimage import filters, measure, segmentation

from course_lib import paths
from course_lib._checks import check_choice

ANNOTATIONS = paths.ANNOTATIONS_DIR
ANNOTATED_PHOTOS = {"coins": "coins.json", "astronaut": "astronaut_objects.json"}
MIN_COIN_AREA = 100  # pixels; the smallest coin has about 1,100


def derive_coin_boxes() -> np.ndarray:
    """One xyxy box per coin of ``skimage.data.coins()``, left to right then top to bottom: (24, 4)."""
    coins = skimage.data.coins()  # (303, 384) uint8
    markers = np.zeros_like(coins)
    markers[coins < 30] = 1  # surely background
    markers[coins > 150] = 2  # surely coin
    regions = segmentation.watershed(filters.sobel(coins), markers)
    labels = measure.label(ndimage.binary_fill_holes(regions == 2))
    boxes = [
        (col0, row0, col1, row1)
        for row0, col0, row1, col1 in (p.bbox for p in measure.regionprops(labels) if p.area >= MIN_COIN_AREA)
    ]
    # Rows of coins first (by centre height, rounded to a row), then left to right.
    boxes.sort(key=lambda box: (round((box[1] + box[3]) / 2 / 75), box[0]))
    return np.array(boxes, np.float32).reshape(-1, 4)


def load_photo_annotations(name: str) -> dict:
    """Ground truth of a photo: ``{"boxes": Tensor[G, 4] float32 xyxy, "names": list[str]}``.

    Args:
        name: ``"coins"`` or ``"astronaut"``.
    """
    check_choice(name, ANNOTATED_PHOTOS, "name")
    data = json.loads((ANNOTATIONS / ANNOTATED_PHOTOS[name]).read_text())
    boxes = torch.tensor(data["boxes"], dtype=torch.float32).reshape(-1, 4)
    return {"boxes": boxes, "names": list(data["names"])}


def write_coin_annotations(path: Path = ANNOTATIONS / "coins.json") -> None:
    """Write ``coins.json`` from :func:`derive_coin_boxes` (how the shipped file was made)."""
    boxes = derive_coin_boxes()
    data = {
        "image": "skimage.data.coins()",
        "format": "xyxy pixels, x2 = last column + 1",
        "source": "course_lib.data.annotations.derive_coin_boxes, checked by eye",
        "names": [f"coin {index + 1}" for index in range(len(boxes))],
        "boxes": boxes.astype(int).tolist(),
    }
    path.write_text(json.dumps(data, indent=1) + "\n")
