"""Tests for course_lib.widgets.yolo: yolo_cell_view and YOLOCellExplorer."""

import re

import ipywidgets as widgets
import pytest
import torch

from course_lib.models.yolo import decode_yolo
from course_lib.recipes import yolo_v1
from course_lib.recipes.detection import scenes
from course_lib.widgets.yolo import YOLOCellExplorer, grid_lines, yolo_cell_view
from tests.widgets.redraw import differs_from_a_full_redraw

STATUS = re.compile(r"image (\d+), cell \((\d+), (\d+)\): .* · (\d+) of (\d+) boxe?s? kept")


def _hand_output():
    # A 2 x 2 grid, B = 2, C = 2. Cell (1, 0): box 1 centred in the cell with sqrt(w) = sqrt(h) = 0.5,
    # confidence 0.8; box 2 at the cell's top-left corner, full-size, confidence 1.5 (clamped to 1).
    output = torch.zeros(2, 2, 12)
    output[1, 0, :5] = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.8])
    output[1, 0, 5:10] = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.5])
    output[1, 0, 10:] = torch.tensor([0.3, 0.7])
    return output


# --- yolo_cell_view ---------------------------------------------------------------------------
def test_yolo_cell_view_hand_computed():
    view = yolo_cell_view(_hand_output(), 1, 0, num_boxes=2, cell_size=10, threshold=0.56)
    # Box 1: centre (0.5 * 10, (1 + 0.5) * 10) = (5, 15), side 0.5**2 * 2 cells * 10 px = 5.
    # Box 2: centre (0, 10), side 1 * 20 = 20.
    assert view["boxes"].tolist() == [[2.5, 12.5, 7.5, 17.5], [-10.0, 0.0, 10.0, 20.0]]
    assert view["raw_confidences"].tolist() == pytest.approx([0.8, 1.5])
    assert view["confidences"].tolist() == pytest.approx([0.8, 1.0])
    assert view["best_class"] == 1 and view["best_prob"] == pytest.approx(0.7)
    assert view["scores"].tolist() == pytest.approx([0.56, 0.7])
    assert view["passes"].tolist() == [True, True] and view["num_passing"] == 2
    assert view["cell_box"] == [0, 10, 10, 20] and view["grid_size"] == (2, 2)
    stricter = yolo_cell_view(_hand_output(), 1, 0, 2, 10, 0.6)
    assert stricter["passes"].tolist() == [False, True] and stricter["num_passing"] == 1


def test_yolo_cell_view_at_threshold_extremes_and_negative_confidence():
    output = _hand_output()
    output[1, 0, 4] = -0.3  # a linear confidence below 0 is clamped to 0, as the model does at test time
    everything = yolo_cell_view(output, 1, 0, 2, 10, 0.0)
    assert everything["confidences"][0].item() == 0.0 and everything["passes"].tolist() == [True, True]
    nothing = yolo_cell_view(output, 1, 0, 2, 10, 1.0)
    assert nothing["passes"].tolist() == [False, False]  # 0.7 at best
    empty_cell = yolo_cell_view(output, 0, 1, 2, 10, 0.0)
    assert empty_cell["scores"].tolist() == [0.0, 0.0] and empty_cell["best_class"] == 0  # ties: the first


@pytest.mark.parametrize("seed", range(5))
def test_yolo_cell_view_matches_decode_yolo_and_the_models_scores(seed):
    generator = torch.Generator().manual_seed(seed)
    output = torch.rand(5, 4, 3 * 5 + 3, generator=generator) * 1.4 - 0.2  # (S, S', 5B + C)
    output[..., 15:] = output[..., 15:].softmax(-1)
    boxes, confidences, class_probs = decode_yolo(output, 3, 8)
    scores = (confidences.clamp(0, 1)[:, None] * class_probs).max(dim=1).values  # as YOLOv1.forward
    for row in range(5):
        for col in range(4):
            view = yolo_cell_view(output, row, col, 3, 8, 0.3)
            first = (row * 4 + col) * 3
            torch.testing.assert_close(view["boxes"], boxes[first:first + 3])
            torch.testing.assert_close(view["scores"], scores[first:first + 3])
            assert view["passes"].tolist() == (scores[first:first + 3] >= 0.3).tolist()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"row": 2}, ValueError, r"row: expected a value in \[0, 1\], got 2"),
        ({"col": -1}, ValueError, r"col: expected a value in \[0, 1\], got -1"),
        ({"row": 0.5}, TypeError, "row: expected an int"),
        ({"threshold": 1.5}, ValueError, r"threshold: expected a value in \[0.0, 1.0\], got 1.5"),
        ({"num_boxes": 3}, ValueError, r"output: expected a Tensor\[..., S, S, 5B \+ C\] with B = 3"),
        ({"output": torch.zeros(2, 12)}, ValueError, r"output: expected a Tensor\[..., S, S, 5B \+ C\]"),
        ({"output": [0.0]}, TypeError, "output: expected a torch.Tensor"),
    ],
)
def test_yolo_cell_view_rejects_bad_input(kwargs, error, match):
    arguments = {"output": _hand_output(), "row": 1, "col": 0, "num_boxes": 2, "cell_size": 10,
                 "threshold": 0.5, **kwargs}
    with pytest.raises(error, match=match):
        yolo_cell_view(**arguments)


def test_grid_lines():
    assert grid_lines(2, 3, 10) == [[(10, 0.0), (10, 20)], [(20, 0.0), (20, 20)], [(0.0, 10), (30, 10)]]
    assert grid_lines(1, 1, 8) == []


# --- YOLOCellExplorer -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return yolo_v1.build().eval()


@pytest.fixture(scope="module")
def data():
    return scenes("test", 4)


def _explorer(model, data):
    images, targets = [image for image, _ in data], [target for _, target in data]
    targets[3] = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}  # no objects
    return YOLOCellExplorer(model, images, targets)


def test_explorer_reads_the_chosen_cell_of_the_cached_output(model, data):
    calls = []
    predict = model.predict
    model.predict = lambda images: calls.append(len(images)) or predict(images)
    try:
        explorer = _explorer(model, data)
        controls = explorer.controls
        assert (controls["row"].max, controls["col"].max) == (15, 15)
        controls["row"].value, controls["col"].value, controls["threshold"].value = 0, 15, 0.0
        with torch.no_grad():
            output = predict([data[0][0]])[0][0]
        expected = yolo_cell_view(output, 0, 15, 2, 8, 0.0)
        torch.testing.assert_close(explorer.result["boxes"], expected["boxes"])
        assert explorer.result["passes"].all()  # every score is >= 0
        assert STATUS.search(explorer.status.value).groups() == ("0", "0", "15", "2", "2")
        controls["threshold"].value = 1.0
        assert explorer.result["num_passing"] == int((expected["scores"] >= 1.0).sum())
        controls["image"].value = 2
        controls["row"].value = 15
        controls["image"].value = 0
        assert calls == [1, 1]  # images 0 and 2, once each: sliders only read the cache
        assert explorer.result["row"] == 15 and explorer.result["image"] == 0
        explorer.close()
    finally:
        del model.predict


def _extremes(control):
    if isinstance(control, widgets.Checkbox):
        return [not control.value, control.value]
    if isinstance(control, widgets.Dropdown):
        return [option[1] if isinstance(option, tuple) else option for option in control.options]
    return [control.min, control.max]


def test_explorer_renders_at_every_extreme(model, data):
    explorer = _explorer(model, data)
    assert explorer.figure.dpi >= 100
    for control in explorer.controls.values():
        first = control.value
        for value in _extremes(control):
            control.value = value
            assert explorer.png.startswith(b"\x89PNG") and explorer.status.value
        control.value = first
    explorer.controls["image"].value = 3  # the image without objects, at the corner cell
    explorer.controls["row"].value = explorer.controls["col"].value = 15
    assert explorer.png.startswith(b"\x89PNG")
    texts = [explorer.axes[0].title, explorer.axes[1].title, explorer.axes[1].yaxis.label]
    assert min(text.get_fontsize() for text in texts) >= 11
    explorer.close()


def test_explorer_rejects_bad_input(model, data):
    images = [image for image, _ in data]
    with pytest.raises(TypeError, match="model: expected a course_lib.models.yolo.YOLOv1"):
        YOLOCellExplorer(torch.nn.Linear(2, 2), images)
    with pytest.raises(ValueError, match=r"images\[0\]: expected a float Tensor\[3, H, W\]"):
        YOLOCellExplorer(model, [torch.rand(128, 128)])
    with pytest.raises(ValueError, match="targets: expected a list of 4 dicts"):
        YOLOCellExplorer(model, images, [data[0][1]])
    model.train()
    try:
        with pytest.raises(ValueError, match="expected a model in eval mode"):
            YOLOCellExplorer(model, images)
    finally:
        model.eval()


def test_a_redraw_over_the_kept_background_matches_a_full_redraw(model, data):
    explorer = _explorer(model, data)
    explorer.controls["row"].value, explorer.controls["threshold"].value = 2, 0.0
    assert differs_from_a_full_redraw(explorer) < 0.002
    explorer.close()
