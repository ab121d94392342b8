"""Tests of the YOLO cell-decoding checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's ``_variant``),
so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.exercises import CheckResult, check_decode_cell
from course_lib.exercises.yolo import DECODE_CELL, reference_decode_cell
from course_lib.models.yolo import decode_yolo
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def student_decode(cell, row, col, num_boxes, cell_size, grid_size, add_cell=True, square=True,
                   image_extent=True, swap=False, xyxy=True, with_confidence=True):
    """A loop over the cell's boxes, as the exercise asks for it, with the switches a student gets wrong."""
    probs = cell[5 * num_boxes :]
    boxes, scores = [], []
    for b in range(num_boxes):
        x, y, sqrt_w, sqrt_h, confidence = cell[5 * b : 5 * b + 5].tolist()
        if add_cell:
            cx, cy = ((row + x) * cell_size, (col + y) * cell_size) if swap else ((col + x) * cell_size,
                                                                                 (row + y) * cell_size)
        else:
            cx, cy = x * cell_size, y * cell_size
        w, h = (sqrt_w**2, sqrt_h**2) if square else (sqrt_w, sqrt_h)
        scale = grid_size * cell_size if image_extent else cell_size
        w, h = w * scale, h * scale
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2] if xyxy else [cx, cy, w, h])
        scores.append(confidence * probs if with_confidence else probs)
    return torch.tensor(boxes), torch.stack(scores)


def numpy_decode(cell, row, col, num_boxes, cell_size, grid_size):
    cell = cell.numpy().astype(np.float64)
    boxes, probs = cell[: 5 * num_boxes].reshape(num_boxes, 5), cell[5 * num_boxes :]
    cx, cy = (col + boxes[:, 0]) * cell_size, (row + boxes[:, 1]) * cell_size
    w, h = boxes[:, 2] ** 2 * grid_size * cell_size, boxes[:, 3] ** 2 * grid_size * cell_size
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1), boxes[:, 4:5] * probs


@pytest.mark.parametrize("solution", [student_decode, numpy_decode, reference_decode_cell,
                                      lambda *a: [t.tolist() for t in student_decode(*a)]],
                         ids=["loop", "numpy", "reference", "lists"])
def test_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_decode_cell, solution, capsys)


MISTAKES = [
    (lambda *a: student_decode(*a, add_cell=False), "add the cell's column and row first"),
    (lambda *a: student_decode(*a, swap=True), "the column gives x and the row gives y"),
    (lambda *a: student_decode(*a, square=False), "square them"),
    (lambda *a: student_decode(*a, image_extent=False), "relative to the whole image, not to the cell"),
    (lambda *a: student_decode(*a, xyxy=False), "the boxes are xyxy"),
    (lambda *a: student_decode(*a, with_confidence=False), "not P(c) alone"),
]


@pytest.mark.parametrize("wrong, hint", MISTAKES)
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_decode_cell, wrong, hint, capsys)


def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(DECODE_CELL)


def test_reference_by_hand():
    # Cell (row 2, column 5) of a 7 x 7 grid of 64 px: centre ((5 + 0.25) * 64, (2 + 0.75) * 64) = (336, 176),
    # sides 0.5**2 * 448 = 112 and 0.25**2 * 448 = 28; scores 0.8 * (0.1, 0.6, 0.3).
    cell = torch.tensor([0.25, 0.75, 0.5, 0.25, 0.8, 0.1, 0.6, 0.3])
    boxes, scores = reference_decode_cell(cell, 2, 5, 1, 64.0, 7)
    torch.testing.assert_close(boxes, torch.tensor([[280.0, 162.0, 392.0, 190.0]]))
    torch.testing.assert_close(scores, torch.tensor([[0.08, 0.48, 0.24]]))


def test_reference_agrees_with_decode_yolo_and_a_plain_numpy_decoding_on_a_whole_grid():
    generator = torch.Generator().manual_seed(3)
    S, B, C, cell_size = 5, 2, 4, 16.0
    output = torch.cat([torch.rand(S, S, 5 * B, generator=generator),
                        torch.softmax(torch.randn(S, S, C, generator=generator), dim=-1)], dim=-1)
    boxes, confidences, probs = decode_yolo(output, B, cell_size)
    for row in range(S):
        for col in range(S):
            mine = slice((row * S + col) * B, (row * S + col + 1) * B)
            got_boxes, got_scores = reference_decode_cell(output[row, col], row, col, B, cell_size, S)
            torch.testing.assert_close(got_boxes, boxes[mine])
            torch.testing.assert_close(got_scores, confidences[mine, None] * probs[mine])
            plain_boxes, plain_scores = numpy_decode(output[row, col], row, col, B, cell_size, S)
            np.testing.assert_allclose(got_boxes.numpy(), plain_boxes, rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(got_scores.numpy(), plain_scores, rtol=1e-5, atol=1e-7)


def test_cases_tell_rows_from_columns():
    assert any(case.args[1] != case.args[2] for case in DECODE_CELL.cases)
    assert any(case.args[3] > 1 for case in DECODE_CELL.cases)  # several boxes per cell


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda *a: student_decode(*a)[0], "expected a pair (boxes, scores), got Tensor"),
        (lambda *a: (student_decode(*a)[0].flatten(), student_decode(*a)[1]), "expected boxes Tensor[B, 4]"),
        (lambda *a: (student_decode(*a)[0], student_decode(*a)[1].flatten()), "expected scores Tensor[B, C]"),
        (lambda *a: (student_decode(*a)[0], student_decode(*a)[1][:, :1]), "scores: expected shape (1, 3)"),
        (lambda *a: ("boxes", "scores"), "expected boxes Tensor[B, 4] as a Tensor, got str"),
    ],
    ids=["boxes only", "flat boxes", "flat scores", "one class", "not tensors"],
)
def test_wrong_shapes_are_explained(wrong, message, capsys):
    result = check_decode_cell(wrong)
    out = capsys.readouterr().out
    assert not result and message in out, out


def test_stub_reports_not_implemented_without_raising(capsys):
    def decode_cell(cell, row, col, num_boxes, cell_size, grid_size):
        raise NotImplementedError  # your code

    result = check_decode_cell(decode_cell)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "not attempted yet" in out and "Hint:" in out and "Traceback" not in out


def test_student_exception_is_reported_as_a_message(capsys):
    result = check_decode_cell(lambda cell, *rest: cell.reshape(-1, 5))  # 5B + C is not a multiple of 5
    out = capsys.readouterr().out
    assert not result and "raised RuntimeError" in out and "Hint:" in out and "Traceback" not in out
