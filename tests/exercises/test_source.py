"""Tests of course_lib.exercises.source: printed inputs paste back as the same values and dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.exercises.source import as_source, show_answer
from tests.exercises.checks import assert_same, paste


@pytest.mark.parametrize(
    "value",
    [
        torch.tensor([[10.0, 10.0, 50.0, 50.0]]),
        torch.tensor([[10, 10, 50, 50]]),
        torch.tensor([0.1, 1 / 3, -2.5e-8, 3e38, 1e-45]),  # float32's shortest digits, a subnormal
        torch.tensor([0.1, 1 / 3], dtype=torch.float64),
        torch.tensor([0.1, 65504.0], dtype=torch.float16),
        torch.tensor([0.1, 3.0], dtype=torch.bfloat16),
        torch.tensor([1, -2], dtype=torch.int32),
        torch.tensor([0, 255], dtype=torch.uint8),
        torch.tensor([True, False]),
        torch.tensor(0.5),
        torch.tensor([float("nan"), float("inf"), -float("inf")]),
        torch.zeros(0, 4),
        torch.zeros(0, 4, dtype=torch.int64),
        torch.zeros(0, dtype=torch.float64),
        np.array([[1.0, 0.0]]),
        np.array([1.5, 2.0], dtype=np.float32),
        np.array([1, 2]),
        np.array([1, 2], dtype=np.int32),
        np.zeros((0, 3)),
        np.float32(0.1),
        np.int64(7),
        0.1,
        10.0,
        float("nan"),
        [1, 2.0, (3,), None, "a", True],
        {"hist": np.array([0.5, 0.5]), "size": 10, "box": [0, 0, 5, 2]},
    ],
    ids=lambda value: type(value).__name__,
)
def test_as_source_round_trips_values_and_dtypes(value):
    assert_same(paste(as_source(value)), value, as_source(value))


def test_as_source_round_trips_random_float32_and_float64():
    generator = torch.Generator().manual_seed(0)
    scales = 10.0 ** torch.randint(-30, 30, (2000,), generator=generator)
    values = torch.randn(2000, generator=generator, dtype=torch.float64) * scales
    for dtype in (torch.float32, torch.float64, torch.float16):
        tensor = values.to(dtype)
        assert_same(paste(as_source(tensor)), tensor, str(dtype))
    assert_same(paste(as_source(values.numpy().astype(np.float32))), values.numpy().astype(np.float32))


def test_as_source_writes_whole_floats_with_a_point_and_only_non_default_dtypes():
    assert as_source(torch.tensor([[10.0, 50.0]])) == "torch.tensor([[10.0, 50.0]])"
    assert as_source(torch.tensor([[10, 50]])) == "torch.tensor([[10, 50]])"
    assert as_source(torch.tensor([0.1])) == "torch.tensor([0.1])"  # not 0.10000000149011612
    assert as_source(torch.tensor([1.0], dtype=torch.float64)) == "torch.tensor([1.0], dtype=torch.float64)"
    assert as_source(torch.zeros(0, 4)) == "torch.zeros((0, 4))"
    assert as_source(np.array([2.0, 3.0], dtype=np.float32)) == "np.array([2.0, 3.0], dtype=np.float32)"
    assert as_source(([0.0, 1.0], 0.5)) == "([0.0, 1.0], 0.5)"


def test_show_answer_rounds_and_keeps_the_decimal_point():
    assert show_answer(2.0) == "2.0" and show_answer(1 / 3) == "0.333333" and show_answer(4e-16) == "4e-16"
    assert show_answer(float("nan")) == "nan" and show_answer(float("inf")) == "inf"
    assert show_answer(torch.tensor([[30.0, 15.5]])) == "tensor([[30.0, 15.5]])"
    assert show_answer(([0.5, 1.0], 20, [0, 2])) == "([0.5, 1.0], 20, [0, 2])"
