"""Tests of the SCOUTER xSlot-step checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's ``_variant``),
so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib.exercises import check_slot_attention
from course_lib.exercises.base import CheckResult, run_exercise
from course_lib.exercises.scouter import SLOT_STEP, reference_slot_step
from course_lib.models.scouter import Scouter, SlotAttention
from tests.exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def student_step(queries, keys, features, lambda_, attention="sigmoid", scale=True, divide="N", signed=True,
                 transposed=False):
    """The step the way the notebook asks for it, with the switches a student gets wrong."""
    d = queries.shape[1]
    scores = queries @ keys.T / (d**0.5 if scale else 1)
    if attention == "sigmoid":
        A = torch.sigmoid(scores)
    else:  # softmax over the slots (dim 0, slot attention's) or over the tokens (dim 1)
        A = torch.softmax(scores, dim=0 if attention == "slots" else 1)
    U = A @ features
    if divide == "N":
        U = U / keys.shape[0]
    elif divide == "d":
        U = U / d
    logits = U.sum(dim=1) * (lambda_ if signed else 1)
    return (A.T if transposed else A), logits


def loop_step(queries, keys, features, lambda_):
    """Plain Python over slots, tokens and channels, returning numpy arrays."""
    (n, d), N = queries.shape, keys.shape[0]
    q, k, f = queries.tolist(), keys.tolist(), features.tolist()
    A = [[1 / (1 + math.exp(-sum(q[i][c] * k[j][c] for c in range(d)) / math.sqrt(d))) for j in range(N)]
         for i in range(n)]
    logits = [lambda_ * sum(A[i][j] * f[j][c] for j in range(N) for c in range(d)) / N for i in range(n)]
    return np.array(A), np.array(logits)


def einsum_step(queries, keys, features, lambda_):
    """The same with einsum, in float64, as a list."""
    q, k, f = queries.double(), keys.double(), features.double()
    A = torch.einsum("nd,Nd->nN", q, k).div(q.shape[1] ** 0.5).sigmoid()
    return [A, lambda_ * torch.einsum("nN,Nd->n", A, f) / k.shape[0]]


@pytest.mark.parametrize("solution", [student_step, loop_step, einsum_step, reference_slot_step],
                         ids=["torch", "loops", "einsum", "reference"])
def test_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_slot_attention, solution, capsys)


MISTAKES = [
    (lambda *a: student_step(*a, attention="slots"), "not a softmax over the slots"),
    (lambda *a: student_step(*a, attention="tokens"), "not a softmax over the tokens"),
    (lambda *a: student_step(*a, scale=False), "scale the scores before the sigmoid"),
    (lambda *a: student_step(*a, divide="d"), "divides by N, the number of tokens (keys.shape[0]), not by d"),
    (lambda *a: student_step(*a, divide="none"), "divide U = A F by N"),
    (lambda *a: student_step(*a, signed=False), "multiply the scores by lambda_"),
    (lambda *a: student_step(*a, transposed=True), "one row per slot and one column per token, (n, N)"),
]


@pytest.mark.parametrize("wrong, hint", MISTAKES, ids=["softmax over slots", "softmax over tokens",
                                                       "no sqrt(d)", "U / d", "U not divided", "no lambda_",
                                                       "transposed"])
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_slot_attention, wrong, hint, capsys)


def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(SLOT_STEP)


def test_the_first_failure_of_each_known_mistake_shows_its_own_hint():
    for mistake in SLOT_STEP.mistakes:
        result = run_exercise(SLOT_STEP, mistake.wrong, verbose=False)
        assert mistake.hint in result.failures[0], mistake.hint


def test_a_transposed_attention_is_called_so(capsys):
    check_slot_attention(lambda *a: student_step(*a, transposed=True))
    assert "attention: expected shape (2, 3), got (3, 2) (transposed?)" in capsys.readouterr().out


def test_reference_by_hand():
    # Zero queries: every attention is sigmoid(0) = 1/2. Tokens [1, 0], [0, 1], [1, 1]: U = 1/2 * [2, 2] / 3.
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    attention, logits = reference_slot_step(torch.zeros(2, 2), keys, features, 1)
    torch.testing.assert_close(attention, torch.full((2, 3), 0.5))
    torch.testing.assert_close(logits, torch.full((2,), 2 / 3))
    # One slot, query [2, 0], d = 2: scores 2 / sqrt(2) on token 0, 0 on token 1, 4 / sqrt(2) on token 2.
    attention, logits = reference_slot_step(torch.tensor([[2.0, 0.0]]), keys, features, -1)
    expected = torch.sigmoid(torch.tensor([[2.0, 0.0, 4.0]]) / math.sqrt(2))
    torch.testing.assert_close(attention, expected)
    a0, a1, a2 = expected[0].tolist()
    assert float(logits) == pytest.approx(-(a0 * 1 + a1 * 1 + a2 * 2) / 3, abs=1e-6)


def test_the_exercise_is_the_models_xslot_step():
    # SlotAttention.attend with its q MLP, then updates and the xClassifier's sum: the reference on q(w).
    torch.manual_seed(0)
    module = SlotAttention(num_slots=5, dim=8)
    slots, keys, features = torch.randn(1, 5, 8), torch.randn(1, 12, 8), torch.rand(1, 12, 8)
    with torch.no_grad():
        attention = module.attend(slots, keys)[0]  # (5, 12)
        for lambda_ in (1, -1):
            logits = lambda_ * SlotAttention.updates(attention[None], features)[0].sum(dim=1)  # (5,)
            queries = module.q(slots)[0]  # (5, 8)
            expected_attention, expected_logits = reference_slot_step(queries, keys[0], features[0], lambda_)
            torch.testing.assert_close(expected_attention, attention)
            torch.testing.assert_close(expected_logits, logits)


def test_cases_cover_both_signs_several_shapes_and_more_tokens_than_channels():
    shapes = [(case.args[0].shape, case.args[1].shape) for case in SLOT_STEP.cases]
    assert {case.args[3] for case in SLOT_STEP.cases} == {1, -1}
    assert len({q[0] for q, _ in shapes}) >= 3 and len({k[0] for _, k in shapes}) >= 3  # n and N vary
    assert len({q[1] for q, _ in shapes}) >= 3  # d varies
    assert any(k[0] != q[1] for q, k in shapes) and any(k[0] == q[1] for q, k in shapes)  # N != d, N == d
    assert all((case.args[2] >= 0).all() for case in SLOT_STEP.cases)  # F' comes after a ReLU


PAIR = "(attention Tensor[n, N], logits Tensor[n])"


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda *a: student_step(*a)[0], f"expected a pair {PAIR}, got Tensor"),
        (lambda *a: (*student_step(*a), None), f"expected a pair {PAIR}, got a tuple of 3"),
        (lambda *a: (student_step(*a)[0], 1.0), "expected logits as a tensor, got float"),
        (lambda *a: None, "got NoneType"),
        (lambda *a: (student_step(*a)[0], student_step(*a)[1][:, None]),
         "logits: expected shape (2,), got (2, 1)"),
        (lambda *a: (student_step(*a)[0][:, :2], student_step(*a)[1]),
         "attention: expected shape (2, 3), got (2, 2)"),
    ],
    ids=["attention only", "three values", "a float", "None", "logits (n, 1)", "attention (n, 2)"],
)
def test_wrong_types_and_shapes_are_explained(wrong, message, capsys):
    result = check_slot_attention(wrong)
    out = capsys.readouterr().out
    assert not result and message in out and "Traceback" not in out, out


def test_a_nan_is_never_right(capsys):
    result = check_slot_attention(lambda *a: (student_step(*a)[0], torch.full((len(a[0]),), float("nan"))))
    assert not result and "logits: first difference at 0" in capsys.readouterr().out


def test_stub_reports_not_implemented_without_raising(capsys):
    def slot_step_stub(queries, keys, features, lambda_):
        raise NotImplementedError  # your code

    result = check_slot_attention(slot_step_stub)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "not attempted yet" in out and "Hint:" in out and "Traceback" not in out


def test_student_exception_is_reported_as_a_message(capsys):
    result = check_slot_attention(lambda queries, keys, features, lambda_: queries @ keys)  # (n, d) @ (N, d)
    out = capsys.readouterr().out
    assert not result and "raised RuntimeError" in out and "Hint:" in out and "Traceback" not in out


def test_not_a_function_is_explained(capsys):
    result = check_slot_attention(3.0)
    assert not result and "expected a function slot_step(queries Tensor[n, d]" in capsys.readouterr().out


@pytest.mark.parametrize("module", [SlotAttention(5, 4), Scouter()], ids=["SlotAttention", "Scouter"])
def test_the_module_itself_is_not_an_answer(module, capsys):
    result = check_slot_attention(module)
    out = capsys.readouterr().out
    assert not result and f"got the module {type(module).__name__}: write the step yourself" in out
    assert not check_slot_attention(module, verbose=False) and capsys.readouterr().out == ""
