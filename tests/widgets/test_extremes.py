"""Every explorer at the extremes of every control, and with zero boxes: it renders, without error.

Each explorer is built small (random images, few boxes, the zoo's shapes classifier); then every
control goes to each of its extremes in turn: a slider's minimum and maximum, every option of a
dropdown, both states of a checkbox, no choice / one / all of a multiple choice. After each move
the explorer must show a PNG and a status. Timings are measured by ``benchmarks/bench_explorers.py``,
never asserted here. Also here: the mimebundle a stored notebook keeps for an explorer, the
plural helper, and blitting (a redraw over a kept background) against a full redraw.
"""

import io

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from PIL import Image

from course_lib import zoo
from course_lib.classical.sliding_window import SlidingWindowDetector
from course_lib.data import CLASSES
from course_lib.models.detr import DETR
from course_lib.models.rcnn import RCNN
from course_lib.models.scouter import Scouter
from course_lib.recipes import retinanet, ssd, yolo_v1
from course_lib.recipes.centernet import build as build_centernet
from course_lib.recipes.face_detector import lfw_crops, random_negative_crops
from course_lib.widgets import (
    ActivationExplorer,
    AnchorExplorer,
    APExplorer,
    ClassVisualizationExplorer,
    DefaultBoxExplorer,
    DetectionsExplorer,
    DetectorExplorer,
    FocalLossExplorer,
    FPNLevelExplorer,
    HOGExplorer,
    IoUExplorer,
    NMSExplorer,
    PatchExplorer,
    ProposalExplorer,
    RCNNExplorer,
    RoIPoolExplorer,
    SceneExplorer,
    ScouterExplorer,
    SelectiveSearchExplorer,
    YOLOCellExplorer,
)
from course_lib.widgets.base import KERNEL_GONE_TEXT, ExplorerBox, plural
from course_lib.widgets.centernet import CenterNetExplorer
from course_lib.widgets.detr import CrossAttentionExplorer, MatchingExplorer
from course_lib.widgets.embeddings import NeighborsExplorer
from course_lib.widgets.explanations import ExplanationExplorer
from tests.widgets.redraw import differs_from_a_full_redraw

NO_BOXES = torch.zeros(0, 4)
BOXES = torch.tensor([[2.0, 2, 30, 30], [4, 4, 32, 30], [30, 10, 60, 50], [0, 40, 20, 63]])
SCORES = torch.tensor([0.9, 0.8, 0.6, 0.3])


def _image(side=64, seed=0):
    return torch.rand(3, side, side, generator=torch.Generator().manual_seed(seed))


def _uint8(side=48, seed=0):
    return (np.random.default_rng(seed).uniform(0, 255, (side, side, 3))).astype(np.uint8)


def _target(boxes):
    labels = torch.ones(len(boxes), dtype=torch.int64)
    masks = torch.zeros(len(boxes), 64, 64, dtype=torch.uint8)
    return {"boxes": boxes, "labels": labels, "masks": masks}


def _detections(boxes, scores):
    return {"boxes": boxes, "scores": scores, "labels": torch.ones(len(boxes), dtype=torch.int64)}


@pytest.fixture(scope="module")
def classifier():
    return zoo.load("shapes_classifier")


@pytest.fixture(scope="module")
def face_detector():
    faces, non_faces = lfw_crops()
    args = {"window_size": (24, 24), "pixels_per_cell": (6, 6), "grey": True, "scale_step": 1.25, "C": 1.0,
            "score_threshold": 0.0, "iou_threshold": 0.3}
    negatives = list(non_faces)[:40] + random_negative_crops(40)
    return SlidingWindowDetector(**args).fit(list(faces)[:40], negatives, rounds=0)


def _rcnn():
    torch.manual_seed(0)
    return RCNN(proposer=lambda image: BOXES, warp_size=32).eval()


# name -> a function of the fixtures that builds a small explorer
BUILDERS = {
    "yolo cell": lambda f: YOLOCellExplorer(
        yolo_v1.build().eval(), [_image(), _image(seed=1)], [_target(BOXES), _target(NO_BOXES)]
    ),
    "ssd default boxes": lambda f: DefaultBoxExplorer(
        ssd.build().eval(), [_image(), _image(seed=1)], [_target(BOXES), _target(NO_BOXES)]
    ),
    "centernet": lambda f: CenterNetExplorer(
        build_centernet().eval(), [(_image(), _target(BOXES)), (_image(seed=1), _target(NO_BOXES))]
    ),
    "detr matching": lambda f: MatchingExplorer(
        DETR().eval(), [_image(128), _image(128, seed=1)], [_target(BOXES), _target(NO_BOXES)]
    ),
    "detr attention": lambda f: CrossAttentionExplorer(DETR().eval(), [_image(128), _image(128, seed=1)]),
    "fpn levels": lambda f: FPNLevelExplorer(
        retinanet.build().eval(), [_image(), _image(seed=1)], [_target(BOXES), _target(NO_BOXES)]
    ),
    "focal loss": lambda f: FocalLossExplorer(
        torch.randn(200, generator=torch.Generator().manual_seed(0)) - 3,
        (torch.arange(200) % 20 == 0).float(),
    ),
    "scene": lambda f: SceneExplorer([(_image(), _target(BOXES)), (_image(seed=1), _target(NO_BOXES))],
                                     class_names=CLASSES),
    "iou": lambda f: IoUExplorer(box_a=(30, 30, 80, 80)),
    "ap": lambda f: APExplorer(BOXES, SCORES, BOXES[:2], image=_image()),
    "ap, no detections": lambda f: APExplorer(NO_BOXES, torch.zeros(0), BOXES[:2]),
    "ap, no ground truth": lambda f: APExplorer(BOXES, SCORES, NO_BOXES, image=_image()),
    "anchors": lambda f: AnchorExplorer(image=_image(128)),
    "nms": lambda f: NMSExplorer(BOXES, SCORES, image=_image()),
    "nms, no boxes": lambda f: NMSExplorer(NO_BOXES, torch.zeros(0)),
    "hog": lambda f: HOGExplorer(_uint8(64)),
    "sliding window": lambda f: DetectorExplorer(f["face_detector"], _uint8(72), BOXES[:1]),
    "sliding window, no boxes": lambda f: DetectorExplorer(f["face_detector"], _uint8(72), NO_BOXES),
    "selective search": lambda f: SelectiveSearchExplorer(_uint8(40), gt_boxes=BOXES[:2] / 2),
    "selective search, no boxes": lambda f: SelectiveSearchExplorer(_uint8(40), gt_boxes=NO_BOXES),
    "rcnn": lambda f: RCNNExplorer(_rcnn(), _image(), BOXES, gt_boxes=BOXES[:1]),
    "rcnn, no ground truth": lambda f: RCNNExplorer(_rcnn(), _image(), BOXES, gt_boxes=NO_BOXES),
    "roi": lambda f: RoIPoolExplorer(_image(), torch.rand(4, 16, 16), BOXES, stride=4, output_size=7),
    "proposals": lambda f: ProposalExplorer(_image(), BOXES[:2], BOXES, SCORES, reference=BOXES.flip(0)),
    "proposals, no ground truth": lambda f: ProposalExplorer(_image(), NO_BOXES, BOXES, SCORES),
    "detections": lambda f: DetectionsExplorer(
        [_image(), _image(seed=1)], [_target(BOXES), _target(NO_BOXES)],
        {"a": [_detections(BOXES, SCORES), _detections(NO_BOXES, torch.zeros(0))],
         "b": [_detections(NO_BOXES, torch.zeros(0)), _detections(BOXES[:1], SCORES[:1])]}),
    "neighbors": lambda f: NeighborsExplorer(
        torch.rand(3, 3, 8, 8), torch.rand(20, 3, 8, 8), torch.rand(3, 5), torch.rand(20, 5),
        torch.tensor([0, 1, 2]), torch.arange(20) % 3, ["a", "b", "c"]),
    "activations": lambda f: ActivationExplorer(f["classifier"], torch.rand(3, 64, 64)),
    "patches": lambda f: PatchExplorer(f["classifier"], torch.rand(4, 3, 64, 64)),
    "class visualization": lambda f: ClassVisualizationExplorer(f["classifier"]),
    "explanations": lambda f: ExplanationExplorer(zoo.load("shapes_classifier"),
                                                  torch.stack([_image(), _image(seed=1)])),
    "explanations, detector": lambda f: ExplanationExplorer(retinanet.build().eval(),
                                                            [_image(), _image(seed=1)]),
    "scouter": lambda f: ScouterExplorer({"SCOUTER+": Scouter(1), "SCOUTER-": Scouter(-1)},
                                         torch.stack([_image(), _image(seed=1)]), torch.tensor([1, 5])),
}


def _extremes(control):
    """The extreme values of one control, as a student can set them."""
    if isinstance(control, widgets.Checkbox):
        return [not control.value, control.value]
    if isinstance(control, widgets.SelectMultiple):
        return [(), *[(option,) for option in control.options], tuple(control.options)]
    if isinstance(control, widgets.SelectionRangeSlider):
        options = [option[1] if isinstance(option, tuple) else option for option in control.options]
        return [(options[0], options[0]), (options[-1], options[-1]), (options[0], options[-1])]
    if isinstance(control, widgets.FloatLogSlider):
        return [control.base ** control.min, control.base ** control.max]
    if isinstance(control, widgets.IntSlider | widgets.FloatSlider):
        return [control.min, control.max]
    if hasattr(control, "options"):  # Dropdown, ToggleButtons, SelectionSlider
        values = [option[1] if isinstance(option, tuple) else option for option in control.options]
        if isinstance(control, widgets.Dropdown | widgets.ToggleButtons):
            return values
        return [values[0], values[-1]]
    raise TypeError(f"no extremes for a {type(control).__name__}")


def _shows_a_figure(explorer):
    (output,) = explorer.output.outputs
    assert output["data"]["text/plain"] == "<Figure>"
    image = Image.open(io.BytesIO(explorer.png))
    assert image.size == explorer.figure.canvas.get_width_height()
    assert explorer.status.value


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_control_at_its_extremes_renders(name, request):
    torch.manual_seed(0)  # the untrained detectors' weights: the same explorer on every run
    fixtures = {}
    if name in ("activations", "patches", "class visualization"):
        fixtures["classifier"] = request.getfixturevalue("classifier")
    if name.startswith("sliding window"):
        fixtures["face_detector"] = request.getfixturevalue("face_detector")
    explorer = BUILDERS[name](fixtures)
    _shows_a_figure(explorer)
    assert explorer.figure.dpi >= 100
    for control_name, control in explorer.controls.items():
        first = control.value
        for value in _extremes(control):
            if name == "class visualization" and control_name == "steps" and value > 60:
                continue  # a long gradient ascent: the maximum adds seconds and nothing new to draw
            control.value = value
            _shows_a_figure(explorer)
        control.value = first
    explorer.close()


# --- blitting -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["proposals", "roi", "ap", "anchors", "yolo cell", "fpn levels", "focal loss"]
)
def test_a_redraw_over_the_kept_background_matches_a_full_redraw(name):
    torch.manual_seed(0)
    explorer = BUILDERS[name]({})
    for control in explorer.controls.values():  # move every control once, to a new value
        values = [value for value in _extremes(control) if value != control.value]
        if values:
            control.value = values[0]
    assert differs_from_a_full_redraw(explorer) < 0.002
    explorer.close()


# --- the stored notebook's text ----------------------------------------------------------------
def test_explorer_mimebundle_says_how_to_bring_it_back():
    explorer = IoUExplorer()
    assert isinstance(explorer.widget, ExplorerBox)
    bundle = explorer.widget._repr_mimebundle_()
    assert bundle["text/plain"] == KERNEL_GONE_TEXT
    assert "VBox" not in bundle["text/plain"]
    view = bundle["application/vnd.jupyter.widget-view+json"]  # what JupyterLab renders live
    assert view["model_id"] == explorer.widget.model_id and view["version_major"] == 2
    explorer.close()


def test_ipython_formats_an_explorer_with_the_kernel_gone_text():
    from IPython.core.formatters import DisplayFormatter

    explorer = IoUExplorer()
    data, _ = DisplayFormatter().format(explorer.widget)
    assert data["text/plain"] == KERNEL_GONE_TEXT
    assert "application/vnd.jupyter.widget-view+json" in data
    explorer.close()


# --- status lines ------------------------------------------------------------------------------
def test_plural():
    assert plural(1, "proposal") == "1 proposal"
    assert plural(0, "proposal") == "0 proposals"
    assert plural(2, "box", "boxes") == "2 boxes"
    assert plural(1, "box", "boxes") == "1 box"


def test_one_proposal_reads_in_the_singular():
    # Regression (issue 12): "1 proposals".
    explorer = ProposalExplorer(_image(), BOXES[:1], BOXES, SCORES)
    explorer.controls["num_proposals"].value = 1
    assert "1 proposal " in explorer.status.value and "1 proposals" not in explorer.status.value
    assert explorer.axes[0].get_title().startswith("1 proposal,")
    explorer.close()


def test_status_keeps_room_for_two_lines_so_the_figure_does_not_jump():
    # Regression (issue 12): the anchor explorer's figure moved when its status wrapped.
    explorer = AnchorExplorer()
    assert explorer.status.layout.min_height.endswith("em")
    assert float(explorer.status.layout.min_height[:-2]) >= 2 * 1.1 * 1.2
    explorer.close()


def test_proposal_explorer_text_is_readable():
    # Regression (issue 12): 07's explorer text was about 7 px (9 points at 72 dpi).
    explorer = ProposalExplorer(_image(), BOXES[:2], BOXES, SCORES, reference=BOXES.flip(0))
    texts = [explorer.axes[0].title, explorer.axes[1].title, explorer.axes[1].xaxis.label,
             explorer.axes[1].yaxis.label, *explorer.axes[1].get_xticklabels(),
             *explorer.axes[1].get_legend().get_texts()]
    assert explorer.figure.dpi >= 100
    assert min(text.get_fontsize() for text in texts if text.get_text()) >= 11
    explorer.close()
