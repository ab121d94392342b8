"""What every exercise checker's tests assert: a right answer passes, each typical mistake is caught,
and a printed case pastes back into the same case."""

import math

import numpy as np
import torch

from course_lib.exercises.base import run_exercise


def assert_passes(check, solution, capsys) -> None:
    """A correct solution passes every case and the checker says so."""
    result = check(solution)
    assert result.passed and result.failures == []
    assert f"All {result.num_cases} cases passed" in capsys.readouterr().out


def assert_catches(check, wrong, hint: str, capsys) -> None:
    """A typical mistake fails, and the report shows the case, what was expected and the hint."""
    result = check(wrong)
    out = capsys.readouterr().out
    assert not result and not result.passed
    assert hint in out, f"expected the hint {hint!r} in:\n{out}"
    assert "expected:" in out and "got:" in out and "Hint:" in out


def assert_every_known_mistake_is_caught(exercise) -> None:
    """Each mistake the exercise knows is caught by some case, with its own hint."""
    for mistake in exercise.mistakes:
        result = run_exercise(exercise, mistake.wrong, verbose=False)
        assert not result, f"{exercise.name}: no case catches the mistake {mistake.hint!r}"
        assert any(mistake.hint in failure for failure in result.failures), mistake.hint


def assert_same(rebuilt, original, where: str = "value") -> None:
    """Equal values of the same type; tensors and arrays also of the same dtype and shape."""
    assert type(rebuilt) is type(original), f"{where}: {type(rebuilt).__name__} != {type(original).__name__}"
    if isinstance(original, torch.Tensor):
        assert rebuilt.dtype == original.dtype and rebuilt.shape == original.shape, where
        assert torch.equal(rebuilt.isnan(), original.isnan()) if original.is_floating_point() else True
        assert torch.equal(rebuilt.nan_to_num(), original.nan_to_num()), where
    elif isinstance(original, np.ndarray):
        assert rebuilt.dtype == original.dtype and rebuilt.shape == original.shape, where
        assert np.array_equal(rebuilt, original, equal_nan=original.dtype.kind == "f"), where
    elif isinstance(original, dict):
        assert list(rebuilt) == list(original), where
        for key in original:
            assert_same(rebuilt[key], original[key], f"{where}[{key!r}]")
    elif isinstance(original, list | tuple):
        assert len(rebuilt) == len(original), where
        for index, (a, b) in enumerate(zip(rebuilt, original, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    elif isinstance(original, float) and math.isnan(original):
        assert math.isnan(rebuilt), where
    else:
        assert rebuilt == original, where


def paste(source: str):
    """What a student gets by pasting ``source`` into a notebook cell (torch and np imported)."""
    return eval(source, {"torch": torch, "np": np})  # noqa: S307 -- our own printed text
