"""Recipe of ``yolo_v1``: YOLO v1's grid head on ``shapes_backbone``, trained on ShapeScenes.

Starts from ``shapes_backbone`` (batch norm frozen); all 2,000 training scenes in their 8
symmetries, AdamW, warm-up and a cosine schedule; the loss of Eq. 3 of the paper (SGD at 0.01
saturated the sigmoids within one epoch).
Measured on the 200 test scenes.
"""

from __future__ import annotations

from course_lib.models.yolo import YOLOv1
from course_lib.recipes.detection import QUICK_SIZE, SPLIT, from_backbone
from course_lib.train import TrainConfig

CONFIG = TrainConfig(
    epochs=30, batch_size=8, lr=0.001, optimizer="adamw", weight_decay=1e-4, warmup_steps=100, seed=0
)
# Chosen on the 200 validation scenes: of NMS 0.3 / 0.4 / 0.5 / 0.6 and score cuts 0.001 / 0.01 / 0.05,
# the best AP50 (0.805).
INFERENCE = {"nms_thresh": 0.3, "score_thresh": 0.001}
__all__ = ["CONFIG", "INFERENCE", "QUICK_SIZE", "SPLIT", "build", "evaluate", "train"]


def build() -> YOLOv1:
    """The architecture of ``yolo_v1`` with fresh weights: S = 16 for 128-px images, B = 2, C = 5."""
    return YOLOv1(**INFERENCE)


train, evaluate = from_backbone(build, CONFIG)
