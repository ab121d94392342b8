"""Tests for course_lib.widgets.centernet: centernet_view, matched_objects and CenterNetExplorer."""

import html
import re

import pytest
import torch

from course_lib.data import ShapeScenes
from course_lib.models.centernet import CenterNet, centernet_targets
from course_lib.widgets.centernet import ALL_CLASSES, CenterNetExplorer, centernet_view, matched_objects
from tests.widgets.redraw import differs_from_a_full_redraw

STATUS = re.compile(r"scene (\d+), ([a-z ]+): (\d+) peaks? with score > ([\d.]+), so (\d+) box(?:es)? · "
                    r"(\d+) of (\d+) ")


def _logit(p):
    return torch.logit(torch.as_tensor(p, dtype=torch.float32))


def _hand_outputs():
    # K = 2 classes on a 4 x 5 map. Class 0: a peak 0.9 at (y=1, x=1) beside 0.6 (not a peak), and a
    # peak 0.4 at the border (3, 4). Class 1: a peak 0.7 at (1, 1), where class 0 also peaks.
    heat = torch.full((2, 4, 5), 0.05)
    heat[0, 1, 1], heat[0, 1, 2], heat[0, 3, 4], heat[1, 1, 1] = 0.9, 0.6, 0.4, 0.7
    size, offset = torch.zeros(2, 4, 5), torch.zeros(2, 4, 5)
    size[:, 1, 1] = torch.tensor([8.0, 4.0])  # width, height in pixels
    offset[:, 1, 1] = torch.tensor([0.5, 0.25])
    size[:, 3, 4] = torch.tensor([10.0, 10.0])
    return {"heatmap": _logit(heat), "size": size, "offset": offset}


# --- centernet_view ---------------------------------------------------------------------------
def test_centernet_view_hand_computed():
    view = centernet_view(_hand_outputs(), (16, 20), None, 0.3, stride=4)
    assert view["num_peaks"] == 3
    assert view["scores"].tolist() == pytest.approx([0.9, 0.7, 0.4])
    assert view["classes"].tolist() == [0, 1, 0] and view["labels"].tolist() == [1, 2, 1]
    assert view["ys"].tolist() == [1, 1, 3] and view["xs"].tolist() == [1, 1, 4]
    # Centre ((1 + 0.5) * 4, (1 + 0.25) * 4) = (6, 5), sides 8 x 4. At (3, 4): centre (16, 12), sides 10,
    # clipped to the 20 x 16 image.
    expected = [[2.0, 3.0, 10.0, 7.0], [2.0, 3.0, 10.0, 7.0], [11.0, 7.0, 20.0, 16.0]]
    torch.testing.assert_close(view["boxes"], torch.tensor(expected))
    torch.testing.assert_close(view["heatmap"], torch.sigmoid(_hand_outputs()["heatmap"]).max(dim=0).values)


def test_centernet_view_of_one_class_and_strict_threshold():
    one = centernet_view(_hand_outputs(), (16, 20), 1, 0.3)
    assert one["classes"].tolist() == [1] and one["class_index"] == 1
    torch.testing.assert_close(one["heatmap"], torch.sigmoid(_hand_outputs()["heatmap"][1]))
    outputs = _hand_outputs()
    outputs["heatmap"][0, 3, 4] = 0.0  # a score of exactly 0.5
    assert 0.5 not in centernet_view(outputs, (16, 20), 0, 0.5)["scores"].tolist()  # strictly above
    assert centernet_view(outputs, (16, 20), 0, 0.45)["scores"].tolist()[-1] == 0.5
    nothing = centernet_view(_hand_outputs(), (16, 20), None, 0.95)
    assert nothing["num_peaks"] == 0 and nothing["boxes"].shape == (0, 4)


@pytest.mark.parametrize("seed", range(3))
def test_centernet_view_equals_the_models_detections(seed):
    torch.manual_seed(seed)
    model = CenterNet(width=16, max_detections=10_000).eval()
    with torch.no_grad():  # sharper heatmaps and sizes of a few pixels than a fresh model's
        model.heatmap_head[-1].weight.mul_(60)
        model.heatmap_head[-1].bias.fill_(0.0)
        model.size_head[-1].bias.fill_(12)
    generator = torch.Generator().manual_seed(seed)
    images = [torch.rand(3, 64, 96, generator=generator), torch.rand(3, 80, 64, generator=generator)]
    with torch.no_grad():
        outputs, sizes = model.predict(images)
        for threshold in (0.3, 0.6):
            model.score_thresh = threshold
            detections = model(images)
            for index in range(2):
                one = {name: value[index] for name, value in outputs.items()}
                view = centernet_view(one, sizes[index], None, threshold, model.stride)
                assert view["num_peaks"] == len(detections[index]["boxes"])
                torch.testing.assert_close(view["boxes"], detections[index]["boxes"], rtol=0, atol=0)
                torch.testing.assert_close(view["scores"], detections[index]["scores"], rtol=0, atol=0)
                assert torch.equal(view["labels"], detections[index]["labels"])
    assert any(len(d["boxes"]) for d in detections)  # the comparison is not between two empty lists


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"class_index": 2}, ValueError, r"class_index: expected a value in \[0, 1\], got 2"),
        ({"class_index": 0.5}, TypeError, "class_index: expected an int"),
        ({"threshold": 1.5}, ValueError, r"threshold: expected a value in \[0.0, 1.0\], got 1.5"),
        ({"outputs": {"heatmap": torch.zeros(2, 4, 5)}}, ValueError,
         "expected a dict with 'heatmap', 'size'"),
        ({"outputs": {"heatmap": torch.zeros(4, 5), "size": 0, "offset": 0}}, ValueError,
         r"outputs\['heatmap'\]: expected a non-empty Tensor\[K, h, w\]"),
        ({"outputs": {**_hand_outputs(), "size": torch.zeros(2, 4, 4)}}, ValueError,
         r"outputs\['size'\]: expected a Tensor\[2, 4, 5\], got shape \(2, 4, 4\)"),
        ({"image_size": (0, 4)}, ValueError, "image_size"),
    ],
)
def test_centernet_view_rejects_bad_input(change, error, match):
    arguments = {"outputs": _hand_outputs(), "image_size": (16, 20), "class_index": None, "threshold": 0.3,
                 **change}
    with pytest.raises(error, match=match):
        centernet_view(**arguments)


# --- matched_objects --------------------------------------------------------------------------
def test_matched_objects_by_hand():
    gt = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]])
    gt_labels = torch.tensor([1, 2, 1])
    # IoU 0.5 exactly with object 0 (counts: >= 0.5), the right box but the wrong class for object 1,
    # IoU 0.25 with object 2, and a degenerate box on object 2 (covers nothing).
    boxes = torch.tensor([[0.0, 0, 10, 5], [20, 20, 30, 30], [40, 40, 45, 45], [50, 50, 40, 40]])
    labels = torch.tensor([1, 3, 1, 1])
    assert matched_objects(boxes, labels, gt, gt_labels).tolist() == [True, False, False]
    assert matched_objects(boxes, labels, gt, gt_labels, iou_threshold=0.2).tolist() == [True, False, True]
    assert matched_objects(torch.zeros(0, 4), torch.zeros(0), gt, gt_labels).tolist() == [False] * 3
    assert matched_objects(boxes, labels, torch.zeros(0, 4), torch.zeros(0)).shape == (0,)


# --- CenterNetExplorer ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    test = ShapeScenes.split("test")
    return [test[index] for index in range(3)]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = CenterNet(width=16).eval()
    with torch.no_grad():
        model.heatmap_head[-1].weight.mul_(60)
    return model


class OracleCenterNet(CenterNet):
    """Predicts the training targets of the scene's ground truth: every object is found."""

    def __init__(self, data):
        super().__init__(width=8)
        self.targets = {id(image): target for image, target in data}
        self.calls = []
        self.eval()

    def predict(self, images):
        self.calls.append(len(images))
        target = self.targets[id(images[0])]
        maps = centernet_targets(target["boxes"], target["labels"], (32, 32), 4, 5)
        heatmap = torch.logit(maps["heatmap"].clamp(1e-4, 1 - 1e-4) * 0.9)  # peaks of 0.9
        outputs = {"heatmap": heatmap[None], "size": maps["size"][None], "offset": maps["offset"][None]}
        return outputs, [(128, 128)]


def test_explorer_finds_every_object_of_an_oracle_and_runs_the_model_once_per_scene(data):
    oracle = OracleCenterNet(data)
    explorer = CenterNetExplorer(oracle, data)
    controls = explorer.controls
    assert controls["class_index"].options[0] == ("all classes", ALL_CLASSES)
    assert [name for name, _ in controls["class_index"].options[1:]] == [
        "circle", "square", "triangle", "star", "ring"]
    num_objects = len(data[0][1]["boxes"])
    groups = STATUS.search(html.unescape(explorer.status.value)).groups()
    assert groups == ("0", "all classes", str(num_objects), "0.30", str(num_objects), str(num_objects),
                      str(num_objects))
    controls["scene"].value = 2
    label = int(data[2][1]["labels"][0])
    controls["class_index"].value = label - 1
    mine = int((data[2][1]["labels"] == label).sum())
    assert explorer.result["num_peaks"] == mine and explorer.result["num_matched"] == mine
    assert (explorer.result["classes"] == label - 1).all()
    controls["threshold"].value = 0.95  # above the oracle's 0.9: nothing left
    assert explorer.result["num_peaks"] == 0 and explorer.result["num_matched"] == 0
    assert STATUS.search(html.unescape(explorer.status.value)).groups()[2] == "0"
    controls["heatmap"].value = False
    controls["scene"].value = 0
    controls["threshold"].value = 0.5
    assert oracle.calls == [1, 1]  # scenes 0 and 2, once each: the other controls read the cache
    explorer.close()


def test_explorer_shows_the_cached_output_of_the_real_model(model, data):
    calls = []
    predict = model.predict
    model.predict = lambda images: calls.append(len(images)) or predict(images)
    try:
        explorer = CenterNetExplorer(model, data)
        explorer.controls["threshold"].value = 0.1
        with torch.no_grad():
            outputs, sizes = predict([data[0][0]])
        expected = centernet_view({k: v[0] for k, v in outputs.items()}, sizes[0], None, 0.1)
        torch.testing.assert_close(explorer.result["boxes"], expected["boxes"])
        assert explorer.result["num_peaks"] == expected["num_peaks"] > 0
        explorer.controls["class_index"].value = 3
        assert explorer.axes[1].get_title().startswith("heatmap of star")
        assert calls == [1]
        explorer.close()
    finally:
        del model.predict


def test_explorer_renders_at_every_extreme(model, data):
    explorer = CenterNetExplorer(model, data)
    assert explorer.figure.dpi >= 100
    for control in explorer.controls.values():
        first = control.value
        values = ([not control.value, control.value] if isinstance(control.value, bool) else
                  [option[1] for option in control.options] if hasattr(control, "options") else
                  [control.min, control.max])
        for value in values:
            control.value = value
            assert explorer.png.startswith(b"\x89PNG") and explorer.status.value
        control.value = first
    assert min(ax.title.get_fontsize() for ax in explorer.axes) >= 11
    explorer.close()


def test_explorer_rejects_bad_input(model, data):
    with pytest.raises(TypeError, match="model: expected a course_lib.models.centernet.CenterNet"):
        CenterNetExplorer(torch.nn.Linear(2, 2), data)
    with pytest.raises(ValueError, match="scenes: expected a list of"):
        CenterNetExplorer(model, [data[0][0]])
    with pytest.raises(ValueError, match=r"images\[0\]: expected a float Tensor\[3, H, W\]"):
        CenterNetExplorer(model, [(torch.rand(128, 128), data[0][1])])
    with pytest.raises(ValueError, match="scenes: expected a list of"):
        CenterNetExplorer(model, 3)
    model.train()
    try:
        with pytest.raises(ValueError, match="expected a model in eval mode"):
            CenterNetExplorer(model, data)
    finally:
        model.eval()


def test_explorer_takes_a_dataset_of_scenes(model):
    explorer = CenterNetExplorer(model, ShapeScenes.split("test"))
    assert explorer.controls["scene"].max == len(ShapeScenes.split("test")) - 1
    explorer.close()


def test_a_redraw_over_the_kept_background_matches_a_full_redraw(data):
    explorer = CenterNetExplorer(OracleCenterNet(data), data)
    explorer.controls["scene"].value = 2
    explorer.controls["threshold"].value = 0.6  # a redraw over the kept background
    assert differs_from_a_full_redraw(explorer) < 0.002
    explorer.close()
