"""Tiny timing helpers shared by the benchmark scripts.

``time_call`` returns the best of ``repeat`` wall-clock runs (the least disturbed by other
processes), with torch's intra-op thread count fixed so that runs compare. ``print_row`` prints one
line of the ``name | ours ms | reference ms | ratio`` table and returns it as the dict that
``benchmarks/run_all.py`` collects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

NUM_THREADS = 2  # the course's target: a laptop with two cores


def time_call(fn: Callable[..., Any], *args: Any, repeat: int = 5, number: int = 1) -> float:
    """Best-of-``repeat`` wall time of ``number`` consecutive calls ``fn(*args)``, per call, in seconds.

    One untimed call first warms caches and lazy initialisation.
    """
    torch.set_num_threads(NUM_THREADS)
    fn(*args)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn(*args)
        best = min(best, (time.perf_counter() - start) / number)
    return best


def time_pair(
    ours: Callable[[], Any], reference: Callable[[], Any], repeat: int = 5
) -> tuple[float, float]:
    """Best-of-``repeat`` wall times of two calls, in seconds, timed in turns (ours, reference, ...).

    Alternating the two spreads a busy machine's slow spells, and a warm cache, over both; timing
    one ``repeat`` times and then the other can tilt the ratio by 1.5x either way on two cores.
    """
    torch.set_num_threads(NUM_THREADS)
    ours(), reference()
    best_ours = best_reference = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        ours()
        best_ours = min(best_ours, time.perf_counter() - start)
        start = time.perf_counter()
        reference()
        best_reference = min(best_reference, time.perf_counter() - start)
    return best_ours, best_reference


def print_row(name: str, ours_s: float, ref_s: float) -> dict[str, float | str]:
    """Print ``name | ours ms | reference ms | ratio`` and return the row as a dict.

    The ratio is ours / reference: below 1 means course_lib is faster.
    """
    row = {"name": name, "ours_ms": ours_s * 1e3, "ref_ms": ref_s * 1e3, "ratio": ours_s / ref_s}
    line = f"{name:<44} | {row['ours_ms']:9.3f} ms | {row['ref_ms']:9.3f} ms | {row['ratio']:5.2f}x"
    print(line, flush=True)
    return row
