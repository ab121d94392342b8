"""Interactive explorers: each is a pure function (tested on its own) plus a thin ipywidgets wrapper.

One module per library module they wrap, named after it (``widgets.nms`` wraps ``course_lib.nms``).
``noisy_detections`` (``course_lib.data.noisy``) is re-exported here for the notebooks that feed it
to the NMS and AP explorers.
"""

from course_lib.data.noisy import noisy_detections
from course_lib.widgets.anchors import AnchorExplorer, anchor_view
from course_lib.widgets.base import Explorer, as_box, clear_axes, draw_canvas
from course_lib.widgets.boxes import APExplorer, IoUExplorer, ap_view, iou_view
from course_lib.widgets.data import SceneExplorer, scene_view
from course_lib.widgets.detections import DetectionsExplorer, detections_view
from course_lib.widgets.hog import HOGExplorer, hog_view
from course_lib.widgets.losses import FocalLossExplorer, focal_loss_shares
from course_lib.widgets.nms import NMSExplorer, nms_view
from course_lib.widgets.rcnn import RCNNExplorer, rcnn_proposal_view, rcnn_scores
from course_lib.widgets.retinanet import FPNLevelExplorer, level_assignment_view
from course_lib.widgets.roi import RoIPoolExplorer, roi_view
from course_lib.widgets.rpn import ProposalExplorer, proposal_view, rank_proposals
from course_lib.widgets.selective_search import SelectiveSearchExplorer, selective_search_view
from course_lib.widgets.sliding_window import DetectorExplorer, detector_view
from course_lib.widgets.ssd import DefaultBoxExplorer, default_box_view
from course_lib.widgets.visualization import ActivationExplorer, ClassVisualizationExplorer, PatchExplorer
from course_lib.widgets.yolo import YOLOCellExplorer, yolo_cell_view

__all__ = [
    "Explorer",
    "as_box",
    "clear_axes",
    "draw_canvas",
    "IoUExplorer",
    "iou_view",
    "APExplorer",
    "ap_view",
    "AnchorExplorer",
    "anchor_view",
    "NMSExplorer",
    "nms_view",
    "noisy_detections",
    "SceneExplorer",
    "scene_view",
    "DetectionsExplorer",
    "detections_view",
    "HOGExplorer",
    "hog_view",
    "DetectorExplorer",
    "detector_view",
    "RCNNExplorer",
    "rcnn_proposal_view",
    "rcnn_scores",
    "RoIPoolExplorer",
    "roi_view",
    "ProposalExplorer",
    "proposal_view",
    "rank_proposals",
    "SelectiveSearchExplorer",
    "selective_search_view",
    "YOLOCellExplorer",
    "yolo_cell_view",
    "DefaultBoxExplorer",
    "default_box_view",
    "FocalLossExplorer",
    "focal_loss_shares",
    "FPNLevelExplorer",
    "level_assignment_view",
    "ActivationExplorer",
    "PatchExplorer",
    "ClassVisualizationExplorer",
]
