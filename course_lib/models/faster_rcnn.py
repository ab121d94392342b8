"""Faster R-CNN (Ren et al. 2015): an RPN and the Fast R-CNN head on one shared feature map.

The network proposes its own regions: the RPN (``rpn.py``) scores 3 sizes x 3 aspect ratios of
anchors at every cell of the stride-4 map, NMS at 0.7 keeps the best few hundred, and the Fast
R-CNN head (``roi_heads.py``) classifies and refines them. Both are trained together, end to end
(the "approximate joint training" of Sec. 3.2), their four losses summed. Deviations from the
paper: RoIAlign instead of RoI max pooling (as torchvision), one feature map built from three
backbone stages (``neck.py``), anchor sizes 12, 24, 48 px for 128-px images, and, in the recipe,
jittered copies of the ground truth among the head's training proposals (``roi_heads.py``).
"""

from __future__ import annotations

from torch import Tensor

from course_lib.data import NUM_CLASSES
from course_lib.models.backbone import ShapesBackbone
from course_lib.models.detector_io import check_targets
from course_lib.models.rpn import RegionProposalNetwork
from course_lib.models.two_stage import TwoStageDetector


class FasterRCNN(TwoStageDetector):
    """``model(images, targets) -> losses`` in training, ``model(images) -> detections`` in eval mode.

    Args:
        backbone: a :class:`ShapesBackbone` (its weights are the starting point).
        num_classes: object classes ``K``.
        rpn_kwargs, head_kwargs: passed to :class:`RegionProposalNetwork` and :class:`RoIHeads`.
    """

    def __init__(
        self,
        backbone: ShapesBackbone | None = None,
        num_classes: int = NUM_CLASSES,
        rpn_kwargs: dict | None = None,
        head_kwargs: dict | None = None,
    ) -> None:
        def rpn(channels: int) -> RegionProposalNetwork:
            return RegionProposalNetwork(channels, stride=4, **(rpn_kwargs or {}))

        super().__init__(backbone, num_classes, "align", head_kwargs, proposal_modules={"rpn": rpn})

    def forward(self, images: list[Tensor], targets: list[dict] | None = None):
        """Detect, or in training mode return the four losses.

        Args:
            images: ``list[Tensor[3, H, W]]`` in [0, 1].
            targets: in training, one ``{"boxes": Tensor[M, 4] xyxy, "labels": Tensor[M] in 1..K}``
                per image.

        Returns:
            Training: ``loss_objectness``, ``loss_rpn_box_reg`` (RPN), ``loss_classifier``,
            ``loss_box_reg`` (head), each a ``Tensor[]``. Eval: one ``{"boxes": Tensor[D, 4],
            "scores": Tensor[D], "labels": Tensor[D]}`` per image.
        """
        if self.training:
            targets = check_targets(targets, len(images), self.num_classes)
        feature_map, sizes = self.feature_map(images)  # (B, D, H/4, W/4)
        proposals, _, rpn_losses = self.rpn(feature_map, sizes, targets if self.training else None)
        detections, head_losses = self.roi_heads(
            feature_map, proposals, sizes, targets if self.training else None
        )
        if self.training:
            return rpn_losses | head_losses
        return detections
