"""Selective-search proposals for R-CNN and Fast R-CNN: upsampling, scaling back, the disk cache."""

import numpy as np
import pytest
import torch

from course_lib.classical import selective_search
from course_lib.data import ShapeScenes
from course_lib.models.proposals import SelectiveSearchProposer, cached_proposals


@pytest.fixture(scope="module")
def scene():
    return ShapeScenes(1, image_size=48, seed=3).scene(0)


def test_upsampled_search_returns_boxes_in_the_original_pixels(scene):
    boxes = SelectiveSearchProposer(upsample=2)(scene.image)
    big = np.repeat(np.repeat(scene.image, 2, axis=0), 2, axis=1)
    torch.testing.assert_close(boxes, selective_search(big, mode="fast") / 2)
    assert boxes.max() <= 48 and boxes.min() >= 0


def test_a_tensor_image_gives_the_same_proposals_as_its_uint8_pixels(scene):
    tensor = torch.from_numpy(scene.image).permute(2, 0, 1).float() / 255
    proposer = SelectiveSearchProposer(upsample=1, max_proposals=50)
    torch.testing.assert_close(proposer(tensor), proposer(scene.image))
    assert len(proposer(scene.image)) <= 50


def test_the_cache_returns_what_the_proposer_computes(tmp_path):
    dataset = ShapeScenes(2, image_size=48, seed=3)
    proposer = SelectiveSearchProposer(upsample=1)
    first = cached_proposals(dataset, [0, 1], proposer, cache_dir=tmp_path)
    files = sorted(path.name for path in tmp_path.rglob("*.npy"))
    assert files == ["00000.npy", "00001.npy"]
    assert not list(tmp_path.rglob("*.partial"))  # each file is written aside, then renamed
    again = cached_proposals(dataset, [1, 0], proposer, cache_dir=tmp_path)
    torch.testing.assert_close(again[1], first[0])
    torch.testing.assert_close(first[0], proposer(dataset.scene(0).image))


def test_the_cache_is_keyed_by_selective_searchs_code(tmp_path, monkeypatch):
    # A change to selective search must not reuse proposals that the old code cached.
    from course_lib.models import proposals

    dataset = ShapeScenes(1, image_size=48, seed=3)
    proposer = SelectiveSearchProposer(upsample=1)
    digest = proposals.selective_search_digest()
    assert len(digest) == 10 and proposer.key().endswith(digest)
    cached_proposals(dataset, [0], proposer, cache_dir=tmp_path)
    monkeypatch.setattr(proposals, "selective_search_digest", lambda: "0123456789")
    cached_proposals(dataset, [0], proposer, cache_dir=tmp_path)
    suffixes = {path.name.rsplit("_", 1)[1] for path in tmp_path.iterdir()}
    assert suffixes == {digest, "0123456789"}  # two folders: the old proposals were not read


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="mode: expected one of"):
        SelectiveSearchProposer(mode="slow")
    with pytest.raises(TypeError, match="upsample: expected an int"):
        SelectiveSearchProposer(upsample=1.5)
    with pytest.raises(ValueError, match=r"image: expected a Tensor\[3, H, W\]"):
        SelectiveSearchProposer()(torch.rand(1, 3, 8, 8))
