"""Checker for the YOLO chapter's exercise: decoding the boxes and scores of one grid cell.

The student writes ``decode_cell(cell, row, col, num_boxes, cell_size, grid_size)``: ``cell`` the
activated ``Tensor[5B + C]`` of the grid cell at ``(row, col)`` of an ``S x S`` grid (``S =
grid_size``) of cells of ``cell_size`` pixels; per box ``(x, y, sqrt(w), sqrt(h), confidence)``, then
the ``C`` class probabilities shared by the cell's ``B`` boxes. The answer is ``(boxes Tensor[B, 4]
xyxy pixels, scores Tensor[B, C])`` (Redmon et al. 2016, "You Only Look Once", Sec. 2)::

    centre_x = (col + x) * cell_size          w = sqrt(w) ** 2 * S * cell_size
    centre_y = (row + y) * cell_size          h = sqrt(h) ** 2 * S * cell_size
    box = (centre_x - w / 2, centre_y - h / 2, centre_x + w / 2, centre_y + h / 2)
    scores[b, c] = confidence_b * P(c)                                     (the paper's Eq. 1)

``x, y`` are the centre's offsets inside the cell (the column gives x, the row gives y); the sides
are relative to the whole image (``S * cell_size`` pixels), square-rooted so that the loss weighs
an error on a small box more. The score of a box for a class is the *class-specific confidence*
of the paper's test time: how sure the cell is that a box holds an object, times the class.

Reference: ``course_lib.models.yolo.decode_yolo`` on a grid whose only non-zero cell is ``cell``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise
from course_lib.models.yolo import decode_yolo


def reference_decode_cell(cell, row, col, num_boxes, cell_size, grid_size) -> tuple:
    """The expected answer: ``(boxes Tensor[B, 4] xyxy, scores Tensor[B, C])``."""
    output = torch.zeros(grid_size, grid_size, cell.shape[0], dtype=cell.dtype)  # (S, S, 5B + C)
    output[row, col] = cell
    boxes, confidences, class_probs = decode_yolo(output, num_boxes, cell_size)  # (S*S*B, 4), ...
    first = (row * grid_size + col) * num_boxes  # cell by cell (row-major), then box by box
    mine = slice(first, first + num_boxes)
    return boxes[mine], confidences[mine, None] * class_probs[mine]  # (B, 4), (B, C)


def _variant(cell, row, col, num_boxes, cell_size, grid_size, offset="cell", side="square",
             extent="image", output="xyxy", score="confidence"):
    """The decoding written plainly, with switches that reproduce the typical mistakes."""
    cell = torch.as_tensor(cell, dtype=torch.float64)
    boxes = cell[: 5 * num_boxes].reshape(num_boxes, 5)  # (B, 5)
    class_probs = cell[5 * num_boxes :]  # (C,)
    x_cells, y_cells = {"cell": (col, row), "none": (0, 0), "swapped": (row, col)}[offset]
    centre_x = (x_cells + boxes[:, 0]) * cell_size  # (B,)
    centre_y = (y_cells + boxes[:, 1]) * cell_size
    power = {"square": 2, "linear": 1}[side]
    scale = {"image": grid_size * cell_size, "cell": cell_size}[extent]
    width, height = boxes[:, 2] ** power * scale, boxes[:, 3] ** power * scale
    if output == "cxcywh":
        out = torch.stack([centre_x, centre_y, width, height], dim=1)  # (B, 4)
    else:
        out = torch.stack([centre_x - width / 2, centre_y - height / 2,
                           centre_x + width / 2, centre_y + height / 2], dim=1)  # (B, 4)
    confidence = boxes[:, 4:5] if score == "confidence" else torch.ones(num_boxes, 1, dtype=torch.float64)
    return out, confidence * class_probs  # (B, 4), (B, C)


def _to_tensor(value: Any, columns: int | None, what: str) -> torch.Tensor:
    if isinstance(value, np.ndarray | list | tuple):
        value = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected {what} as a Tensor, got {type(value).__name__}")
    if value.dim() != 2 or (columns is not None and value.shape[1] != columns):
        raise TypeError(f"expected {what}, got shape {tuple(value.shape)}")
    return value.detach().to(torch.float64)


def _to_pair(value: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(f"expected a pair (boxes, scores), got {type(value).__name__}"
                        + (f" of length {len(value)}" if isinstance(value, tuple | list) else ""))
    return _to_tensor(value[0], 4, "boxes Tensor[B, 4]"), _to_tensor(value[1], None, "scores Tensor[B, C]")


def _compare(got: tuple, expected: tuple) -> str | None:
    for name, g, e in zip(("boxes", "scores"), got, expected, strict=True):
        if g.shape != e.shape:
            return f"{name}: expected shape {tuple(e.shape)}, got {tuple(g.shape)}"
        wrong = ~torch.isclose(g, e, rtol=1e-5, atol=1e-3 if name == "boxes" else 1e-6)  # NaN never close
        if wrong.any():
            box, column = (int(v) for v in wrong.nonzero()[0])
            where = ("x1", "y1", "x2", "y2")[column] if name == "boxes" else f"class {column}"
            return f"first difference in {name}: box {box}, {where}"
    return None


def _cell(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def _random_cell(num_boxes: int, num_classes: int, seed: int) -> torch.Tensor:
    """A seeded activated cell: offsets, sides and confidences in [0, 1], class probabilities summing to 1."""
    generator = torch.Generator().manual_seed(seed)
    boxes = 0.1 + 0.8 * torch.rand(num_boxes, 5, generator=generator)  # (B, 5)
    logits = torch.randn(num_classes, generator=generator)
    return torch.cat([boxes.flatten(), torch.softmax(logits, dim=0)])  # (5B + C,)


# The paper's grid: 7 x 7 cells of 64 px (a 448-px image). One box at (row 2, column 5), off the
# diagonal so that row and column cannot be confused; its sides 0.5**2 * 448 = 112 and 0.25**2 * 448 = 28.
_ONE_BOX = _cell([0.25, 0.75, 0.5, 0.25, 0.8, 0.1, 0.6, 0.3])

DECODE_CELL = Exercise(
    name="decode_cell",
    signature="decode_cell(cell, row, col, num_boxes, cell_size, grid_size) -> (boxes Tensor[B, 4], "
    "scores Tensor[B, C])",
    reference=reference_decode_cell,
    cases=[
        Case("one box in the top-left cell", (_ONE_BOX, 0, 0, 1, 64.0, 7),
             hint="centre_x = (col + x) * cell_size = 0.25 * 64 = 16; width = sqrt(w)**2 * S * cell_size = "
             "0.25 * 448 = 112."),
        Case("one box in row 2, column 5", (_ONE_BOX, 2, 5, 1, 64.0, 7),
             hint="the column gives x and the row gives y: centre_x = (5 + 0.25) * 64 = 336, "
             "centre_y = (2 + 0.75) * 64 = 176."),
        Case("two boxes per cell, three classes",
             (_cell([0.5, 0.5, 0.6, 0.3, 0.9, 0.1, 0.2, 0.7, 0.4, 0.2, 0.5, 0.3, 0.2]), 3, 1, 2, 8.0, 16),
             hint="the cell holds B = 2 boxes of 5 numbers each, then the C = 3 class probabilities "
             "that both boxes share: cell[:10].reshape(2, 5), cell[10:]."),
        Case("a box with confidence 0", (_cell([0.5, 0.5, 0.3, 0.3, 0.0, 0.5, 0.5]), 4, 6, 1, 32.0, 7),
             hint="a box the cell does not believe in scores 0 for every class: scores = confidence * P(c)."),
        Case("random cells of the course's model", (_random_cell(2, 3, seed=0), 9, 4, 2, 8.0, 16)),
        Case("three boxes, five classes", (_random_cell(3, 5, seed=1), 1, 6, 3, 20.0, 10)),
    ],
    normalize=_to_pair,
    compare=_compare,
    mistakes=[
        Mistake("x and y are offsets inside the cell: add the cell's column and row first, "
                "centre_x = (col + x) * cell_size, centre_y = (row + y) * cell_size.",
                lambda *a: _variant(*a, offset="none")),
        Mistake("the column gives x and the row gives y: centre_x = (col + x) * cell_size, "
                "centre_y = (row + y) * cell_size.", lambda *a: _variant(*a, offset="swapped")),
        Mistake("the cell predicts the square roots of the sides: square them, "
                "w = sqrt_w ** 2 * S * cell_size.",
                lambda *a: _variant(*a, side="linear")),
        Mistake("the sides are relative to the whole image, not to the cell: multiply by S * cell_size "
                "(the image's size), not by cell_size.", lambda *a: _variant(*a, extent="cell")),
        Mistake("the boxes are xyxy: x1 = centre_x - w / 2, x2 = centre_x + w / 2 (likewise y).",
                lambda *a: _variant(*a, output="cxcywh")),
        Mistake("a box's score is its class-specific confidence: confidence * P(c) (the paper's Eq. 1), "
                "not P(c) alone.", lambda *a: _variant(*a, score="class")),
    ],
    start_hint="boxes = cell[:5 * num_boxes].reshape(num_boxes, 5); probs = cell[5 * num_boxes:]; "
    "centre_x = (col + boxes[:, 0]) * cell_size; w = boxes[:, 2] ** 2 * grid_size * cell_size; "
    "scores = boxes[:, 4:5] * probs.",
)


def check_decode_cell(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(cell, row, col, num_boxes, cell_size, grid_size) -> (boxes, scores)``: YOLO v1's decoding.

    ``cell`` is one activated grid cell, ``Tensor[5B + C]``; the answer is the ``B`` boxes in ``xyxy``
    pixels, centre ``((col + x) * cell_size, (row + y) * cell_size)`` and sides ``sqrt_w ** 2 * S *
    cell_size``, and the ``Tensor[B, C]`` scores ``confidence * P(c)``. Reference:
    ``course_lib.models.yolo.decode_yolo``.
    """
    return run_exercise(DECODE_CELL, fn, verbose=verbose)
