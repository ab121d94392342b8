"""Recipe of ``detr``: a small DETR with query selection, box queries and iterative refinement.

Starts from ``shapes_backbone`` (batch norm frozen); the stride-8 map (stride 16 merged in) as 256
tokens of width 128, 3 encoder and 3 decoder layers, 30 queries taken from the encoder's best
tokens; all 2,000 training scenes in their 8 symmetries, AdamW, warm-up and a cosine schedule,
gradients clipped at norm 0.1 as in DETR.
Measured on the 200 test scenes.
"""

from __future__ import annotations

from course_lib.models.detr import DETR
from course_lib.recipes.detection import QUICK_SIZE, SPLIT, from_backbone
from course_lib.train import TrainConfig

CONFIG = TrainConfig(
    epochs=30, batch_size=8, lr=2e-4, optimizer="adamw", weight_decay=1e-4, warmup_steps=200, seed=0,
    grad_clip=0.1,
)
# Chosen on the 200 validation scenes: score cuts 0.001 and 0.01 give the same AP50 (0.762), 0.05 and 0.1 less
# (0.762, 0.757). The 100 best (query, class) pairs are kept; there is no NMS.
INFERENCE = {"score_thresh": 0.01}
__all__ = ["CONFIG", "INFERENCE", "QUICK_SIZE", "SPLIT", "build", "evaluate", "train"]


def build() -> DETR:
    """The architecture of ``detr`` with fresh weights."""
    return DETR(**INFERENCE)


train, evaluate = from_backbone(build, CONFIG)
