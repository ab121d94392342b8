"""Tests of course_lib.data.annotations: the shipped boxes of the sample photos."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from course_lib.data.annotations import ANNOTATIONS, derive_coin_boxes, load_photo_annotations


def test_shipped_coin_boxes_are_rederived_exactly():
    shipped = json.loads((ANNOTATIONS / "coins.json").read_text())
    np.testing.assert_array_equal(derive_coin_boxes(), np.array(shipped["boxes"], np.float32))
    assert len(shipped["boxes"]) == 24


@pytest.mark.parametrize(("name", "count", "size"), [("coins", 24, (384, 303)), ("astronaut", 7, (512, 512))])
def test_photo_annotations_are_valid_boxes(name, count, size):
    annotations = load_photo_annotations(name)
    boxes = annotations["boxes"]
    assert boxes.shape == (count, 4) and len(annotations["names"]) == count
    assert torch.all(boxes[:, 2:] > boxes[:, :2]) and torch.all(boxes >= 0)
    assert torch.all(boxes[:, 2] <= size[0]) and torch.all(boxes[:, 3] <= size[1])
    with pytest.raises(ValueError, match="expected one of"):
        load_photo_annotations("moon")


