"""Tests for course_lib.widgets.base: the Explorer plumbing, its PNG rendering and the shared helpers."""

import base64
import contextlib
import io
import itertools

import ipywidgets as widgets
import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from course_lib.data import load_photo
from course_lib.widgets import base
from course_lib.widgets.base import Explorer, clear_axes, palette_png, shrink


def _shown_png(explorer):
    (output,) = explorer.output.outputs
    assert output["output_type"] == "display_data"
    return base64.b64decode(output["data"]["image/png"])


# --- the Explorer base ------------------------------------------------------------------------
class CountExplorer(Explorer):
    """The smallest explorer: the docstring example of the base module."""

    def __init__(self, palette=False):
        self.calls = 0
        super().__init__({"n": widgets.IntSlider(value=3, min=0, max=10, description="n")}, palette=palette)

    def compute(self, n):
        self.calls += 1
        return {"n": n}

    def draw(self, result, ax):
        ax.bar(range(result["n"]), 1)
        ax.set_title(f"{result['n']} bars")

    def summary(self, result):
        return f"n = {result['n']} <b>"


def test_explorer_recomputes_and_redraws_on_every_value_change():
    explorer = CountExplorer()
    assert explorer.calls == 1 and explorer.result == {"n": 3}
    first_png = explorer.png
    explorer.controls["n"].value = 7
    assert explorer.calls == 2 and explorer.result == {"n": 7}
    assert len(explorer.axes[0].patches) == 7  # the old bars are gone
    assert explorer.axes[0].get_title() == "7 bars"
    assert explorer.png != first_png and explorer.png.startswith(b"\x89PNG")
    assert _shown_png(explorer) == explorer.png
    explorer.controls["n"].description = "count"  # not a value change: no redraw
    assert explorer.calls == 2


def test_explorer_status_is_escaped_html_and_widget_holds_everything():
    explorer = CountExplorer()
    assert "n = 3 &lt;b&gt;" in explorer.status.value
    controls_row, status, output, caption = explorer.widget.children
    assert list(controls_row.children) == [explorer.controls["n"]]
    assert status is explorer.status and output is explorer.output and caption.value == ""
    assert explorer.state == {"n": 3}


def test_explorer_never_prints_and_never_opens_a_pyplot_figure():
    figures_before = plt.get_fignums()
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        explorer = CountExplorer()
        for value in range(10):
            explorer.controls["n"].value = value
    assert stdout.getvalue() == ""
    assert plt.get_fignums() == figures_before


def test_explorer_displays_its_widget(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objects: shown.extend(objects))
    explorer = CountExplorer()
    explorer._ipython_display_()
    assert shown == [explorer.widget]


def test_explorer_close_stops_updates():
    explorer = CountExplorer()
    explorer.close()
    explorer.controls["n"].value = 9
    assert explorer.calls == 1


def test_clear_axes_removes_artists_but_keeps_settings():
    figure = matplotlib.figure.Figure()
    ax = figure.subplots()
    ax.set_xlim(0, 10)
    ax.plot([0, 1], [0, 1], label="line")
    ax.text(0, 0, "text")
    ax.legend()
    ax.set_title("title")
    clear_axes(ax)
    assert not (ax.lines or ax.texts or ax.patches) and ax.get_legend() is None
    assert ax.get_title() == "" and ax.get_xlim() == (0, 10)


def test_render_seconds_times_compute_draw_and_encoding(monkeypatch):
    explorer = CountExplorer()
    clock = itertools.count(start=10.0, step=0.25)  # each perf_counter call is a quarter second later
    monkeypatch.setattr(base.time, "perf_counter", lambda: next(clock))
    explorer.controls["n"].value = 5
    assert explorer.render_seconds == 0.25  # one call before compute, one after the PNG


# --- PNG rendering ----------------------------------------------------------------------------
def test_explorer_renders_true_colour_by_default_and_256_colours_with_palette():
    true_colour, palette = CountExplorer(), CountExplorer(palette=True)
    assert not true_colour.palette and palette.palette
    assert Image.open(io.BytesIO(_shown_png(true_colour))).mode in ("RGB", "RGBA")
    shown = Image.open(io.BytesIO(_shown_png(palette)))
    assert shown.mode == "P" and shown.size == palette.figure.canvas.get_width_height()
    palette.controls["n"].value = 8  # every redraw goes through the option
    assert _shown_png(palette) == palette.png == palette_png(palette.figure)
    assert Image.open(io.BytesIO(palette.png)).mode == "P"


def test_palette_png_of_a_photo_is_smaller_and_looks_the_same():
    figure = Figure(figsize=(3, 3), dpi=72)
    FigureCanvasAgg(figure)  # as the explorers do: an Agg canvas not registered with pyplot
    ax = figure.subplots()
    ax.imshow(shrink(load_photo("astronaut"), 160))
    png = palette_png(figure)
    true_colour = io.BytesIO()
    figure.canvas.print_png(true_colour)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "P" and len(image.getcolors(maxcolors=256)) <= 256
    assert len(png) < len(true_colour.getvalue()) / 2
    pixels = np.asarray(image.convert("RGB")).astype(int)
    canvas = np.asarray(figure.canvas.buffer_rgba())[..., :3].astype(int)
    assert np.abs(pixels - canvas).mean() < 3


# --- shrink -----------------------------------------------------------------------------------
def test_shrink_keeps_the_aspect_ratio_and_the_value_range():
    photo = np.random.default_rng(0).integers(0, 256, size=(200, 100, 3), dtype=np.uint8)
    small = shrink(photo, 50)
    assert small.shape == (50, 25, 3) and small.dtype == np.float64
    assert 0.0 <= small.min() and small.max() <= 1.0
    flat = shrink(np.full((64, 32), 255, dtype=np.uint8), 16)  # uint8 255 is 1.0, also after resizing
    np.testing.assert_allclose(flat, np.ones((16, 8)))


def test_shrink_leaves_small_images_alone_and_rejects_tiny_sides():
    image = np.random.default_rng(1).random((30, 20))
    assert np.array_equal(shrink(image, 30), image) and np.array_equal(shrink(image, 64), image)
    with pytest.raises(ValueError, match=r"max_side: expected a value in \[8, inf\], got 4"):
        shrink(image, 4)
