"""Tests for course_lib.widgets.explanations: explanation_view and the ExplanationExplorer.

The explorer is built on three test crops and the zoo's shapes classifier, and on a tiny detector
(two fixed boxes scored by a conv layer) for the detection targets. Each map it shows must be
``explain``'s, each (image, method, layer, target) computed once, and the opacity only redrawn.
"""

import re

import pytest
import torch
from torch import nn

from course_lib import zoo
from course_lib.data import CLASSES
from course_lib.visualization.explain import METHODS, SIGNED_METHODS, attribute, explain, signed_image
from course_lib.visualization.hooks import has_hooks
from course_lib.visualization.targets import detection_score
from course_lib.widgets import explanations
from course_lib.widgets.explanations import DETECTOR_METHODS, ExplanationExplorer, explanation_view
from tests.crops import shape_crops
from tests.widgets.redraw import differs_from_a_full_redraw

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks:UserWarning")
RELUS = ["features.relu1", "features.relu2", "features.relu3", "features.relu4"]
STATUS = re.compile(r"^([a-z -]+) · class (\w+) · p\((\w+)\) = (\d\.\d\d) · map max (\S+)$")


@pytest.fixture(scope="module")
def model():
    return zoo.load("shapes_classifier")


@pytest.fixture(scope="module")
def crops():
    return shape_crops(3)  # (3, 3, 64, 64), (3,)


@pytest.fixture(scope="module")
def predicted(model, crops):
    with torch.no_grad():
        return model(crops[0]).softmax(dim=1)  # (3, K)


class TinyDetector(nn.Module):
    """Two fixed boxes, each scored by a conv layer averaged inside it; none on a dark image."""

    BOXES = torch.tensor([[4.0, 4, 28, 28], [20, 16, 60, 60]])

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(4, 3)

    def forward(self, images):
        outputs = []
        for image in images:
            features = self.relu(self.conv(image[None]))[0]  # (4, H, W)
            pooled = torch.stack([features[:, y1:y2, x1:x2].mean(dim=(1, 2))
                                  for x1, y1, x2, y2 in self.BOXES.long().tolist()])  # (2, 4)
            scores, labels = self.head(pooled).softmax(dim=1)[:, 1:].max(dim=1)  # (2,), (2,)
            keep = torch.full((2,), bool(image.mean() > 0.05))
            outputs.append({"boxes": self.BOXES[keep], "scores": scores[keep], "labels": labels[keep] + 1})
        return outputs


class Counter:
    """Wraps ``explanations.attribute`` and counts its calls by (method, layer)."""

    def __init__(self, monkeypatch):
        self.calls = []
        original = explanations.attribute

        def counted(method, model, images, target, layer=None, **options):
            self.calls.append((method, layer))
            return original(method, model, images, target, layer, **options)

        monkeypatch.setattr(explanations, "attribute", counted)


def status_text(explorer):
    return re.sub(r"<[^>]+>", "", explorer.status.value)


# --- explanation_view ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_view_is_explain_on_one_image(model, crops, method):
    images, labels = crops
    view = explanation_view(model, images[1], method, int(labels[1]), layer="features.relu3")
    reference = explain(method, model, images[1:2], int(labels[1]), layer="features.relu3")[0]
    assert torch.equal(view["map"], reference)
    assert (view["low"], view["high"]) == (float(reference.min()), float(reference.max()))
    if method in SIGNED_METHODS:
        raw = attribute(method, model, images[1:2], int(labels[1]), layer="features.relu3")[0]
        assert torch.equal(view["signed"], signed_image(raw))
    else:
        assert view["signed"] is None


# --- ExplanationExplorer on a classifier --------------------------------------------------------
def test_construction(model, crops, predicted):
    images, labels = crops
    explorer = ExplanationExplorer(model, images)
    try:
        controls = explorer.controls
        assert list(controls) == ["index", "method", "layer", "target", "opacity"]
        assert controls["method"].options == METHODS and controls["method"].value == "grad-cam"
        assert list(controls["layer"].options) == RELUS and controls["layer"].value == "features.relu4"
        assert [name for name, _ in controls["target"].options] == list(model.classes)
        assert (controls["index"].min, controls["index"].max) == (0, 2)
        assert (controls["opacity"].min, controls["opacity"].max, controls["opacity"].value) == (0, 1, 0.5)
        predicted_class = int(predicted[0].argmax())
        assert controls["target"].value == predicted_class  # no targets: the model's prediction
        reference = explain("grad-cam", model, images[:1], predicted_class, layer="features.relu4")[0]
        assert torch.equal(explorer.result["map"], reference)
        match = STATUS.match(status_text(explorer))
        assert match, status_text(explorer)
        name = model.classes[predicted_class]
        assert match.groups()[:4] == ("grad-cam", name, name, f"{float(predicted[0, predicted_class]):.2f}")
        assert float(match.group(5)) == pytest.approx(float(reference.max()), rel=1e-2)
        assert explorer.png.startswith(b"\x89PNG")
    finally:
        explorer.close()
    assert not has_hooks(model)


def test_targets_give_the_default_class(model, crops):
    images, labels = crops
    wrong = (labels + 1) % len(model.classes)  # not what the model predicts
    explorer = ExplanationExplorer(model, images, targets=wrong, method="saliency")
    try:
        assert explorer.controls["target"].value == int(wrong[0])
        explorer.controls["index"].value = 2
        assert explorer.controls["target"].value == int(wrong[2]) == explorer.result["target"]
        assert torch.equal(explorer.result["map"], explain("saliency", model, images[2:], int(wrong[2]))[0])
        assert explorer.axes[0].get_title() == (f"image 2\nlabel {model.classes[int(wrong[2])]} · "
                                                f"predicted {model.classes[int(labels[2])]}")
    finally:
        explorer.close()


def test_every_control_moves_the_view(model, crops, predicted):
    images, labels = crops
    explorer = ExplanationExplorer(model, images, targets=labels)
    controls = explorer.controls
    try:
        controls["index"].value = 1
        controls["method"].value = "guided grad-cam"
        controls["layer"].value = "features.relu2"
        controls["target"].value = 4
        controls["opacity"].value = 0.8
        reference = explain("guided grad-cam", model, images[1:2], 4, layer="features.relu2")[0]
        assert torch.equal(explorer.result["map"], reference)
        assert explorer.result["signed"].shape == (64, 64, 3)
        assert status_text(explorer).startswith(f"guided grad-cam · class star · p(star) = "
                                                f"{float(predicted[1, 4]):.2f} · ")
        overlay = explorer.axes[1].images[-1]
        assert overlay.get_alpha() == 0.8 and overlay.get_cmap().name == "jet"
        assert overlay.get_clim() == (float(reference.min()), float(reference.max()))
        assert explorer.axes[1].get_title().startswith("guided grad-cam at features.relu2: star\nmap 0 to ")
        assert explorer.axes[2].get_title() == "signed signal (grey = 0)"
        controls["method"].value = "occlusion"
        assert controls["layer"].disabled and explorer.axes[2].get_title() == "the map alone"
        assert torch.equal(explorer.result["map"], explain("occlusion", model, images[1:2], 4)[0])
        controls["method"].value = "grad-cam"
        assert not controls["layer"].disabled
        controls["index"].value = 0  # a new image: back to its own label
        assert controls["target"].value == int(labels[0]) and explorer.result["index"] == 0
    finally:
        explorer.close()


def test_each_map_is_computed_once(model, crops, monkeypatch):
    images, _ = crops
    counter = Counter(monkeypatch)
    explorer = ExplanationExplorer(model, images[:2], method="occlusion")
    controls = explorer.controls
    try:
        assert counter.calls == [("occlusion", "features.relu4")]
        for opacity in (0.0, 0.3, 1.0):
            controls["opacity"].value = opacity
        for layer in RELUS:  # occlusion uses no layer: one map for all
            controls["layer"].value = layer
        assert len(counter.calls) == 1
        controls["method"].value = "grad-cam"
        controls["layer"].value = "features.relu2"
        controls["method"].value = "occlusion"
        controls["layer"].value = "features.relu4"
        controls["method"].value = "grad-cam"  # relu4 with grad-cam: a new key
        assert [method for method, _ in counter.calls] == ["occlusion", "grad-cam", "grad-cam"]
        controls["index"].value = 1
        controls["index"].value = 0
        controls["layer"].value = "features.relu2"
        controls["opacity"].value = 0.5
        assert len(counter.calls) == 4 and len(explorer.cache) == 4  # only image 1's grad-cam was new
    finally:
        explorer.close()


def test_opacity_only_redraws(model, crops):
    images, _ = crops
    explorer = ExplanationExplorer(model, images[:2])
    calls = []
    handle = model.register_forward_pre_hook(lambda module, inputs: calls.append(1))
    try:
        for opacity in (0.0, 1.0, 0.25):
            explorer.controls["opacity"].value = opacity
            assert explorer.axes[1].images[-1].get_alpha() == opacity
        assert not calls
    finally:
        handle.remove()
        explorer.close()


def test_figure_has_titles_and_blitting_matches_a_full_redraw(model, crops):
    images, labels = crops
    explorer = ExplanationExplorer(model, images, targets=labels, method="guided backprop")
    try:
        explorer.controls["opacity"].value = 0.9
        explorer.controls["index"].value = 2
        for ax in explorer.axes:
            assert ax.get_title() and ax.title.get_fontsize() >= 11
        assert explorer.figure.dpi >= 100
        assert differs_from_a_full_redraw(explorer) < 0.002
    finally:
        explorer.close()


def test_bad_arguments(model, crops):
    images, labels = crops
    with pytest.raises(ValueError, match="method: expected one of 'saliency', .*, got 'gradcam'"):
        ExplanationExplorer(model, images, method="gradcam")
    with pytest.raises(ValueError, match="options: expected one of"):
        ExplanationExplorer(model, images, options={"lime": {}})
    with pytest.raises(ValueError, match="layers: expected at least one layer name, got none"):
        ExplanationExplorer(model, images, layers=[])
    with pytest.raises(ValueError, match="layer: unknown name 'features.relu9'; expected one of"):
        ExplanationExplorer(model, images, layers=["features.relu9"])
    with pytest.raises(ValueError, match=r"images: expected a Tensor\[N, C, H, W\], got shape \(3, 64, 64\)"):
        ExplanationExplorer(model, images[0])
    with pytest.raises(ValueError, match="images: expected at least one image, got none"):
        ExplanationExplorer(model, images[:0])
    with pytest.raises(TypeError, match="images: expected a torch.Tensor, got ndarray"):
        ExplanationExplorer(model, images.numpy())
    with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 5\], got \[1, 2, 6\]"):
        ExplanationExplorer(model, images, targets=torch.tensor([1, 2, 6]))
    with pytest.raises(ValueError, match=r"target: expected one class per image, 3, got shape \(2,\)"):
        ExplanationExplorer(model, images, targets=labels[:2])
    with pytest.raises(ValueError, match=r"class_names: expected one name per model output, \(6,\), got 2"):
        ExplanationExplorer(model, images, class_names=["a", "b"])
    with pytest.raises(ValueError, match="options: method 'occlusion' takes options 'window'"):
        ExplanationExplorer(model, images, options={"occlusion": {"size": 4}})  # not shown first: checked too
    assert not has_hooks(model)


# --- ExplanationExplorer on a detector ----------------------------------------------------------
def test_detector_targets_one_detection():
    detector = TinyDetector().eval()
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 64, 64, generator=generator), torch.zeros(3, 64, 64),
              torch.rand(3, 64, 64, generator=generator)]
    explorer = ExplanationExplorer(detector, images)
    controls = explorer.controls
    try:
        assert controls["method"].options == DETECTOR_METHODS and controls["layer"].options == ("relu",)
        assert controls["target"].description == "detection"
        with torch.no_grad():
            found = detector([images[0]])[0]
        best = found["scores"].argsort(descending=True)
        assert [value for _, value in controls["target"].options] == [0, 1]
        assert controls["target"].options[0][0] == f"0: {CLASSES[int(found['labels'][best[0]])]} " \
                                                   f"{float(found['scores'][best[0]]):.2f}"
        controls["target"].value = 1
        target = detection_score(found["boxes"][best[1:2]], found["labels"][best[1:2]])
        reference = explain("grad-cam", detector, [images[0]], target, layer="relu")[0]
        assert torch.equal(explorer.result["map"], reference) and reference.max() > 0
        assert status_text(explorer) == (f"grad-cam · detection 1: {CLASSES[int(found['labels'][best[1]])]} "
                                         f"(score {float(found['scores'][best[1]]):.2f}) · "
                                         f"map max {float(reference.max()):.3g}")
        assert len(explorer.axes[0].patches) == 1  # the chosen box
        controls["method"].value = "guided backprop"
        assert explorer.result["signed"].shape == (64, 64, 3)
        controls["index"].value = 1  # no detection on a dark image: an empty map, not an error
        assert controls["target"].options == (("no detection", -1),) and controls["target"].value == -1
        assert explorer.result["high"] == 0
        assert status_text(explorer).endswith("no detection on this image · map max 0")
        controls["index"].value = 2
        assert [value for _, value in controls["target"].options] == [0, 1] and controls["target"].value == 0
    finally:
        explorer.close()
    with pytest.raises(ValueError, match="targets: a detector's target is one of its detections"):
        ExplanationExplorer(detector, images, targets=[1, 1, 1])
    with pytest.raises(ValueError, match="method: expected one of 'saliency', 'deconvnet'"):
        ExplanationExplorer(detector, images, method="occlusion")
    with pytest.raises(ValueError, match=r"images\[1\]: expected a Tensor\[3, H, W\], got shape \(64, 64\)"):
        ExplanationExplorer(detector, [images[0], images[1][0]])
    assert not has_hooks(detector)


def test_options_reach_the_method(model, crops):
    images, labels = crops
    coarse = {"window": 16, "stride": 8}
    explorer = ExplanationExplorer(model, images[:2], targets=labels[:2], method="occlusion",
                                   options={"occlusion": coarse})
    try:
        reference = explain("occlusion", model, images[:1], labels[:1], **coarse)[0]
        assert torch.equal(explorer.result["map"], reference)
        assert not torch.equal(reference, explain("occlusion", model, images[:1], labels[:1])[0])
    finally:
        explorer.close()
