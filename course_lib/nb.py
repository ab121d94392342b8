"""Notebook helpers: the first cell of every notebook, showing library code, timing.

The notebooks import ``course_lib`` and never paste its code; ``show_source(box_iou)`` prints the
real function, highlighted, so what a student reads is what the tests check.
"""

from __future__ import annotations

import inspect
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from course_lib.plotting.style import PROJECTOR_RC, apply_style  # noqa: F401  (nb.PROJECTOR_RC: kept for callers)


def show_source(obj: Any) -> None:
    """Display the source code of a function, class, method or module, with syntax highlighting.

    This is how a notebook shows ``course_lib`` code: ``show_source(nms)`` displays the code that
    runs and that the tests check, so the notebook and the library cannot drift apart.

    Args:
        obj: a function, class, method or module whose source file is available.

    Raises:
        TypeError: if ``obj`` has no Python source (a builtin, an instance, a C extension).
    """
    from IPython.display import Code, display

    display(Code(source_of(obj), language="python"))


def source_of(obj: Any) -> str:
    """Return the source code of ``obj`` as a string (what :func:`show_source` displays).

    Raises:
        TypeError: if ``obj`` has no Python source, with the type that came.
    """
    target = inspect.unwrap(obj) if callable(obj) else obj
    try:
        return inspect.getsource(target)
    except (TypeError, OSError) as error:
        raise TypeError(
            f"obj: expected a function, class, method or module with Python source, "
            f"got {type(obj).__name__} {obj!r:.80}"
        ) from error


def device() -> torch.device:
    """Return ``cuda`` when a GPU is available, else ``cpu`` (the course's default machine)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    Args:
        seed: a non-negative int.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def setup(seed: int = 0) -> None:
    """The first cell of every notebook: seeds, thread count and readable figure defaults.

    Two threads at most: the course targets a two-core laptop, and a fixed thread count also
    fixes the order of floating-point reductions, so a notebook prints the same numbers on a
    16-core workstation as on the CI runner. ``OMP_NUM_THREADS=1`` in the environment lowers it to
    one (`make test` runs two notebooks at once, one thread each: two threads each would contend).

    Args:
        seed: passed to :func:`seed_everything`.
    """
    seed_everything(seed)
    torch.set_num_threads(min(2, os.cpu_count() or 1, _threads_from_environment()))
    apply_style()


def _threads_from_environment() -> int:
    """``OMP_NUM_THREADS`` when it is a positive int, else 2."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else 2


@dataclass
class Timer:
    """Elapsed wall-clock time of a :func:`timed` block, in seconds (set when the block ends)."""

    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timer]:
    """Measure the wall-clock time of a ``with`` block.

    Example::

        with timed() as timer:
            detections = model(images)
        print(f"time per image: {1000 * timer.seconds / len(images):.1f} ms")

    Yields:
        A :class:`Timer` whose ``seconds`` is filled in when the block exits (even on an error).
    """
    timer = Timer()
    start = time.perf_counter()
    try:
        yield timer
    finally:
        timer.seconds = time.perf_counter() - start


def best_time(function: Callable[[], Any], repeats: int = 3, threads: int | None = 1) -> float:
    """The shortest wall-clock time of ``repeats`` calls of ``function()``, in seconds.

    Other work on the machine can only add time to a run, never remove it, so the minimum of a
    few runs is the figure that survives a busy laptop or a shared CI runner; a mean or a single
    run is what a burst of load distorts. The calls run on ``threads`` torch threads (one by
    default): a multi-threaded kernel on a machine whose cores are taken waits for its slowest
    thread and can slow down ten times, while single-threaded code slows down by the share of the
    core it loses, so comparisons made on one thread keep their ratios under load. A notebook that
    asserts a timing claim compares these minima, and only where the claim holds by a wide margin.

    Args:
        function: called with no arguments; its result is discarded.
        repeats: a positive int.
        threads: torch threads during the calls (restored afterwards); ``None`` keeps the current
            setting.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats: expected a positive int, got {repeats!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads: expected a positive int or None, got {threads!r}")
    if not callable(function):
        raise TypeError(f"function: expected a callable, got {type(function).__name__}")
    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(saved)
    return best


def show_as_jpeg(figure: Any, quality: int = 85) -> None:
    """Display a matplotlib figure as a JPEG and close it.

    Figures made of photos or textured scenes are several times smaller as JPEG than as PNG,
    which keeps the stored, executed notebooks small. Line drawings should stay PNG (the
    default inline display): JPEG blurs thin lines and text.
    """
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buffer = io.BytesIO()
    figure.savefig(buffer, format="jpeg", pil_kwargs={"quality": quality})
    plt.close(figure)
    display(Image(data=buffer.getvalue(), format="jpeg"))
