"""Automatic checks for the notebooks' exercises: ``check_iou(iou)`` prints what is wrong and a hint."""

from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise
from course_lib.exercises.boxes import check_ap, check_box_convert, check_iou, check_nms

__all__ = [
    "Case",
    "CheckResult",
    "Exercise",
    "Mistake",
    "check_ap",
    "check_box_convert",
    "check_iou",
    "check_nms",
    "run_exercise",
]
