"""Shared by the explorer tests: no display, and no pyplot figure left open by an explorer."""

import matplotlib

matplotlib.use("Agg")  # no display needed; set before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def no_figures_left():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "an explorer left a pyplot figure open"
