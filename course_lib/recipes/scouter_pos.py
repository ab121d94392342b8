"""Recipe of ``scouter_pos``: SCOUTER+ (``lambda_ = +1``), positive explanations, "why this class".

Each slot's score is the evidence its attention covers, so the true class's map lights up the
shape. Shared training and evaluation in :mod:`course_lib.recipes.scouter`.
"""

from __future__ import annotations

from course_lib.recipes.scouter import AREA_WEIGHT, CONFIG, QUICK_SIZE, SPLIT, scouter_recipe

LAMBDA = 1
__all__ = ["AREA_WEIGHT", "CONFIG", "LAMBDA", "QUICK_SIZE", "SPLIT", "build", "evaluate", "train"]

build, train, evaluate = scouter_recipe(LAMBDA, AREA_WEIGHT, CONFIG)
