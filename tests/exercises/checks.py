"""What every exercise checker's tests assert: a right answer passes, each typical mistake is caught."""

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
