"""Argument checks shared by every public function of course_lib.

Each helper raises ``TypeError`` or ``ValueError`` whose message says what was expected
and what came, so a student who passes the wrong thing learns what to pass instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor


def check_tensor(value: Any, name: str) -> Tensor:
    """Return ``value`` if it is a tensor, else raise ``TypeError``."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    return value


def check_boxes(
    boxes: Any, name: str = "boxes", allow_degenerate: bool = True, allow_integer: bool = False
) -> Tensor:
    """Check that ``boxes`` is a floating ``Tensor[N, 4]`` with finite values.

    Args:
        boxes: the tensor to check.
        name: the argument name used in error messages.
        allow_degenerate: when False, boxes with ``x2 < x1`` or ``y2 < y1`` are rejected.
        allow_integer: also accept integer boxes (not bool), as torchvision's ``box_area``,
            ``box_iou`` and ``generalized_box_iou`` do.

    Returns:
        The same tensor, unchanged.
    """
    check_tensor(boxes, name)
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{name}: expected a Tensor[N, 4], got shape {tuple(boxes.shape)}")
    integer = not boxes.is_floating_point() and not boxes.is_complex() and boxes.dtype != torch.bool
    if not boxes.is_floating_point() and not (allow_integer and integer):
        kind = "a floating-point or integer tensor" if allow_integer else "a floating-point tensor"
        raise TypeError(f"{name}: expected {kind}, got dtype {boxes.dtype}")
    if boxes.numel() and not torch.isfinite(boxes).all():
        raise ValueError(f"{name}: expected finite coordinates, got NaN or inf")
    if not allow_degenerate and boxes.numel():
        bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        if bad.any():
            index = int(bad.nonzero()[0])
            raise ValueError(
                f"{name}: expected xyxy boxes with x2 >= x1 and y2 >= y1, "
                f"got box {index} = {boxes[index].tolist()}"
            )
    return boxes


def check_scores(scores: Any, num_boxes: int, name: str = "scores") -> Tensor:
    """Check that ``scores`` is a ``Tensor[N]`` matching ``num_boxes``, finite."""
    check_tensor(scores, name)
    if scores.dim() != 1 or scores.shape[0] != num_boxes:
        raise ValueError(f"{name}: expected a Tensor[{num_boxes}], got shape {tuple(scores.shape)}")
    if scores.numel() and scores.is_floating_point() and not torch.isfinite(scores).all():
        raise ValueError(f"{name}: expected finite scores, got NaN or inf")
    return scores


def check_choice(value: Any, choices: Iterable[str], name: str) -> str:
    """Check that ``value`` is one of ``choices``; the error lists them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_number(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
) -> float:
    """Check that ``value`` is a real number (an int when ``integer``) in ``[low, high]``."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an int" if integer else "a number"
        raise TypeError(f"{name}: expected {kind}, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}: expected a value in [{lo}, {hi}], got {value!r}")
    return value


def check_pair(value: Any, name: str, low: int | None = None) -> tuple[int, int]:
    """Check that ``value`` is an int or a pair of ints ``(h, w)``, each at least ``low``.

    An int ``n`` stands for the square pair ``(n, n)``, as in ``torch.nn.modules.utils._pair``.

    Returns:
        The pair, as a tuple of two ints.
    """
    if isinstance(value, np.integer):
        value = int(value)
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(pair, str | Tensor) or not isinstance(pair, Sequence):
        raise TypeError(f"{name}: expected an int or a pair (h, w), got {value!r}")
    if len(pair) != 2:
        raise ValueError(f"{name}: expected an int or a pair (h, w), got {len(pair)} values {value!r}")
    pair = tuple(int(item) if isinstance(item, np.integer) else item for item in pair)
    for item in pair:
        check_number(item, name, low=low, integer=True)
    return int(pair[0]), int(pair[1])
