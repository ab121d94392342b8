"""Recipe of ``scouter_neg``: SCOUTER- (``lambda_ = -1``), negative explanations, "why not this class".

A slot's score is minus the evidence its attention covers: the true class wins by finding the
least, and the other slots light up what speaks against their class. Shared training and
evaluation in :mod:`course_lib.recipes.scouter`.
"""

from __future__ import annotations

from course_lib.recipes.scouter import AREA_WEIGHT, CONFIG, QUICK_SIZE, SPLIT, scouter_recipe

LAMBDA = -1
__all__ = ["AREA_WEIGHT", "CONFIG", "LAMBDA", "QUICK_SIZE", "SPLIT", "build", "evaluate", "train"]

build, train, evaluate = scouter_recipe(LAMBDA, AREA_WEIGHT, CONFIG)
