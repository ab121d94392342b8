"""Shared by the plotting tests: no display, an axes that must render, no pyplot figure left open."""

import matplotlib

matplotlib.use("Agg")  # no display needed; set before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


@pytest.fixture
def ax():
    figure = Figure()  # not registered with pyplot: nothing to close
    FigureCanvasAgg(figure)  # a bare Figure's canvas.draw() renders nothing; Agg's does
    axes = figure.subplots()
    yield axes
    figure.canvas.draw()  # every artist added must also render


@pytest.fixture(autouse=True)
def no_figures_left():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a test left a pyplot figure open"
