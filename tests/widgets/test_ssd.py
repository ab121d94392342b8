"""Tests for course_lib.widgets.ssd: default_box_view and DefaultBoxExplorer."""

import re

import pytest
import torch

from course_lib.models.ssd import LEVELS, default_boxes, match_default_boxes
from course_lib.recipes import ssd
from course_lib.recipes.detection import scenes
from course_lib.widgets.ssd import DefaultBoxExplorer, default_box_view

STATUS = re.compile(r"level (stride\d+): ([\d,]+) default box(?:es)?, "
                    r"(\d+) matched to (\d+) of (\d+) objects?")


def _levels(image_size=32, sizes=(4.0, 8.0, 16.0, 32.0, 64.0)):
    """SSD's default boxes of a square image, strides 4 to 32, 4 boxes per cell."""
    return [default_boxes(image_size // 2 ** (k + 2), 2 ** (k + 2), sizes[k], sizes[k + 1]) for k in range(4)]


NO_LABELS = torch.zeros(0, dtype=torch.int64)


# --- default_box_view -------------------------------------------------------------------------
def test_default_box_view_hand_computed():
    levels = _levels()
    # The object is exactly the first default box of stride8 (cell (0, 0), the square of side 8).
    view = default_box_view(levels, "stride8", torch.tensor([[0.0, 0, 8, 8]]), torch.tensor([2]))
    assert view["stride"] == 8 and view["boxes_per_cell"] == 4 and view["grid_size"] == (4, 4)
    assert view["num_default_boxes"] == 64 and view["level_index"] == 1
    assert view["matched"][0].item() == 0 and view["num_matched"] >= 1
    assert view["objects_matched"] == [0] and view["num_objects_matched"] == 1 and view["num_objects"] == 1
    # The object's centre (4, 4) is in cell (0, 0): with its neighbours (0, 1), (1, 0), (1, 1), 4 cells.
    cells = [0, 1, 4, 5]
    assert torch.nonzero(view["sample"])[:, 0].tolist() == [4 * cell + a for cell in cells for a in range(4)]
    # On stride32 (one cell of boxes 32 and 45 px wide) nothing overlaps the 8-px object at IoU 0.5.
    coarse = default_box_view(levels, "stride32", torch.tensor([[0.0, 0, 8, 8]]), torch.tensor([2]))
    assert coarse["num_matched"] == 0 and coarse["grid_size"] == (1, 1) and coarse["sample"].all()


@pytest.mark.parametrize("seed", range(5))
def test_default_box_view_matches_match_default_boxes(seed):
    generator = torch.Generator().manual_seed(seed)
    corners = torch.rand(5, 2, generator=generator) * 90
    gt = torch.cat([corners, corners + 6 + torch.rand(5, 2, generator=generator) * 40], dim=1)
    labels = torch.randint(1, 6, (5,), generator=generator)
    levels = _levels(128, (8.0, 16.0, 32.0, 64.0, 128.0))
    classes, matched = match_default_boxes(torch.cat(levels), gt, labels, 0.5)
    expected = torch.where(classes > 0, matched, -1).split([len(level) for level in levels])
    for index, level in enumerate(LEVELS):
        view = default_box_view(levels, level, gt, labels, 0.5)
        assert torch.equal(view["matched"], expected[index])
        assert view["objects_matched"] == sorted(set(expected[index][expected[index] >= 0].tolist()))
        assert view["grid_size"] == (128 // 2 ** (index + 2),) * 2
        counts = {name: int((part >= 0).sum()) for name, part in zip(LEVELS, expected, strict=True)}
        assert view["matched_per_level"] == counts
    assert sum(view["matched_per_level"].values()) == int((classes > 0).sum())


def test_default_box_view_without_objects_and_at_threshold_extremes():
    levels = _levels()
    empty = default_box_view(levels, "stride4", torch.zeros(0, 4), NO_LABELS)
    assert empty["num_matched"] == 0 and not empty["sample"].any() and empty["objects_matched"] == []
    assert (empty["matched"] == -1).all() and empty["num_objects"] == 0
    gt, labels = torch.tensor([[1.0, 1, 13, 13]]), torch.tensor([1])
    lenient = default_box_view(levels, "stride8", gt, labels, 0.0)
    assert sum(lenient["matched_per_level"].values()) == 4 * (64 + 16 + 4 + 1)  # IoU >= 0: every box
    strict = default_box_view(levels, "stride8", gt, labels, 1.0)
    assert sum(strict["matched_per_level"].values()) >= 1  # only the object's best box(es)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"level": "stride2"}, ValueError,
         r"level: expected one of 'stride4', 'stride8', 'stride16', 'stride32', got 'stride2'"),
        ({"default_boxes_per_level": _levels()[:3]}, ValueError, r"expected a list of 4 Tensor\[N, 4\]"),
        ({"gt_boxes": torch.zeros(1, 3)}, ValueError, r"gt_boxes: expected a Tensor\[N, 4\]"),
        ({"gt_labels": torch.tensor([1, 2])}, ValueError, r"gt_labels: expected a Tensor\[1\]"),
        ({"iou_threshold": 1.5}, ValueError, r"iou_threshold: expected a value in \[0.0, 1.0\]"),
    ],
)
def test_default_box_view_rejects_bad_input(kwargs, error, match):
    arguments = {"default_boxes_per_level": _levels(), "level": "stride8",
                 "gt_boxes": torch.tensor([[0.0, 0, 8, 8]]), "gt_labels": torch.tensor([1]), **kwargs}
    with pytest.raises(error, match=match):
        default_box_view(**arguments)


# --- DefaultBoxExplorer -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ssd.build().eval()


def _explorer(model):
    data = scenes("test", 4)
    targets = [target for _, target in data]
    targets[3] = {"boxes": torch.zeros(0, 4), "labels": NO_LABELS}  # an image without objects
    return DefaultBoxExplorer(model, [image for image, _ in data], targets), data


def test_explorer_status_and_levels(model):
    calls = []
    feature_maps = model.feature_maps
    model.feature_maps = lambda images: calls.append(len(images)) or feature_maps(images)
    try:
        explorer, data = _explorer(model)
        level = explorer.controls["level"]
        assert [value for _, value in level.options] == list(LEVELS)
        assert level.options[0][0] == "stride4: 32×32 cells, 8–11 px boxes"
        for value, count in zip(LEVELS, ("4,096", "1,024", "256", "64"), strict=True):
            level.value = value
            groups = STATUS.search(explorer.status.value).groups()
            assert groups[:2] == (value, count)
            result = explorer.result
            assert groups[2:] == (str(result["num_matched"]), str(result["num_objects_matched"]),
                                  str(len(data[0][1]["boxes"])))
        totals = explorer.result["matched_per_level"]
        image, target = explorer.default_boxes(0), data[0][1]
        expected = default_box_view(image, "stride4", target["boxes"], target["labels"])
        assert totals == expected["matched_per_level"] and sum(totals.values()) > 0
        explorer.controls["image"].value = 3
        assert STATUS.search(explorer.status.value).groups()[2:] == ("0", "0", "0")
        explorer.controls["image"].value = 0
        assert calls == [1, 1]  # images 0 and 3, once each
        explorer.close()
    finally:
        del model.feature_maps


def test_explorer_renders_every_level_of_every_image(model):
    explorer, _ = _explorer(model)
    assert explorer.figure.dpi >= 100
    for image in (0, 3):
        explorer.controls["image"].value = image
        for level in LEVELS:
            explorer.controls["level"].value = level
            assert explorer.png.startswith(b"\x89PNG") and explorer.axes[0].get_title().startswith(level)
            assert explorer.axes[0].get_xlim() == (0.0, 128.0)  # the view stays on the image
    explorer.close()


def test_explorer_rejects_bad_input(model):
    data = scenes("test", 2)
    images = [image for image, _ in data]
    with pytest.raises(TypeError, match="model: expected a course_lib.models.ssd.SSD"):
        DefaultBoxExplorer(torch.nn.Linear(2, 2), images, [target for _, target in data])
    with pytest.raises(ValueError, match="targets: expected one"):
        DefaultBoxExplorer(model, images, None)
    with pytest.raises(ValueError, match=r"targets\[1\]: expected a dict with 'boxes' and 'labels'"):
        DefaultBoxExplorer(model, images, [data[0][1], {"boxes": torch.zeros(0, 4)}])
