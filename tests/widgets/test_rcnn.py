"""Tests for course_lib.widgets.rcnn: rcnn_proposal_view, rcnn_scores and RCNNExplorer.

A fresh ``RCNN`` (random backbone, small warp) with fixed proposals keeps them fast; the view must
equal the model's own steps, whatever its weights.
"""

import contextlib
import io
import math
import re

import pytest
import torch

from course_lib.boxes import clip_boxes_to_image
from course_lib.data import CLASSES
from course_lib.models.rcnn import RCNN
from course_lib.widgets.rcnn import ORDERS, RCNNExplorer, rcnn_proposal_view, rcnn_scores

PROPOSALS = torch.tensor([[0.0, 0, 20, 20], [8, 8, 40, 30], [30, 30, 60, 60], [5, 40, 25, 62],
                          [2, 2, 62, 50]])
GT = torch.tensor([[0.0, 8, 64, 30], [30, 30, 60, 60]])
STATUS = re.compile(r"proposal (\d+) of (\d+), #(\d+) by best SVM score · "
                    r"best class (\w+) \(([+-]\d\.\d\d)\)")


def _model(**kwargs):
    torch.manual_seed(0)
    return RCNN(proposer=lambda image: PROPOSALS, warp_size=32, **kwargs).eval()


def _image():
    return torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))


def _hand_model():
    """SVMs that prefer class 2 everywhere, and every class regressing by (0.25, 0, log 2, 0)."""
    model = _model()
    with torch.no_grad():
        model.svm.weight.zero_()
        model.svm.bias.copy_(torch.tensor([0.1, 0.5, -0.2, 0.0, -1.0]))
        model.regressor.weight.zero_()
        model.regressor.bias.copy_(torch.tensor([0.25, 0.0, math.log(2.0), 0.0] * 5))
    return model


# --- rcnn_proposal_view -----------------------------------------------------------------------
def test_view_hand_computed():
    # Proposal 1 = (8, 8, 40, 30): centre (24, 19), 32 x 22. dx = 0.25 -> centre x 32; dw = log 2 -> 64 wide.
    view = rcnn_proposal_view(_hand_model(), _image(), PROPOSALS, 1, gt_boxes=GT)
    assert view["best_label"] == 2 and view["class_names"] == CLASSES[1:]
    assert view["best_score"] == pytest.approx(0.5)
    assert view["deltas"].tolist() == pytest.approx([0.25, 0.0, math.log(2.0), 0.0])
    assert view["refined_box"].tolist() == pytest.approx([0.0, 8.0, 64.0, 30.0])
    assert view["object_index"] == 0
    assert view["iou_before"] == pytest.approx(32 / 64) and view["iou_after"] == pytest.approx(1.0)
    # 4 px of context in a 32 px crop: the box fills 24 px, the crop covers 32 / 24 of it.
    assert view["context_box"].tolist() == pytest.approx([24 - 16 * 4 / 3, 19 - 11 * 4 / 3,
                                                          24 + 16 * 4 / 3, 19 + 11 * 4 / 3])
    assert view["crop_proposal"].tolist() == [4, 4, 28, 28]


def test_regression_is_clipped_to_the_image_as_detect_does():
    view = rcnn_proposal_view(_hand_model(), _image(), PROPOSALS, 4)  # (2, 2, 62, 50) doubled in width
    assert view["refined_box"].tolist() == pytest.approx([0.0, 2.0, 64.0, 50.0])


@pytest.mark.parametrize("index", range(len(PROPOSALS)))
def test_view_equals_the_models_steps(index):
    model, image = _model(), _image()
    view = rcnn_proposal_view(model, image, PROPOSALS, index)
    with torch.no_grad():
        crops = model.warp(image, PROPOSALS)  # (N, 3, 32, 32)
        scores, deltas = model.classify(model.features(crops))  # (N, K), (N, 4K)
        decoded = model.box_coder.decode(deltas, PROPOSALS)  # (N, 4K)
    torch.testing.assert_close(view["crop"], crops[index])
    torch.testing.assert_close(view["scores"], scores[index], atol=1e-5, rtol=1e-4)
    label = int(scores[index].argmax()) + 1
    assert view["best_label"] == label
    assert view["best_score"] == pytest.approx(float(scores[index, label - 1]), abs=1e-5)
    torch.testing.assert_close(view["deltas"], deltas[index, 4 * (label - 1) : 4 * label],
                               atol=1e-5, rtol=1e-4)
    expected = clip_boxes_to_image(decoded[index, 4 * (label - 1) : 4 * label][None], (64, 64))[0]
    torch.testing.assert_close(view["refined_box"], expected, atol=1e-4, rtol=1e-4)
    assert torch.equal(view["proposal"], PROPOSALS[index])
    # The cached path (what the explorer uses) gives the same numbers.
    cached = rcnn_proposal_view(model, image, PROPOSALS, index, *rcnn_scores(model, image, PROPOSALS))
    for key in ("crop", "scores", "deltas", "refined_box"):
        torch.testing.assert_close(cached[key], view[key], atol=1e-5, rtol=1e-4)
    assert cached["best_label"] == view["best_label"]
    assert view["iou_before"] is None and view["object_index"] is None  # no objects given


def test_rcnn_scores_equal_the_models_steps():
    model, image = _model(), _image()
    scores, deltas = rcnn_scores(model, image, PROPOSALS)
    with torch.no_grad():
        expected = model.classify(model.features(model.warp(image, PROPOSALS)))
    assert torch.equal(scores, expected[0]) and torch.equal(deltas, expected[1])
    assert scores.shape == (5, 5) and deltas.shape == (5, 20) and not scores.requires_grad


def test_context_boxes_are_what_the_crop_covers():
    model, image = _model(), _image()
    plain = RCNN(warp_size=32, context=0)  # no context: the crop is exactly the box given
    grown = model.context_boxes(PROPOSALS)
    torch.testing.assert_close(plain.warp(image, grown), model.warp(image, PROPOSALS))


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"index": 5}, ValueError, r"index: expected a value in \[0, 4\], got 5"),
        ({"index": -1}, ValueError, r"index: expected a value in \[0, 4\]"),
        ({"index": 1.0}, TypeError, "index: expected an int"),
        ({"model": "rcnn"}, TypeError, "model: expected a course_lib.models.RCNN, got str"),
        ({"model": "training"}, ValueError, "expected a model in eval mode"),
        ({"image": torch.rand(64, 64)}, ValueError, r"image: expected a float Tensor\[3, H, W\]"),
        ({"proposals": torch.zeros(0, 4)}, ValueError, "expected at least one box, got 0"),
        ({"proposals": torch.tensor([[9.0, 0, 8, 8]])}, ValueError, "x2 >= x1"),
        ({"scores": torch.zeros(5, 5)}, ValueError, "expected both"),
        ({"scores": torch.zeros(4, 5), "deltas": torch.zeros(4, 20)}, ValueError,
         r"expected shapes \(5, 5\)"),
        ({"gt_boxes": torch.zeros(2, 3)}, ValueError, r"gt_boxes: expected a Tensor\[N, 4\]"),
    ],
)
def test_view_rejects_bad_input(change, error, match):
    arguments = {"model": _model(), "image": _image(), "proposals": PROPOSALS, "index": 0, **change}
    if arguments["model"] == "training":
        arguments["model"] = _model().train()
    with pytest.raises(error, match=match):
        rcnn_proposal_view(**arguments)


# --- RCNNExplorer -----------------------------------------------------------------------------
def _status(explorer):
    match = STATUS.search(explorer.status.value)
    assert match, explorer.status.value
    return match.groups()


def test_explorer_slider_goes_through_the_proposals_best_score_first():
    model, image = _model(), _image()
    explorer = RCNNExplorer(model, image, gt_boxes=GT)  # proposals from model.propose
    slider = explorer.controls["proposal"]
    assert (slider.min, slider.max, slider.value) == (0, 4, 0)
    assert explorer.controls["order"].options == ORDERS and explorer.controls["order"].value == ORDERS[0]
    scores, _ = rcnn_scores(model, image, PROPOSALS)
    ranked = scores.max(dim=1).values.argsort(descending=True).tolist()
    shown = []
    for position in range(5):
        slider.value = position
        shown.append(explorer.result["index"])
        assert _status(explorer)[:3] == (str(ranked[position]), "5", str(position + 1))
    assert shown == ranked
    best = [explorer.scores[i].max().item() for i in shown]
    assert best == sorted(best, reverse=True)


def test_explorer_shows_the_view_and_draws_it():
    model, image = _model(), _image()
    explorer = RCNNExplorer(model, image, PROPOSALS, gt_boxes=GT, order="index")
    explorer.controls["proposal"].value = 2
    expected = rcnn_proposal_view(model, image, PROPOSALS, 2, gt_boxes=GT)
    torch.testing.assert_close(explorer.result["scores"], expected["scores"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(explorer.result["refined_box"], expected["refined_box"], atol=1e-4, rtol=1e-4)
    assert _status(explorer)[0] == "2" and "IoU with object" in explorer.status.value
    scene_ax, crop_ax, score_ax = explorer.axes
    assert crop_ax.images[0].get_array().shape == (32, 32, 3)
    assert len(score_ax.patches) == 5  # one bar per class
    assert [label.get_text() for label in score_ax.get_xticklabels()] == list(CLASSES[1:])
    heights = [bar.get_height() for bar in score_ax.patches]
    assert heights == pytest.approx(expected["scores"].tolist(), abs=1e-5)
    assert scene_ax.get_title().startswith("proposal 2") and score_ax.get_ylabel() == "SVM score"
    png = explorer.png
    explorer.controls["proposal"].value = 3
    assert explorer.png != png and explorer.png.startswith(b"\x89PNG") and explorer.render_seconds > 0


def test_changing_the_order_keeps_the_proposal():
    explorer = RCNNExplorer(_model(), _image(), PROPOSALS, order="index")
    explorer.controls["proposal"].value = 3
    explorer.controls["order"].value = ORDERS[0]
    assert explorer.result["index"] == 3 and explorer.controls["proposal"].value == explorer.rank[3].item()
    explorer.controls["order"].value = "index"
    assert explorer.result["index"] == 3 and explorer.controls["proposal"].value == 3


def test_explorer_runs_the_cnn_once_per_scene():
    model = _model()
    calls = []
    features = model.features

    def counted(crops):
        calls.append(len(crops))
        return features(crops)

    model.features = counted
    explorer = RCNNExplorer(model, _image(), PROPOSALS)
    for position in (1, 2, 3, 4, 0):
        explorer.controls["proposal"].value = position
    explorer.controls["order"].value = "index"
    assert calls == [5], "the features of all proposals, once; moving the slider reuses them"


def test_explorer_is_print_free():
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        explorer = RCNNExplorer(_model(), _image(), PROPOSALS)
        explorer.controls["proposal"].value = 2
    assert stdout.getvalue() == ""


@pytest.mark.parametrize(
    "arguments, error, match",
    [
        ({"order": "random"}, ValueError, "order: expected one of 'best SVM score', 'index', got 'random'"),
        ({"proposals": torch.zeros(0, 4)}, ValueError, "expected at least one box, got 0"),
        ({"gt_boxes": torch.zeros(3)}, ValueError, r"gt_boxes: expected a Tensor\[N, 4\]"),
        ({"image": torch.rand(1, 64, 64)}, ValueError, r"image: expected a float Tensor\[3, H, W\]"),
        ({"model": None}, TypeError, "model: expected a course_lib.models.RCNN, got NoneType"),
    ],
)
def test_explorer_rejects_bad_input(arguments, error, match):
    with pytest.raises(error, match=match):
        RCNNExplorer(**{"model": _model(), "image": _image(), "proposals": PROPOSALS, **arguments})
