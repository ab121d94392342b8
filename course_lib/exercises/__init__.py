"""Automatic checks for the notebooks' exercises: ``check_iou(iou)`` prints what is wrong and a hint."""

from course_lib.exercises.anchors import check_label_anchors
from course_lib.exercises.average_precision import check_ap
from course_lib.exercises.base import Case, CheckResult, Exercise, Mistake, run_exercise
from course_lib.exercises.box_convert import check_box_convert
from course_lib.exercises.box_deltas import check_decode_deltas
from course_lib.exercises.cam import check_cam_from_weights, check_grad_cam_weights
from course_lib.exercises.centernet import check_heatmap_peaks
from course_lib.exercises.detr import check_matching_cost
from course_lib.exercises.dissection import check_unit_iou
from course_lib.exercises.focal_loss import check_focal_loss
from course_lib.exercises.fpn import check_top_down_merge
from course_lib.exercises.hog import check_cell_histogram
from course_lib.exercises.iou import check_iou
from course_lib.exercises.nms import check_nms
from course_lib.exercises.occlusion import check_occlusion_window
from course_lib.exercises.roi import check_roi_max_pool
from course_lib.exercises.saliency import check_saliency_from_gradient
from course_lib.exercises.scouter import check_slot_attention
from course_lib.exercises.selective_search import check_merge_regions
from course_lib.exercises.ssd import check_match_default_boxes
from course_lib.exercises.visualization import check_ascent_step, check_receptive_field
from course_lib.exercises.yolo import check_decode_cell

__all__ = [
    "Case",
    "CheckResult",
    "Exercise",
    "Mistake",
    "check_ap",
    "check_ascent_step",
    "check_box_convert",
    "check_cam_from_weights",
    "check_cell_histogram",
    "check_decode_cell",
    "check_decode_deltas",
    "check_focal_loss",
    "check_grad_cam_weights",
    "check_heatmap_peaks",
    "check_iou",
    "check_label_anchors",
    "check_match_default_boxes",
    "check_matching_cost",
    "check_merge_regions",
    "check_nms",
    "check_occlusion_window",
    "check_receptive_field",
    "check_roi_max_pool",
    "check_saliency_from_gradient",
    "check_slot_attention",
    "check_top_down_merge",
    "check_unit_iou",
    "run_exercise",
]
