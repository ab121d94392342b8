"""Tests for course_lib.widgets.retinanet: level_assignment_view and FPNLevelExplorer."""

import re

import pytest
import torch

from course_lib.recipes import retinanet
from course_lib.recipes.detection import scenes
from course_lib.widgets.retinanet import ALL, FPNLevelExplorer, level_assignment_view
from tests.widgets.redraw import differs_from_a_full_redraw

STATUS = re.compile(r"image (\d+): (\d+) objects? by level: (.*) · "
                    r"(\d+) positive anchors? (on \w+(?: levels)?) of (\d+)")
FINE = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
COARSE = torch.tensor([[0.0, 0, 20, 20]])


# --- level_assignment_view --------------------------------------------------------------------
def test_level_assignment_view_hand_computed():
    view = level_assignment_view({"fine": FINE, "coarse": COARSE}, torch.tensor([[0.0, 0, 10, 10]]))
    # IoU 1 with the first fine anchor; 100 / 400 = 0.25 < 0.4 with the coarse one: background.
    assert view["matched"].tolist() == [0, -1, -1] and view["anchor_level"].tolist() == [0, 0, 1]
    assert view["counts"].tolist() == [[1, 0]] and view["object_level"].tolist() == [0]
    assert view["objects_per_level"] == {"fine": 1, "coarse": 0, "none": 0}
    assert [anchors.tolist() for anchors in view["positive_anchors"]] == [[0]] and view["num_positive"] == 1
    # A 20-px object: the coarse anchor fits it; the fine one (IoU 0.25) is background.
    large = level_assignment_view({"fine": FINE, "coarse": COARSE}, torch.tensor([[0.0, 0, 20, 20]]))
    assert large["object_level"].tolist() == [1] and large["objects_per_level"]["coarse"] == 1


def test_ties_go_to_the_finer_level():
    same = torch.tensor([[0.0, 0, 10, 10]])
    view = level_assignment_view({"stride4": same, "stride8": same.clone()}, same)
    assert view["counts"].tolist() == [[1, 1]] and view["object_level"].tolist() == [0]
    # More anchors on the coarser level win over the order.
    more = level_assignment_view({"stride4": same, "stride8": torch.cat([same, same])}, same)
    assert more["counts"].tolist() == [[1, 2]] and more["object_level"].tolist() == [1]


def test_an_object_whose_best_anchor_is_taken_has_no_level():
    # Two identical objects: the one anchor goes to the first (label_anchors: the first on ties).
    view = level_assignment_view({"fine": FINE[:1]}, torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10]]))
    assert view["object_level"].tolist() == [0, -1]
    assert view["objects_per_level"] == {"fine": 1, "none": 1}
    assert view["positive_anchors"][1].tolist() == []


def test_level_assignment_view_without_objects():
    view = level_assignment_view({"fine": FINE, "coarse": COARSE}, torch.zeros(0, 4))
    assert view["counts"].shape == (0, 2) and view["object_level"].tolist() == []
    assert view["num_positive"] == 0 and (view["matched"] == -1).all()
    assert view["objects_per_level"] == {"fine": 0, "coarse": 0, "none": 0}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return retinanet.build().eval()


def test_level_assignment_view_matches_retinanet_match(model):
    for image, target in scenes("test", 4):
        with torch.no_grad():
            pyramid, _ = model.pyramid([image])
        anchors = model.anchors(pyramid)
        view = level_assignment_view(anchors, target["boxes"], model.fg_iou_thresh, model.bg_iou_thresh)
        state, _, matched = model.match(torch.cat(list(anchors.values())), target)
        assert torch.equal(view["matched"], torch.where(state == 1, matched, -1))
        # Brute force: each object's level holds the most of its positive anchors, the finer on ties.
        sizes = [len(level_anchors) for level_anchors in anchors.values()]
        for j, indices in enumerate(view["positive_anchors"]):
            counts = [sum(1 for i in indices.tolist() if sum(sizes[:k]) <= i < sum(sizes[:k + 1]))
                      for k in range(len(sizes))]
            assert view["counts"][j].tolist() == counts
            assert view["object_level"][j].item() == (counts.index(max(counts)) if max(counts) else -1)
        assert sum(view["objects_per_level"].values()) == len(target["boxes"])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"bg_iou": 0.6}, ValueError, r"bg_iou: expected a value in \[0.0, 0.5\], got 0.6"),
        ({"fg_iou": 1.5}, ValueError, r"fg_iou: expected a value in \[0.0, 1.0\]"),
        ({"anchors_per_level": {}}, ValueError,
         r"anchors_per_level: expected a dict level -> Tensor\[N, 4\]"),
        ({"anchors_per_level": {"fine": FINE[:, :3]}}, ValueError, r"anchors_per_level\['fine'\]: expected"),
        ({"gt_boxes": torch.tensor([[5.0, 5, 1, 1]])}, ValueError, "gt_boxes"),
    ],
)
def test_level_assignment_view_rejects_bad_input(kwargs, error, match):
    arguments = {"anchors_per_level": {"fine": FINE, "coarse": COARSE},
                 "gt_boxes": torch.tensor([[0.0, 0, 10, 10]]), **kwargs}
    with pytest.raises(error, match=match):
        level_assignment_view(**arguments)


# --- FPNLevelExplorer -------------------------------------------------------------------------
def _explorer(model):
    data = scenes("test", 4)
    targets = [target for _, target in data]
    targets[3] = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}  # no objects
    return FPNLevelExplorer(model, [image for image, _ in data], targets), data


def test_explorer_follows_the_level(model):
    calls = []
    pyramid = model.pyramid
    model.pyramid = lambda images: calls.append(len(images)) or pyramid(images)
    try:
        explorer, data = _explorer(model)
        level = explorer.controls["level"]
        assert [value for _, value in level.options] == [ALL, "stride4", "stride8", "stride16", "stride32"]
        assert level.options[2][0] == "stride8: anchors 16–25 px"
        total = explorer.result["num_positive"]
        assert int(explorer.result["shown"].sum()) == total > 0
        groups = STATUS.search(explorer.status.value).groups()
        assert groups[0:2] == ("0", str(len(data[0][1]["boxes"])))
        assert groups[3:] == (str(total), "on all levels", str(total))
        shown = 0
        for value in ("stride4", "stride8", "stride16", "stride32"):
            level.value = value
            index = explorer.result["levels"].index(value)
            assert (explorer.result["anchor_level"][explorer.result["shown"]] == index).all()
            shown += int(explorer.result["shown"].sum())
            assert STATUS.search(explorer.status.value).groups()[4] == f"on {value}"
        assert shown == total
        explorer.controls["image"].value = 3
        assert explorer.result["num_objects"] == 0 and "0 objects" in explorer.status.value
        explorer.controls["image"].value = 0
        assert calls == [1, 1]  # images 0 and 3, once each
        explorer.close()
    finally:
        del model.pyramid


def test_explorer_renders_every_level_of_every_image(model):
    explorer, _ = _explorer(model)
    assert explorer.figure.dpi >= 100
    for image in (0, 3):
        explorer.controls["image"].value = image
        for _, level in explorer.controls["level"].options:
            explorer.controls["level"].value = level
            assert explorer.png.startswith(b"\x89PNG") and explorer.status.value
    texts = [explorer.axes[0].title, explorer.axes[1].title, explorer.axes[1].xaxis.label,
             explorer.axes[1].yaxis.label, *explorer.axes[1].get_xticklabels()]
    assert min(text.get_fontsize() for text in texts if text.get_text()) >= 11
    explorer.close()


def test_explorer_rejects_bad_input(model):
    data = scenes("test", 2)
    images = [image for image, _ in data]
    with pytest.raises(TypeError, match="model: expected a course_lib.models.retinanet.RetinaNet"):
        FPNLevelExplorer(torch.nn.Linear(2, 2), images, [target for _, target in data])
    with pytest.raises(ValueError, match="targets: expected a list of 2 dicts"):
        FPNLevelExplorer(model, images, [data[0][1]])


def test_a_redraw_over_the_kept_background_matches_a_full_redraw(model):
    explorer, _ = _explorer(model)
    explorer.controls["level"].value = "stride8"
    explorer.controls["level"].value = "stride16"
    assert differs_from_a_full_redraw(explorer) < 0.002
    explorer.close()
