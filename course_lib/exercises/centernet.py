"""Checker for the CenterNet chapter's exercise: the peaks of a heatmap, CenterNet's NMS.

The student writes ``heatmap_peaks(heatmap, threshold)``: ``heatmap`` is one image's
``Tensor[K, h, w]`` of scores in [0, 1], one map per class. A *peak* is a pixel equal to the
maximum of its 3 x 3 neighbourhood in its own class's map, a max pooling with kernel 3, stride 1
and padding 1 (Zhou et al. 2019, "Objects as Points", Sec. 4: "a simple 3 x 3 max pooling
operation" takes the place of NMS), whose score is strictly above ``threshold``::

    pooled = F.max_pool2d(heatmap[None], kernel_size=3, stride=1, padding=1)[0]   # (K, h, w)
    peak = (pooled == heatmap) & (heatmap > threshold)                           # (K, h, w)

The answer is an int64 ``Tensor[P, 3]`` of rows ``(class, y, x)``, by decreasing score; equal
scores in the order of ``(class, y, x)`` (a stable sort of the scores does it). No peak above the
threshold: ``Tensor[0, 3]``.

Two equal neighbours (a plateau) are both the maximum of their neighbourhood, so max pooling keeps
both: CenterNet's decoding does, and so does this exercise.

Reference: ``course_lib.models.centernet.heatmap_peaks`` (every peak), then the threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise
from course_lib.models.centernet import centernet_targets, heatmap_peaks


def reference_heatmap_peaks(heatmap: torch.Tensor, threshold: float) -> torch.Tensor:
    """The expected answer: int64 ``Tensor[P, 3]`` rows ``(class, y, x)``, best score first."""
    scores, classes, ys, xs = heatmap_peaks(heatmap, k=heatmap.numel())  # (K*h*w,) each; 0 off the peaks
    keep = scores > threshold  # thresholds are >= 0: a pixel that is not a peak never passes
    return torch.stack([classes, ys, xs], dim=1)[keep]  # (P, 3)


def _variant(heatmap, threshold, kernel=3, stride=1, padding=1, above=">", use_threshold=True,
             per_class=True, nms=True, order="score", strict=False):
    """The peaks written plainly, with switches that reproduce the typical mistakes."""
    heatmap = torch.as_tensor(heatmap, dtype=torch.float64)
    K, h, w = heatmap.shape  # classes, height, width
    source = heatmap if per_class else heatmap.max(dim=0, keepdim=True).values.expand(K, h, w)
    if strict:  # larger than each of the 8 neighbours, not merely equal to the maximum
        padded = F.pad(source, (1, 1, 1, 1), value=-float("inf"))  # (K, h+2, w+2)
        shifts = [padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
                  for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
        peak = heatmap > torch.stack(shifts).max(dim=0).values  # (K, h, w)
    else:
        if stride > 1:  # one maximum per block of pixels, resized back to the map (nearest)
            pooled = F.max_pool2d(source[None], kernel, stride=stride, padding=padding)  # (1, K, h', w')
            pooled = F.interpolate(pooled, size=(h, w), mode="nearest")[0]
        else:
            pooled = F.max_pool2d(source[None], kernel, stride=1, padding=padding)[0]
            if padding == 0:  # the map shrank by 2: only the interior is compared, the border never peaks
                pooled = F.pad(pooled, (1, 1, 1, 1), value=float("inf"))
        # Kernel 2, padded by 1: one pixel too many, and each window covers the pixel and its upper-left.
        pooled = pooled[:, :h, :w]  # (K, h, w)
        peak = pooled == heatmap if nms else torch.ones_like(heatmap, dtype=torch.bool)
    if use_threshold:
        peak &= heatmap >= threshold if above == ">=" else heatmap > threshold
    classes, ys, xs = peak.nonzero(as_tuple=True)  # (P,) each, in (class, y, x) order
    rows = torch.stack([classes, ys, xs], dim=1)  # (P, 3)
    if order == "score":
        rows = rows[torch.argsort(heatmap[classes, ys, xs], descending=True, stable=True)]
    return rows


def _to_rows(value: Any) -> torch.Tensor:
    if isinstance(value, list | tuple) and len(value) == 0:
        value = torch.zeros(0, 3, dtype=torch.int64)  # no peak, as a plain list
    if isinstance(value, np.ndarray | list | tuple):
        value = torch.as_tensor(np.asarray(value))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected an int64 Tensor[P, 3] of rows (class, y, x), got {type(value).__name__}")
    if value.dim() != 2 or value.shape[1] != 3:
        raise TypeError(f"expected a Tensor[P, 3] of rows (class, y, x) (Tensor[0, 3] when there is no "
                        f"peak), got shape {tuple(value.shape)}")
    if value.is_floating_point() or value.dtype == torch.bool:
        raise TypeError(f"expected integer rows (class, y, x), got dtype {value.dtype}: use .long()")
    return value.detach().cpu().long()


def _compare(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    if torch.equal(got, expected):
        return None
    got_set, expected_set = set(map(tuple, got.tolist())), set(map(tuple, expected.tolist()))
    if got_set == expected_set and len(got) == len(expected):
        return "the right peaks, in another order"
    missing, extra = sorted(expected_set - got_set), sorted(got_set - expected_set)
    parts = [f"{len(expected)} peaks expected, {len(got)} returned"]
    for label, rows in (("missing", missing), ("not a peak:", extra)):
        if rows:
            parts.append(f"{label} {list(rows[0])}" + (f" and {len(rows) - 1} more" if len(rows) > 1 else ""))
    return "; ".join(parts)


def _map(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# The worked example: K = 2 classes on a 5 x 6 map, background 0.1. Class 0: a peak 0.9 at (1, 1) beside
# 0.6 (not a peak: 0.9 is in its neighbourhood), a peak 0.4 on the right border at (3, 5), a peak 0.2
# below the threshold at (4, 0). Class 1: a peak 0.7 at (2, 3).
_WORKED = torch.full((2, 5, 6), 0.1)
_WORKED[0, 1, 1], _WORKED[0, 1, 2], _WORKED[0, 3, 5], _WORKED[0, 4, 0] = 0.9, 0.6, 0.4, 0.2
_WORKED[1, 2, 3] = 0.7

# A plateau: two equal neighbours 0.8 in class 0, and the same score 0.8 in class 1 at (0, 0).
_PLATEAU = torch.full((2, 4, 5), 0.1)
_PLATEAU[0, 2, 2] = _PLATEAU[0, 2, 3] = _PLATEAU[1, 0, 0] = 0.8
_PLATEAU[0, 1, 2], _PLATEAU[0, 3, 4] = 0.5, 0.4  # neither is a peak: each has a 0.8 beside it

# Peaks in the four corners and on the edges of one class's map.
_BORDER = _map([[[0.9, 0.2, 0.1, 0.3, 0.7],
                 [0.2, 0.1, 0.1, 0.1, 0.2],
                 [0.6, 0.1, 0.1, 0.1, 0.1],
                 [0.1, 0.1, 0.1, 0.2, 0.1],
                 [0.8, 0.3, 0.1, 0.5, 0.55]]])

# Two classes at the same object (a square and a ring overlap): each class's map has its own peak.
_OVERLAP = torch.full((3, 5, 5), 0.05)
_OVERLAP[0, 2, 2], _OVERLAP[1, 2, 2], _OVERLAP[2, 1, 3], _OVERLAP[1, 3, 3] = 0.9, 0.6, 0.7, 0.4

# A peak of exactly 0.5 at the threshold 0.5 (0.5 and 0.75 are exact in float32).
_AT_THRESHOLD = _map([[[0.1, 0.1, 0.1, 0.1], [0.1, 0.5, 0.1, 0.1], [0.1, 0.1, 0.1, 0.75]]])


def _gaussians(seed: int) -> torch.Tensor:
    """A heatmap like a trained CenterNet's: the training targets of random boxes, plus noise."""
    generator = torch.Generator().manual_seed(seed)
    corners = torch.rand(6, 2, generator=generator) * 40  # (N, 2)
    sides = 6 + torch.rand(6, 2, generator=generator) * 20
    boxes = torch.cat([corners, corners + sides], dim=1)  # (N, 4)
    labels = torch.randint(1, 4, (6,), generator=generator)
    heatmap = centernet_targets(boxes, labels, (12, 16), 4, 3)["heatmap"]  # (3, 12, 16)
    return (0.85 * heatmap + 0.1 * torch.rand(heatmap.shape, generator=generator)).clamp(0, 1)


def _random(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


HEATMAP_PEAKS = Exercise(
    name="heatmap_peaks",
    signature="heatmap_peaks(heatmap Tensor[K, h, w], threshold) -> Tensor[P, 3] int64 rows (class, y, x)",
    reference=reference_heatmap_peaks,
    cases=[
        Case("the worked example", (_WORKED, 0.3),
             hint="pooled = F.max_pool2d(heatmap[None], 3, stride=1, padding=1)[0] has the heatmap's shape; "
             "the peaks are where pooled == heatmap and heatmap > threshold: (0, 1, 1) 0.9, (1, 2, 3) 0.7 "
             "and (0, 3, 5) 0.4, best first."),
        Case("a plateau of two equal neighbours", (_PLATEAU, 0.3),
             hint="both pixels of a plateau equal the maximum of their neighbourhood: max pooling keeps "
             "both. Equal scores come in (class, y, x) order: sort the scores with stable=True."),
        Case("peaks on the border", (_BORDER, 0.25),
             hint="a pixel on the border has fewer neighbours, but it is a peak all the same: padding=1 "
             "(max pooling pads with -inf) keeps the pooled map the heatmap's size."),
        Case("two classes at one place", (_OVERLAP, 0.3),
             hint="each class has its own map, pooled on its own: a square and a ring at the same place "
             "are two peaks."),
        Case("a peak exactly at the threshold", (_AT_THRESHOLD, 0.5),
             hint="keep the scores strictly above the threshold: heatmap > threshold."),
        Case("no peak above the threshold", (_AT_THRESHOLD, 0.8),
             hint="no peak: return an empty Tensor[0, 3] (torch.stack of empty index tensors gives it)."),
        Case("one class", (_random((1, 6, 7), seed=0), 0.5)),
        Case("a heatmap like a trained model's", (_gaussians(seed=1), 0.3)),
        Case("seeded random scores", (_random((4, 9, 11), seed=2), 0.6)),
    ],
    normalize=_to_rows,
    compare=_compare,
    mistakes=[
        Mistake("compare each pixel with the maximum of its 3 x 3 neighbourhood (max pooling, kernel 3, "
                "stride 1): without it every pixel above the threshold is a detection, many per object; "
                "the pooling is CenterNet's NMS.", lambda *a: _variant(*a, nms=False)),
        Mistake("pad by 1 (padding=1): without padding the pooled map is 2 pixels smaller and the peaks "
                "on the border are lost.", lambda *a: _variant(*a, padding=0)),
        Mistake("the neighbourhood is the 3 x 3 square centred on the pixel: kernel_size=3, padding=1 "
                "(a 2 x 2 window is not centred).", lambda *a: _variant(*a, kernel=2)),
        Mistake("stride=1: the window slides one pixel at a time, so each pixel is compared with its own "
                "neighbours; stride 3 cuts the map into blocks.", lambda *a: _variant(*a, stride=3)),
        Mistake("pool each class's map on its own (max_pool2d over heatmap[None], K channels): the maximum "
                "over the classes hides a second object of another class at the same place.",
                lambda *a: _variant(*a, per_class=False)),
        Mistake("a peak must be strictly above the threshold: heatmap > threshold, not >=.",
                lambda *a: _variant(*a, above=">=")),
        Mistake("keep only the peaks whose score is above the threshold.",
                lambda *a: _variant(*a, use_threshold=False)),
        Mistake("order the peaks by decreasing score (argsort(scores, descending=True, stable=True)), "
                "not by their position.", lambda *a: _variant(*a, order="index")),
        Mistake("a peak equals the maximum of its neighbourhood (pooled == heatmap): two equal neighbours "
                "are both kept, as max pooling does, not dropped.", lambda *a: _variant(*a, strict=True)),
    ],
    start_hint="pooled = F.max_pool2d(heatmap[None], kernel_size=3, stride=1, padding=1)[0]; "
    "classes, ys, xs = ((pooled == heatmap) & (heatmap > threshold)).nonzero(as_tuple=True); "
    "then sort the rows by heatmap[classes, ys, xs], descending and stable.",
)


def check_heatmap_peaks(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(heatmap, threshold) -> Tensor[P, 3]``: CenterNet's peaks, rows ``(class, y, x)``.

    A peak is a pixel equal to the maximum of its 3 x 3 neighbourhood in its class's map (max
    pooling, kernel 3, stride 1, padding 1) with a score strictly above ``threshold``; rows by
    decreasing score, equal scores in ``(class, y, x)`` order. Reference:
    ``course_lib.models.centernet.heatmap_peaks``.
    """
    return run_exercise(HEATMAP_PEAKS, fn, verbose=verbose)
