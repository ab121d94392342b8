"""Checker for the DETR chapter's exercise: the matching cost of one prediction and one object.

DETR's training matches its predictions to the objects one-to-one, by the Hungarian algorithm on a
cost matrix (Carion et al. 2020, Eq. 1); this exercise is one entry of that matrix. The student
writes ``matching_cost(logits, box, label, target_box)``: ``logits`` the prediction's class logits,
a ``Tensor[K]`` (one sigmoid per class, no "no object" column), ``box`` its box, a ``Tensor[4]``
normalized ``(cx, cy, w, h)``, ``label`` the object's class in ``0..K-1``, ``target_box`` the
object's box as ``box``. The answer is one float, the sum of three terms::

    p = sigmoid(logits[label])                                   # the probability of the object's class
    class = 0.25 * (1 - p)**2 * -log(p + 1e-8)                   # the focal loss if matched ...
            - 0.75 * p**2 * -log(1 - p + 1e-8)                   # ... minus the one if not
    L1 = |cx - cx'| + |cy - cy'| + |w - w'| + |h - h'|           # on the (cx, cy, w, h) numbers
    GIoU = IoU - (area(C) - area(A | B)) / area(C)               # on the corners (cx - w/2, cy - h/2,
                                                                 #  cx + w/2, cy + h/2); C encloses both
    cost = 2 * class + 5 * L1 - 2 * GIoU

The class term is Deformable DETR's focal cost (Zhu et al. 2021), which replaced DETR's ``-p``;
the weights 2, 5, 2 are its too (``course_lib.models.detr.WEIGHTS``). A better prediction costs
less: a likelier class, a closer box, a larger overlap. GIoU (Rezatofighi et al. 2019) still
ranks two disjoint boxes by how far apart they are, where IoU is 0 for all of them.

Reference: ``course_lib.models.detr.matching_cost`` on one prediction and one object.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise, to_float
from course_lib.models.detr import ALPHA, GAMMA, WEIGHTS, matching_cost


def reference_matching_cost(logits: torch.Tensor, box: torch.Tensor, label: int,
                            target_box: torch.Tensor) -> float:
    """The expected answer: ``matching_cost`` of the model, for one prediction and one object."""
    return float(matching_cost(logits[None], box[None], torch.tensor([label]), target_box[None])[0, 0])


def _giou(a: list[float], b: list[float], generalized: bool = True) -> float:
    """(G)IoU of two ``xyxy`` boxes, written out (also for the "corners" that are not: no check)."""
    width = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    height = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    enclosing = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - ((enclosing - union) / enclosing if generalized else 0.0)


def _corners(box: list[float]) -> list[float]:
    cx, cy, w, h = box
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _variant(logits, box, label, target_box, class_term="focal", activation="sigmoid", distance="l1",
             overlap="giou", corners=True, giou_sign=-1, weights=None) -> float:
    """The cost written out in float64, with switches that reproduce the typical mistakes."""
    weights = WEIGHTS if weights is None else weights
    logits = logits.double()
    p = float((torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, 0))[label])
    positive = ALPHA * (1 - p) ** GAMMA * -math.log(p + 1e-8)
    negative = (1 - ALPHA) * p**GAMMA * -math.log(1 - p + 1e-8)
    cls = {"focal": positive - negative, "minus_p": -p, "positive_only": positive}[class_term]
    a, b = box.double().tolist(), target_box.double().tolist()
    differences = [x - y for x, y in zip(a, b, strict=True)]
    l1 = sum(abs(d) for d in differences) if distance == "l1" else math.sqrt(sum(d * d for d in differences))
    if corners:
        a, b = _corners(a), _corners(b)
    giou = _giou(a, b, generalized=overlap == "giou")
    return weights["class"] * cls + weights["l1"] * l1 + giou_sign * weights["giou"] * giou


def _compare(got: float, expected: float) -> str | None:
    if abs(got - expected) <= 2e-4 + 1e-5 * abs(expected):  # float32 or float64 answers; NaN never matches
        return None
    return "" if math.isfinite(got) else "not a finite number"


def _case(seed: int, overlap: str = "near", logit: float | None = None, K: int = 5) -> tuple:
    """Seeded inputs, rounded to 2 decimals so that they read well: ``(logits, box, label, target_box)``."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(K, generator=generator) * 2
    label = int(torch.randint(0, K, (1,), generator=generator))
    centre = 0.3 + 0.4 * torch.rand(2, generator=generator)
    target = torch.cat([centre, 0.1 + 0.2 * torch.rand(2, generator=generator)])  # (4,) cxcywh
    shift = {"near": 0.08 * torch.randn(4, generator=generator), "same": torch.zeros(4),
             "far": torch.tensor([0.45, -0.25, -0.05, 0.02])}[overlap]
    if logit is not None:
        logits[label] = logit
    box = (target + shift).clamp(0.02, 0.98)
    return (logits * 100).round() / 100, (box * 100).round() / 100, label, (target * 100).round() / 100


MATCHING_COST = Exercise(
    name="matching_cost",
    signature="matching_cost(logits Tensor[K], box Tensor[4], label int, target_box Tensor[4]) -> float",
    reference=reference_matching_cost,
    cases=[
        Case("a prediction near its object", _case(0),
             hint="p = torch.sigmoid(logits[label]); cost = 2 * class + 5 * L1 - 2 * GIoU, the class term "
             "the focal one, L1 on the (cx, cy, w, h) numbers, GIoU on the corners."),
        Case("the perfect box", _case(1, "same"),
             hint="the same box: L1 = 0 and GIoU = 1, so the cost is 2 * class - 2."),
        Case("disjoint boxes", _case(2, "far"),
             hint="the boxes do not overlap: IoU = 0, and GIoU = -(area(C) - area(A | B)) / area(C) < 0, "
             "with C the smallest box enclosing both."),
        Case("a near-certain class", _case(3, logit=6.0),
             hint="p is almost 1: the focal class cost is about -0.75 * log(1 - p + 1e-8), very negative."),
        Case("an unlikely class", _case(4, logit=-5.0),
             hint="p is almost 0: the focal class cost is about 0.25 * -log(p + 1e-8)."),
        Case("seeded random, 3 classes", _case(5, K=3)),
        Case("seeded random", _case(6)),
    ],
    normalize=to_float,
    compare=_compare,
    mistakes=[
        Mistake("DETR scores each class with its own sigmoid, p = sigmoid(logits[label]), not a softmax "
                "over the classes (there is no \"no object\" class to share the probability with).",
                lambda *a: _variant(*a, activation="softmax")),
        Mistake("the class term is the focal cost, not -p: 0.25 * (1 - p)**2 * -log(p + 1e-8) "
                "- 0.75 * p**2 * -log(1 - p + 1e-8), the focal loss if this prediction were matched minus "
                "the one if it were not (Deformable DETR's cost; -p is the original DETR's).",
                lambda *a: _variant(*a, class_term="minus_p")),
        Mistake("the focal class cost has two parts: subtract the loss of leaving the prediction unmatched, "
                "0.75 * p**2 * -log(1 - p + 1e-8).", lambda *a: _variant(*a, class_term="positive_only")),
        Mistake("the box distance is the L1 distance, the sum of |box - target_box| over the 4 numbers, not "
                "the Euclidean (L2) distance.", lambda *a: _variant(*a, distance="l2")),
        Mistake("the cost subtracts the GIoU (- 2 * GIoU): a larger overlap must make the cost lower.",
                lambda *a: _variant(*a, giou_sign=1)),
        Mistake("use the generalized IoU, IoU - (area(C) - area(A | B)) / area(C) with C the smallest box "
                "enclosing both: plain IoU is 0 for every pair of disjoint boxes, however far apart.",
                lambda *a: _variant(*a, overlap="iou")),
        Mistake("convert both boxes from (cx, cy, w, h) to corners (cx - w/2, cy - h/2, cx + w/2, cy + h/2) "
                "before the GIoU: the L1 distance uses the (cx, cy, w, h) numbers, the GIoU needs corners.",
                lambda *a: _variant(*a, corners=False)),
        Mistake("weigh the three terms: 2 * class + 5 * L1 - 2 * GIoU (Deformable DETR's weights), not 1 "
                "each.",
                lambda *a: _variant(*a, weights={"class": 1.0, "l1": 1.0, "giou": 1.0})),
    ],
    start_hint="p = torch.sigmoid(logits[label]); the class term from p; "
    "L1 = (box - target_box).abs().sum(); the GIoU of the two boxes as corners; "
    "return 2 * class + 5 * L1 - 2 * GIoU as a float.",
)


def check_matching_cost(fn: Any, verbose: bool = True) -> CheckResult:
    """Check ``fn(logits, box, label, target_box) -> float``: DETR's matching cost of one pair.

    ``2 * focal class cost + 5 * L1 - 2 * GIoU`` on normalized ``cxcywh`` boxes (the GIoU on their
    corners), as ``course_lib.models.detr.matching_cost`` computes for every pair at once.
    """
    return run_exercise(MATCHING_COST, fn, verbose=verbose)
