"""Interactive explorers: each is a pure function (tested on its own) plus a thin ipywidgets wrapper.

One module per library module they wrap, named after it (``widgets.nms`` wraps ``course_lib.nms``).
``noisy_detections`` (``course_lib.data.noisy``) is re-exported here for the notebooks that feed it
to the NMS and AP explorers.
"""

from course_lib.data.noisy import noisy_detections
from course_lib.widgets.anchors import AnchorExplorer, anchor_view
from course_lib.widgets.base import Explorer, as_box, clear_axes, draw_canvas
from course_lib.widgets.boxes import APExplorer, IoUExplorer, ap_view, iou_view
from course_lib.widgets.centernet import CenterNetExplorer, centernet_view, matched_objects
from course_lib.widgets.data import SceneExplorer, scene_view
from course_lib.widgets.detections import DetectionsExplorer, detections_view
from course_lib.widgets.detr import CrossAttentionExplorer, MatchingExplorer, attention_view, matching_view
from course_lib.widgets.dissection import DissectionExplorer, intervention_view
from course_lib.widgets.explanations import ExplanationExplorer, explanation_view
from course_lib.widgets.hog import HOGExplorer, hog_view
from course_lib.widgets.losses import FocalLossExplorer, focal_loss_shares
from course_lib.widgets.nms import NMSExplorer, nms_view
from course_lib.widgets.rcnn import RCNNExplorer, rcnn_proposal_view, rcnn_scores
from course_lib.widgets.retinanet import FPNLevelExplorer, level_assignment_view
from course_lib.widgets.roi import RoIPoolExplorer, roi_view
from course_lib.widgets.rpn import ProposalExplorer, proposal_view, rank_proposals
from course_lib.widgets.scouter import ScouterExplorer, scouter_view
from course_lib.widgets.selective_search import SelectiveSearchExplorer, selective_search_view
from course_lib.widgets.sliding_window import DetectorExplorer, detector_view
from course_lib.widgets.ssd import DefaultBoxExplorer, default_box_view
from course_lib.widgets.visualization import ActivationExplorer, ClassVisualizationExplorer, PatchExplorer
from course_lib.widgets.yolo import YOLOCellExplorer, yolo_cell_view

__all__ = [
    "APExplorer",
    "ActivationExplorer",
    "AnchorExplorer",
    "CenterNetExplorer",
    "ClassVisualizationExplorer",
    "CrossAttentionExplorer",
    "DefaultBoxExplorer",
    "DetectionsExplorer",
    "DetectorExplorer",
    "DissectionExplorer",
    "ExplanationExplorer",
    "Explorer",
    "FPNLevelExplorer",
    "FocalLossExplorer",
    "HOGExplorer",
    "IoUExplorer",
    "MatchingExplorer",
    "NMSExplorer",
    "PatchExplorer",
    "ProposalExplorer",
    "RCNNExplorer",
    "RoIPoolExplorer",
    "SceneExplorer",
    "ScouterExplorer",
    "SelectiveSearchExplorer",
    "YOLOCellExplorer",
    "anchor_view",
    "ap_view",
    "attention_view",
    "as_box",
    "centernet_view",
    "clear_axes",
    "default_box_view",
    "detections_view",
    "detector_view",
    "draw_canvas",
    "explanation_view",
    "focal_loss_shares",
    "hog_view",
    "intervention_view",
    "iou_view",
    "level_assignment_view",
    "matched_objects",
    "matching_view",
    "nms_view",
    "noisy_detections",
    "proposal_view",
    "rank_proposals",
    "rcnn_proposal_view",
    "rcnn_scores",
    "roi_view",
    "scene_view",
    "scouter_view",
    "selective_search_view",
    "yolo_cell_view",
]
