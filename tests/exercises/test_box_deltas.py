"""Tests of the box-delta decoding checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's ``_variant``),
so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision.models.detection._utils as torchvision_utils

from course_lib.boxes import BoxCoder
from course_lib.exercises import CheckResult, check_decode_deltas
from course_lib.exercises.box_deltas import DECODE_DELTAS, reference_decode_deltas
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def student_decode(deltas, boxes, use_exp=True, centre=True, swap_size=False, offset_by="own",
                   to_xyxy=True, half=True):
    """Decoding the way the notebook's exercise asks for it, with the switches a student gets wrong."""
    dx, dy, dw, dh = deltas[:, 0], deltas[:, 1], deltas[:, 2], deltas[:, 3]
    pw = boxes[:, 2] - boxes[:, 0]
    ph = boxes[:, 3] - boxes[:, 1]
    px = boxes[:, 0] + pw / 2 if centre else boxes[:, 0]
    py = boxes[:, 1] + ph / 2 if centre else boxes[:, 1]
    gw = pw * torch.exp(dw) if use_exp else pw * dw
    gh = ph * torch.exp(dh) if use_exp else ph * dh
    if swap_size:
        gw, gh = ph * torch.exp(dw), pw * torch.exp(dh)
    if offset_by == "own":
        gx, gy = pw * dx + px, ph * dy + py
    elif offset_by == "swapped":
        gx, gy = ph * dx + px, pw * dy + py
    elif offset_by == "new":
        gx, gy = gw * dx + px, gh * dy + py
    else:
        gx, gy = px + dx, py + dy
    if not to_xyxy:
        return torch.stack([gx, gy, gw, gh], dim=1)
    factor = 0.5 if half else 1.0
    return torch.stack([gx - factor * gw, gy - factor * gh, gx + factor * gw, gy + factor * gh], dim=1)


def numpy_decode(deltas, boxes):
    deltas, boxes = deltas.numpy(), boxes.numpy()
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx = boxes[:, 0] + widths / 2 + widths * deltas[:, 0]
    cy = boxes[:, 1] + heights / 2 + heights * deltas[:, 1]
    w, h = widths * np.exp(deltas[:, 2]), heights * np.exp(deltas[:, 3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def torchvision_decode(deltas, boxes):
    return torchvision_utils.BoxCoder((1.0, 1.0, 1.0, 1.0)).decode_single(deltas, boxes)


@pytest.mark.parametrize("solution",
                         [student_decode, numpy_decode, torchvision_decode, reference_decode_deltas],
                         ids=["loops-free torch", "numpy", "torchvision", "reference"])
def test_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_decode_deltas, solution, capsys)


MISTAKES = [
    (lambda d, b: student_decode(d, b, use_exp=False), "not pw * dw"),
    (lambda d, b: student_decode(d, b, centre=False), "move the centre, not the top-left corner"),
    (lambda d, b: student_decode(d, b, swap_size=True), "width with width, height with height"),
    (lambda d, b: student_decode(d, b, offset_by="swapped"), "dx is in units of the proposal's width"),
    (lambda d, b: student_decode(d, b, offset_by="new"), "not with the new size Gw, Gh"),
    (lambda d, b: student_decode(d, b, offset_by="none"), "do not add them as pixels"),
    (lambda d, b: student_decode(d, b, to_xyxy=False), "the answer is xyxy"),
    (lambda d, b: student_decode(d, b, half=False), "half the width from the centre"),
]


@pytest.mark.parametrize("wrong, hint", MISTAKES)
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_decode_deltas, wrong, hint, capsys)


def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(DECODE_DELTAS)


def test_reference_by_hand_and_against_torchvision():
    # Box (10, 20, 50, 40): centre (30, 30), 40 x 20. dx = 0.5 -> centre x 50; dw = log 2 -> width 80.
    deltas = torch.tensor([[0.5, 0.0, math.log(2.0), 0.0]])
    expected = [[10.0, 20.0, 90.0, 40.0]]
    torch.testing.assert_close(reference_decode_deltas(deltas, torch.tensor([[10.0, 20, 50, 40]])),
                               torch.tensor(expected))
    for case in DECODE_DELTAS.cases:
        torch.testing.assert_close(reference_decode_deltas(*case.args), torchvision_decode(*case.args))


def test_cases_cover_empty_and_degenerate_boxes_and_stay_below_the_clamp():
    deltas_and_boxes = [case.args for case in DECODE_DELTAS.cases]
    assert any(len(boxes) == 0 for _, boxes in deltas_and_boxes)
    assert any(((boxes[:, 2] - boxes[:, 0]) == 0).any() for _, boxes in deltas_and_boxes if len(boxes))
    clamp = BoxCoder().bbox_xform_clip
    assert all(deltas[:, 2:].abs().max() < clamp for deltas, _ in deltas_and_boxes if len(deltas))
    # So a solution without the clamp agrees with the reference on every case.
    for deltas, boxes in deltas_and_boxes:
        assert reference_decode_deltas(deltas, boxes).shape == (len(boxes), 4)
        assert torch.isfinite(reference_decode_deltas(deltas, boxes)).all()


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda d, b: student_decode(d, b).flatten(),
         "expected a Tensor[N, 4] (one xyxy box per row), got shape"),
        (lambda d, b: student_decode(d, b).view(-1, 2, 2), "got shape"),
        (lambda d, b: student_decode(d, b).T, "got shape (4, 1)"),
        (lambda d, b: student_decode(d, b)[:1], "expected shape (6, 4), got (1, 4)"),
        (lambda d, b: "boxes", "expected a Tensor[N, 4], got str"),
    ],
    ids=["flat", "N x 2 x 2", "transposed", "first row only", "not a tensor"],
)
def test_wrong_shapes_are_explained(wrong, message, capsys):
    result = check_decode_deltas(wrong)
    out = capsys.readouterr().out
    assert not result and message in out, out


def test_stub_reports_not_implemented_without_raising(capsys):
    def decode_deltas(deltas, boxes):
        raise NotImplementedError  # your code

    result = check_decode_deltas(decode_deltas)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "not attempted yet" in out and "Hint:" in out and "Traceback" not in out


def test_student_exception_is_reported_as_a_message(capsys):
    result = check_decode_deltas(lambda d, b: d @ b)
    out = capsys.readouterr().out
    assert not result and "raised" in out and "Hint:" in out
