"""Tests for course_lib.plotting.tags: box tags stay inside the axes and never overlap.

The figure tests render ``draw_boxes`` on crowded scenes with Agg and check the tags' real
extents, as matplotlib measures them after the draw; ``place_tags`` is checked by hand and against
a brute-force statement of its rule on random rectangles.
"""

import io
import itertools
import random

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from course_lib.plotting.boxes import draw_boxes
from course_lib.plotting.images import show_image
from course_lib.plotting.tags import TAG_MARGIN, TagLayout, measure, place_tags, tag_candidates, tag_layout

NAMES = ["background", "circle", "square", "triangle"]
TOLERANCE = 0.5  # pixels: text is snapped to whole pixels when rendered


def image_axes(size=128, figsize=(7.0, 4.5), dpi=100):
    figure = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    show_image(ax, torch.rand(3, size, size, generator=torch.Generator().manual_seed(0)))
    return figure, ax


def random_scene(num_boxes, size=128, seed=0):
    generator = torch.Generator().manual_seed(seed)
    corner = torch.rand(num_boxes, 2, generator=generator) * (size - 4)
    extent = 4 + torch.rand(num_boxes, 2, generator=generator) * size / 2
    boxes = torch.cat([corner, (corner + extent).clamp(max=size)], dim=1)  # (N, 4)
    labels = torch.randint(1, len(NAMES), (num_boxes,), generator=generator)
    return boxes, labels, torch.rand(num_boxes, generator=generator)


def visible_tag_extents(figure, ax):
    """Render, then return the axes' extent and each visible tag's extent (its background included)."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    extents = {}
    for text in ax.texts:
        if text.get_visible():
            inner = text.get_window_extent(renderer)
            outer = text.get_bbox_patch().get_window_extent(renderer)
            assert outer.x0 <= inner.x0 and outer.y0 <= inner.y0  # the background holds the text
            assert outer.x1 >= inner.x1 and outer.y1 >= inner.y1
            extents[text] = outer
    return ax.get_window_extent(renderer), extents


def assert_inside_and_apart(figure, ax):
    frame, extents = visible_tag_extents(figure, ax)
    for text, extent in extents.items():
        assert extent.x0 >= frame.x0 - TOLERANCE and extent.x1 <= frame.x1 + TOLERANCE, text.get_text()
        assert extent.y0 >= frame.y0 - TOLERANCE and extent.y1 <= frame.y1 + TOLERANCE, text.get_text()
    for (text_a, a), (text_b, b) in itertools.combinations(extents.items(), 2):
        overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
        overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
        assert overlap_x <= TOLERANCE or overlap_y <= TOLERANCE, f"{text_a.get_text()} on {text_b.get_text()}"
    return extents


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forty_random_boxes_keep_their_tags_inside_and_apart(seed):
    figure, ax = image_axes()
    boxes, labels, scores = random_scene(40, seed=seed)
    draw_boxes(ax, boxes, labels=labels, scores=scores, class_names=NAMES)
    extents = assert_inside_and_apart(figure, ax)
    assert len(ax.texts) == 40 and 5 <= len(extents) < 40  # crowded: some tags give way, not all
    best = int(scores.argmax())  # the best-scored box chooses first: its tag is always drawn
    assert ax.texts[best].get_visible() and ax.texts[best].get_text().endswith(f"{scores[best]:.2f}")


def test_the_tags_that_give_way_are_the_lower_scored_ones():
    figure, ax = image_axes()
    boxes = torch.tensor([[20.0, 40.0, 60.0, 80.0]]).repeat(12, 1)  # twelve identical boxes
    scores = torch.linspace(0.1, 0.9, 12)
    draw_boxes(ax, boxes, labels=torch.ones(12, dtype=torch.int64), scores=scores, class_names=NAMES)
    assert_inside_and_apart(figure, ax)
    shown = [text.get_visible() for text in ax.texts]
    assert 2 <= sum(shown) < 12
    assert shown == sorted(shown)  # the visible tags are the best-scored ones (the last boxes)


def test_boxes_at_every_edge_and_corner_keep_their_tags_inside():
    figure, ax = image_axes()
    size = 128.0
    boxes = torch.tensor([
        [0, 0, 40, 30], [88, 0, size, 30], [0, 98, 40, size], [88, 98, size, size],  # corners
        [44, 0, 84, 20], [44, 108, 84, size], [0, 50, 20, 80], [108, 50, size, 80],  # edges
        [0, 0, size, size], [-20, -20, 10, 10], [120, 120, 150, 150],  # whole image, half outside
    ])
    scores = torch.linspace(0.95, 0.5, len(boxes))
    draw_boxes(ax, boxes, labels=torch.arange(len(boxes)) % 3 + 1, scores=scores, class_names=NAMES)
    extents = assert_inside_and_apart(figure, ax)
    corners = ax.texts[:4]
    assert all(text in extents for text in corners)  # the four corner boxes have room for their tags


def test_a_box_entirely_outside_the_view_gets_no_tag():
    figure, ax = image_axes()
    draw_boxes(ax, torch.tensor([[200.0, 10.0, 240.0, 50.0], [10.0, 40.0, 50.0, 80.0]]), scores=[0.9, 0.8])
    assert_inside_and_apart(figure, ax)
    assert [text.get_visible() for text in ax.texts] == [False, True]


def test_on_a_sparse_scene_every_tag_is_drawn_above_its_box():
    figure, ax = image_axes()
    boxes = torch.tensor([[10.0, 30.0, 50.0, 60.0], [70.0, 30.0, 120.0, 60.0], [20.0, 90.0, 100.0, 120.0]])
    draw_boxes(ax, boxes, labels=[1, 2, 3], scores=[0.9, 0.8, 0.7], class_names=NAMES)
    extents = assert_inside_and_apart(figure, ax)
    assert len(extents) == 3
    for (x1, y1, _, _), text in zip(boxes.tolist(), ax.texts, strict=True):
        left, top = ax.transData.transform((x1, y1))  # display pixels, y up: the box's top-left
        assert (extents[text].x0, extents[text].y0) == pytest.approx((left, top), abs=1)


def test_tags_of_several_calls_on_one_axes_stay_apart():
    figure, ax = image_axes()
    boxes, labels, scores = random_scene(15, seed=3)
    draw_boxes(ax, boxes, labels=labels, class_names=NAMES, color="white")  # ground truth
    draw_boxes(ax, boxes + 2, labels=labels, scores=scores, class_names=NAMES)  # detections
    assert_inside_and_apart(figure, ax)
    assert sum(isinstance(artist, TagLayout) for artist in ax.artists) == 1  # one layout per axes


def test_tags_without_an_image_and_with_max_tags():
    figure = Figure(figsize=(4, 3), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    boxes, labels, scores = random_scene(30, seed=4)
    draw_boxes(ax, boxes, labels=labels, scores=scores, class_names=NAMES, max_tags=10)
    extents = assert_inside_and_apart(figure, ax)
    assert len(ax.texts) == 10 and 1 <= len(extents) <= 10


def test_zero_boxes_draw_no_tags_and_no_layout():
    figure, ax = image_axes()
    draw_boxes(ax, torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.int64), scores=torch.zeros(0))
    figure.canvas.draw()
    assert len(ax.texts) == 0 and not any(isinstance(artist, TagLayout) for artist in ax.artists)


def test_the_layout_is_redone_at_each_draw_for_the_axes_final_size():
    figure, ax = image_axes(figsize=(2.5, 2.0))
    boxes, labels, scores = random_scene(25, seed=5)
    draw_boxes(ax, boxes, labels=labels, scores=scores, class_names=NAMES)
    small = len(assert_inside_and_apart(figure, ax))
    figure.set_size_inches(8, 8)  # more room: tags hidden at the small size come back
    large = len(assert_inside_and_apart(figure, ax))
    assert small < large
    figure.set_size_inches(2.5, 2.0)
    assert len(assert_inside_and_apart(figure, ax)) == small


def test_removed_tags_leave_the_layout_and_the_figure_is_not_marked_stale_by_the_layout():
    figure, ax = image_axes()
    boxes, labels, scores = random_scene(20, seed=6)
    draw_boxes(ax, boxes, labels=labels, scores=scores, class_names=NAMES)
    figure.canvas.draw()
    ax.texts[0].remove()
    calls = []
    figure.stale_callback = lambda artist, value: calls.append(value)
    layout = tag_layout(ax)
    ax.stale = False
    layout.draw(figure.canvas.get_renderer())  # moves and hides tags: must not ask for a redraw
    assert calls == [] and len(layout.entries) == 19


def test_the_layout_adds_nothing_to_a_tight_bounding_box():
    figure, ax = image_axes()
    draw_boxes(ax, torch.tensor([[10.0, 10.0, 60.0, 60.0]]), scores=[0.5])
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    with_layout = figure.get_tightbbox(renderer).bounds
    tag_layout(ax).remove()
    assert figure.get_tightbbox(renderer).bounds == pytest.approx(with_layout)


@pytest.mark.parametrize("kwargs", [{"format": "svg"}, {"format": "pdf"},
                                    {"format": "png", "dpi": 200, "bbox_inches": "tight"}])
def test_tags_are_placed_in_every_output_format(kwargs):
    figure, ax = image_axes()
    boxes, labels, scores = random_scene(20, seed=7)
    draw_boxes(ax, boxes, labels=labels, scores=scores, class_names=NAMES)
    figure.savefig(io.BytesIO(), **kwargs)
    assert 1 <= sum(text.get_visible() for text in ax.texts) < 20
    assert_inside_and_apart(figure, ax)  # and once more on screen, at 100 dpi


def test_measure_gives_the_size_matplotlib_measures():
    figure, ax = image_axes()
    draw_boxes(ax, torch.tensor([[10.0, 10.0, 60.0, 60.0]] * 2), labels=[1, 2], scores=[0.5, 0.25],
               class_names=NAMES)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    for text in ax.texts:
        extent = text.get_window_extent(renderer)
        assert measure(text, renderer) == pytest.approx((extent.width, extent.height))  # second: cached
        assert measure(text, renderer) == pytest.approx((extent.width, extent.height))


def test_place_tags_by_hand():
    bounds = (0.0, 0.0, 100.0, 100.0)
    box = (10.0, 10.0, 60.0, 50.0)
    spots = place_tags([box] * 4, [(20.0, 10.0)] * 4, bounds)
    # above-left, above-right, then below-left and below-right: the inside-top row touches the
    # first two (closer than TAG_MARGIN).
    assert spots == [(10.0, 50.0), (40.0, 50.0), (10.0, 0.0), (40.0, 0.0)]
    assert place_tags([box] * 5, [(20.0, 10.0)] * 5, bounds)[4] is None  # every spot taken or touching
    assert place_tags([(10.0, 95.0, 60.0, 99.0)], [(20.0, 10.0)], bounds) == [(10.0, 89.0)]  # top: inside
    assert place_tags([(90.0, 40.0, 99.0, 60.0)], [(20.0, 10.0)], bounds) == [(79.0, 60.0)]  # at the right
    assert place_tags([(95.0, 40.0, 120.0, 60.0)], [(20.0, 10.0)], bounds) == [(80.0, 60.0)]  # slid inside
    assert place_tags([(0.0, 0.0, 100.0, 100.0)], [(20.0, 10.0)], bounds) == [(0.0, 90.0)]  # the whole view
    assert place_tags([(120.0, 40.0, 130.0, 60.0)], [(20.0, 10.0)], bounds) == [None]  # outside
    assert place_tags([box], [(120.0, 10.0)], bounds) == [None]  # wider than the axes
    assert place_tags([], [], bounds) == []


def test_place_tags_takes_the_first_free_candidate_on_random_rectangles():
    """Brute force: every spot is inside and apart, and every earlier candidate was not."""
    rng = random.Random(0)
    bounds = (0.0, 0.0, 300.0, 200.0)
    for _ in range(20):
        boxes, sizes = [], []
        for _ in range(25):
            x, y = rng.uniform(-20, 290), rng.uniform(-20, 190)
            boxes.append((x, y, x + rng.uniform(1, 80), y + rng.uniform(1, 80)))
            sizes.append((rng.uniform(20, 90), rng.uniform(8, 16)))
        spots = place_tags(boxes, sizes, bounds)
        placed = []

        def free(x, y, width, height, placed=placed):
            inside = x >= 0 and y >= 0 and x + width <= bounds[2] and y + height <= bounds[3]
            return inside and all(
                x >= ox1 + TAG_MARGIN or ox0 >= x + width + TAG_MARGIN
                or y >= oy1 + TAG_MARGIN or oy0 >= y + height + TAG_MARGIN
                for ox0, oy0, ox1, oy1 in placed
            )

        for box, (width, height), spot in zip(boxes, sizes, spots, strict=True):
            candidates = [c for c in tag_candidates(box, (width, height), bounds) if free(*c, width, height)]
            visible = box[0] <= bounds[2] and box[2] >= 0 and box[1] <= bounds[3] and box[3] >= 0
            assert spot == (candidates[0] if candidates and visible else None)
            if spot is not None:
                placed.append((spot[0], spot[1], spot[0] + width, spot[1] + height))


def test_place_tags_and_tag_layout_reject_bad_input():
    with pytest.raises(ValueError, match=r"sizes: expected 2 sizes \(one per box\), got 1"):
        place_tags([(0, 0, 1, 1)] * 2, [(1, 1)], (0, 0, 10, 10))
    with pytest.raises(TypeError, match="ax: expected a matplotlib Axes, got str"):
        tag_layout("axes")
    with pytest.raises(TypeError, match="text: expected a matplotlib Text, got int"):
        TagLayout().add(3, (0, 0, 1, 1))
