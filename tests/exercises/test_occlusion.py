"""Tests of the occlusion checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's ``_variant``),
so these tests also check that the checker recognizes real code, including a function that paints
over the image it was given.
"""

from __future__ import annotations

import copy

import pytest
import torch

from course_lib.exercises import CheckResult
from course_lib.exercises.occlusion import (
    OCCLUSION_WINDOW,
    TinyClassifier,
    check_occlusion_window,
    reference_occlusion_window,
    tiny_classifier,
)
from course_lib.visualization.occlusion import occlusion
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes, paste


def student_window(model, image, label, top, left, size, baseline, swap=False, extra=0, answer="drop",
                   fill=None, copy="clone", channels=True, softmax=False):
    """The exercise the way the notebook asks for it, with the switches a student gets wrong."""

    def score(x):
        logits = model(x.unsqueeze(0))[0]
        return (torch.softmax(logits, dim=0) if softmax else logits)[label]

    original = score(image)
    occluded = image.clone() if copy == "clone" else image
    row, col = (left, top) if swap else (top, left)
    value = baseline if fill is None else fill
    if channels:
        occluded[:, row : row + size + extra, col : col + size + extra] = value
    else:
        occluded[row : row + size + extra, col : col + size + extra] = value
    if copy == "alias":
        return float(score(image) - score(occluded))
    drop = original - score(occluded)
    return float({"drop": drop, "occluded": score(occluded), "flipped": -drop}[answer])


def where_window(model, image, label, top, left, size, baseline):
    """A mask and torch.where, both images in one batch, the answer left a 0-d tensor."""
    rows = torch.arange(image.shape[1])[:, None]
    cols = torch.arange(image.shape[2])[None, :]
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)  # (H, W)
    occluded = torch.where(inside, torch.tensor(baseline), image)  # (C, H, W)
    with torch.no_grad():
        scores = model(torch.stack([image, occluded]))[:, label]
    return scores[0] - scores[1]


def clipped_window(model, image, label, top, left, size, baseline):
    """The window's end clipped to the image by hand, the scores taken with .item()."""
    bottom, right = min(top + size, image.shape[1]), min(left + size, image.shape[2])
    occluded = image.detach().clone()
    for channel in range(image.shape[0]):
        occluded[channel, top:bottom, left:right] = baseline
    return model(image[None])[0, label].item() - model(occluded[None])[0, label].item()


@pytest.mark.parametrize("solution",
                         [student_window, where_window, clipped_window, reference_occlusion_window],
                         ids=["clone and slice", "where", "clipped by hand", "reference"])
def test_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_occlusion_window, solution, capsys)


def paints_over_the_image(model, image, label, top, left, size, baseline):
    """Scores the image first, then occludes it in place: the right drop, a changed image."""
    original = model(image[None])[0, label]
    image[:, top : top + size, left : left + size] = baseline
    return float(original - model(image[None])[0, label])


MISTAKES = [
    (lambda *a: student_window(*a, swap=True), "top is a row and left a column"),
    (lambda *a: student_window(*a, extra=-1), "not top:top + size - 1"),
    (lambda *a: student_window(*a, extra=1), "not top:top + size + 1"),
    (lambda *a: student_window(*a, answer="occluded"), "not the occluded score itself"),
    (lambda *a: student_window(*a, answer="flipped"), "positive when hiding the window lowers the score"),
    (lambda *a: student_window(*a, copy="alias"), "occluded = image does not copy the image"),
    (paints_over_the_image, "the image passed in was painted over"),
    (lambda *a: student_window(*a, fill=0.0), "with the baseline argument, not with zeros"),
    (lambda *a: student_window(*a, channels=False), "slices channels and rows"),
    (lambda *a: student_window(*a, softmax=True), "not its softmax probability"),
]


@pytest.mark.parametrize("wrong, hint", MISTAKES, ids=["swapped", "one too small", "one too large",
                                                      "occluded score", "sign", "alias", "in place", "zeros",
                                                      "no channel", "softmax"])
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_occlusion_window, wrong, hint, capsys)


def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(OCCLUSION_WINDOW)


def test_a_changed_image_is_reported_even_with_the_right_number(capsys):
    assert not check_occlusion_window(paints_over_the_image)
    assert "the right number, but the image passed in was changed" in capsys.readouterr().out


def test_a_student_who_paints_over_the_image_leaves_the_cases_intact():
    before = copy.deepcopy([case.args[1] for case in OCCLUSION_WINDOW.cases])
    check_occlusion_window(paints_over_the_image, verbose=False)
    for case, image in zip(OCCLUSION_WINDOW.cases, before, strict=True):
        assert torch.equal(case.args[1], image), case.name
    assert check_occlusion_window(reference_occlusion_window, verbose=False)


def test_reference_by_hand_on_a_linear_model():
    # Global average pooling then the identity: the score of class 0 is the mean of channel 0, so
    # hiding 2 x 2 pixels of value 1 with 0.5 on a 4 x 4 image lowers it by 4 * 0.5 / 16 = 0.125.
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    image = torch.ones(3, 4, 4)
    assert reference_occlusion_window(model, image, 0, 1, 1, 2, 0.5) == pytest.approx(0.125)
    # A window at (3, 3) of side 2 is cut to one pixel: 0.5 / 16.
    assert reference_occlusion_window(model, image, 0, 3, 3, 2, 0.5) == pytest.approx(0.5 / 16)
    assert torch.equal(image, torch.ones(3, 4, 4))  # the reference leaves the image as it was


@pytest.mark.parametrize("size", [2, 4], ids=["windows that tile the image", "windows cut at the border"])
def test_the_reference_is_the_occlusion_map_where_windows_do_not_overlap(size):
    # With stride = window every pixel is under exactly one window, so the map there is that window's drop.
    model = tiny_classifier(0)
    image = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(0))
    drop_map = occlusion(model, image[None], 1, window=size, stride=size, baseline=0.5)[0]  # (6, 6)
    for top in range(0, 6, size):
        for left in range(0, 6, size):
            expected = reference_occlusion_window(model, image, 1, top, left, size, 0.5)
            window = drop_map[top : top + size, left : left + size]
            torch.testing.assert_close(window, torch.full_like(window, expected), rtol=1e-5, atol=1e-6)


def test_the_tiny_classifier_is_seeded_frozen_and_pastes_back():
    model = tiny_classifier(0)
    assert tiny_classifier(0) is model and not model.training
    assert not any(parameter.requires_grad for parameter in model.parameters())
    for mine, again in zip(model.parameters(), TinyClassifier(0).parameters(), strict=True):
        assert torch.equal(mine, again)
    assert not torch.equal(model[0].weight, TinyClassifier(1)[0].weight)
    assert paste(repr(model)) is model
    assert model(torch.rand(2, 3, 5, 5)).shape == (2, 3)


def test_building_the_tiny_classifier_leaves_the_random_state_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    TinyClassifier(2)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda model, image, *rest: model(image[None]), "expected one number, got an array of shape (1, 3)"),
        (lambda *a: str(student_window(*a)), "expected a number, got str"),
    ],
    ids=["every logit", "a string"],
)
def test_wrong_types_are_explained(wrong, message, capsys):
    result = check_occlusion_window(wrong)
    out = capsys.readouterr().out
    assert not result and message in out, out
    assert "Hint: occlusion_window(model, image, label, top, left, size, baseline) -> float" in out


def test_not_a_function_is_reported(capsys):
    assert not check_occlusion_window(0.5)
    assert "expected a function occlusion_window(model, image" in capsys.readouterr().out


def test_stub_reports_not_implemented_without_raising(capsys):
    def occlusion_window(model, image, label, top, left, size, baseline):
        raise NotImplementedError  # your code

    result = check_occlusion_window(occlusion_window)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "not attempted yet" in out and "Hint:" in out and "Traceback" not in out


def test_student_exception_is_reported_as_a_message(capsys):
    # The image fed without its batch dimension: the linear layer gets the wrong size.
    result = check_occlusion_window(lambda model, image, label, *rest: float(model(image)[0, label]))
    out = capsys.readouterr().out
    assert not result and "raised RuntimeError" in out and "Hint:" in out and "Traceback" not in out
