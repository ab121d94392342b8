"""The small framework behind every exercise checker of the course.

An :class:`Exercise` is a reference function, a list of :class:`Case` inputs, and a list of
:class:`Mistake` s: wrong versions of the function that students typically write, each with the
hint that fixes it. :func:`run_exercise` calls the student's function on every case, compares its
answer with the reference, and prints the first failing case (input, expected, got) with a hint.
The input is printed as Python source (:func:`as_source`): pasted into a cell, it rebuilds the case
with the same values and dtypes.
When the student's wrong answer equals what one of the known mistakes computes on that case, the
hint of that mistake is printed; otherwise the hint of the case itself.

A checker never raises: a student's exception is reported as a message, and the
``NotImplementedError`` of an untouched stub as "not attempted yet" (what every checker of the
student edition says). It returns a :class:`CheckResult` that is truthy when every case passes,
so a solution cell can say ``assert check_iou(solution)``.

Writing a checker for a new chapter::

    EXERCISE = Exercise(name="iou", signature="iou(box_a, box_b) -> float", reference=...,
                        cases=[Case("disjoint boxes", ([0, 0, 1, 1], [2, 2, 3, 3]), hint=...)],
                        mistakes=[Mistake("the denominator is the union ...", wrong_iou)],
                        normalize=to_float, compare=compare_floats)

    def check_iou(fn, verbose=True):
        return run_exercise(EXERCISE, fn, verbose=verbose)
"""

from __future__ import annotations

import copy
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from course_lib.exercises.source import as_source, show_answer

# A student's loop that never ends (an NMS that forgets to drop the selected box) is stopped
# after this many seconds per case. Tests lower it.
TIME_LIMIT_SECONDS = 5.0
# What a checker says of a stub that still raises NotImplementedError (the student edition's state).
NOT_ATTEMPTED = "not attempted yet"


@dataclass
class CheckResult:
    """What a checker found: ``passed`` and one message per failing case.

    Truthy when every case passed, so ``assert check_iou(solution)`` works. As the last line of a
    notebook cell it shows nothing more when the checker printed its report (``verbose=True``),
    and the report otherwise: every exercise cell looks the same, with or without a ``;``.
    """

    passed: bool
    failures: list[str] = field(default_factory=list)
    num_cases: int = 0
    printed: bool = field(default=False, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        if self.passed:
            return f"CheckResult(passed=True, {self.num_cases} cases)"
        count = len(self.failures)
        return f"CheckResult(passed=False, {count} failure{'s' * (count != 1)})"

    def report(self) -> str:
        """The text a checker prints: the success line, or the first failure and how many others."""
        if self.passed:
            return f"✓ All {self.num_cases} cases passed."
        lines = self.failures[:1]
        others = len(self.failures) - 1
        if others > 0:
            cases = f"{others} other cases also fail" if others > 1 else "1 other case also fails"
            lines.append(f"  ({cases}; fix this one first.)")
        return "\n".join(lines)

    def _ipython_display_(self) -> None:
        # IPython calls this instead of showing the repr under the cell: the checker's report,
        # unless the checker printed it already (no stray ``CheckResult(...)`` under the message).
        if not self.printed:
            print(self.report())


@dataclass(frozen=True)
class Case:
    """One input of an exercise: a short name, the positional arguments, and a hint.

    The hint is printed when the case fails and no known :class:`Mistake` explains the answer.
    """

    name: str
    args: tuple
    hint: str = ""


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: ``wrong`` computes it (same signature as the student's function)."""

    hint: str
    wrong: Callable[..., Any]


@dataclass(frozen=True)
class Exercise:
    """Everything a checker needs. ``normalize`` turns any acceptable answer (float, tensor, list)
    into one canonical form or raises ``TypeError`` saying what was expected; ``compare`` returns
    ``None`` when ``got`` matches ``expected``, else a short description of the difference."""

    name: str
    signature: str
    reference: Callable[..., Any]
    cases: Sequence[Case]
    normalize: Callable[[Any], Any]
    compare: Callable[[Any, Any], str | None]
    mistakes: Sequence[Mistake] = ()
    start_hint: str = ""
    timeout_hint: str = "does every loop of your function end?"


def run_exercise(exercise: Exercise, fn: Callable[..., Any], verbose: bool = True) -> CheckResult:
    """Run ``fn`` on every case of ``exercise``; print the first failure with a hint, or a success line.

    Args:
        exercise: the cases, the reference and the known mistakes.
        fn: the student's function.
        verbose: print the report (the returned result holds the same messages either way).

    Returns:
        A :class:`CheckResult`; it never raises because of the student's code.
    """
    num_cases = len(exercise.cases)
    if not callable(fn):
        message = f"{exercise.name}: expected a function {exercise.signature}, got {type(fn).__name__}"
        return _report(CheckResult(False, [message], num_cases), verbose)
    failures = []
    for index, case in enumerate(exercise.cases):
        outcome, message = _run_case(exercise, fn, case, f"case {index + 1} of {num_cases}")
        if outcome == "not attempted":
            message = (f"{exercise.name}: {NOT_ATTEMPTED} "
                       "(replace the `raise NotImplementedError` with your code).")
            if exercise.start_hint:
                message += f"\n  Hint: {exercise.start_hint}"
            return _report(CheckResult(False, [message], num_cases), verbose)
        if outcome != "passed":
            failures.append(message)
        if outcome == "timeout":  # the other cases would most likely hang too: stop here
            break
    return _report(CheckResult(not failures, failures, num_cases), verbose)


def _run_case(exercise: Exercise, fn: Callable[..., Any], case: Case, where: str) -> tuple[str, str]:
    """Run one case: ``(outcome, message)``, outcome in passed, failed, timeout, not attempted."""
    expected = exercise.normalize(exercise.reference(*copy.deepcopy(case.args)))
    header = f"✗ {exercise.name}: {where} failed ({case.name})\n    {_call(exercise.name, case.args)}"
    try:
        with _time_limit(TIME_LIMIT_SECONDS):
            raw = fn(*copy.deepcopy(case.args))
    except NotImplementedError:
        return "not attempted", ""
    except _TimeLimit:
        limit = f"did not return within {TIME_LIMIT_SECONDS:g} s"
        return "timeout", f"{header}\n    {limit}\n  Hint: {exercise.timeout_hint}"
    except Exception as error:  # noqa: BLE001 -- any student error becomes a message
        hint = case.hint or "read the error, then run your function on this input by hand."
        return "failed", f"{header}\n    raised {type(error).__name__}: {error}\n  Hint: {hint}"
    try:
        got = exercise.normalize(raw)
    except (TypeError, ValueError) as error:
        return "failed", f"{header}\n    returned {show_answer(raw)}: {error}\n  Hint: {exercise.signature}"
    note = exercise.compare(got, expected)
    if note is None:
        return "passed", ""
    return "failed", (
        f"{header}\n    expected: {show_answer(expected)}\n    got:      {show_answer(got)}"
        f"{f'  ({note})' if note else ''}\n  Hint: {_hint(exercise, case, got, expected)}"
    )


def _hint(exercise: Exercise, case: Case, got: Any, expected: Any) -> str:
    """The hint of the first known mistake that reproduces ``got`` on this case, else the case's."""
    for mistake in exercise.mistakes:
        try:
            wrong = exercise.normalize(mistake.wrong(*copy.deepcopy(case.args)))
        except Exception:  # noqa: BLE001 -- a mistake that crashes on this input explains nothing
            continue
        if exercise.compare(wrong, expected) is not None and exercise.compare(got, wrong) is None:
            return mistake.hint
    return case.hint or "compare your answer with the expected one on this input, by hand."


def _report(result: CheckResult, verbose: bool) -> CheckResult:
    if verbose:
        print(result.report())
        result.printed = True
    return result


# ----------------------------------------------------------------------------- normalize / compare


def to_float(value: Any) -> float:
    """Accept a Python number, a one-element tensor or array; return a float."""
    if isinstance(value, torch.Tensor | np.ndarray | np.generic):
        if np.prod(value.shape, dtype=int) == 1:
            return float(value.item())
        raise TypeError(f"expected one number, got an array of shape {tuple(value.shape)}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def to_index_list(value: Any) -> list[int]:
    """Accept a list, tuple, tensor or array of integer indices; return a list of ints."""
    if isinstance(value, torch.Tensor | np.ndarray):
        if value.ndim != 1:
            raise TypeError(f"expected a 1-D list of indices, got shape {tuple(value.shape)}")
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list of indices, got {type(value).__name__}")
    out = []
    for item in value:
        item = item.item() if isinstance(item, torch.Tensor | np.generic) else item
        if isinstance(item, bool) or not (isinstance(item, int) or float(item).is_integer()):
            raise TypeError(f"expected integer indices, got {item!r}")
        out.append(int(item))
    return out


def to_float_list(value: Any) -> list[float]:
    """Accept a sequence, tensor or array of numbers; return a list of floats."""
    if isinstance(value, torch.Tensor | np.ndarray):
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list of numbers, got {type(value).__name__}")
    return [to_float(item) for item in value]


def compare_floats(got: float, expected: float, atol: float = 1e-5) -> str | None:
    """``None`` if equal within ``atol`` (NaN never matches), else an empty note."""
    return None if abs(got - expected) <= atol else ""


def compare_float_lists(got: list[float], expected: list[float], atol: float = 1e-5) -> str | None:
    if len(got) != len(expected):
        return f"expected {len(expected)} numbers, got {len(got)}"
    return None if all(abs(g - e) <= atol for g, e in zip(got, expected, strict=True)) else ""


# ----------------------------------------------------------------------------- formatting


def _call(name: str, args: tuple) -> str:
    return f"{name}({', '.join(as_source(arg) for arg in args)})"


# ----------------------------------------------------------------------------- time limit


class _TimeLimit(BaseException):
    """A BaseException, so that a student's ``except Exception`` cannot swallow it."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`_TimeLimit` in the block after ``seconds`` (POSIX main thread only, else no limit)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return

    def _stop(signum, frame):
        raise _TimeLimit

    previous = signal.signal(signal.SIGALRM, _stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
