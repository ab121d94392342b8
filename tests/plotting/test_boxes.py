"""Tests for course_lib.plotting.boxes: rectangles, tags and their colours, empty input, bad input."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_lib.plotting.boxes import as_drawable_boxes, draw_boxes, per_box_values
from course_lib.plotting.colors import class_color
from course_lib.plotting.images import show_image

BOXES = torch.tensor([[10.0, 10.0, 40.0, 50.0], [30.0, 20.0, 90.0, 60.0], [0.0, 0.0, 128.0, 128.0]])


def test_draw_boxes_adds_one_rectangle_per_box_in_xyxy(ax):
    rectangles = draw_boxes(ax, BOXES)
    assert len(rectangles) == len(ax.patches) == 3
    assert len(ax.texts) == 0  # no labels, no scores: no tags
    assert rectangles[1].get_xy() == (30.0, 20.0)
    assert (rectangles[1].get_width(), rectangles[1].get_height()) == (60.0, 40.0)


def test_draw_boxes_tags_with_class_names_and_scores(ax):
    draw_boxes(ax, BOXES, labels=torch.tensor([1, 2, 1]), scores=torch.tensor([0.9, 0.456, 0.1]),
                        class_names=["background", "circle", "square"])
    assert [text.get_text() for text in ax.texts] == ["circle 0.90", "square 0.46", "circle 0.10"]
    edge = [patch.get_edgecolor()[:3] for patch in ax.patches]
    assert edge[0] == edge[2] == pytest.approx(class_color(1))
    assert edge[1] == pytest.approx(class_color(2))


def test_draw_boxes_scores_only_and_per_box_colours(ax):
    draw_boxes(ax, BOXES, scores=[0.5, 0.25, 1.0], color=["red", "lime", "blue"], linestyle="--")
    assert [text.get_text() for text in ax.texts] == ["0.50", "0.25", "1.00"]
    assert [patch.get_edgecolor()[:3] for patch in ax.patches] == [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
    assert all(patch.get_linestyle() == "--" for patch in ax.patches)


def test_draw_boxes_max_tags_keeps_the_highest_scores(ax):
    draw_boxes(ax, BOXES, scores=torch.tensor([0.2, 0.9, 0.5]), max_tags=2)
    assert len(ax.patches) == 3
    assert sorted(text.get_text() for text in ax.texts) == ["0.50", "0.90"]
    draw_boxes(ax, BOXES, labels=[1, 2, 3], max_tags=1)  # no scores: the first boxes
    assert ax.texts[-1].get_text() == "1" and len(ax.texts) == 3
    draw_boxes(ax, BOXES, scores=[0.1, 0.2, 0.3], max_tags=0)
    assert len(ax.texts) == 3
    with pytest.raises(ValueError, match=r"max_tags: expected a value in \[0, inf\]"):
        draw_boxes(ax, BOXES, scores=[0.1, 0.2, 0.3], max_tags=-1)


def test_draw_boxes_accepts_numpy_and_a_single_colour(ax):
    draw_boxes(ax, BOXES.numpy(), labels=np.array([3, 3, 3]), color="white")
    assert len(ax.patches) == 3
    assert [text.get_text() for text in ax.texts] == ["3", "3", "3"]


def test_draw_boxes_fits_an_empty_view_but_keeps_an_image_view():
    figure = Figure()
    bare, framed = figure.subplots(1, 2)
    draw_boxes(bare, torch.tensor([[10.0, 20.0, 50.0, 90.0]]))
    x_low, x_high = bare.get_xlim()
    y_high, y_low = bare.get_ylim()  # inverted: y grows downwards as in an image
    assert x_low <= 10 and x_high >= 50 and y_low <= 20 and y_high >= 90 and y_high > y_low
    show_image(framed, torch.rand(3, 64, 64))
    draw_boxes(framed, torch.tensor([[10.0, 20.0, 50.0, 90.0]]))
    figure.canvas.draw()
    assert framed.get_xlim() == (0, 64) and framed.get_ylim() == (64, 0)


def test_draw_boxes_accepts_integer_pixel_boxes(ax):
    (rectangle,) = draw_boxes(ax, torch.tensor([[1, 2, 5, 9]]))
    assert (rectangle.get_xy(), rectangle.get_width(), rectangle.get_height()) == ((1.0, 2.0), 4.0, 7.0)


def test_draw_boxes_accepts_a_non_contiguous_slice(ax):
    """Regression: boxes[::2] of a bigger tensor failed in .view()."""
    assert len(draw_boxes(ax, torch.cat([BOXES, BOXES], dim=0)[::2])) == 3
    assert len(draw_boxes(ax, BOXES.t().contiguous().t())) == 3


def test_draw_boxes_with_zero_boxes_draws_nothing(ax):
    assert draw_boxes(ax, torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.int64),
                               scores=torch.zeros(0)) == []
    assert len(ax.patches) == len(ax.texts) == 0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"boxes": torch.zeros(3, 5)}, ValueError, r"expected a Tensor\[N, 4\]"),
        ({"boxes": torch.zeros(2, 4, dtype=torch.bool)}, TypeError, "expected a floating-point tensor"),
        ({"boxes": torch.tensor([[0.0, 0, float("nan"), 1]])}, ValueError, "expected finite coordinates"),
        ({"boxes": BOXES, "labels": torch.tensor([1, 2])}, ValueError, "labels: expected 3 values"),
        ({"boxes": BOXES, "scores": [0.1]}, ValueError, "scores: expected 3 values"),
        ({"boxes": BOXES, "color": ["red"]}, ValueError, "color: expected one matplotlib colour or 3"),
        ({"boxes": BOXES, "color": "not-a-colour"}, ValueError, "color: expected"),
    ],
)
def test_draw_boxes_rejects_bad_input(ax, kwargs, error, match):
    with pytest.raises(error, match=match):
        draw_boxes(ax, **kwargs)


def test_as_drawable_boxes_makes_float_cpu_boxes_from_any_layout():
    expected = torch.tensor([[1.0, 2.0, 5.0, 9.0]])
    for boxes in ([[1, 2, 5, 9]], [1, 2, 5, 9], np.array([[1, 2, 5, 9]]), torch.tensor([[1, 2, 5, 9]])):
        converted = as_drawable_boxes(boxes)
        assert converted.dtype == torch.float32 and torch.equal(converted, expected)
    assert as_drawable_boxes([]).shape == (0, 4)
    with pytest.raises(ValueError, match=r"anchors: expected a Tensor\[N, 4\], got shape \(2, 3\)"):
        as_drawable_boxes(torch.zeros(2, 3), "anchors")  # the error names the argument as given
    with pytest.raises(ValueError, match="boxes: expected finite coordinates"):
        as_drawable_boxes([[0.0, float("nan"), 1.0, 1.0]])


def test_per_box_values_gives_one_value_per_box_or_none():
    assert per_box_values(None, 3, "labels") is None
    assert per_box_values(torch.tensor([1, 2, 3]), 3, "labels") == [1, 2, 3]
    assert per_box_values(np.array([0.5, 0.25]), 2, "scores") == [0.5, 0.25]
    assert per_box_values((), 0, "scores") == []
    with pytest.raises(ValueError, match=r"scores: expected 3 values \(one per box\), got 2"):
        per_box_values([0.1, 0.2], 3, "scores")
