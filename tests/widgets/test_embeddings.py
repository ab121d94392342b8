"""NeighborsExplorer: driven by .value, checked against a brute-force search."""

import pytest
import torch

from course_lib.widgets.embeddings import NeighborsExplorer, neighbors_view


def data(seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(12, 1, 8, 8, generator=generator)
    features = torch.randn(12, 4, generator=generator)
    labels = torch.arange(12) % 3
    return images, features, labels


def test_neighbors_view_equals_brute_force():
    _, features, _ = data()
    result = neighbors_view(features, features, query=2, k=4)
    distances = (features - features[2]).norm(dim=1)
    assert result["indices"].tolist() == distances.argsort()[:4].tolist()
    assert result["indices"][0] == 2  # a query in the database finds itself first


def test_the_explorer_follows_its_controls():
    images, features, labels = data()
    explorer = NeighborsExplorer(images[:4], images, features[:4], features, labels[:4], labels)
    assert explorer.result["query"] == 0 and len(explorer.result["indices"]) == 8
    explorer.controls["k"].value = 3
    explorer.controls["query"].value = 2
    assert explorer.result["indices"][0] == 2 and len(explorer.result["indices"]) == 3
    explorer.controls["space"].value = "pixels"
    pixel_distances = (images.flatten(1) - images[2].flatten()).norm(dim=1)
    assert explorer.result["indices"].tolist() == pixel_distances.argsort()[:3].tolist()
    explorer.controls["metric"].value = "cosine"
    assert "by cosine in pixels space" in explorer.status.value
    assert f"{explorer.result['same_label']} of 3 share its label" in explorer.status.value


def test_bad_input_is_refused():
    images, features, labels = data()
    with pytest.raises(ValueError, match="one row per image"):
        NeighborsExplorer(images, images, features[:5], features, labels, labels)
    with pytest.raises(ValueError, match=r"Tensor\[N, C, H, W\]"):
        NeighborsExplorer(images[0], images, features, features, labels, labels)
    with pytest.raises(ValueError, match="query"):
        neighbors_view(features, features, query=12, k=2)
