"""Tests of the FPN top-down merge checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's ``_variant``),
so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from course_lib.exercises import CheckResult, check_top_down_merge
from course_lib.exercises.fpn import TOP_DOWN_MERGE, reference_top_down_merge
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def student_merge(coarser, lateral):
    return lateral + F.interpolate(coarser, size=lateral.shape[-2:], mode="nearest")


def upsample_then_crop(coarser, lateral):
    """2x by repeating rows and columns, then cut to the lateral's size: the same as nearest to that size."""
    upsampled = coarser.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # (B, D, 2h, 2w)
    return lateral + upsampled[..., : lateral.shape[2], : lateral.shape[3]]


def upsample_module(coarser, lateral):
    return lateral + nn.Upsample(size=tuple(lateral.shape[-2:]), mode="nearest")(coarser)


@pytest.mark.parametrize("solution", [student_merge, upsample_then_crop, upsample_module,
                                      reference_top_down_merge, lambda c, l: student_merge(c, l).numpy()],
                         ids=["interpolate", "repeat and crop", "nn.Upsample", "reference", "numpy"])
def test_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_top_down_merge, solution, capsys)


MISTAKES = [
    (lambda c, l: torch.cat([l, F.interpolate(c, size=l.shape[-2:], mode="nearest")], dim=1),
     "concatenating them is U-Net's merge"),
    (lambda c, l: l + F.interpolate(c, size=l.shape[-2:], mode="bilinear"), "not bilinear interpolation"),
    (lambda c, l: c + F.interpolate(l, size=c.shape[-2:]), "not the lateral down to the coarser"),
    (lambda c, l: F.interpolate(c, size=l.shape[-2:], mode="nearest"), "add the lateral map"),
]


@pytest.mark.parametrize("wrong, hint", MISTAKES,
                         ids=["concatenation", "bilinear", "downsampling", "no lateral"])
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_top_down_merge, wrong, hint, capsys)


def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(TOP_DOWN_MERGE)


def test_a_fixed_scale_factor_fails_on_the_odd_case_only_with_its_hint(capsys):
    result = check_top_down_merge(lambda c, l: l + F.interpolate(c, scale_factor=2, mode="nearest"))
    out = capsys.readouterr().out
    assert not result and len(result.failures) == 1
    assert "odd sizes: 3 x 3 onto 5 x 5" in out and "raised RuntimeError" in out
    assert "upsample to the lateral's own size" in out and "Traceback" not in out


@pytest.mark.parametrize("downsample", [lambda l: F.max_pool2d(l, 2), lambda l: l[..., ::2, ::2]],
                         ids=["max pooling", "striding"])
def test_any_downsampling_of_the_lateral_is_explained(downsample, capsys):
    hint = "do not downsample the lateral"
    assert_catches(check_top_down_merge, lambda c, l: c + downsample(l), hint, capsys)


def test_reference_by_hand():
    coarser = torch.tensor([[1.0, 2.0], [3.0, 4.0]])[None, None]
    lateral = torch.full((1, 1, 4, 4), 10.0)
    expected = torch.tensor([[11.0, 11, 12, 12], [11, 11, 12, 12], [13, 13, 14, 14], [13, 13, 14, 14]])
    torch.testing.assert_close(reference_top_down_merge(coarser, lateral), expected[None, None])
    # Odd sizes: nearest from 3 to 5 takes the rows and columns 0, 0, 1, 1, 2.
    coarser = torch.arange(9.0).reshape(1, 1, 3, 3)
    got = reference_top_down_merge(coarser, torch.zeros(1, 1, 5, 5))
    torch.testing.assert_close(got[0, 0, :, 0], torch.tensor([0.0, 0, 3, 3, 6]))


def test_cases_include_odd_sizes_and_several_images_and_channels():
    shapes = [(tuple(coarser.shape), tuple(lateral.shape)) for coarser, lateral in
              (case.args for case in TOP_DOWN_MERGE.cases)]
    assert ((1, 1, 3, 3), (1, 1, 5, 5)) in shapes
    assert any(coarser[0] > 1 and coarser[1] > 1 for coarser, _ in shapes)
    assert any(coarser[2] != coarser[3] for coarser, _ in shapes)  # not square


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda c, l: student_merge(c, l)[0], "expected a Tensor[B, D, H, W], got shape"),
        (lambda c, l: student_merge(c, l)[..., :-1], "(the lateral's), got"),
        (lambda c, l: student_merge(c, l).tolist(), "expected a Tensor[B, D, H, W], got list"),
    ],
    ids=["batch dimension dropped", "one column short", "a list"],
)
def test_wrong_shapes_are_explained(wrong, message, capsys):
    result = check_top_down_merge(wrong)
    out = capsys.readouterr().out
    assert not result and message in out, out


def test_stub_reports_not_implemented_without_raising(capsys):
    def top_down_merge(coarser, lateral):
        raise NotImplementedError  # your code

    result = check_top_down_merge(top_down_merge)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "not attempted yet" in out and "Hint:" in out and "Traceback" not in out


def test_student_exception_is_reported_as_a_message(capsys):
    result = check_top_down_merge(lambda coarser, lateral: coarser + lateral)  # different sizes
    out = capsys.readouterr().out
    assert not result and "raised RuntimeError" in out and "Hint:" in out and "Traceback" not in out
