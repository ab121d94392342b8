import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from course_lib.data import CLASSES, ShapeScenes
from course_lib.widgets import SceneExplorer, scene_view


@pytest.fixture(scope="module")
def dataset():
    return ShapeScenes(6, seed=3)


def test_scene_view_returns_the_item(dataset):
    image, target = dataset[2]
    view = scene_view(dataset, 2)
    assert torch.equal(view["image"], image)
    assert torch.equal(view["boxes"], target["boxes"])
    assert view["num_objects"] == len(target["labels"])
    assert view["background"] == dataset.scene(2).background


def test_scene_view_bad_index(dataset):
    with pytest.raises(ValueError, match="index"):
        scene_view(dataset, len(dataset))
    with pytest.raises(TypeError, match="index"):
        scene_view(dataset, 1.5)


def test_explorer_follows_its_controls(dataset):
    explorer = SceneExplorer(dataset, class_names=CLASSES)
    assert explorer.result["index"] == 0
    explorer.controls["index"].value = len(dataset) - 1  # the slider's far end
    assert explorer.result["index"] == len(dataset) - 1
    assert f"{explorer.result['num_objects']} objects" in explorer.status.value
    patches_with_boxes = len(explorer.axes[0].patches)
    explorer.controls["boxes"].value = False
    assert len(explorer.axes[0].patches) < patches_with_boxes
    explorer.controls["masks"].value = False
    assert len(explorer.axes[0].images) == 1  # the photo only, no mask layer
    assert explorer.png.startswith(b"\x89PNG")
    explorer.close()
    assert plt.get_fignums() == []
