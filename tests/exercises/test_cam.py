"""Tests of the CAM and Grad-CAM checkers: they pass correct solutions and catch typical mistakes.

The wrong answers are written the way students write them (not through the checkers' mistakes), so
these tests also check that the checkers recognize real code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.exercises import CheckResult
from course_lib.exercises.cam import (
    CAM_FROM_WEIGHTS,
    GRAD_CAM_WEIGHTS,
    check_cam_from_weights,
    check_grad_cam_weights,
    reference_cam_from_weights,
    reference_grad_cam_weights,
)
from course_lib.visualization.cam import cam, grad_cam_parts
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


class TinyGAP(nn.Module):
    """A GAP classifier whose last feature map has the input's size: CAM's upsampling is the identity."""

    def __init__(self, channels: int = 5, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(channels, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(images).mean(dim=(2, 3)))


# --------------------------------------------------------------------------- Grad-CAM's weights


@pytest.mark.parametrize(
    "solution",
    [
        reference_grad_cam_weights,
        lambda g: g.sum(dim=(1, 2)) / (g.shape[1] * g.shape[2]),
        lambda g: g.flatten(1).mean(dim=1),
        lambda g: torch.stack([channel.mean() for channel in g]) if len(g) else torch.zeros(0),
        lambda g: g.numpy().mean(axis=(1, 2)),
    ],
    ids=["reference", "sum over h w", "flatten", "loop", "numpy"],
)
def test_grad_cam_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_grad_cam_weights, solution, capsys)


GRAD_CAM_MISTAKES = [
    (lambda g: g.sum(dim=(1, 2)), "the mean of the gradient over the positions"),
    (lambda g: torch.relu(g).mean(dim=(1, 2)), "average the gradient as it is"),
    (lambda g: torch.relu(g.mean(dim=(1, 2))), "not on the weights"),
    (lambda g: g.mean(dim=0), "not over the channels"),
    (lambda g: g.mean(dim=(0, 1)), "not 0 and 1"),
    (lambda g: g.abs().mean(dim=(1, 2)), "not its absolute value"),
]


@pytest.mark.parametrize("wrong, hint", GRAD_CAM_MISTAKES,
                         ids=["sum", "relu first", "relu after", "channels", "first two dims", "abs"])
def test_grad_cam_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_grad_cam_weights, wrong, hint, capsys)


def test_grad_cam_reference_by_hand_and_on_a_gap_network():
    gradients = torch.tensor([[[1.0, -1.0], [2.0, 0.0]], [[-1.0, -2.0], [-3.0, 2.0]]])
    torch.testing.assert_close(reference_grad_cam_weights(gradients), torch.tensor([0.5, -1.0]))
    # On a GAP network d y_c / d A_k = w_ck / (h w) everywhere: the weights are fc's row over h w, and
    # the library's Grad-CAM finds the same from its recorded gradient.
    model, images = TinyGAP(), torch.rand(1, 3, 4, 6, generator=torch.Generator().manual_seed(1))
    activations = model.features(images)
    (gradient,) = torch.autograd.grad(model.fc(activations.mean(dim=(2, 3)))[0, 2], activations)
    expected = reference_grad_cam_weights(gradient[0])
    torch.testing.assert_close(expected, model.fc.weight[2] / 24)
    torch.testing.assert_close(grad_cam_parts(model, "features", images, 2)[1][0], expected)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda g: g.mean(dim=(1, 2), keepdim=True), "one weight per channel, got (2, 1, 1)"),
        (lambda g: g.mean(dim=0), "not over the channels (dim 0)"),
        (lambda g: float(g.mean()), "expected a Tensor[K], one weight per channel, got float"),
    ],
    ids=["keepdim", "channels", "a float"],
)
def test_grad_cam_wrong_shapes_and_types_are_explained(wrong, message, capsys):
    result = check_grad_cam_weights(wrong)
    out = capsys.readouterr().out
    assert not result and message in out, out


# --------------------------------------------------------------------------- CAM's map


def loop_cam(features, fc_weight, class_index):
    out = torch.zeros(features.shape[1:])
    for k in range(features.shape[0]):
        out += fc_weight[class_index, k] * features[k]
    return out


@pytest.mark.parametrize(
    "solution",
    [
        reference_cam_from_weights,
        lambda f, w, c: torch.einsum("k,khw->hw", w[c], f),
        lambda f, w, c: (w[c] @ f.flatten(1)).reshape(f.shape[1:]),
        lambda f, w, c: (w[c][:, None, None] * f).sum(dim=0),
        loop_cam,
        lambda f, w, c: np.tensordot(w.numpy()[c], f.numpy(), axes=1),
    ],
    ids=["reference", "einsum", "matrix product", "broadcast", "loop", "numpy"],
)
def test_cam_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_cam_from_weights, solution, capsys)


def normalized_cam(features, fc_weight, class_index):
    cam_map = (fc_weight[class_index][:, None, None] * features).sum(dim=0)
    return (cam_map - cam_map.min()) / (cam_map.max() - cam_map.min())


CAM_MISTAKES = [
    (lambda f, w, c: (w[:, c][:, None, None] * f).sum(dim=0), "not the column fc_weight[:, c]"),
    (lambda f, w, c: torch.relu((w[c][:, None, None] * f).sum(dim=0)), "CAM's map is signed: no ReLU"),
    (normalized_cam, "no normalization to [0, 1]"),
    (lambda f, w, c: (w[c][:, None, None] * f).sum(dim=0) / (w[c][:, None, None] * f).sum(dim=0).max(),
     "no division by its maximum"),
    (lambda f, w, c: (w[c][:, None, None] * f).mean(dim=0),
     "the sum over the channels of w_ck f_k, not the mean"),
]


@pytest.mark.parametrize("wrong, hint", CAM_MISTAKES, ids=["column", "relu", "min-max", "max", "mean"])
def test_cam_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_cam_from_weights, wrong, hint, capsys)


def test_an_added_bias_is_recognized(capsys):
    bias = torch.tensor([0.3, -0.2, 0.1, 0.4])  # a bias the notebook's model could have, one per class

    def with_bias(features, fc_weight, class_index):
        return torch.einsum("k,khw->hw", fc_weight[class_index], features) + bias[class_index]

    assert not check_cam_from_weights(with_bias)
    out = capsys.readouterr().out
    assert "every position is off by the same -0.2, as if a bias was added; CAM's map has no bias term" in out


def test_cam_reference_by_hand_and_against_the_library():
    features = torch.tensor([[[1.0, 0.0], [2.0, -1.0]], [[0.0, 1.0], [1.0, 1.0]]])
    fc_weight = torch.tensor([[1.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    torch.testing.assert_close(reference_cam_from_weights(features, fc_weight, 1),
                               torch.tensor([[2.0, -1.0], [3.0, -3.0]]))
    torch.testing.assert_close(reference_cam_from_weights(features, fc_weight, 2), 0.5 * features.sum(dim=0))
    model, images = TinyGAP(), torch.rand(1, 3, 4, 6, generator=torch.Generator().manual_seed(2))
    expected = reference_cam_from_weights(model.features(images)[0], model.fc.weight, 1)  # (4, 6)
    torch.testing.assert_close(cam(model, images, 1)[0], expected)
    # The map's mean plus the bias is the class score (Zhou et al. 2016, Sec. 2).
    torch.testing.assert_close(expected.mean() + model.fc.bias[1], model(images)[0, 1])


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda f, w, c: w[c][:, None, None] * f,
         "expected shape (2, 2), the feature map's h x w, got (2, 2, 2)"),
        (lambda f, w, c: (w[c][:, None, None] * f).sum(dim=0, keepdim=True), "got (1, 2, 2)"),
        (lambda f, w, c: float((w[c][:, None, None] * f).sum()),
         "expected a Tensor[h, w], one map, got float"),
    ],
    ids=["no sum", "keepdim", "a float"],
)
def test_cam_wrong_shapes_and_types_are_explained(wrong, message, capsys):
    result = check_cam_from_weights(wrong)
    out = capsys.readouterr().out
    assert not result and message in out, out


# --------------------------------------------------------------------------- both


@pytest.mark.parametrize("exercise", [GRAD_CAM_WEIGHTS, CAM_FROM_WEIGHTS], ids=lambda exercise: exercise.name)
def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint(exercise):
    assert_every_known_mistake_is_caught(exercise)


def test_stubs_report_not_implemented_without_raising(capsys):
    def stub(*args):
        raise NotImplementedError  # your code

    for check in (check_grad_cam_weights, check_cam_from_weights):
        result = check(stub)
        out = capsys.readouterr().out
        assert isinstance(result, CheckResult) and not result
        assert "not attempted yet" in out and "Hint:" in out and "Traceback" not in out


def test_student_exception_is_reported_as_a_message(capsys):
    # torch.mm multiplies matrices only: the row of weights is 1-D.
    result = check_cam_from_weights(lambda f, w, c: torch.mm(w[c], f.flatten(1)).reshape(f.shape[1:]))
    out = capsys.readouterr().out
    assert not result and "raised RuntimeError" in out and "the row fc_weight[1]" in out
    assert "Traceback" not in out
