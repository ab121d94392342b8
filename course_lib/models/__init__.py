"""The course's neural networks: the shared backbone and the detectors, torchvision's I/O convention."""

from course_lib.models.backbone import ShapesBackbone, freeze_batchnorm
from course_lib.models.fast_rcnn import FastRCNN
from course_lib.models.faster_rcnn import FasterRCNN
from course_lib.models.proposals import SelectiveSearchProposer
from course_lib.models.rcnn import RCNN
from course_lib.models.roi_heads import RoIHeads
from course_lib.models.rpn import RegionProposalNetwork, RPNHead
from course_lib.models.two_stage import TwoStageDetector

__all__ = [
    "RCNN",
    "FastRCNN",
    "FasterRCNN",
    "RPNHead",
    "RegionProposalNetwork",
    "RoIHeads",
    "SelectiveSearchProposer",
    "ShapesBackbone",
    "TwoStageDetector",
    "freeze_batchnorm",
]
