"""Checker for the explanation chapter's occlusion exercise: the score's drop under one grey window.

The student writes ``occlusion_window(model, image, label, top, left, size, baseline)``: ``model`` a
classifier (``Tensor[B, C, H, W]`` in, ``Tensor[B, K]`` logits out), ``image`` a ``Tensor[C, H, W]``,
``label`` a class index; the answer is one number, how much the class score falls when the square
window of side ``size`` at row ``top``, column ``left`` is painted ``baseline`` in every channel
(Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks", Sec. 4.2)::

    occluded = image.clone()
    occluded[:, top:top + size, left:left + size] = baseline        # the slice cuts it at the border
    drop = model(image[None])[0, label] - model(occluded[None])[0, label]

The score is the logit (no softmax), and the image the function was given is left as it was: the
occlusion map calls it once per window position on the same image. One value of the map of
``course_lib.visualization.occlusion.occlusion``, whose windows are ``occlude``'s.

The checker's model is :func:`tiny_classifier`, a seeded convolution, ReLU, global average pooling
and linear layer, so every case runs in a few milliseconds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from course_lib.exercises.base import (
    Case,
    CheckResult,
    Exercise,
    Mistake,
    compare_floats,
    run_exercise,
    to_float,
)
from course_lib.exercises.source import show_answer
from course_lib.visualization.occlusion import occlude


class TinyClassifier(nn.Sequential):
    """Three-channel images in, three logits out: seeded, frozen, in eval mode.

    It prints as the source that builds it again, so that a failing case pastes back into a cell.
    """

    def __init__(self, seed: int = 0) -> None:
        with torch.random.fork_rng(devices=[]):  # seeded without touching the notebook's random state
            torch.manual_seed(seed)
            super().__init__(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(4, 3))
        self.seed = seed
        self.requires_grad_(False).eval()
        for layer in (self[0], self[4]):  # drops of a few tenths, not thousandths
            layer.weight.mul_(8.0)

    def __repr__(self) -> str:
        return f"__import__('course_lib').exercises.occlusion.tiny_classifier({self.seed})"


@functools.cache
def tiny_classifier(seed: int = 0) -> TinyClassifier:
    """The checker's model (one per seed, built once)."""
    return TinyClassifier(seed)


def reference_occlusion_window(model, image, label, top, left, size, baseline) -> float:
    """The expected answer: ``score(image) - score(occluded)``, the model's logit for ``label``."""
    H, W = image.shape[-2:]  # height, width
    mask = torch.zeros(1, H, W, dtype=torch.bool)
    mask[:, top : top + size, left : left + size] = True  # the slice cuts the window at the border
    with torch.no_grad():
        scores = model(torch.cat([image[None], occlude(image, mask, baseline)]))[:, label]  # (2,)
    return float(scores[0] - scores[1])


def _variant(model, image, label, top, left, size, baseline, swap=False, extra=0, index="all",
             fill="baseline", copy="clone", score="logit", answer="drop"):
    """The drop with switches that reproduce the typical mistakes."""

    def score_of(x):
        logits = model(x[None])[0]  # (K,)
        return (logits.softmax(dim=0) if score == "softmax" else logits)[label]

    original = score_of(image)
    occluded = image.clone() if copy == "clone" else image  # else the same tensor under a new name
    rows = slice(left, left + size + extra) if swap else slice(top, top + size + extra)
    cols = slice(top, top + size + extra) if swap else slice(left, left + size + extra)
    value = 0.0 if fill == "zeros" else baseline
    if index == "no channel":  # occluded[rows, cols] on a (C, H, W) tensor: channels and rows
        occluded[rows, cols] = value
    else:
        occluded[:, rows, cols] = value
    if copy == "alias":  # scored after the write, image and occluded are the same pixels
        original = score_of(image)
    drop = original - score_of(occluded)
    return {"drop": drop, "occluded": score_of(occluded), "flipped": -drop}[answer]


@dataclass(frozen=True)
class _Outcome:
    """What a call did: its answer, and whether it changed the image it was given."""

    answer: Any
    changed_image: bool

    def __repr__(self) -> str:
        return show_answer(self.answer)


def _watching_the_image(fn):
    """``fn`` returning an :class:`_Outcome`: the checker sees the answer and the image after the call."""

    @functools.wraps(fn)
    def watched(*args):
        image = args[1] if len(args) > 1 and isinstance(args[1], torch.Tensor) else None
        before = None if image is None else image.clone()
        answer = fn(*args)
        changed = before is not None and (image.shape != before.shape or image.dtype != before.dtype
                                          or not torch.equal(image, before))
        return _Outcome(answer, changed)

    return watched


class _Drop(float):
    """A drop, and whether the function changed its input image to compute it."""

    changed_image: bool

    def __new__(cls, value: float, changed_image: bool = False) -> _Drop:
        drop = super().__new__(cls, value)
        drop.changed_image = changed_image
        return drop


def _to_drop(value: Any) -> _Drop:
    if isinstance(value, _Outcome):
        return _Drop(to_float(value.answer), value.changed_image)
    return _Drop(to_float(value))


def _compare(got: _Drop, expected: _Drop) -> str | None:
    if compare_floats(got, expected) is not None:
        return ""
    if got.changed_image != expected.changed_image:
        return "the right number, but the image passed in was changed: occlude a copy"
    return None


def _image(height: int, width: int, seed: int) -> torch.Tensor:
    """A seeded Tensor[3, H, W] of pixels in [0, 1], in hundredths (short to print)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 101, (3, height, width), generator=generator).float() / 100


def _case(height, width, seed, label, top, left, size, baseline) -> tuple:
    return tiny_classifier(0), _image(height, width, seed), label, top, left, size, baseline


OCCLUSION_WINDOW = Exercise(
    name="occlusion_window",
    signature="occlusion_window(model, image, label, top, left, size, baseline) -> float",
    reference=_watching_the_image(reference_occlusion_window),
    cases=[
        Case("a 2 x 2 window inside the image", _case(5, 5, 0, 0, 1, 2, 2, 0.5),
             hint="occluded[:, 1:3, 2:4] = 0.5 (rows 1-2, columns 2-3, every channel), then "
             "score(image) - score(occluded), the logits of class 0."),
        Case("a black window at the top-left corner", _case(5, 5, 1, 1, 0, 0, 3, 0.0),
             hint="rows and columns 0 to 2 set to 0 in every channel; the drop of the logit of class 1."),
        Case("a window cut at the bottom-right border", _case(5, 6, 2, 2, 3, 4, 3, 0.5),
             hint="the window's rows 3-5 and columns 4-6 run past the 5 x 6 image: only rows 3-4 and "
             "columns 4-5 are hidden (the slice image[:, 3:6, 4:7] stops at the border by itself)."),
        Case("a wide image (4 x 7)", _case(4, 7, 3, 1, 1, 4, 2, 0.25),
             hint="top is a row (the image's dim 1, H = 4), left a column (dim 2, W = 7): "
             "occluded[:, 1:3, 4:6]."),
        Case("a one-pixel window", _case(5, 5, 4, 0, 2, 3, 1, 1.0),
             hint="size 1 hides one pixel, occluded[:, 2, 3] in every channel."),
        Case("a window over the whole image", _case(4, 4, 5, 2, 0, 0, 4, 0.5),
             hint="every pixel set to 0.5: the drop is score(image) - score(an all-grey image)."),
        Case("a baseline below every pixel", _case(5, 5, 6, 2, 2, 1, 2, -1.0),
             hint="paint the window with the baseline given (-1.0 here), whatever its value."),
    ],
    normalize=_to_drop,
    compare=_compare,
    mistakes=[
        Mistake(f"{hint} (the checker runs your function on a fresh copy, and saw its image change).",
                _watching_the_image(functools.partial(_variant, **switches)))
        for hint, switches in [
            ("occluded = image does not copy the image: both names are the same pixels, so the 'original' "
             "score is the occluded one and the drop is 0. Work on occluded = image.clone()",
             {"copy": "alias"}),
            ("the drop is right, but the image passed in was painted over: work on occluded = image.clone(), "
             "the occlusion map reuses the same image for every window", {"copy": "in place"}),
        ]
    ] + [
        Mistake(hint, _watching_the_image(functools.partial(_variant, **switches)))
        for hint, switches in [
            ("top is a row and left a column: occluded[:, top:top + size, left:left + size] "
             "(rows are dim 1 of (C, H, W), columns dim 2).", {"swap": True}),
            ("the window is size pixels wide: top:top + size (the end of a slice is excluded), "
             "not top:top + size - 1.", {"extra": -1}),
            ("the window is size pixels wide: top:top + size (the end of a slice is already excluded), "
             "not top:top + size + 1.", {"extra": 1}),
            ("the answer is the drop, score(image) - score(occluded), not the occluded score itself.",
             {"answer": "occluded"}),
            ("the drop is score(image) - score(occluded): positive when hiding the window lowers the "
             "score, not the other way round.", {"answer": "flipped"}),
            ("paint the window with the baseline argument, not with zeros.", {"fill": "zeros"}),
            ("the image is (C, H, W): occluded[:, top:top + size, left:left + size] hides the window in "
             "every channel; occluded[top:top + size, left:left + size] slices channels and rows.",
             {"index": "no channel"}),
            ("the score is the model's logit for the label, model(x[None])[0, label], not its softmax "
             "probability.", {"score": "softmax"}),
        ]
    ],
    start_hint="occluded = image.clone(); occluded[:, top:top + size, left:left + size] = baseline; return "
    "float(model(image[None])[0, label] - model(occluded[None])[0, label]).",
)


def check_occlusion_window(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(model, image, label, top, left, size, baseline) -> float``: one window's score drop.

    The drop of the model's logit for ``label`` when the ``size`` x ``size`` window at (``top``,
    ``left``), cut at the border, is set to ``baseline`` in every channel; the image given must stay
    as it is. Reference: ``course_lib.visualization.occlusion.occlude`` and one forward pass.
    """
    return run_exercise(OCCLUSION_WINDOW, _watching_the_image(fn) if callable(fn) else fn, verbose=verbose)
