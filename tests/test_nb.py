"""Tests for course_lib.nb: show_source, device, seeding, setup, timed."""

import os
import random
import time

import matplotlib
import numpy as np
import pytest
import torch

from course_lib import nb, plotting


def test_source_of_function_is_its_real_source():
    source = nb.source_of(plotting.class_color)
    assert source.startswith("def class_color(")
    assert "tab10" in source


def test_source_of_class_and_module():
    assert nb.source_of(nb.Timer).startswith("@dataclass\nclass Timer")
    assert nb.source_of(nb) == open(nb.__file__).read()


def test_show_source_displays_highlighted_python(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objects: shown.extend(objects))
    assert nb.show_source(nb.device) is None
    assert len(shown) == 1
    code = shown[0]
    assert isinstance(code, IPython.display.Code)
    assert code.language == "python"
    assert "def device()" in code.data
    assert "highlight" in code._repr_html_()  # pygments markup, i.e. syntax highlighting


def test_source_of_rejects_objects_without_source():
    with pytest.raises(TypeError, match="expected a function, class, method or module"):
        nb.source_of(len)
    with pytest.raises(TypeError, match="got int"):
        nb.source_of(3)


def test_device_is_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert nb.device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert nb.device() == torch.device("cuda")


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_seed_everything_repeats_every_generator():
    nb.seed_everything(3)
    first = _draws()
    nb.seed_everything(3)
    assert _draws() == first
    nb.seed_everything(4)
    assert all(a != b for a, b in zip(_draws(), first, strict=True))


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="expected a non-negative int"):
        nb.seed_everything(seed)


def test_setup_seeds_threads_and_figure_defaults(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads = torch.get_num_threads()
    saved = matplotlib.rcParams.copy()
    try:
        assert nb.setup(seed=5) is None
        first = _draws()
        assert torch.get_num_threads() == min(2, os.cpu_count() or 1)
        assert matplotlib.rcParams["font.size"] == 13
        assert tuple(matplotlib.rcParams["figure.figsize"]) == (7.0, 4.5)
        nb.setup(seed=5)
        assert _draws() == first
    finally:
        torch.set_num_threads(threads)
        matplotlib.rcParams.update(saved)


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("8", 2), ("0", 2), ("two", 2), ("", 2)])
def test_setup_takes_one_thread_from_omp_num_threads(monkeypatch, value, expected):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    threads = torch.get_num_threads()
    try:
        nb.setup()
        assert torch.get_num_threads() == min(expected, os.cpu_count() or 1)
    finally:
        torch.set_num_threads(threads)


def test_timed_measures_the_block():
    with nb.timed() as timer:
        assert timer.seconds == 0.0
        time.sleep(0.02)
    assert 0.015 < timer.seconds < 5


def test_timed_records_even_when_the_block_raises():
    with pytest.raises(RuntimeError), nb.timed() as timer:
        time.sleep(0.01)
        raise RuntimeError("boom")
    assert timer.seconds > 0.005


def test_show_as_jpeg_displays_a_jpeg_and_closes_the_figure(monkeypatch):
    import matplotlib.pyplot as plt
    from IPython import display as ipython_display

    from course_lib.nb import show_as_jpeg

    shown = []
    monkeypatch.setattr(ipython_display, "display", lambda obj: shown.append(obj))
    figure, ax = plt.subplots(figsize=(2, 2))
    ax.imshow([[0, 1], [1, 0]])
    show_as_jpeg(figure)
    assert len(shown) == 1 and shown[0].data[:2] == b"\xff\xd8"  # the JPEG magic number
    assert not plt.fignum_exists(figure.number)


def test_best_time_is_the_minimum_of_the_runs(monkeypatch):
    # A fake clock: the three calls take 5, 2 and 9 "seconds"; the best is 2, whatever the order.
    ticks = iter([0.0, 5.0, 10.0, 12.0, 20.0, 29.0])
    monkeypatch.setattr(nb.time, "perf_counter", lambda: next(ticks))
    calls = []
    assert nb.best_time(lambda: calls.append(1), repeats=3) == 2.0
    assert len(calls) == 3


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True])
def test_best_time_rejects_bad_repeats(repeats):
    with pytest.raises(ValueError, match="repeats: expected a positive int"):
        nb.best_time(lambda: None, repeats=repeats)
    with pytest.raises(ValueError, match="threads: expected a positive int or None"):
        nb.best_time(lambda: None, threads=repeats)


def test_best_time_runs_on_the_given_threads_and_restores_the_count():
    saved = torch.get_num_threads()
    seen = []
    try:
        torch.set_num_threads(2)
        nb.best_time(lambda: seen.append(torch.get_num_threads()), repeats=2)  # one thread by default
        nb.best_time(lambda: seen.append(torch.get_num_threads()), repeats=1, threads=None)
        assert seen == [1, 1, 2] and torch.get_num_threads() == 2
        def fail():
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            nb.best_time(fail, repeats=1)
        assert torch.get_num_threads() == 2  # restored after an error too
    finally:
        torch.set_num_threads(saved)


def test_best_time_rejects_a_non_callable():
    with pytest.raises(TypeError, match="function: expected a callable, got int"):
        nb.best_time(3)
