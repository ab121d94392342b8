"""The visualization exercises' checkers pass the reference and catch each known mistake."""

import torch

from course_lib.exercises.visualization import (
    ASCENT_STEP,
    RECEPTIVE_FIELD,
    check_ascent_step,
    check_receptive_field,
    reference_ascent_step,
    reference_receptive_field,
)
from course_lib.visualization.receptive_field import receptive_field


def test_the_references_pass():
    assert check_receptive_field(reference_receptive_field, verbose=False)
    assert check_ascent_step(reference_ascent_step, verbose=False)


def test_every_known_mistake_is_caught_with_its_own_hint(capsys):
    for exercise, check in ((RECEPTIVE_FIELD, check_receptive_field), (ASCENT_STEP, check_ascent_step)):
        for mistake in exercise.mistakes:
            result = check(mistake.wrong, verbose=True)
            assert not result, mistake.hint
            assert mistake.hint.split(":")[0] in capsys.readouterr().out


def test_a_stub_is_reported_not_raised(capsys):
    def stub(*args):
        raise NotImplementedError("your code here")

    assert not check_receptive_field(stub)
    assert not check_ascent_step(stub)
    assert "not attempted yet" in capsys.readouterr().out


def test_the_reference_receptive_field_agrees_with_the_library():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 1, 3, padding=1),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(1, 1, 3, padding=1),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(1, 1, 3, padding=1),
    )
    rf = receptive_field(model, "4")
    assert reference_receptive_field([(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)]) == (rf.size, rf.stride)


def test_a_wrong_shape_is_reported():
    assert not check_ascent_step(lambda image, gradient, weight, lr: float(image.sum()), verbose=False)
    assert not check_receptive_field(lambda layers: 5, verbose=False)
