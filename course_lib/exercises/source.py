"""How a checker prints values: a case's inputs as Python source, answers rounded.

A failing case is printed so that a student can paste it into a cell and run their function on it:
:func:`as_source` writes tensors and arrays with their dtype (a float tensor of whole numbers keeps
its decimal points, ``torch.tensor([[10.0, 10.0, 50.0, 50.0]])``, instead of turning into int64
boxes) and floats in full. Answers (expected, got) are for reading: :func:`show_answer` rounds them
to a few digits, still with a decimal point on every float.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def as_source(value: Any) -> str:
    """Python source for a case's input: pasted into a cell, it gives back an equal value.

    Tensors and arrays keep their dtype (a float tensor of whole numbers prints as
    ``torch.tensor([[10.0, 10.0, 50.0, 50.0]])``, not as integers, and a dtype other than the
    default is written out), floats print in full, dicts, lists and tuples recurse. The source
    assumes ``torch`` and ``numpy as np`` are imported, as in every notebook.
    """
    if isinstance(value, torch.Tensor):
        return _tensor_source(value.detach().cpu())
    if isinstance(value, np.ndarray):
        return _array_source(value)
    if isinstance(value, np.generic) and not isinstance(value, np.bool_):
        return f"np.{value.dtype.name}({_number(value.item(), _float_type(value.dtype))})"
    if isinstance(value, float):
        return _number(value, None)
    if isinstance(value, list | tuple):
        inner = ", ".join(as_source(item) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' * (len(value) == 1)})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{as_source(key)}: {as_source(item)}" for key, item in value.items()) + "}"
    return repr(value)


def _tensor_source(tensor: torch.Tensor) -> str:
    if tensor.numel() == 0:  # torch.tensor([]) would lose the shape (0, 4)
        dtype = "" if tensor.dtype == torch.get_default_dtype() else f", dtype={tensor.dtype}"
        return f"torch.zeros({tuple(tensor.shape)}{dtype})"
    if tensor.dtype == torch.bool:  # 0/1 prints in a third of the width of False/True
        return f"torch.tensor({_nested(tensor.int().tolist(), None)}).bool()"
    default = torch.get_default_dtype() if tensor.dtype.is_floating_point else torch.int64
    dtype = "" if tensor.dtype in (default, torch.bool) else f", dtype={tensor.dtype}"
    float_type = _float_type(np.dtype(np.float32 if tensor.dtype == torch.float32 else np.float64))
    if not tensor.dtype.is_floating_point:
        float_type = None
    return f"torch.tensor({_nested(tensor.tolist(), float_type)}{dtype})"


def _array_source(array: np.ndarray) -> str:
    if array.size == 0:
        dtype = "" if array.dtype == np.float64 else f", dtype=np.{array.dtype.name}"
        return f"np.zeros({array.shape}{dtype})"
    default = {"f": np.float64, "i": np.int64, "b": np.bool_}.get(array.dtype.kind)
    dtype = "" if default is not None and array.dtype == default else f", dtype=np.{array.dtype.name}"
    return f"np.array({_nested(array.tolist(), _float_type(array.dtype))}{dtype})"


def _float_type(dtype: np.dtype) -> type | None:
    """The NumPy float type whose shortest repr round-trips this dtype (float32, float16), else None."""
    return dtype.type if dtype in (np.float32, np.float16) else None


def _nested(items: Any, float_type: type | None) -> str:
    if isinstance(items, list):
        return "[" + ", ".join(_nested(item, float_type) for item in items) + "]"
    return _number(items, float_type) if isinstance(items, float) else repr(items)


def _number(value: Any, float_type: type | None) -> str:
    """A float in full (``10.0``, never ``10``); a float32 or float16 in its own shortest digits."""
    if not isinstance(value, float):
        return repr(value)
    if not math.isfinite(value):
        return f"float('{value}')" if value > 0 or math.isnan(value) else "-float('inf')"
    if float_type is not None:
        short = str(float_type(value))  # 0.1 for the float32 0.100000001490116...
        if float(float_type(float(short))) == value:
            return short
    return repr(value)


def show_answer(value: Any, digits: int = 6) -> str:
    """Short, deterministic text for an answer: rounded floats that keep their decimal point."""
    if isinstance(value, torch.Tensor | np.ndarray):
        kind = "tensor" if isinstance(value, torch.Tensor) else "array"
        return f"{kind}({show_answer(value.tolist(), digits)})"
    if isinstance(value, float):
        text = "nan" if math.isnan(value) else f"{value:.{digits}g}"
        return text if any(mark in text for mark in ".ein") else text + ".0"
    if isinstance(value, list | tuple):
        inner = ", ".join(show_answer(item, digits) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' * (len(value) == 1)})"
    return repr(value)
