"""Tests for course_lib.widgets.visualization: the activation, patch and class visualization explorers."""

import re

import pytest
import torch

from course_lib import zoo
from course_lib.data import CLASSES
from course_lib.recipes.backbone import crops
from course_lib.visualization.activations import activation_mask, crop_patches, top_activations
from course_lib.visualization.class_viz import class_visualization
from course_lib.visualization.hooks import has_hooks
from course_lib.widgets.visualization import (
    ActivationExplorer,
    ClassVisualizationExplorer,
    PatchExplorer,
    patch_grid,
)

RELUS = ["features.relu1", "features.relu2", "features.relu3", "features.relu4"]
CHANNELS = {"features.relu1": 32, "features.relu2": 64, "features.relu3": 128, "features.relu4": 128}
ACTIVATION_STATUS = re.compile(
    r"^(features\.relu\d) · channel (\d+) of (\d+) · threshold (\d\.\d\d) · mask covers (\d+)% of the image$")
PATCH_STATUS = re.compile(
    r"^(features\.relu\d) · channel (\d+) of (\d+) · top (\d+) of 40 images · strongest (\d+\.\d\d) "
    r"\(image (\d+)\), weakest shown (\d+\.\d\d)$")


@pytest.fixture(scope="module")
def model():
    return zoo.load("shapes_classifier")


@pytest.fixture(scope="module")
def images():
    return crops("test", 40)[0]


class ForwardCounter:
    """Counts the model's forward calls with a pre-hook (removed by ``close``)."""

    def __init__(self, model):
        self.calls = 0
        self.handle = model.register_forward_pre_hook(self._count)

    def _count(self, module, inputs):
        self.calls += 1

    def close(self):
        self.handle.remove()


def status_text(explorer):
    return re.sub(r"<[^>]+>", "", explorer.status.value)


# --- pure helpers -----------------------------------------------------------------------------------
def test_patch_grid_hand_computed():
    patches = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 0.5)])  # two 2x2 patches
    grid = patch_grid(patches, gap=1)  # 2 columns, 1 row
    assert grid.shape == (1, 2, 5)
    assert grid[0].tolist() == [[0, 0, 1, 0.5, 0.5], [0, 0, 1, 0.5, 0.5]]
    assert patch_grid(torch.rand(5, 3, 4, 4)).shape == (3, 2 * 4 + 2, 3 * 4 + 2 * 2)  # 3 columns, 2 rows


# --- ActivationExplorer -----------------------------------------------------------------------------
def test_activation_explorer_matches_activation_mask(model, images):
    explorer = ActivationExplorer(model, images[3])
    try:
        assert list(explorer.controls["layer"].options) == RELUS
        for layer, channel, threshold in [("features.relu3", 12, 0.5), ("features.relu1", 7, 0.2),
                                          ("features.relu4", 127, 0.9), ("features.relu2", 0, 0.0)]:
            explorer.controls["layer"].value = layer
            explorer.controls["channel"].value = channel
            explorer.controls["threshold"].value = threshold
            reference = activation_mask(model, images[3], layer, channel, threshold)
            for key in ("activation", "upsampled", "mask"):
                assert torch.equal(explorer.result[key], reference[key]), (layer, key)
            match = ACTIVATION_STATUS.match(status_text(explorer))
            assert match, status_text(explorer)
            assert match.groups()[:4] == (layer, str(channel), str(CHANNELS[layer]), f"{threshold:.2f}")
            coverage = float(reference["mask"].float().mean())
            assert int(match.group(5)) == round(100 * coverage)
            assert explorer.png.startswith(b"\x89PNG")
    finally:
        explorer.close()
    assert not has_hooks(model)


def test_channel_slider_follows_the_layer(model, images):
    explorer = ActivationExplorer(model, images[0])
    try:
        channel = explorer.controls["channel"]
        explorer.controls["layer"].value = "features.relu3"
        assert channel.max == 127
        channel.value = 100
        explorer.controls["layer"].value = "features.relu1"  # 32 channels: the slider clamps to 31
        assert channel.max == 31 and channel.value == 31 and explorer.result["channel"] == 31
        assert status_text(explorer).startswith("features.relu1 · channel 31 of 32 ")
        reference = activation_mask(model, images[0], "features.relu1", 31)
        assert torch.equal(explorer.result["mask"], reference["mask"])
        explorer.controls["layer"].value = "features.relu2"
        assert channel.max == 63 and channel.value == 31
    finally:
        explorer.close()


def test_activation_explorer_runs_each_layer_once(model, images):
    counter = ForwardCounter(model)
    try:
        explorer = ActivationExplorer(model, images[1])
        assert counter.calls == 1
        for channel in range(5):
            explorer.controls["channel"].value = channel
        for threshold in (0.1, 0.8):
            explorer.controls["threshold"].value = threshold
        assert counter.calls == 1  # channel and threshold moves reuse the recorded layer
        explorer.controls["layer"].value = "features.relu2"
        explorer.controls["layer"].value = "features.relu4"  # the first layer shown
        assert counter.calls == 2
        explorer.close()
    finally:
        counter.close()


def test_activation_explorer_bad_input(model, images):
    with pytest.raises(ValueError, match=r"image: expected a Tensor\[C, H, W\], got shape \(64, 64\)"):
        ActivationExplorer(model, images[0, 0])
    with pytest.raises(ValueError, match=r"image: expected a Tensor\[C, H, W\], got shape \(1, 3, 64, 64\)"):
        ActivationExplorer(model, images[:1])
    with pytest.raises(TypeError, match="image: expected a torch.Tensor"):
        ActivationExplorer(model, images[0].numpy())
    with pytest.raises(ValueError, match="layer: unknown name 'features.relu9'; expected one of"):
        ActivationExplorer(model, images[0], layers=["features.relu9"])
    with pytest.raises(ValueError, match="layers: expected at least one layer name"):
        ActivationExplorer(model, images[0], layers=[])
    with pytest.raises(ValueError, match=r"layer: expected a layer with a \(B, C, H, W\) output"):
        ActivationExplorer(model, images[0], layers=["fc"])
    assert not has_hooks(model)


# --- PatchExplorer ----------------------------------------------------------------------------------
def test_patch_explorer_matches_top_activations(model, images):
    explorer = PatchExplorer(model, images)
    try:
        for layer, channel, k in [("features.relu3", 12, 9), ("features.relu2", 5, 4),
                                  ("features.relu4", 0, 16)]:
            explorer.controls["layer"].value = layer
            explorer.controls["channel"].value = channel
            explorer.controls["num_patches"].value = k
            reference = top_activations(model, images, layer, channel, k=k)
            assert torch.equal(explorer.result["indices"], reference["indices"])
            patches = crop_patches(images[reference["indices"]], reference["fields"])
            assert torch.equal(explorer.result["grid"], patch_grid(patches))
            match = PATCH_STATUS.match(status_text(explorer))
            assert match, status_text(explorer)
            assert match.groups()[:4] == (layer, str(channel), str(CHANNELS[layer]), str(k))
            assert int(match.group(6)) == int(reference["indices"][0])
            assert float(match.group(5)) == pytest.approx(float(reference["values"][0]), abs=0.005)
    finally:
        explorer.close()


def test_patch_explorer_caches_each_layer_and_follows_it(model, images):
    counter = ForwardCounter(model)
    try:
        explorer = PatchExplorer(model, images)
        assert counter.calls == 1  # 40 images: one batch
        for channel in (3, 50, 120):
            explorer.controls["channel"].value = channel
        explorer.controls["num_patches"].value = 1
        assert counter.calls == 1 and explorer.result["grid"].shape[1:] == (explorer.result["rf"].size,) * 2
        explorer.controls["layer"].value = "features.relu1"
        assert explorer.controls["channel"].max == 31 and explorer.controls["channel"].value == 31
        assert counter.calls == 2
        explorer.controls["layer"].value = "features.relu4"
        assert counter.calls == 2 and explorer.controls["channel"].max == 127
        explorer.close()
    finally:
        counter.close()


def test_patch_explorer_bad_input(model, images):
    expected = r"images: expected a Tensor\[N, C, H, W\] with N >= 1, got shape \(3, 64, 64\)"
    with pytest.raises(ValueError, match=expected):
        PatchExplorer(model, images[0])
    with pytest.raises(ValueError, match=r"got shape \(0, 3, 64, 64\)"):
        PatchExplorer(model, images[:0])
    with pytest.raises(ValueError, match="layer: unknown name 'conv1'"):
        PatchExplorer(model, images, layers=["conv1"])
    assert not has_hooks(model)


# --- ClassVisualizationExplorer ---------------------------------------------------------------------
def test_class_visualization_explorer_matches_and_caches(model):
    names = list(CLASSES)  # output k is class k of the dataset; 0 is background
    counter = ForwardCounter(model)
    try:
        explorer = ClassVisualizationExplorer(model)  # the names are the model's own classes
        assert explorer.class_names == names and explorer.controls["target"].value == 1  # circle
        assert explorer.result["steps"] == 50 and len(explorer.result["scores"]) == 50
        explorer.controls["steps"].value = 10
        explorer.controls["target"].value = 3  # triangle
        explorer.controls["init"].value = "noise"
        l2_weight = explorer.result["l2_weight"]
        reference = class_visualization(model, 3, steps=10, l2_weight=l2_weight, init="noise")
        assert torch.equal(explorer.result["image"], reference["image"])
        assert explorer.result["scores"] == reference["scores"]
        text = status_text(explorer)
        assert text.startswith("triangle · λ 1.0e-02 · 10 steps from noise: score ")
        assert f"→ {reference['final_score']:.2f}" in text
        assert f"predicted {names[reference['predicted']]}" in text
        calls = counter.calls
        explorer.controls["init"].value = "zeros"
        assert counter.calls > calls  # a new setting runs the ascent
        calls = counter.calls
        explorer.controls["init"].value = "noise"  # seen before: from the cache
        assert counter.calls == calls and torch.equal(explorer.result["image"], reference["image"])
        explorer.controls["l2_weight"].value = 1e-3
        assert explorer.result["l2_weight"] == pytest.approx(1e-3) and "λ 1.0e-03" in status_text(explorer)
        explorer.close()
    finally:
        counter.close()


def test_class_visualization_explorer_bad_input(model):
    with pytest.raises(ValueError, match="class_names: expected a non-empty list of str"):
        ClassVisualizationExplorer(model, [])
    with pytest.raises(ValueError, match=r"class_names: expected 6 names \(one per model output\), got 5"):
        ClassVisualizationExplorer(model, list(CLASSES[1:]))  # output 0 is background
    with pytest.raises(ValueError, match="the model has no `classes`"):
        ClassVisualizationExplorer(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(3)))
