"""Tests for course_lib.widgets.scouter: slot_view, scouter_view and the ScouterExplorer.

Two small untrained, seeded Scouters (SCOUTER+ and SCOUTER-) on three random 64 x 64 images: what
is drawn must be the models' own ``explain``, each (model, image) explained once, and the slot and
opacity only redrawn.
"""


import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from torch import nn

from course_lib.data import CLASSES
from course_lib.models.scouter import Scouter
from course_lib.widgets import ScouterExplorer, scouter_view
from course_lib.widgets.scouter import CHOSEN, OTHER, slot_index, slot_view
from tests.widgets.redraw import differs_from_a_full_redraw

SHAPES = CLASSES[1:]  # the Scouter's classes: output k is CLASSES[k + 1]


def seeded_scouter(lambda_, seed):
    torch.manual_seed(seed)
    return Scouter(lambda_=lambda_).eval()


@pytest.fixture(scope="module")
def models():
    return {"SCOUTER+": seeded_scouter(1, 0), "SCOUTER-": seeded_scouter(-1, 1)}


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def explained(model, image):
    with torch.no_grad():
        logits, attention = model.explain(image[None])
    return logits[0], attention[0]


class CountCalls:
    """Counts ``model.explain`` calls (per model) while the block runs."""

    def __init__(self, models):
        self.models, self.calls = models, []

    def __enter__(self):
        for name, model in self.models.items():
            original = model.explain
            model.explain = lambda images, name=name, original=original: (
                self.calls.append(name) or original(images))
        return self

    def __exit__(self, *exc):
        for model in self.models.values():
            del model.explain


# --- slot_index and slot_view -------------------------------------------------------------------
def test_slot_index_takes_an_index_or_a_class_name():
    assert slot_index("star", SHAPES) == 3 and slot_index(0, SHAPES) == 0 and slot_index(4, SHAPES) == 4
    with pytest.raises(ValueError, match="slot: expected one of 'circle', 'square', .*, got 'hexagon'"):
        slot_index("hexagon", SHAPES)
    with pytest.raises(ValueError, match=r"slot: expected a value in \[0, 4\], got 5"):
        slot_index(5, SHAPES)
    with pytest.raises(TypeError, match="slot: expected an int, got float"):
        slot_index(1.0, SHAPES)


def test_slot_view_by_hand():
    logits = torch.tensor([0.0, torch.log(torch.tensor(3.0)).item()])  # softmax: 1/4, 3/4
    attention = torch.tensor([[[0.0, 1.0]], [[0.5, 0.5]]])  # (2, 1, 2): slot 0 is a left-to-right ramp
    view = slot_view(logits, attention, 0, (1, 4))
    # Bilinear, align_corners=False: pixel centres at 0.125, 0.375, ... of the map's width.
    torch.testing.assert_close(view["upsampled"], torch.tensor([[0.0, 0.25, 0.75, 1.0]]))
    torch.testing.assert_close(view["probabilities"], torch.tensor([0.25, 0.75]))
    assert view["predicted"] == 1 and view["slot"] == 0 and view["score"] == 0.0
    assert view["probability"] == pytest.approx(0.25)
    torch.testing.assert_close(view["map"], attention[0])
    constant = slot_view(logits, attention, 1, (8, 6))["upsampled"]
    assert constant.shape == (8, 6) and torch.allclose(constant, torch.full((8, 6), 0.5))


# --- scouter_view -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, slot", [("SCOUTER+", "star"), ("SCOUTER-", 1)])
def test_scouter_view_panels_and_titles(models, images, name, slot):
    model = models[name]
    figure = scouter_view(model, images[0], slot, opacity=0.3)
    image_ax, bar_ax = figure.axes
    index = slot_index(slot, SHAPES)
    logits, attention = explained(model, images[0])
    probabilities = logits.softmax(dim=0)
    assert figure.dpi >= 100
    title = image_ax.get_title()
    assert title.startswith(f"{SHAPES[index]} slot · {name}\nscore {float(logits[index]):+.3f} · p = ")
    assert ("SCOUTER+" in title) == (model.lambda_ == 1)
    predicted = int(probabilities.argmax())
    assert bar_ax.get_title() == f"class probabilities · predicted {SHAPES[predicted]}"
    assert min(ax.title.get_fontsize() for ax in figure.axes) >= 11
    assert bar_ax.get_xlabel() and bar_ax.get_ylabel()
    assert [label.get_text() for label in bar_ax.get_xticklabels()] == list(SHAPES)
    # The overlay: the slot's map, upsampled bilinearly to 64 x 64, at the opacity.
    overlay = image_ax.images[-1]
    expected = torch.nn.functional.interpolate(attention[index][None, None], size=(64, 64), mode="bilinear")
    np.testing.assert_allclose(overlay.get_array(), expected[0, 0].clamp(0, 1).numpy(), atol=1e-6)
    assert overlay.get_alpha() == 0.3 and overlay.get_clim() == (0, 1)
    # The bars: the softmax of the scores, the chosen slot highlighted, the prediction marked.
    bars = bar_ax.patches
    np.testing.assert_allclose([bar.get_height() for bar in bars], probabilities.numpy(), atol=1e-6)
    colors = [bar.get_facecolor() for bar in bars]
    assert colors == [to_rgba(CHOSEN if k == index else OTHER) for k in range(5)]
    (mark,) = bar_ax.texts
    assert mark.get_text() == "predicted" and mark.get_position()[0] == predicted


def test_scouter_view_by_name_equals_by_index(models, images):
    by_name = scouter_view(models["SCOUTER+"], images[1], "ring")
    by_index = scouter_view(models["SCOUTER+"], images[1], 4)
    assert by_name.axes[0].get_title() == by_index.axes[0].get_title()
    assert np.array_equal(by_name.axes[0].images[-1].get_array(), by_index.axes[0].images[-1].get_array())


def test_scouter_view_leaves_a_training_model_in_training_mode(images):
    model = seeded_scouter(1, 2).train()
    scouter_view(model, images[0], 0)
    assert model.training and model.backbone.training


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"model": nn.Linear(2, 2)}, TypeError,
         "model: expected a course_lib.models.scouter.Scouter, got Linear"),
        ({"image": torch.rand(1, 3, 64, 64)}, ValueError,
         r"image: expected a float Tensor\[3, H, W\], got shape \(1, 3, 64, 64\)"),
        ({"image": torch.zeros(3, 64, 64, dtype=torch.uint8)}, ValueError, "got shape .*torch.uint8"),
        ({"image": np.zeros((3, 64, 64))}, TypeError, "image: expected a torch.Tensor, got ndarray"),
        ({"slot": "hexagon"}, ValueError, "slot: expected one of 'circle'"),
        ({"slot": -1}, ValueError, r"slot: expected a value in \[0, 4\], got -1"),
        ({"opacity": 1.5}, ValueError, r"opacity: expected a value in \[0.0, 1.0\], got 1.5"),
    ],
)
def test_scouter_view_rejects_bad_input(models, images, change, error, match):
    arguments = {"model": models["SCOUTER+"], "image": images[0], "slot": 0, **change}
    with pytest.raises(error, match=match):
        scouter_view(**arguments)


# --- ScouterExplorer ----------------------------------------------------------------------------
def test_construction_defaults_to_the_prediction_without_labels(models, images):
    with CountCalls(models) as counter:
        explorer = ScouterExplorer(models, images)
    try:
        controls = explorer.controls
        assert list(controls) == ["index", "slot", "model", "opacity"]
        assert controls["slot"].options == tuple((name, k) for k, name in enumerate(SHAPES))
        assert list(controls["model"].options) == ["SCOUTER+", "SCOUTER-"]
        assert controls["model"].value == "SCOUTER+"
        assert (controls["index"].min, controls["index"].max) == (0, 2) and controls["opacity"].value == 0.6
        logits, _ = explained(models["SCOUTER+"], images[0])
        assert controls["slot"].value == explorer.result["slot"] == int(logits.argmax())
        assert counter.calls == ["SCOUTER+"]  # one image, one model: one run
        assert explorer.png.startswith(b"\x89PNG") and explorer.figure.dpi >= 100
        assert "image 0 · SCOUTER+: " in explorer.status.value
    finally:
        explorer.close()


def test_labels_give_the_default_slot(models, images):
    labels = torch.tensor([4, 1, 5])  # CLASSES indices: star, circle, ring = outputs 3, 0, 4
    explorer = ScouterExplorer(models, images, labels=labels)
    try:
        assert explorer.controls["slot"].value == 3
        explorer.controls["slot"].value = 1
        explorer.controls["index"].value = 2  # a new image: back to its own label
        assert explorer.controls["slot"].value == explorer.result["slot"] == 4
        assert "image 2 · label ring · SCOUTER+" in explorer.status.value
    finally:
        explorer.close()


def test_every_control_updates_the_state(models, images):
    explorer = ScouterExplorer(models, images, labels=torch.tensor([1, 2, 3]))
    controls, (image_ax, bar_ax) = explorer.controls, explorer.axes
    try:
        controls["index"].value = 1
        assert explorer.result["index"] == 1 and explorer.result["slot"] == 1  # square: image 1's label
        controls["slot"].value = 3
        logits, attention = explained(models["SCOUTER+"], images[1])
        assert explorer.result["slot"] == 3 and explorer.state["slot"] == 3
        assert explorer.result["score"] == pytest.approx(float(logits[3]), abs=1e-6)
        torch.testing.assert_close(explorer.result["map"], attention[3])
        assert image_ax.get_title().startswith("star slot · SCOUTER+\n")
        controls["model"].value = "SCOUTER-"
        logits, attention = explained(models["SCOUTER-"], images[1])
        assert explorer.result["model"] == "SCOUTER-" and explorer.result["slot"] == 3  # the slot stays
        assert explorer.result["score"] == pytest.approx(float(logits[3]), abs=1e-6)
        torch.testing.assert_close(explorer.result["map"], attention[3])
        assert image_ax.get_title().startswith("star slot · SCOUTER-\n")
        heights = [bar.get_height() for bar in bar_ax.patches]
        np.testing.assert_allclose(heights, logits.softmax(dim=0).numpy(), atol=1e-6)
        controls["opacity"].value = 0.85
        assert explorer.result["opacity"] == 0.85 and image_ax.images[-1].get_alpha() == 0.85
        assert "star slot scores" in explorer.status.value
    finally:
        explorer.close()


def test_each_model_runs_once_per_image_and_opacity_and_slot_only_redraw(models, images):
    with CountCalls(models) as counter:
        explorer = ScouterExplorer(models, images)
        controls = explorer.controls
        try:
            for opacity in (0.0, 1.0, 0.25):
                controls["opacity"].value = opacity
            for slot in range(5):
                controls["slot"].value = slot
            assert counter.calls == ["SCOUTER+"]
            controls["model"].value = "SCOUTER-"
            controls["model"].value = "SCOUTER+"
            controls["model"].value = "SCOUTER-"
            controls["opacity"].value = 0.5
            assert counter.calls == ["SCOUTER+", "SCOUTER-"]
            controls["index"].value = 1
            controls["index"].value = 0
            assert counter.calls == ["SCOUTER+", "SCOUTER-", "SCOUTER-"]  # only image 1 was new
            assert sorted(explorer.cache) == [("SCOUTER+", 0), ("SCOUTER-", 0), ("SCOUTER-", 1)]
        finally:
            explorer.close()


def test_a_redraw_over_the_kept_background_matches_a_full_redraw(models, images):
    explorer = ScouterExplorer(models, images)
    try:
        explorer.controls["index"].value = 2
        explorer.controls["slot"].value = 2
        explorer.controls["opacity"].value = 0.9
        assert differs_from_a_full_redraw(explorer) < 0.002
    finally:
        explorer.close()


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"models": {}}, ValueError, "models: expected at least one Scouter .*, got an empty dict"),
        ({"models": [seeded_scouter(1, 0)]}, TypeError, "models: expected a dict name -> Scouter, got list"),
        ({"models": {"SCOUTER+": nn.Linear(2, 2)}}, TypeError,
         r"models\['SCOUTER\+'\]: expected a course_lib.models.scouter.Scouter, got Linear"),
        ({"models": {"a": seeded_scouter(1, 0), "b": Scouter(classes=("x", "y"))}}, ValueError,
         r"models\['b'\]: expected the classes \('circle'"),
        ({"images": torch.rand(3, 64, 64)}, ValueError,
         r"images: expected a float Tensor\[N, 3, H, W\], got shape \(3, 64, 64\)"),
        ({"images": torch.rand(2, 1, 64, 64)}, ValueError, r"got shape \(2, 1, 64, 64\)"),
        ({"images": torch.rand(0, 3, 64, 64)}, ValueError, "images: expected at least one image, got none"),
        ({"labels": torch.tensor([1, 2])}, ValueError, r"labels: expected an int Tensor\[3\], got \(2,\)"),
        ({"labels": torch.tensor([1, 2, 9])}, ValueError, r"labels: expected CLASSES indices in \[0, 5\]"),
        ({"labels": torch.tensor([1, 0, 2])}, ValueError, "labels: expected classes among .*'background'"),
    ],
)
def test_explorer_rejects_bad_input(models, images, change, error, match):
    arguments = {"models": models, "images": images, "labels": None, **change}
    with pytest.raises(error, match=match):
        ScouterExplorer(**arguments)
