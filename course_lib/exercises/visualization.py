"""Checkers for the visualization chapters' exercises.

* ``check_receptive_field(fn)``: ``fn(layers) -> (size, jump)`` for a stack of layers given as
  ``(kernel_size, stride)`` pairs, input first. The receptive field of one unit of the last layer
  grows by ``(kernel - 1) * jump`` at each layer, where ``jump`` is the product of the strides of
  the layers *before* it (the distance in input pixels between two neighbouring units there).
  Reference: the same recurrence as ``course_lib.visualization.receptive_field``.
* ``check_ascent_step(fn)``: ``fn(image, score_gradient, l2_weight, lr) -> new image`` for one step
  of gradient *ascent* on ``S_c(I) - l2_weight * ||I - 0.5||^2`` (Simonyan et al. 2014, Sec. 2, with
  the penalty towards mid-grey as in ``course_lib.visualization.class_viz``), clipped to [0, 1].
  Reference: ``clamp(I + lr * (dS/dI - 2 * l2_weight * (I - 0.5)), 0, 1)``.
"""

from __future__ import annotations

from typing import Any

import torch

from course_lib.exercises.base import (
    Case,
    CheckResult,
    Exercise,
    Mistake,
    compare_float_lists,
    run_exercise,
    to_float_list,
)

# --------------------------------------------------------------------------- receptive field


def reference_receptive_field(layers) -> tuple[int, int]:
    """``(size, jump)`` of one unit of the last layer, in input pixels."""
    size, jump = 1, 1
    for kernel, stride in layers:
        size += (kernel - 1) * jump
        jump *= stride
    return size, jump


def _rf_variant(layers, mistake: str) -> tuple[int, int]:
    """The recurrence with one typical mistake: ``"no_jump"``, ``"jump_first"`` or ``"product"``."""
    size, jump = 1, 1
    for kernel, stride in layers:
        if mistake == "jump_first":
            jump *= stride
        if mistake == "product":
            size *= kernel
        else:
            size += (kernel - 1) * (1 if mistake == "no_jump" else jump)
        if mistake != "jump_first":
            jump *= stride
    return size, jump


def _pair(value: Any) -> list[float]:
    values = to_float_list(value)
    if len(values) != 2:
        raise TypeError(f"expected (size, jump), two numbers, got {len(values)}")
    return values


RECEPTIVE_FIELD = Exercise(
    name="receptive_field",
    signature="receptive_field(layers) -> (size, jump)",
    reference=reference_receptive_field,
    cases=[
        Case("one 3x3 convolution", ([(3, 1)],), hint="a 3x3 kernel sees 3 pixels: size 3, jump 1."),
        Case("two 3x3 convolutions", ([(3, 1), (3, 1)],), hint="each 3x3 layer adds 2: 1 + 2 + 2 = 5."),
        Case(
            "a strided convolution, then a 3x3 one",
            ([(3, 2), (3, 1)],),
            hint="after a stride-2 layer neighbouring units are 2 pixels apart, so the next 3x3 "
            "kernel adds (3 - 1) * 2 = 4: size 7, jump 2.",
        ),
        Case(
            "conv, pool, conv, pool, conv (the shapes classifier's first stages)",
            ([(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)],),
            hint="size += (kernel - 1) * jump, then jump *= stride, layer by layer: 18, jump 4.",
        ),
        Case("no layer", ([],), hint="with no layer a unit is one input pixel: (1, 1)."),
    ],
    normalize=_pair,
    compare=compare_float_lists,
    mistakes=[
        Mistake(
            "each layer adds (kernel - 1) * jump, where jump is the product of the strides of the "
            "layers before it: multiply the growth by the jump.",
            lambda layers: _rf_variant(layers, "no_jump"),
        ),
        Mistake(
            "update the jump after the size: a layer's own stride spaces the units of the layer "
            "after it, not its own kernel.",
            lambda layers: _rf_variant(layers, "jump_first"),
        ),
        Mistake(
            "sizes add, they do not multiply: size += (kernel - 1) * jump.",
            lambda layers: _rf_variant(layers, "product"),
        ),
    ],
    start_hint="size, jump = 1, 1; for kernel, stride in layers: "
    "size += (kernel - 1) * jump; jump *= stride.",
)


def check_receptive_field(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(layers) -> (size, jump)``; ``layers`` is a list of ``(kernel_size, stride)``."""
    return run_exercise(RECEPTIVE_FIELD, fn, verbose=verbose)


# --------------------------------------------------------------------------- gradient ascent


def reference_ascent_step(image, score_gradient, l2_weight, lr) -> torch.Tensor:
    """One clipped gradient-ascent step on ``S_c(I) - l2_weight * ||I - 0.5||^2``."""
    return (image + lr * (score_gradient - 2 * l2_weight * (image - 0.5))).clamp(0, 1)


def _step_variant(image, gradient, l2_weight, lr, sign=1.0, factor=2.0, centre=0.5, descend=False, clip=True):
    direction = -1.0 if descend else 1.0
    new = image + direction * lr * (gradient - sign * factor * l2_weight * (image - centre))
    return new.clamp(0, 1) if clip else new


def _flat(value: Any) -> list[float]:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected a tensor shaped like the image, got {type(value).__name__}")
    return value.detach().double().flatten().tolist()


def _image(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64).reshape(1, 2, 2)


ASCENT_STEP = Exercise(
    name="ascent_step",
    signature="ascent_step(image, score_gradient, l2_weight, lr) -> new image",
    reference=reference_ascent_step,
    cases=[
        Case(
            "no penalty",
            (_image(0.5, 0.5, 0.5, 0.5), _image(1.0, -1.0, 0.0, 2.0), 0.0, 0.1),
            hint="without the penalty the step is image + lr * score_gradient (ascent: plus).",
        ),
        Case(
            "the penalty alone",
            (_image(0.9, 0.1, 0.5, 0.7), _image(0, 0, 0, 0), 1.0, 0.1),
            hint="the gradient of -l2_weight * ||I - 0.5||^2 is -2 * l2_weight * (I - 0.5): it pulls "
            "every pixel towards 0.5.",
        ),
        Case(
            "both terms",
            (_image(0.2, 0.8, 0.4, 0.6), _image(0.5, -0.5, 1.0, 0.0), 0.5, 0.2),
            hint="new = image + lr * (score_gradient - 2 * l2_weight * (image - 0.5)).",
        ),
        Case(
            "a step past the valid range",
            (_image(0.95, 0.05, 0.5, 0.5), _image(2.0, -2.0, 0, 0), 0.0, 0.5),
            hint="clip the new image to [0, 1] (torch.clamp).",
        ),
    ],
    normalize=_flat,
    compare=compare_float_lists,
    mistakes=[
        Mistake(
            "the penalty is subtracted from the score, so its gradient enters with a minus sign: "
            "- 2 * l2_weight * (image - 0.5).",
            lambda *a: _step_variant(*a, sign=-1.0),
        ),
        Mistake(
            "the derivative of x**2 is 2 * x: the penalty's gradient is 2 * l2_weight * (image - 0.5).",
            lambda *a: _step_variant(*a, factor=1.0),
        ),
        Mistake(
            "the penalty pulls towards mid-grey 0.5 (our data's mean), not towards 0.",
            lambda *a: _step_variant(*a, centre=0.0),
        ),
        Mistake(
            "gradient *ascent*: add lr times the gradient, the score must go up.",
            lambda *a: _step_variant(*a, descend=True),
        ),
        Mistake(
            "clip the result to [0, 1] so that it stays an image.", lambda *a: _step_variant(*a, clip=False)
        ),
    ],
    start_hint="new = image + lr * (score_gradient - 2 * l2_weight * (image - 0.5)), then clamp to [0, 1].",
)


def check_ascent_step(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(image, score_gradient, l2_weight, lr) -> new image`` (one clipped ascent step)."""
    return run_exercise(ASCENT_STEP, fn, verbose=verbose)
