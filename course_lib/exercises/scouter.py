"""Checker for the SCOUTER chapter's exercise: one xSlot step, from queries to class scores.

SCOUTER (Li et al., ICCV 2021, Sec. 3) gives each class a slot; the slot's attention over the image
is both its explanation and the source of its score. The student writes
``slot_step(queries, keys, features, lambda_)``: ``queries`` the ``n`` slots' queries ``Q = q(w)``,
a ``Tensor[n, d]``; ``keys`` the ``N`` tokens' keys ``K``, a ``Tensor[N, d]``; ``features`` the
tokens ``F'``, a ``Tensor[N, d]`` (the values, >= 0 after a ReLU); ``lambda_`` +1 (SCOUTER+) or -1
(SCOUTER-). The answer is ``(attention Tensor[n, N], logits Tensor[n])``::

    A = sigmoid(Q K^T / sqrt(d))      one row per slot, one column per token, each entry in (0, 1)
    U = A F' / N                      each slot's attention-weighted mean of the tokens, (n, d)
    logits = lambda_ * U.sum(dim=1)   the xClassifier: the evidence the slot covers, signed

The sigmoid, not slot attention's softmax over the slots (Locatello et al. 2020): slots do not
compete for a token, each class may claim or ignore any region on its own.

Reference: ``SlotAttention.attend`` (with the queries given) and ``SlotAttention.updates`` of
``course_lib.models.scouter``, and ``Scouter.explain``'s sum; the exercise works on plain tensors,
so the student writes the step itself rather than calling the module.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise
from course_lib.models.scouter import SlotAttention

SIGNATURE = ("slot_step(queries Tensor[n, d], keys Tensor[N, d], features Tensor[N, d], lambda_) -> "
             "(attention Tensor[n, N], logits Tensor[n])")


def reference_slot_step(slots_queries: Tensor, keys: Tensor, features: Tensor,
                        lambda_: int = 1) -> tuple[Tensor, Tensor]:
    """The expected answer: ``(A Tensor[n, N], logits Tensor[n])`` of one xSlot step, as the model computes.

    Args:
        slots_queries: Tensor[n, d], ``Q = q(w)``.
        keys: Tensor[N, d], ``K``.
        features: Tensor[N, d], ``F'``.
        lambda_: +1 (SCOUTER+) or -1 (SCOUTER-).
    """
    d = slots_queries.shape[1]  # channels
    attention = torch.sigmoid(slots_queries @ keys.T / math.sqrt(d))  # (n, N)
    update = SlotAttention.updates(attention[None], features[None])[0]  # (n, d), A F' / N
    return attention, lambda_ * update.sum(dim=1)  # (n, N), (n,)


def _variant(queries: Tensor, keys: Tensor, features: Tensor, lambda_: int, activation: str = "sigmoid",
             scale: bool = True, divide: str = "N", signed: bool = True,
             transpose: bool = False) -> tuple[Tensor, Tensor]:
    """The step written out, with switches that reproduce the typical mistakes."""
    d, N = queries.shape[1], len(keys)  # channels, tokens
    scores = queries @ keys.T / (math.sqrt(d) if scale else 1.0)  # (n, N)
    attention = {"sigmoid": torch.sigmoid(scores), "softmax over slots": scores.softmax(dim=0),
                 "softmax over tokens": scores.softmax(dim=1)}[activation]  # (n, N)
    update = attention @ features / {"N": N, "d": d, "none": 1}[divide]  # (n, d)
    logits = (lambda_ if signed else 1) * update.sum(dim=1)  # (n,)
    return (attention.T if transpose else attention), logits


def _to_pair(value: Any) -> tuple[Tensor, Tensor]:
    """Accept ``(attention, logits)`` as tensors or arrays; return them as float64 tensors."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        kind = f"a {type(value).__name__} of {len(value)}" if isinstance(value, tuple | list) else (
            type(value).__name__)
        raise TypeError(f"expected a pair (attention Tensor[n, N], logits Tensor[n]), got {kind}")
    pair = []
    for name, item in zip(("attention", "logits"), value, strict=True):
        if isinstance(item, np.ndarray):
            item = torch.as_tensor(item)
        if not isinstance(item, Tensor):
            raise TypeError(f"expected {name} as a tensor, got {type(item).__name__}")
        pair.append(item.detach().to(torch.float64))
    return pair[0], pair[1]


def _compare(got: tuple[Tensor, Tensor], expected: tuple[Tensor, Tensor]) -> str | None:
    for name, mine, theirs in zip(("attention", "logits"), got, expected, strict=True):
        if mine.shape != theirs.shape:
            note = f"{name}: expected shape {tuple(theirs.shape)}, got {tuple(mine.shape)}"
            if name == "attention" and mine.shape == theirs.shape[::-1]:
                note += " (transposed?)"
            return note
        wrong = ~torch.isclose(mine, theirs, rtol=1e-4, atol=1e-6)  # float32 answers; NaN never matches
        if wrong.any():
            index = tuple(int(v) for v in wrong.nonzero()[0])
            return f"{name}: first difference at {index if len(index) > 1 else index[0]}"
    return None


def _case(seed: int, n: int, N: int, d: int, key_scale: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """Seeded ``(queries, keys, features)``, rounded to 2 decimals so that they read well; features >= 0."""
    generator = torch.Generator().manual_seed(seed)
    queries = torch.randn(n, d, generator=generator)
    keys = key_scale * torch.randn(N, d, generator=generator)
    features = 2 * torch.rand(N, d, generator=generator)  # F' >= 0, after the ReLU
    return tuple((value * 100).round() / 100 for value in (queries, keys, features))


SLOT_STEP = Exercise(
    name="slot_step",
    signature=SIGNATURE,
    reference=reference_slot_step,
    cases=[
        Case("zero queries, by hand",
             (torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]),
              torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 1),
             hint="Q K^T = 0, so every attention is sigmoid(0) = 0.5; U = 0.5 * (sum of the 3 tokens) / 3 "
             "= [1/3, 1/3] for both slots, and each logit is 1/3 + 1/3 = 2/3."),
        Case("SCOUTER+: 3 slots, 6 tokens, 4 channels", (*_case(0, 3, 6, 4), 1),
             hint="A = sigmoid(Q @ K.T / sqrt(d)), (n, N); U = A @ F / N, (n, d); "
             "logits = lambda_ * U.sum(dim=1), (n,)."),
        Case("SCOUTER-: 5 slots, 9 tokens, 8 channels", (*_case(1, 5, 9, 8), -1),
             hint="with lambda_ = -1 every logit changes sign: the class whose slot finds least wins."),
        Case("SCOUTER-: as many tokens as channels", (*_case(2, 2, 4, 4, key_scale=2.0), -1)),
        Case("one slot", (*_case(3, 1, 5, 3), 1),
             hint="one slot still has its own sigmoid attention over the 5 tokens: A is (1, 5)."),
        Case("large keys, 16 tokens of 6 channels", (*_case(4, 4, 16, 6, key_scale=3.0), 1)),
    ],
    normalize=_to_pair,
    compare=_compare,
    mistakes=[
        Mistake("SCOUTER's attention is a sigmoid of each entry, A = sigmoid(Q K^T / sqrt(d)), not a softmax "
                "over the slots (that is slot attention's, Locatello et al. 2020): slots do not compete for "
                "a token.", lambda *a: _variant(*a, activation="softmax over slots")),
        Mistake("the attention is a sigmoid of each entry, not a softmax over the tokens: a slot may attend "
                "to many tokens, or to none, each entry in (0, 1) on its own.",
                lambda *a: _variant(*a, activation="softmax over tokens")),
        Mistake("scale the scores before the sigmoid: A = sigmoid(Q K^T / sqrt(d)), d the channels "
                "(queries.shape[1]).", lambda *a: _variant(*a, scale=False)),
        Mistake("U = A F / N divides by N, the number of tokens (keys.shape[0]), not by d, the channels: "
                "U is a mean over the image.", lambda *a: _variant(*a, divide="d")),
        Mistake("divide U = A F by N, the number of tokens: U is each slot's mean of the tokens, so a "
                "score does not grow with the image.", lambda *a: _variant(*a, divide="none")),
        Mistake("multiply the scores by lambda_: logits = lambda_ * U.sum(dim=1); with lambda_ = -1 "
                "(SCOUTER-) every score changes sign.", lambda *a: _variant(*a, signed=False)),
        Mistake("attention has one row per slot and one column per token, (n, N): Q @ K.T, not K @ Q.T.",
                lambda *a: _variant(*a, transpose=True)),
    ],
    start_hint="d = queries.shape[1]; A = torch.sigmoid(queries @ keys.T / d ** 0.5); "
    "U = A @ features / keys.shape[0]; return A, lambda_ * U.sum(dim=1).",
)


def check_slot_attention(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(queries, keys, features, lambda_) -> (attention, logits)``: one xSlot step of SCOUTER.

    ``A = sigmoid(Q K^T / sqrt(d))`` (n, N), ``U = A F / N`` (n, d), ``logits = lambda_ * U.sum(dim=1)``
    (n,), on several seeded cases (n, N and d differ, N != d, lambda_ = +1 and -1). A wrong answer that
    matches a typical mistake gets that mistake's hint. Reference: :func:`reference_slot_step`.
    """
    if isinstance(fn, nn.Module):  # callable, but its forward takes the model's inputs, not these
        message = (f"slot_step: expected a function {SIGNATURE}, got the module {type(fn).__name__}: "
                   "write the step yourself from queries, keys and features.")
        result = CheckResult(False, [message], len(SLOT_STEP.cases))
        if verbose:
            print(result.report())
            result.printed = True
        return result
    return run_exercise(SLOT_STEP, fn, verbose=verbose)
