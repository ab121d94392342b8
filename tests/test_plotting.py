"""Tests for course_lib.plotting: every helper on an Agg figure, empty input, bad input."""

import matplotlib

matplotlib.use("Agg")  # no display needed; set before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_lib import plotting  # noqa: E402

BOXES = torch.tensor([[10.0, 10.0, 40.0, 50.0], [30.0, 20.0, 90.0, 60.0], [0.0, 0.0, 128.0, 128.0]])


@pytest.fixture
def ax():
    figure = Figure()  # not registered with pyplot: nothing to close
    axes = figure.subplots()
    yield axes
    figure.canvas.draw()  # every artist added must also render


@pytest.fixture(autouse=True)
def no_figures_left():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a test left a pyplot figure open"


def test_class_color_is_fixed_per_class_and_repeats_after_ten():
    assert plotting.class_color(3) == plotting.class_color(3) == plotting.class_color(13)
    assert plotting.class_color(1) != plotting.class_color(2)
    assert plotting.class_color(0) == pytest.approx((0.1216, 0.4667, 0.7059), abs=1e-3)  # tab10 blue


@pytest.mark.parametrize(
    "image",
    [
        torch.rand(3, 20, 30),
        torch.rand(1, 20, 30),
        torch.rand(20, 30),
        (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8),
        np.random.default_rng(0).random((20, 30, 3)),
        np.zeros((20, 30), dtype=np.uint8),
    ],
    ids=["tensor-chw", "tensor-1hw", "tensor-hw", "numpy-uint8", "numpy-float", "numpy-grey"],
)
def test_show_image_accepts_every_layout_with_pixel_edge_extent(ax, image):
    artist = plotting.show_image(ax, image)
    assert len(ax.images) == 1
    assert artist.get_extent() == [0, 30, 20, 0]
    assert artist.get_array().shape[:2] == (20, 30)
    assert not ax.axison


def test_show_image_keeps_values_and_uses_grey_map_for_2d(ax):
    image = torch.linspace(0, 1, 12).view(3, 4)
    artist = plotting.show_image(ax, image)
    assert artist.get_cmap().name == "gray"
    assert artist.get_clim() == (0, 1)
    np.testing.assert_allclose(artist.get_array(), image.numpy())


@pytest.mark.parametrize(
    "image, error, match",
    [
        (torch.rand(2, 5, 5), ValueError, r"expected a Tensor\[3, H, W\] or Tensor\[H, W\], got shape"),
        (torch.rand(1, 3, 5, 5), ValueError, "got shape"),
        (np.zeros((5, 5, 2)), ValueError, r"expected an HxW or HxWx3 array, got shape \(5, 5, 2\)"),
        (torch.rand(3, 5, 5) * 255, ValueError, r"expected float values in \[0, 1\]"),
        (torch.full((5, 5), float("nan")), ValueError, r"expected float values in \[0, 1\]"),
        (np.zeros((5, 5), dtype=np.int64), TypeError, "expected uint8 or float values"),
        ([[0.0, 1.0]], TypeError, "expected a torch.Tensor or numpy array, got list"),
    ],
)
def test_show_image_rejects_bad_images(ax, image, error, match):
    with pytest.raises(error, match=match):
        plotting.show_image(ax, image)


def test_draw_boxes_adds_one_rectangle_per_box_in_xyxy(ax):
    rectangles = plotting.draw_boxes(ax, BOXES)
    assert len(rectangles) == len(ax.patches) == 3
    assert len(ax.texts) == 0  # no labels, no scores: no tags
    assert rectangles[1].get_xy() == (30.0, 20.0)
    assert (rectangles[1].get_width(), rectangles[1].get_height()) == (60.0, 40.0)


def test_draw_boxes_tags_with_class_names_and_scores(ax):
    plotting.draw_boxes(ax, BOXES, labels=torch.tensor([1, 2, 1]), scores=torch.tensor([0.9, 0.456, 0.1]),
                        class_names=["background", "circle", "square"])
    assert [text.get_text() for text in ax.texts] == ["circle 0.90", "square 0.46", "circle 0.10"]
    edge = [patch.get_edgecolor()[:3] for patch in ax.patches]
    assert edge[0] == edge[2] == pytest.approx(plotting.class_color(1))
    assert edge[1] == pytest.approx(plotting.class_color(2))


def test_draw_boxes_scores_only_and_per_box_colours(ax):
    plotting.draw_boxes(ax, BOXES, scores=[0.5, 0.25, 1.0], color=["red", "lime", "blue"], linestyle="--")
    assert [text.get_text() for text in ax.texts] == ["0.50", "0.25", "1.00"]
    assert [patch.get_edgecolor()[:3] for patch in ax.patches] == [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
    assert all(patch.get_linestyle() == "--" for patch in ax.patches)


def test_draw_boxes_max_tags_keeps_the_highest_scores(ax):
    plotting.draw_boxes(ax, BOXES, scores=torch.tensor([0.2, 0.9, 0.5]), max_tags=2)
    assert len(ax.patches) == 3
    assert sorted(text.get_text() for text in ax.texts) == ["0.50", "0.90"]
    plotting.draw_boxes(ax, BOXES, labels=[1, 2, 3], max_tags=1)  # no scores: the first boxes
    assert ax.texts[-1].get_text() == "1" and len(ax.texts) == 3
    plotting.draw_boxes(ax, BOXES, scores=[0.1, 0.2, 0.3], max_tags=0)
    assert len(ax.texts) == 3
    with pytest.raises(ValueError, match=r"max_tags: expected a value in \[0, inf\]"):
        plotting.draw_boxes(ax, BOXES, scores=[0.1, 0.2, 0.3], max_tags=-1)


def test_draw_boxes_accepts_numpy_and_a_single_colour(ax):
    plotting.draw_boxes(ax, BOXES.numpy(), labels=np.array([3, 3, 3]), color="white")
    assert len(ax.patches) == 3
    assert [text.get_text() for text in ax.texts] == ["3", "3", "3"]


def test_draw_boxes_fits_an_empty_view_but_keeps_an_image_view():
    figure = Figure()
    bare, framed = figure.subplots(1, 2)
    plotting.draw_boxes(bare, torch.tensor([[10.0, 20.0, 50.0, 90.0]]))
    x_low, x_high = bare.get_xlim()
    y_high, y_low = bare.get_ylim()  # inverted: y grows downwards as in an image
    assert x_low <= 10 and x_high >= 50 and y_low <= 20 and y_high >= 90 and y_high > y_low
    plotting.show_image(framed, torch.rand(3, 64, 64))
    plotting.draw_boxes(framed, torch.tensor([[10.0, 20.0, 50.0, 90.0]]))
    figure.canvas.draw()
    assert framed.get_xlim() == (0, 64) and framed.get_ylim() == (64, 0)


def test_draw_boxes_accepts_integer_pixel_boxes(ax):
    (rectangle,) = plotting.draw_boxes(ax, torch.tensor([[1, 2, 5, 9]]))
    assert (rectangle.get_xy(), rectangle.get_width(), rectangle.get_height()) == ((1.0, 2.0), 4.0, 7.0)


def test_draw_boxes_accepts_a_non_contiguous_slice(ax):
    """Regression: boxes[::2] of a bigger tensor failed in .view()."""
    assert len(plotting.draw_boxes(ax, torch.cat([BOXES, BOXES], dim=0)[::2])) == 3
    assert len(plotting.draw_boxes(ax, BOXES.t().contiguous().t())) == 3


def test_draw_boxes_with_zero_boxes_draws_nothing(ax):
    assert plotting.draw_boxes(ax, torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.int64),
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
        plotting.draw_boxes(ax, **kwargs)


def test_draw_masks_paints_each_mask_in_its_colour(ax):
    masks = torch.zeros(2, 4, 5, dtype=torch.uint8)
    masks[0, :2, :2] = 1
    masks[1, 1:3, 1:4] = 1  # overlaps mask 0 at pixel (1, 1): the later mask wins
    overlay = plotting.draw_masks(ax, masks, colors=["red", "blue"], alpha=0.5)
    rgba = overlay.get_array()
    assert len(ax.images) == 1 and overlay.get_extent() == [0, 5, 4, 0]
    np.testing.assert_allclose(rgba[0, 0], [1, 0, 0, 0.5])
    np.testing.assert_allclose(rgba[1, 1], [0, 0, 1, 0.5])
    np.testing.assert_allclose(rgba[3, 4], [0, 0, 0, 0])  # outside every mask: transparent
    assert int((rgba[..., 3] > 0).sum()) == 4 + 6 - 1


def test_draw_masks_default_colours_bool_and_float_masks(ax):
    masks = torch.zeros(2, 3, 3)
    masks[0, 0, 0] = 0.9
    masks[1, 2, 2] = 0.4  # below 0.5: outside
    rgba = plotting.draw_masks(ax, masks).get_array()
    np.testing.assert_allclose(rgba[0, 0, :3], plotting.class_color(0))
    assert rgba[2, 2, 3] == 0
    assert plotting.draw_masks(ax, np.ones((1, 3, 3), dtype=bool)) is not None


def test_draw_masks_with_zero_masks_draws_nothing(ax):
    assert plotting.draw_masks(ax, torch.zeros(0, 8, 8, dtype=torch.uint8)) is None
    assert len(ax.images) == 0


@pytest.mark.parametrize(
    "masks, kwargs, error, match",
    [
        (torch.zeros(8, 8), {}, ValueError, r"expected a Tensor\[N, H, W\], got shape \(8, 8\)"),
        ([[0, 1]], {}, TypeError, "expected a Tensor"),
        (torch.zeros(2, 8, 8), {"colors": ["red"]}, ValueError, "expected 2 colours"),
        (torch.zeros(2, 8, 8), {"alpha": 1.5}, ValueError, r"expected a value in \[0.0, 1.0\]"),
    ],
)
def test_draw_masks_rejects_bad_input(ax, masks, kwargs, error, match):
    with pytest.raises(error, match=match):
        plotting.draw_masks(ax, masks, **kwargs)


def test_draw_anchor_grid_groups_by_label_with_counted_legend(ax):
    anchors = torch.tensor([[0.0, 0, 10, 10], [5, 5, 20, 20], [1, 1, 3, 3], [2, 2, 30, 30], [0, 0, 4, 4]])
    labels = torch.tensor([1, 0, -1, 0, 0])
    collections = plotting.draw_anchor_grid(ax, anchors, labels)
    assert all(isinstance(collection, PolyCollection) for collection in collections)
    # negatives first, then ignored, positives on top
    assert [len(collection.get_paths()) for collection in collections] == [3, 1, 1]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["negative (3)", "ignored (1)", "positive (1)"]
    positive = collections[-1].get_paths()[0].vertices
    assert {tuple(v) for v in positive} >= {(0, 0), (10, 0), (10, 10), (0, 10)}


def test_draw_anchor_grid_without_labels_and_with_a_missing_group(ax):
    assert len(plotting.draw_anchor_grid(ax, torch.tensor([[0.0, 0, 4, 4]]))) == 1
    assert ax.get_legend().get_texts()[0].get_text() == "anchor (1)"
    collections = plotting.draw_anchor_grid(ax, torch.tensor([[0.0, 0, 4, 4]]), torch.tensor([0]))
    assert len(collections) == 1


def test_draw_anchor_grid_with_zero_anchors_draws_nothing(ax):
    assert plotting.draw_anchor_grid(ax, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)) == []
    assert len(ax.collections) == 0 and ax.get_legend() is None


def test_draw_anchor_grid_rejects_bad_labels(ax):
    with pytest.raises(ValueError, match=r"expected values in \{1, 0, -1\}, got \[0, 2\]"):
        plotting.draw_anchor_grid(ax, torch.zeros(2, 4), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="labels: expected 2 values"):
        plotting.draw_anchor_grid(ax, torch.zeros(2, 4), torch.tensor([0]))


def test_overlay_heatmap_stretches_a_small_map_over_the_image(ax):
    heatmap = torch.arange(49.0).view(7, 7)
    artist = plotting.overlay_heatmap(ax, torch.rand(3, 56, 64), heatmap, alpha=0.3, cmap="viridis")
    assert len(ax.images) == 2
    assert artist.get_extent() == [0, 64, 56, 0]
    assert artist.get_alpha() == 0.3 and artist.get_cmap().name == "viridis"
    assert artist.get_clim() == (0.0, 48.0)  # its own range: maps are not normalized


def test_overlay_heatmap_accepts_a_constant_map(ax):
    plotting.overlay_heatmap(ax, np.zeros((8, 8, 3), dtype=np.uint8), np.zeros((8, 8)))
    assert len(ax.images) == 2


@pytest.mark.parametrize(
    "heatmap, kwargs, match",
    [
        (torch.zeros(1, 7, 7), {}, r"expected a non-empty Tensor\[h, w\], got shape \(1, 7, 7\)"),
        (torch.zeros(0, 7), {}, "expected a non-empty"),
        (torch.full((3, 3), float("inf")), {}, "expected finite values"),
        (torch.zeros(3, 3), {"cmap": "no-such-map"}, "expected a matplotlib colormap name"),
        (torch.zeros(3, 3), {"alpha": -0.1}, r"expected a value in \[0.0, 1.0\]"),
    ],
)
def test_overlay_heatmap_rejects_bad_input(ax, heatmap, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plotting.overlay_heatmap(ax, torch.rand(3, 8, 8), heatmap, **kwargs)


def test_image_grid_lays_out_rows_and_titles():
    figure = plotting.image_grid([torch.rand(3, 8, 8) for _ in range(5)], titles=list("abcde"), ncols=3)
    try:
        assert len(figure.axes) == 6
        assert [ax.get_title() for ax in figure.axes] == ["a", "b", "c", "d", "e", ""]
        assert [len(ax.images) for ax in figure.axes] == [1, 1, 1, 1, 1, 0]
    finally:
        plt.close(figure)


def test_image_grid_accepts_a_batch_tensor_and_fewer_images_than_columns():
    figure = plotting.image_grid(torch.rand(2, 3, 8, 8))
    try:
        assert len(figure.axes) == 2
    finally:
        plt.close(figure)


def test_image_grid_with_zero_images_is_an_empty_figure():
    figure = plotting.image_grid([])
    try:
        assert figure.axes == []
    finally:
        plt.close(figure)


def test_image_grid_checks_before_opening_a_figure():
    with pytest.raises(ValueError, match="expected 2 titles"):
        plotting.image_grid([torch.rand(3, 4, 4)] * 2, titles=["one"])
    with pytest.raises(ValueError, match="got shape"):
        plotting.image_grid([torch.rand(3, 4, 4), torch.rand(2, 4, 4)])
    with pytest.raises(ValueError, match=r"ncols: expected a value in \[1, inf\]"):
        plotting.image_grid([torch.rand(3, 4, 4)], ncols=0)
    # the no_figures_left fixture checks that none of these left a figure open
