"""The explorer pattern: a pure ``compute`` function plus a thin ipywidgets wrapper.

Every interactive figure of the course is an :class:`Explorer` subclass with three methods:

- ``compute(**state) -> dict``: what to draw, from the controls' values (a call to a pure function
  such as :func:`course_lib.widgets.boxes.iou_view`, which is tested on its own);
- ``draw(result, ax)``: matplotlib calls only;
- ``summary(result) -> str``: the one-line status under the controls ("IoU = 0.391, ...").

The base class owns the plumbing: controls observed on ``"value"``, one reused Agg figure (not
registered with pyplot, so nothing leaks and Jupyter's inline backend never shows it twice), and an
``ipywidgets.Output`` whose content is replaced by the new PNG at every redraw. Writing the
``outputs`` trait directly, rather than ``with output: display(...)``, needs no running kernel, so
tests drive an explorer exactly as a student does, by setting ``control.value``. An explorer that
shows a photo passes ``palette=True``: its PNG then has 256 colours (:func:`palette_png`).

A redraw must stay under 100 ms, and most of it is matplotlib rasterizing the figure. An explorer
whose figure has a part that changes rarely (the photo, a curve's axes with their ticks and legend)
says so with ``background_key(result)``: while the key stays the same, that part
(``draw_background``) is rasterized once and kept as pixels, and each redraw only restores those
pixels and draws on them what ``draw`` adds (matplotlib's blitting). Titles are redrawn every time.

In a notebook stored without its kernel, an explorer's output reads :data:`KERNEL_GONE_TEXT`
instead of the ``VBox(children=...)`` repr.

A new explorer copies this shape::

    class CountExplorer(Explorer):
        def __init__(self):
            super().__init__({"n": widgets.IntSlider(value=3, min=0, max=10, description="n")})

        def compute(self, n):
            return {"n": n}

        def draw(self, result, ax):
            ax.bar(range(result["n"]), 1)

        def summary(self, result):
            return f"n = {result['n']}"
"""

from __future__ import annotations

import base64
import html
import io
import time
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from course_lib._checks import check_boxes, check_number
from course_lib.classical.sliding_window import resize, to_unit_float
from course_lib.plotting import show_image

# Sliders show their whole description ("IoU threshold") instead of a truncated one.
WIDE_LABEL = {"description_width": "initial"}
MIN_DPI = 100  # the course's figure convention: readable on a projector
# What a stored notebook shows for an explorer when no kernel runs it (after a reload, say).
KERNEL_GONE_TEXT = "Interactive explorer: run this cell (kernel needed) to bring it back."
STATUS_LINES = 2  # the status keeps room for this many lines, so the figure below never jumps


class ExplorerBox(widgets.VBox):
    """The ``VBox`` an explorer displays; without a kernel it reads as how to bring it back.

    Its mimebundle is a ``VBox``'s (the ``application/vnd.jupyter.widget-view+json`` that
    JupyterLab renders live), except for the ``text/plain`` fallback, which a front end without the
    widget's state (a reopened notebook, an untrusted one, GitHub) shows instead of the repr.
    """

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = KERNEL_GONE_TEXT
        return bundle


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``"1 proposal"``, ``"2 proposals"``, ``"0 boxes"``: a count with its noun, in the right number.

    Args:
        count: how many.
        noun: the singular.
        plural_noun: the plural when it is not ``noun + "s"`` (``"boxes"``, ``"patches"``).
    """
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {plural_noun or noun + 's'}"


class Explorer:
    """Base class of the course's interactive explorers.

    Attributes:
        controls (dict[str, ipywidgets.ValueWidget]): the knobs; their names are ``compute``'s
            keyword arguments.
        status (ipywidgets.HTML): one line summarizing the result.
        output (ipywidgets.Output): holds the rendered figure.
        figure (matplotlib.figure.Figure): the figure redrawn at every update (reused).
        axes (tuple[Axes, ...]): its axes, emptied by :func:`clear_axes` before each ``draw``.
        result (dict): the last value returned by ``compute``.
        render_seconds (float): wall-clock time of the last compute + draw + PNG encoding.
        png (bytes): the last rendered PNG, as shown in ``output``.
        palette (bool): whether the PNG has 256 colours (see :meth:`render_png`).
        caption (ipywidgets.HTML): static text under the figure.
        widget (ipywidgets.VBox): controls, status, output and caption, ready to display.

    Args:
        controls: name -> control; every control is observed on ``"value"``.
        num_axes: the number of side-by-side axes ``draw`` receives.
        figsize: the figure size in inches.
        dpi: dots per inch of the rendered PNG, at least ``MIN_DPI``.
        caption: static HTML under the figure (a colour key, say); it costs nothing per redraw,
            unlike text drawn in the figure.
        palette: render a PNG of 256 colours (:func:`palette_png`) instead of true colour; for
            figures with a photo, whose true-colour PNG is several times larger.
        margins: ``subplots_adjust`` arguments that replace the defaults (``{"bottom": 0.15}``).
    """

    def __init__(
        self,
        controls: dict[str, widgets.ValueWidget],
        num_axes: int = 1,
        figsize: tuple[float, float] = (5.0, 5.0),
        dpi: int = MIN_DPI,
        caption: str = "",
        palette: bool = False,
        margins: dict[str, float] | None = None,
    ) -> None:
        check_number(dpi, "dpi", MIN_DPI)
        self.controls = dict(controls)
        self.palette = palette
        self.figure = Figure(figsize=figsize, dpi=dpi)
        FigureCanvasAgg(self.figure)
        self.axes: tuple[Axes, ...] = tuple(self.figure.subplots(1, num_axes, squeeze=False)[0])
        # Fixed, narrow margins: a layout engine would re-measure every text at every redraw.
        default_margins = {"left": 0.08, "right": 0.97, "bottom": 0.1, "top": 0.93, "wspace": 0.25}
        self.figure.subplots_adjust(**{**default_margins, **(margins or {})})
        height_px = int(figsize[1] * dpi)
        # Room for STATUS_LINES lines of 1.1 em text: a status that wraps does not move the figure.
        status_height = f"{1.35 * 1.1 * STATUS_LINES:.2f}em"
        self.status = widgets.HTML(value="", layout=widgets.Layout(min_height=status_height))
        # A fixed minimum height keeps the page from jumping while the browser decodes a new PNG.
        self.output = widgets.Output(layout=widgets.Layout(min_height=f"{height_px}px"))
        row = widgets.Box(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        self.caption = widgets.HTML(value=caption)
        self.widget = ExplorerBox([row, self.status, self.output, self.caption])
        self.result: dict[str, Any] = {}
        self.render_seconds = 0.0
        self.png = b""
        self._syncing = False
        self._background: Any = None  # the rasterized background (blitting), and its key
        self._background_key: Any = None
        self._dynamic: list[Any] = []  # the artists the last ``draw`` added over the background
        self._dynamic_containers: list[tuple[Axes, Any]] = []  # and its bar containers, by axes
        self._limits: list[tuple] = []  # each axes' view when the background was rasterized
        self._layout: list[tuple] = []  # and each axes' position
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.update()

    # --- what subclasses provide -------------------------------------------------------------
    def compute(self, **state: Any) -> dict[str, Any]:
        """Return what to draw for the controls' values (call a pure, tested function here)."""
        raise NotImplementedError

    def draw(self, result: dict[str, Any], ax: Axes | tuple[Axes, ...]) -> None:
        """Draw ``result`` on ``ax`` (a tuple of axes when ``num_axes > 1``), already emptied."""
        raise NotImplementedError

    def summary(self, result: dict[str, Any]) -> str:
        """Return the one-line status text for ``result`` (plain text, escaped for HTML)."""
        raise NotImplementedError

    def background_key(self, result: dict[str, Any]) -> Any:
        """A hashable that changes when ``draw_background`` would draw something else; None: no background.

        With None (the default) every redraw clears the axes, calls ``draw`` and rasterizes the
        whole figure. Otherwise ``draw_background`` runs (on cleared axes) only when the key
        changes, and ``draw`` only adds what changes more often; ``draw`` must not change axis
        limits, ticks or anything else the background shows.
        """
        return None

    def draw_background(self, result: dict[str, Any], ax: Axes | tuple[Axes, ...]) -> None:
        """Draw the part of the figure that ``background_key`` names (used only when it is not None)."""

    def sync_controls(self, result: dict[str, Any]) -> bool:
        """Adapt dependent controls to ``result`` (a slider's range); return True if a value moved.

        Changes made here do not trigger a redraw of their own; when this returns True the
        explorer computes once more with the new values.
        """
        return False

    # --- plumbing -----------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        """The controls' current values, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def _on_change(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.update()

    def update(self) -> None:
        """Recompute, redraw and re-render; called on every control change."""
        start = time.perf_counter()
        self.result = self.compute(**self.state)
        self._syncing = True
        try:
            moved = self.sync_controls(self.result)
        finally:
            self._syncing = False
        if moved:
            self.result = self.compute(**self.state)
        self.status.value = f"<span style='font-size: 1.1em'>{html.escape(self.summary(self.result))}</span>"
        key = self.background_key(self.result)
        if key is None:
            self._background = None
            for ax in self.axes:
                clear_axes(ax)
            self.draw(self.result, self._axes_argument())
            self.png = self.render_png()
        else:
            self.png = self._redraw_over_background(key)
        self.output.outputs = (
            {
                "output_type": "display_data",
                "data": {"image/png": base64.b64encode(self.png).decode("ascii"), "text/plain": "<Figure>"},
                "metadata": {},
            },
        )
        self.render_seconds = time.perf_counter() - start

    def _axes_argument(self) -> Axes | tuple[Axes, ...]:
        return self.axes[0] if len(self.axes) == 1 else self.axes

    def _redraw_over_background(self, key: Any) -> bytes:
        """Blitting: draw the background only when its key changed, then ``draw``'s artists over it."""
        for artist in self._dynamic:
            artist.remove()
        for ax, container in self._dynamic_containers:
            ax.containers.remove(container)
        self._dynamic = []
        titles = [title for ax in self.axes for title in (ax.title, ax._left_title, ax._right_title)]
        # A background also goes stale when the axes moved (``subplots_adjust`` after the first draw).
        layout = [ax.get_position(original=True).bounds for ax in self.axes]
        if self._background is None or key != self._background_key or layout != self._layout:
            for ax in self.axes:
                clear_axes(ax)
            self.draw_background(self.result, self._axes_argument())
            self._background = None
        before = {id(child) for ax in self.axes for child in ax.get_children()}
        containers_before = {id(container) for ax in self.axes for container in ax.containers}
        self.draw(self.result, self._axes_argument())
        self._dynamic_containers = [(ax, container) for ax in self.axes for container in ax.containers
                                    if id(container) not in containers_before]
        if self._background is not None:  # what draw adds must not move the background's view
            for ax, (xlim, ylim) in zip(self.axes, self._limits, strict=True):
                ax.set_xlim(xlim, auto=None)
                ax.set_ylim(ylim, auto=None)
        self._dynamic = [child for ax in self.axes for child in ax.get_children() if id(child) not in before]
        canvas = self.figure.canvas
        if self._background is None:
            for artist in (*self._dynamic, *titles):
                artist.set_animated(True)  # left out of canvas.draw: the background only
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            self._limits = [(ax.get_xlim(), ax.get_ylim()) for ax in self.axes]
            self._background_key, self._layout = key, layout
        else:
            for artist in self._dynamic:
                artist.set_animated(True)
            canvas.restore_region(self._background)
        for ax in self.axes:
            for artist in sorted((a for a in self._dynamic if a.axes is ax), key=lambda a: a.get_zorder()):
                ax.draw_artist(artist)
        for title in titles:
            if title.get_text():
                title.axes.draw_artist(title)
        return encode_png(np.asarray(canvas.buffer_rgba()), self.palette)

    def render_png(self) -> bytes:
        """Rasterize the whole figure and return PNG bytes: 256 colours with ``palette``, else true colour.

        Without blitting: the same picture as the explorer shows, drawn from scratch.
        """
        animated = [artist for artist in self._dynamic if artist.get_animated()]
        animated += [title for ax in self.axes for title in (ax.title, ax._left_title, ax._right_title)
                     if title.get_animated()]
        for artist in animated:
            artist.set_animated(False)
        try:
            self.figure.canvas.draw()
        finally:
            for artist in animated:
                artist.set_animated(True)
        return encode_png(np.asarray(self.figure.canvas.buffer_rgba()), self.palette)

    def close(self) -> None:
        """Stop observing the controls and close every widget of this explorer."""
        for control in self.controls.values():
            control.unobserve(self._on_change, names="value")
        _close_tree(self.widget)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)  # an ExplorerBox: live in JupyterLab, KERNEL_GONE_TEXT without a kernel


def encode_png(rgba: np.ndarray, palette: bool = False) -> bytes:
    """PNG bytes of a rendered ``(H, W, 4)`` uint8 buffer: 256 colours with ``palette``, else true colour.

    True colour uses light compression: speed matters more than size. A photo costs a true-colour
    PNG 100-200 kB per redraw, and the executed notebook keeps the last one; with a palette
    (adaptive, 256 colours) it is about four times smaller and looks the same, for a few
    milliseconds of quantization.
    """
    image = Image.fromarray(np.ascontiguousarray(rgba[..., :3]))  # (H, W, 3) uint8
    buffer = io.BytesIO()
    if palette:
        image.quantize(256, method=Image.Quantize.FASTOCTREE).save(buffer, format="png", compress_level=6)
    else:
        image.save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def palette_png(figure: Figure) -> bytes:
    """Render ``figure`` as a PNG of 256 colours (an adaptive palette; see :func:`encode_png`)."""
    figure.canvas.draw()
    return encode_png(np.asarray(figure.canvas.buffer_rgba()), palette=True)


def shrink(image: Any, max_side: int) -> np.ndarray:
    """``image`` as float in [0, 1], resized (antialiased) so that its longer side is at most ``max_side``.

    An explorer draws a photo no larger than its axes: a smaller array redraws faster.
    """
    check_number(max_side, "max_side", 8, integer=True)
    image = to_unit_float(image)
    height, width = image.shape[:2]
    factor = max_side / max(height, width)
    if factor >= 1:
        return image
    return np.clip(resize(image, max(round(height * factor), 1), max(round(width * factor), 1)), 0, 1)


def as_box(box: Any, name: str) -> Tensor:
    """One ``xyxy`` box with positive width and height, as a float ``Tensor[4]``."""
    box = torch.as_tensor(box, dtype=torch.float32) if not isinstance(box, Tensor) else box.float()
    if box.shape != (4,):
        raise ValueError(f"{name}: expected 4 numbers (x1, y1, x2, y2), got shape {tuple(box.shape)}")
    check_boxes(box[None], name)
    if not (box[2] > box[0] and box[3] > box[1]):
        raise ValueError(f"{name}: expected x2 > x1 and y2 > y1, got {box.tolist()}")
    return box


def clear_axes(ax: Axes) -> None:
    """Remove what the last ``draw`` added, but keep the axes themselves.

    ``ax.clear()`` would also rebuild the axis ticks, which is most of a redraw's time; here only
    the artists, the legend and the titles go, and the data limits are reset. Settings such as
    limits, aspect and ``set_axis_off`` stay, so ``draw`` should set the ones it relies on.
    Titles stay at ``y=1.0`` (no automatic placement, which measures the ticks at every draw).
    """
    for artists in (ax.images, ax.patches, ax.lines, ax.collections, ax.texts, ax.artists, ax.tables):
        for artist in list(artists):
            artist.remove()
    ax.containers.clear()  # the BarContainers of ``ax.bar``, whose bars are gone
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    for location in ("left", "center", "right"):
        # A fixed y turns off matplotlib's automatic title placement, which measures the ticks.
        ax.set_title("", loc=location, y=1.0)
    ax.set_prop_cycle(None)  # default colours restart at C0, as after ax.clear()
    ax.relim()  # no artists left: forget the old data limits


def draw_canvas(ax: Axes, image: Tensor | None, boxes: Tensor, size: float | None = None) -> None:
    """Draw ``image``, or without one a dark square canvas of side ``size`` (default: fits ``boxes``)."""
    if image is not None:
        show_image(ax, image)
        return
    if size is None:
        size = max(float(boxes.max()) if boxes.numel() else 0.0, 1.0)
    ax.set_xlim(0, size)
    ax.set_ylim(size, 0)  # image coordinates: y grows downwards
    ax.set_aspect("equal")
    ax.set_facecolor("0.2")
    ax.set_xticks([])
    ax.set_yticks([])


def _close_tree(widget: widgets.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def outline_boxes(ax: Axes, boxes: Tensor, **style: Any) -> None:
    """Draw ``xyxy`` boxes as one ``PolyCollection``: one artist, fast for hundreds of boxes."""
    if len(boxes) == 0:
        return
    x1, y1, x2, y2 = boxes.float().unbind(-1)
    corners = torch.stack([x1, y1, x2, y1, x2, y2, x1, y2], dim=-1).view(-1, 4, 2)  # (N, 4, 2)
    ax.add_collection(PolyCollection(corners.numpy(), facecolors="none", **style))
