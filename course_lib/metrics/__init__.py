"""Detection metrics: COCO AP and AR (equal to pycocotools), precision-recall step by step, proposal recall.

* ``coco.py``: ``coco_evaluate`` and ``evaluate_detections`` (the public face), per-class AP, PR curves;
* ``cocoeval.py``: the evaluation itself, in pycocotools' steps (read, match, accumulate, summarize);
* ``matching.py``: COCO's constants, IoU and greedy matching;
* ``average_precision.py``: match, precision-recall and AP for one image and class (the teaching side);
* ``errors.py``: what the false positives and misses are (correct, duplicate, localization, wrong class,
  background, missed), after Hoiem et al. 2012 and TIDE;
* ``proposals.py``: recall and MABO of ranked proposals (selective search, the RPN).
"""

from course_lib.metrics.average_precision import (
    average_precision,
    match_detections,
    precision_envelope,
    precision_recall,
)
from course_lib.metrics.coco import coco_evaluate, evaluate_detections, per_class_ap, pr_curves, to_coco
from course_lib.metrics.cocoeval import STAT_NAMES
from course_lib.metrics.errors import error_breakdown, error_categories, f1_threshold, missed_objects
from course_lib.metrics.proposals import best_overlaps, mabo, proposal_recall

__all__ = [
    "STAT_NAMES",
    "average_precision",
    "best_overlaps",
    "coco_evaluate",
    "error_breakdown",
    "error_categories",
    "evaluate_detections",
    "f1_threshold",
    "mabo",
    "missed_objects",
    "match_detections",
    "per_class_ap",
    "pr_curves",
    "precision_envelope",
    "precision_recall",
    "proposal_recall",
    "to_coco",
]
