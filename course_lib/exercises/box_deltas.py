"""Checker for the R-CNN chapter's exercise: decoding box-regression deltas (notebook 05).

The student writes ``decode_deltas(deltas, boxes)``: ``deltas`` a float ``Tensor[N, 4]`` of
``(dx, dy, dw, dh)``, ``boxes`` a float ``Tensor[N, 4]`` of ``xyxy`` proposals ``P``; the answer is
the ``Tensor[N, 4]`` of ``xyxy`` boxes ``G`` (Girshick et al. 2014, "Rich feature hierarchies",
Appendix C, Eqs. 1-4)::

    pw = x2 - x1, ph = y2 - y1, px = x1 + pw / 2, py = y1 + ph / 2     (centre and size of P)
    Gx = pw * dx + px          Gw = pw * exp(dw)
    Gy = ph * dy + py          Gh = ph * exp(dh)
    G = (Gx - Gw / 2, Gy - Gh / 2, Gx + Gw / 2, Gy + Gh / 2)            (back to xyxy)

The offsets are in units of the proposal's own size (``dx = 0.5`` moves the centre by half the
proposal's width) and the size changes are logarithmic, so ``exp`` keeps every box's size positive.
A box of zero width stays of zero width: no division, no NaN. No input means no output: a
``Tensor[0, 4]``.

Reference: ``course_lib.boxes.BoxCoder((1, 1, 1, 1)).decode(deltas, boxes)``, R-CNN's unweighted
coder (``RCNN.box_coder``), which returns ``Tensor[N, 4]`` for one group of deltas per box (``Tensor[N,
4 K]`` for K classes). It departs from the paper in one respect: it clamps ``dw`` and ``dh`` at
``log(1000 / 16) ~ 4.14`` before ``exp``, so that an untrained head cannot produce an infinite box.
The cases here stay below that bound, so a solution that does not clamp passes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from course_lib.boxes import BoxCoder
from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise


def reference_decode_deltas(deltas: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """The expected answer: ``Tensor[N, 4]`` ``xyxy``."""
    return BoxCoder((1.0, 1.0, 1.0, 1.0)).decode(deltas, boxes)


def _variant(deltas, boxes, size="exp", centre="middle", offset="own", output="xyxy"):
    """Decoding written plainly, with switches that reproduce the typical mistakes."""
    deltas, boxes = torch.as_tensor(deltas, dtype=torch.float64), torch.as_tensor(boxes, dtype=torch.float64)
    dx, dy, dw, dh = deltas.unbind(dim=1)  # 4 x (N,)
    x1, y1, x2, y2 = boxes.unbind(dim=1)  # 4 x (N,)
    pw, ph = x2 - x1, y2 - y1
    px, py = (x1 + pw / 2, y1 + ph / 2) if centre == "middle" else (x1, y1)
    if size == "exp":
        gw, gh = pw * torch.exp(dw), ph * torch.exp(dh)
    elif size == "linear":  # exp forgotten
        gw, gh = pw * dw, ph * dh
    else:  # "swapped": the width scaled by the height and the other way round
        gw, gh = ph * torch.exp(dw), pw * torch.exp(dh)
    scale_x, scale_y = {"own": (pw, ph), "swapped": (ph, pw), "new": (gw, gh), "none": (1.0, 1.0)}[offset]
    gx, gy = scale_x * dx + px, scale_y * dy + py
    if output == "cxcywh":
        return torch.stack([gx, gy, gw, gh], dim=1)  # (N, 4)
    if output == "full_size":  # the whole width on each side of the centre
        return torch.stack([gx - gw, gy - gh, gx + gw, gy + gh], dim=1)  # (N, 4)
    return torch.stack([gx - gw / 2, gy - gh / 2, gx + gw / 2, gy + gh / 2], dim=1)  # (N, 4)


def _to_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, np.ndarray | list | tuple):
        value = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected a Tensor[N, 4], got {type(value).__name__}")
    if value.dim() != 2 or value.shape[1] != 4:
        raise TypeError(f"expected a Tensor[N, 4] (one xyxy box per row), got shape {tuple(value.shape)}")
    return value.detach().to(torch.float64)


def _compare(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    if got.shape != expected.shape:
        return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    wrong = ~torch.isclose(got, expected, rtol=1e-5, atol=1e-4)  # NaN is never close
    if not wrong.any():
        return None
    row, column = (int(v) for v in wrong.nonzero()[0])
    return f"first difference at box {row}, {('x1', 'y1', 'x2', 'y2')[column]}"


def _case(deltas, boxes) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor(deltas, dtype=torch.float32).reshape(-1, 4),
            torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))


def _random_case(num_boxes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded proposals of various sizes and deltas like a trained regressor's (|d| < 1)."""
    generator = torch.Generator().manual_seed(seed)
    corner = torch.rand(num_boxes, 2, generator=generator) * 100
    size = 4 + torch.rand(num_boxes, 2, generator=generator) * 60
    deltas = (torch.rand(num_boxes, 4, generator=generator) - 0.5) * 1.6
    return deltas, torch.cat([corner, corner + size], dim=1)


BOX = [10.0, 20.0, 50.0, 40.0]  # centre (30, 30), width 40, height 20: not square, not at the origin

DECODE_DELTAS = Exercise(
    name="decode_deltas",
    signature="decode_deltas(deltas, boxes) -> Tensor[N, 4] (xyxy)",
    reference=reference_decode_deltas,
    cases=[
        Case("zero deltas give the proposal back", _case([0.0, 0.0, 0.0, 0.0], BOX),
             hint="with dx = dy = dw = dh = 0 nothing moves: Gx = px and Gw = pw * exp(0) = pw."),
        Case("a shift only", _case([0.5, -0.25, 0.0, 0.0], BOX),
             hint="dx = 0.5 moves the centre by half the proposal's width (20 px here), dy = -0.25 up "
             "by a quarter of its height (5 px); the size stays."),
        Case("a scaling only", _case([0.0, 0.0, math.log(2.0), math.log(0.5)], BOX),
             hint="dw = log 2 doubles the width (40 -> 80) around the same centre; dh = log 0.5 halves "
             "the height (20 -> 10)."),
        Case("every delta at once", _case([0.1, 0.3, -0.2, 0.4], BOX)),
        Case("several boxes", _random_case(6, seed=0),
             hint="decode every row on its own: each box has its own centre, size and deltas."),
        Case("fractional and negative coordinates", _case([[0.2, -0.1, 0.3, -0.3], [-0.4, 0.6, 0.05, 0.9]],
                                                          [[-3.5, 1.25, 7.5, 9.0], [0.5, -8.0, 2.0, 4.5]])),
        Case("a box of width 0", _case([0.3, -0.2, 1.0, 0.5], [5.0, 5.0, 5.0, 15.0]),
             hint="pw = 0: the centre keeps its x (pw * dx = 0) and the width stays 0 (pw * exp(dw) = 0); "
             "nothing is divided, so no NaN."),
        Case("a point (width and height 0)", _case([0.5, 0.5, 2.0, 2.0], [8.0, 3.0, 8.0, 3.0]),
             hint="a box of size 0 stays the same point, whatever the deltas."),
        Case("no boxes", _case([], []),
             hint="no boxes in, no boxes out: return a Tensor[0, 4] (torch.stack of empty columns "
             "along dim=1 gives one)."),
    ],
    normalize=_to_tensor,
    compare=_compare,
    mistakes=[
        Mistake("dw and dh are logarithms of the size ratio: Gw = pw * exp(dw), Gh = ph * exp(dh), "
                "not pw * dw.", lambda d, b: _variant(d, b, size="linear")),
        Mistake("the deltas move the centre, not the top-left corner: px = x1 + pw / 2, "
                "py = y1 + ph / 2.", lambda d, b: _variant(d, b, centre="corner")),
        Mistake("width with width, height with height: Gw = pw * exp(dw) and Gh = ph * exp(dh).",
                lambda d, b: _variant(d, b, size="swapped")),
        Mistake("dx is in units of the proposal's width and dy of its height: Gx = pw * dx + px, "
                "Gy = ph * dy + py.", lambda d, b: _variant(d, b, offset="swapped")),
        Mistake("the offsets scale with the proposal's size pw, ph, not with the new size Gw, Gh: "
                "Gx = pw * dx + px.", lambda d, b: _variant(d, b, offset="new")),
        Mistake("dx and dy are relative to the proposal's size: multiply them by pw and ph "
                "(Gx = pw * dx + px), do not add them as pixels.",
                lambda d, b: _variant(d, b, offset="none")),
        Mistake("the answer is xyxy: convert the centre and size back, x1 = Gx - Gw / 2, x2 = Gx + Gw / 2.",
                lambda d, b: _variant(d, b, output="cxcywh")),
        Mistake("the corners are half the width from the centre: x1 = Gx - Gw / 2, not Gx - Gw.",
                lambda d, b: _variant(d, b, output="full_size")),
    ],
    start_hint="dx, dy, dw, dh = deltas.unbind(dim=1); pw = boxes[:, 2] - boxes[:, 0]; px = boxes[:, 0] + "
    "pw / 2 (likewise ph, py); Gx = pw * dx + px; Gw = pw * torch.exp(dw); return torch.stack([Gx - Gw / 2, "
    "Gy - Gh / 2, Gx + Gw / 2, Gy + Gh / 2], dim=1).",
)


def check_decode_deltas(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(deltas, boxes) -> Tensor[N, 4]``: R-CNN's box-regression decoding (Appendix C).

    ``deltas`` is a float ``Tensor[N, 4]`` of ``(dx, dy, dw, dh)``, ``boxes`` a float ``Tensor[N, 4]``
    of ``xyxy`` proposals; the answer is the ``xyxy`` boxes ``Gx = pw dx + px``, ``Gy = ph dy + py``,
    ``Gw = pw exp(dw)``, ``Gh = ph exp(dh)``. Reference: ``course_lib.boxes.BoxCoder((1, 1, 1,
    1)).decode`` (which also clamps ``dw``, ``dh`` at ``log(1000 / 16)``; no case reaches it).
    """
    return run_exercise(DECODE_DELTAS, fn, verbose=verbose)
