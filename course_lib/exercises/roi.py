"""Checker for the Fast R-CNN chapter's exercise: RoI max pooling of one RoI (Girshick 2015, Sec. 2.1).

The student writes ``roi_max_pool(feature_map, roi, output_size)``: ``feature_map`` a
``Tensor[C, H, W]``, ``roi`` four numbers ``[x1, y1, x2, y2]`` already in feature-map cells,
``output_size`` a pair ``(h, w)``; the answer is a ``Tensor[C, h, w]``. The rule is
``torchvision.ops.roi_pool``'s with ``spatial_scale=1``:

1. round each coordinate to the nearest cell, halves away from zero (``math.floor(v + 0.5)`` for
   ``v >= 0``; note that Python's ``round(2.5)`` is 2);
2. the RoI has ``x2 - x1 + 1`` columns and ``y2 - y1 + 1`` rows (both ends included; at least 1);
3. bin ``(i, j)`` covers rows ``y1 + floor(i * rows / h)`` to ``y1 + ceil((i + 1) * rows / h)``
   (end excluded), and likewise for columns, so neighbouring bins may share a row;
4. clip every bin to the map; a bin with no cell left gives 0, any other its maximum.

Reference: ``course_lib.roi.roi_pool`` on one RoI.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise
from course_lib.roi import roi_pool


def reference_roi_max_pool(feature_map, roi, output_size) -> torch.Tensor:
    """The expected answer: ``Tensor[C, h, w]``."""
    boxes = [torch.as_tensor(roi, dtype=feature_map.dtype).reshape(1, 4)]
    return roi_pool(feature_map[None], boxes, tuple(output_size), spatial_scale=1.0)[0]


def _variant(feature_map, roi, output_size, reduce="max", plus_one=True, rounding="away",
             bins="floor_ceil", clip=True):
    """RoI max pooling written plainly, with switches that reproduce the typical mistakes."""
    C, H, W = feature_map.shape
    pooled_h, pooled_w = output_size
    to_cell = {"away": lambda v: math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1),
               "floor": math.floor, "python": round}[rounding]
    x1, y1, x2, y2 = (to_cell(float(v)) for v in roi)
    width, height = max(x2 - x1 + plus_one, 1), max(y2 - y1 + plus_one, 1)

    def bounds(index, length, num_bins, start, size):
        if bins == "floor_ceil":
            first, last = (index * length) // num_bins, -((-(index + 1) * length) // num_bins)
        else:  # every bin length // num_bins cells: the remainder is dropped
            first, last = index * (length // num_bins), (index + 1) * (length // num_bins)
        first, last = first + start, last + start
        return (min(max(first, 0), size), min(max(last, 0), size)) if clip else (first, last)

    out = torch.zeros(C, pooled_h, pooled_w, dtype=feature_map.dtype)
    for i in range(pooled_h):
        row_first, row_last = bounds(i, height, pooled_h, y1, H)
        for j in range(pooled_w):
            col_first, col_last = bounds(j, width, pooled_w, x1, W)
            region = feature_map[:, row_first:row_last, col_first:col_last]  # Python's slicing
            if region.numel():
                out[:, i, j] = region.amax(dim=(1, 2)) if reduce == "max" else region.mean(dim=(1, 2))
    return out


def _to_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, np.ndarray | list | tuple):
        value = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected a Tensor[C, h, w], got {type(value).__name__}")
    if value.dim() != 3:
        raise TypeError(f"expected a Tensor[C, h, w], got shape {tuple(value.shape)}")
    return value.detach().to(torch.float64)


def _compare(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    if got.shape != expected.shape:
        return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    wrong = ~torch.isclose(got, expected, rtol=0, atol=1e-5)
    if not wrong.any():
        return None
    channel, row, col = (int(v) for v in wrong.nonzero()[0])
    return f"first difference at channel {channel}, bin ({row}, {col})"


def _feature_map(channels: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Distinct whole numbers in random order, so that max, mean and every cell differ."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.randperm(channels * height * width, generator=generator).to(torch.float32)
    return values.reshape(channels, height, width)


ROI_MAX_POOL = Exercise(
    name="roi_max_pool",
    signature="roi_max_pool(feature_map, roi, output_size) -> Tensor[C, h, w]",
    reference=reference_roi_max_pool,
    cases=[
        Case("whole-number RoI, bins of 2 x 2 cells",
             (_feature_map(1, 6, 6, 0), [0.0, 0.0, 3.0, 3.0], (2, 2)),
             hint="the RoI [0, 0, 3, 3] has 4 x 4 cells (both ends included); each bin keeps its maximum."),
        Case("bins that do not divide the RoI evenly",
             (_feature_map(1, 6, 6, 1), [0.0, 0.0, 4.0, 4.0], (3, 3)),
             hint="5 cells in 3 bins: bin i covers floor(i * 5 / 3) to ceil((i + 1) * 5 / 3), "
             "so neighbouring bins share a row or a column."),
        Case("fractional coordinates", (_feature_map(1, 6, 6, 2), [0.7, 1.2, 4.4, 3.6], (2, 2)),
             hint="round each coordinate to the nearest cell first: 0.7 -> 1, 1.2 -> 1, 4.4 -> 4, 3.6 -> 4."),
        Case("coordinates ending in .5", (_feature_map(1, 6, 6, 10), [0.5, 1.5, 3.5, 4.5], (2, 2)),
             hint="halves round away from zero: 0.5 -> 1, 1.5 -> 2, 3.5 -> 4, 4.5 -> 5."),
        Case("a RoI crossing the top-left border", (_feature_map(1, 5, 5, 4), [-2.0, -1.0, 3.0, 2.0], (2, 2)),
             hint="clip each bin to the map: rows and columns in [0, H) and [0, W). Careful: Python "
             "reads a negative index from the end, feature_map[:, -2:1] is empty."),
        Case("a RoI partly beyond the bottom-right border",
             (_feature_map(2, 5, 5, 5), [3.0, 2.0, 8.0, 7.0], (2, 3)),
             hint="a bin entirely outside the map gives 0; the others their maximum inside the map."),
        Case("more bins than cells", (_feature_map(1, 4, 4, 6), [1.0, 1.0, 2.0, 2.0], (3, 3)),
             hint="2 cells in 3 bins: bin i covers floor(i * 2 / 3) to ceil((i + 1) * 2 / 3), "
             "never an empty bin inside the map."),
        Case("several channels, a non-square output",
             (_feature_map(3, 6, 7, 7), [0.0, 1.0, 5.0, 4.0], (2, 3)),
             hint="pool every channel the same way; the output is (C, h, w) with h rows and w columns."),
        Case("a RoI of one cell", (_feature_map(2, 4, 4, 8), [2.0, 1.0, 2.0, 1.0], (2, 2)),
             hint="x2 - x1 + 1 = 1 column: every bin is that one cell."),
    ],
    normalize=_to_tensor,
    compare=_compare,
    mistakes=[
        Mistake("RoI *max* pooling keeps the largest value of each bin (amax), not the mean.",
                lambda f, r, s: _variant(f, r, s, reduce="mean")),
        Mistake("the RoI includes both ends: x2 - x1 + 1 columns and y2 - y1 + 1 rows.",
                lambda f, r, s: _variant(f, r, s, plus_one=False)),
        Mistake("Python's round() sends halves to the even number (round(2.5) == 2); roi_pool rounds "
                "them away from zero: math.floor(v + 0.5) for v >= 0.",
                lambda f, r, s: _variant(f, r, s, rounding="python")),
        Mistake("round the coordinates to the nearest cell (halves away from zero), do not floor them.",
                lambda f, r, s: _variant(f, r, s, rounding="floor")),
        Mistake("with integer division (rows // h) the last rows and columns of the RoI are dropped: a bin "
                "goes from floor(i * rows / h) to ceil((i + 1) * rows / h).",
                lambda f, r, s: _variant(f, r, s, bins="int_div")),
        Mistake("clip each bin to the map (rows and columns at least 0, at most H and W) before slicing: "
                "Python reads negative indices from the end.",
                lambda f, r, s: _variant(f, r, s, clip=False)),
    ],
    start_hint="x1, y1, x2, y2 = rounded roi; rows = y2 - y1 + 1 (at least 1); for each bin (i, j): "
    "first = y1 + floor(i * rows / h), last = y1 + ceil((i + 1) * rows / h), clipped to [0, H]; "
    "out[:, i, j] = feature_map[:, first:last, ...].amax(dim=(1, 2)), or 0 if the bin is empty.",
)


def check_roi_max_pool(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(feature_map, roi, output_size) -> Tensor[C, h, w]``: RoI max pooling of one RoI.

    ``feature_map`` is a float ``Tensor[C, H, W]``, ``roi`` a list ``[x1, y1, x2, y2]`` in
    feature-map cells, ``output_size`` a pair ``(h, w)``. The rule is ``torchvision.ops.roi_pool``'s
    with ``spatial_scale=1``: round the coordinates (halves away from zero), include both ends
    (``x2 - x1 + 1`` columns), bins from ``floor(i * rows / h)`` to ``ceil((i + 1) * rows / h)``,
    clipped to the map, empty bins 0. Reference: ``course_lib.roi.roi_pool`` on one RoI.
    """
    return run_exercise(ROI_MAX_POOL, fn, verbose=verbose)
