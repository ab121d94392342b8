"""Recipe of ``retinanet_ce``: ``retinanet``'s recipe with the plain cross entropy (the ablation).

The same network, initialization (prior 0.01), data, schedule and budget as ``recipes/retinanet.py``;
only the classification loss differs: ``gamma = 0`` and no alpha weighting, i.e. the binary cross
entropy of every anchor, divided by the number of positives.
"""

from __future__ import annotations

from course_lib.models.retinanet import RetinaNet
from course_lib.recipes import retinanet
from course_lib.recipes.detection import QUICK_SIZE, SPLIT, from_backbone

CONFIG = retinanet.CONFIG
INFERENCE = retinanet.INFERENCE
LOSS = {"alpha": -1.0, "gamma": 0.0}
evaluate = retinanet.evaluate
__all__ = ["CONFIG", "INFERENCE", "LOSS", "QUICK_SIZE", "SPLIT", "build", "evaluate", "train"]


def build() -> RetinaNet:
    """``retinanet``'s architecture trained with the cross entropy."""
    return RetinaNet(**LOSS, **INFERENCE)


train, _ = from_backbone(build, CONFIG)  # evaluated as ``retinanet``
