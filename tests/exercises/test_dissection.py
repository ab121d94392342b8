"""Tests of the GAN dissection unit-IoU checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's ``_variant``),
so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from course_lib.exercises.base import CheckResult, run_exercise
from course_lib.exercises.dissection import UNIT_IOU, _case, check_unit_iou, reference_unit_iou
from course_lib.visualization.dissection import unit_concept_iou
from tests.exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def student_iou(unit_maps, threshold, concept_masks, mode="bilinear", align_corners=False, per_image=False,
                threshold_first=False, at_least=False, downsample=False, concept_area=False):
    """The IoU the way the notebook asks for it, in torch, with the switches a student gets wrong."""
    size = concept_masks.shape[-2:]
    maps, masks = unit_maps[:, None].float(), concept_masks.bool()
    if downsample:
        masks = F.interpolate(masks[:, None].float(), size=unit_maps.shape[-2:], mode="nearest")[:, 0].bool()
        active = unit_maps > threshold
    elif threshold_first:
        active = F.interpolate((maps > threshold).float(), size=size, mode="bilinear")[:, 0] > 0.5
    else:
        corners = {"align_corners": align_corners} if mode == "bilinear" else {}
        up = F.interpolate(maps, size=size, mode=mode, **corners)[:, 0]
        active = up >= threshold if at_least else up > threshold
    inter = (active & masks).flatten(1).sum(1).float()
    union = masks.flatten(1).sum(1).float() if concept_area else (active | masks).flatten(1).sum(1).float()
    if per_image:
        return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(union)).mean().item()
    return (inter.sum() / union.sum()).item() if union.sum() > 0 else 0.0


def numpy_iou(unit_maps, threshold, concept_masks):
    """Bilinear upsampling with half-pixel centres written out in numpy, pixel by pixel of each axis."""
    import numpy as np

    maps, masks = unit_maps.double().numpy(), concept_masks.numpy()
    (h, w), (H, W) = maps.shape[1:], masks.shape[1:]

    def weights(n_in, n_out):  # (n_out, n_in): each output coordinate's two source weights
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, None)
        low = np.minimum(np.floor(src).astype(int), n_in - 1)
        high, frac = np.minimum(low + 1, n_in - 1), src - np.floor(src)
        matrix = np.zeros((n_out, n_in))
        np.add.at(matrix, (np.arange(n_out), low), 1 - frac)
        np.add.at(matrix, (np.arange(n_out), high), frac)
        return matrix

    up = np.einsum("Hh,bhw,Ww->bHW", weights(h, H), maps, weights(w, W))
    active = up > threshold
    union = (active | masks).sum()
    return float((active & masks).sum() / union) if union else 0.0


@pytest.mark.parametrize("solution", [student_iou, numpy_iou, reference_unit_iou],
                         ids=["torch", "numpy", "reference"])
def test_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_unit_iou, solution, capsys)


def test_reference_is_the_library_function_on_every_case():
    for case in UNIT_IOU.cases:
        maps, threshold, masks = case.args
        library = unit_concept_iou(maps[:, None], masks[:, None], torch.tensor([threshold]))[0, 0]
        assert reference_unit_iou(*case.args) == float(library)


def test_a_solution_in_float64_passes_too(capsys):
    assert_passes(check_unit_iou, lambda m, t, c: student_iou(m.double(), t, c), capsys)


MISTAKES = [
    (lambda *a: student_iou(*a, per_image=True), "not the mean of per-image IoUs"),
    (lambda *a: student_iou(*a, mode="nearest"), "not by nearest neighbour"),
    (lambda *a: student_iou(*a, align_corners=True), "use align_corners=False"),
    (lambda *a: student_iou(*a, threshold_first=True), "upsample the unit's map first, then threshold it"),
    (lambda *a: student_iou(*a, at_least=True), "use > threshold, not >="),
    (lambda *a: student_iou(*a, downsample=True), "do not downsample the concept masks"),
    (lambda *a: student_iou(*a, concept_area=True), "not by the concept's area alone"),
]


@pytest.mark.parametrize("wrong, hint", MISTAKES, ids=["per image", "nearest", "align corners",
                                                       "threshold first", ">=", "downsample", "no union"])
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_unit_iou, wrong, hint, capsys)


def test_every_known_mistake_is_caught():
    assert_every_known_mistake_is_caught(UNIT_IOU)


def test_only_the_tie_case_tells_greater_from_greater_or_equal():
    failing = [case.name for case in UNIT_IOU.cases
               if student_iou(*case.args, at_least=True) != pytest.approx(reference_unit_iou(*case.args))]
    assert failing == ["ReLU maps, many exactly 0, threshold 0"]


def test_cases_cover_the_edge_cases():
    shapes = {(case.args[0].shape[1], case.args[2].shape[1]) for case in UNIT_IOU.cases}
    assert shapes == {(4, 16), (8, 16)} and len({len(case.args[0]) for case in UNIT_IOU.cases}) >= 3
    empty_concept = [case for case in UNIT_IOU.cases if not case.args[2].any()]
    never_fires = [case for case in UNIT_IOU.cases if not (case.args[0] > case.args[1]).any()]
    assert empty_concept and never_fires
    assert any(case.args[2].any() for case in never_fires)  # a concept there, but the unit is off


def test_case_inputs_are_seeded():
    first, second = _case(0, B=3, h=8), _case(0, B=3, h=8)
    assert torch.equal(first[0], second[0]) and first[1] == second[1] and torch.equal(first[2], second[2])


def test_nan_for_an_empty_union_is_explained(capsys):
    def divides_zero_by_zero(maps, threshold, masks):
        active = F.interpolate(maps[:, None], size=masks.shape[-2:], mode="bilinear")[:, 0] > threshold
        return ((active & masks).sum() / (active | masks).sum()).item()

    result = check_unit_iou(divides_zero_by_zero)
    out = capsys.readouterr().out
    assert not result and "not a finite number" in out and "not NaN" in out


@pytest.mark.parametrize("wrong, message", [
    (lambda m, t, c: "0.5", "expected a number, got str"),
    (lambda m, t, c: torch.zeros(len(m)), "expected one number, got an array of shape"),
    (lambda m, t, c: None, "expected a number, got NoneType"),
], ids=["str", "per-image tensor", "None"])
def test_wrong_types_fail_cleanly(wrong, message, capsys):
    result = check_unit_iou(wrong)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result and message in out and "Traceback" not in out


def test_student_exception_is_reported_as_a_message(capsys):
    result = check_unit_iou(lambda maps, threshold, masks: maps.view(-1, 5))  # 48 values, not a multiple of 5
    out = capsys.readouterr().out
    assert not result and "raised RuntimeError" in out and "Hint:" in out and "Traceback" not in out


def test_stub_reports_not_implemented_without_raising(capsys):
    def unit_iou_stub(unit_maps, threshold, concept_masks):
        raise NotImplementedError  # your code

    result = check_unit_iou(unit_iou_stub)
    out = capsys.readouterr().out
    assert not result and "not attempted yet" in out and "Hint:" in out


def test_not_a_function_is_explained(capsys):
    result = check_unit_iou(0.5)
    assert not result and "expected a function unit_iou(unit_maps" in capsys.readouterr().out


def test_quiet_run_returns_the_same_verdict():
    assert run_exercise(UNIT_IOU, reference_unit_iou, verbose=False)
    assert not check_unit_iou(lambda *a: student_iou(*a, mode="nearest"), verbose=False)
