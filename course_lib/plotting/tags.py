"""Box tags placed inside the axes, never on top of each other.

A tag (``"circle 0.87"``) belongs next to its box. Where it goes is only known when the figure is
drawn: the axes' final size (after ``tight_layout``, an image's equal aspect, a savefig at another
dpi) decides how large a 10-point tag is against the boxes. So :class:`TagLayout`, an invisible
artist that each axes gets once, places every tag of the axes at each draw, just before the tags
themselves are drawn: the geometry is :func:`place_tags`, a pure function on rectangles in display
pixels, tried on a fixed list of candidate spots (:func:`tag_candidates`). A tag with no free spot
is hidden for that draw, never drawn over another tag or across the axes' edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.text import Text
from matplotlib.transforms import Bbox

TAG_FONTSIZE = 10  # points: 14 px at the course's 100 dpi, readable from the back of a room
TAG_PAD = 1.0  # points of coloured background around the text
TAG_MARGIN = 1.0  # pixels kept free between two tags (a tag may touch the axes' edge)

Rect = tuple[float, float, float, float]  # (x0, y0, x1, y1) in display pixels, y pointing up


def tag_candidates(box: Rect, size: tuple[float, float], bounds: Rect) -> list[tuple[float, float]]:
    """The spots a tag may take, best first, as the lower-left corners of the tag.

    Four rows, in this order: above the box (outside), inside along its top edge, below the box
    (outside), inside along its bottom edge. In each row the tag is left-aligned with the box,
    then right-aligned, then slid sideways just enough to stay inside ``bounds`` (a box at the
    image's edge). The first rows keep the convention of every detection figure: the tag on top.

    Args:
        box: the box in display pixels ``(x0, y0, x1, y1)``, ``x0 <= x1`` and ``y0 <= y1``.
        size: ``(width, height)`` of the tag in pixels, background included.
        bounds: the axes in display pixels.
    """
    x0, y0, x1, y1 = box
    width, height = size
    slid = min(max(x0, bounds[0]), bounds[2] - width)
    rows = (y1, y1 - height, y0 - height, y0)
    return [(x, y) for y in rows for x in (x0, x1 - width, slid)]


def place_tags(boxes: Sequence[Rect], sizes: Sequence[tuple[float, float]], bounds: Rect) -> list:
    """Place tags in order: each at its first candidate spot that is inside ``bounds`` and free.

    A greedy layout, as in map labelling: the tags earlier in the list (the best-scored boxes)
    choose first, and a later tag that finds no free spot is dropped. Free means inside
    ``bounds`` and at least ``TAG_MARGIN`` pixels from every tag placed before. A box that lies
    entirely outside ``bounds`` gets no tag.

    Args:
        boxes: one rectangle ``(x0, y0, x1, y1)`` per tag, in display pixels (y pointing up).
        sizes: ``(width, height)`` of each tag in pixels.
        bounds: the rectangle every tag must stay inside (the axes).

    Returns:
        One entry per tag: the lower-left corner ``(x, y)`` of its spot, or ``None`` (not drawn).
    """
    if len(boxes) != len(sizes):
        raise ValueError(f"sizes: expected {len(boxes)} sizes (one per box), got {len(sizes)}")
    left, bottom, right, top = bounds
    placed: list[Rect] = []
    spots: list[tuple[float, float] | None] = []
    for box, (width, height) in zip(boxes, sizes, strict=True):
        spot = None
        if box[0] <= right and box[2] >= left and box[1] <= top and box[3] >= bottom:
            for x, y in tag_candidates(box, (width, height), bounds):
                inside = x >= left and y >= bottom and x + width <= right and y + height <= top
                if inside and not any(
                    x < other[2] + TAG_MARGIN and other[0] < x + width + TAG_MARGIN
                    and y < other[3] + TAG_MARGIN and other[1] < y + height + TAG_MARGIN
                    for other in placed
                ):
                    spot = (x, y)
                    placed.append((x, y, x + width, y + height))
                    break
        spots.append(spot)
    return spots


class TagLayout(Artist):
    """An invisible artist that places the box tags of its axes each time the axes are drawn.

    It is drawn just before the texts (its ``zorder`` is just below theirs), measures each tag
    (:func:`measure`), converts the boxes to display pixels and moves or hides the tags as :func:`place_tags`
    decides. Tags are placed in the order they were added: ``draw_boxes`` adds them best score
    first, and the tags of an earlier ``draw_boxes`` call on the same axes before a later one's.
    Use :func:`tag_layout` to get the axes' layout.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_zorder(Text.zorder - 0.01)
        self.set_in_layout(False)  # draws nothing: no part of a tight bounding box
        self.entries: list[tuple[Text, Rect]] = []
        self.hidden: set[Text] = set()  # hidden by the layout, not by the user

    def add(self, text: Text, box: Rect) -> None:
        """Place ``text`` next to ``box`` (``xyxy`` in data coordinates) from the next draw on."""
        if not isinstance(text, Text):
            raise TypeError(f"text: expected a matplotlib Text, got {type(text).__name__}")
        self.entries.append((text, tuple(float(value) for value in box)))

    def get_window_extent(self, renderer: Any = None) -> Bbox:
        return Bbox.null()

    def draw(self, renderer: Any) -> None:
        ax = self.axes
        # Tags removed since (text.remove(), an explorer's redraw) and tags the user hid drop out.
        self.entries = [(text, box) for text, box in self.entries
                        if text.axes is ax and (text.get_visible() or text in self.hidden)]
        self.stale = False
        if not self.entries:
            return
        texts = [text for text, _ in self.entries]
        for text in self.hidden:
            _set_quietly(text, visible=True)  # measured below: an invisible text has no extent
        self.hidden.clear()
        bounds = tuple(ax.bbox.extents)
        pad = renderer.points_to_pixels(TAG_PAD)
        spots = [None] * len(texts)
        if bounds[2] - bounds[0] >= 1 and bounds[3] - bounds[1] >= 1:  # else axes of no size: no room
            corners = ax.transData.transform(np.array([box for _, box in self.entries]).reshape(-1, 2))
            corners = corners.reshape(-1, 2, 2)  # (N, 2 corners, xy)
            boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)  # (N, 4)
            sizes = [measure(text, renderer) for text in texts]
            sizes = [(width + 2 * pad, height + 2 * pad) for width, height in sizes]
            spots = place_tags([tuple(box) for box in boxes.tolist()], sizes, bounds)
        to_data = ax.transData.inverted() if any(spot is not None for spot in spots) else None
        for text, spot in zip(texts, spots, strict=True):
            if spot is None:
                _set_quietly(text, visible=False)
                self.hidden.add(text)
            else:
                x, y = to_data.transform((spot[0] + pad, spot[1] + pad))
                _set_quietly(text, position=(x, y), horizontalalignment="left", verticalalignment="bottom")


_SIZES: dict[tuple, tuple[float, float]] = {}  # (text, font, dpi) -> (width, height) in pixels


def measure(text: Text, renderer: Any) -> tuple[float, float]:
    """``(width, height)`` of ``text`` in pixels, as ``text.get_window_extent`` measures it (cached).

    An explorer draws the same few tags ("circle 0.87") at every redraw; measuring a text is most
    of the layout's time, so each string is measured once per font and dpi.
    """
    key = (text.get_text(), hash(text.get_fontproperties()), text.get_rotation(), text.figure.dpi,
           type(renderer).__name__)
    if key not in _SIZES:
        if len(_SIZES) > 4096:
            _SIZES.clear()
        extent = text.get_window_extent(renderer)
        _SIZES[key] = (extent.width, extent.height)
    return _SIZES[key]


def _set_quietly(text: Text, **properties: Any) -> None:
    """Set properties during a draw without marking the figure stale (which asks for another draw)."""
    callback, text.stale_callback = text.stale_callback, None
    try:
        text.set(**properties)
    finally:
        text.stale_callback = callback


def tag_layout(ax: Axes) -> TagLayout:
    """The :class:`TagLayout` of ``ax``, added on first use (``ax.clear()`` removes it with the tags)."""
    if not isinstance(ax, Axes):
        raise TypeError(f"ax: expected a matplotlib Axes, got {type(ax).__name__}")
    for artist in ax.artists:
        if isinstance(artist, TagLayout):
            return artist
    return ax.add_artist(TagLayout())

