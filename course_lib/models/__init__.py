"""The course's neural networks: the shared backbone and the detectors (two-stage and one-stage),
torchvision's I/O convention."""

from course_lib.models.backbone import ShapesBackbone, freeze_batchnorm
from course_lib.models.centernet import CenterNet
from course_lib.models.detr import DETR
from course_lib.models.fast_rcnn import FastRCNN
from course_lib.models.faster_rcnn import FasterRCNN
from course_lib.models.one_stage import OneStageDetector
from course_lib.models.proposals import SelectiveSearchProposer
from course_lib.models.rcnn import RCNN
from course_lib.models.retinanet import RetinaNet
from course_lib.models.roi_heads import RoIHeads
from course_lib.models.rpn import RegionProposalNetwork, RPNHead
from course_lib.models.ssd import SSD
from course_lib.models.two_stage import TwoStageDetector
from course_lib.models.yolo import YOLOv1

__all__ = [
    "DETR",
    "RCNN",
    "SSD",
    "CenterNet",
    "FastRCNN",
    "FasterRCNN",
    "OneStageDetector",
    "RPNHead",
    "RegionProposalNetwork",
    "RetinaNet",
    "RoIHeads",
    "SelectiveSearchProposer",
    "ShapesBackbone",
    "TwoStageDetector",
    "YOLOv1",
    "freeze_batchnorm",
]
