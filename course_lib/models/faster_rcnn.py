"""Faster R-CNN (Ren et al. 2015): an RPN and the Fast R-CNN head on one shared feature map.

The network proposes its own regions: the RPN (``rpn.py``) scores 3 sizes x 3 aspect ratios of
anchors at every cell of the stride-4 map, NMS at 0.7 keeps the best few hundred, and the Fast
R-CNN head (``roi_heads.py``) classifies and refines them. Both are trained together, end to end
(the "approximate joint training" of Sec. 3.2), their four losses summed. Deviations from the
paper: RoIAlign instead of RoI max pooling (as torchvision), one feature map built from two
backbone stages (``neck.py``), and anchor sizes 12, 24, 48 px for 128-px images.
"""

from __future__ import annotations

from torch import Tensor, nn

from course_lib.data import NUM_CLASSES
from course_lib.models.backbone import ShapesBackbone, freeze_batchnorm
from course_lib.models.detector_io import batch_images, check_images, check_targets
from course_lib.models.neck import Stride4Neck
from course_lib.models.roi_heads import RoIHeads
from course_lib.models.rpn import RegionProposalNetwork


class FasterRCNN(nn.Module):
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
        super().__init__()
        self.backbone = backbone or ShapesBackbone()
        self.neck = Stride4Neck(self.backbone.out_channels)
        self.rpn = RegionProposalNetwork(self.neck.out_channels, stride=4, **(rpn_kwargs or {}))
        self.roi_heads = RoIHeads(
            self.neck.out_channels, num_classes, stride=4, **({"pooler": "align"} | (head_kwargs or {}))
        )
        self.num_classes = num_classes

    def train(self, mode: bool = True) -> FasterRCNN:
        super().train(mode)
        freeze_batchnorm(self.backbone)  # a few images per batch: keep pre-training's statistics
        return self

    def feature_map(self, images: list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
        """The shared stride-4 feature map of a list of images, and their sizes."""
        batch, sizes = batch_images(check_images(images))  # (B, 3, H, W)
        return self.neck(self.backbone.features(batch)), sizes  # (B, D, H/4, W/4)

    def forward(self, images: list[Tensor], targets: list[dict] | None = None):
        if self.training:
            targets = check_targets(targets, len(images), self.num_classes)
        feature_map, sizes = self.feature_map(images)
        proposals, _, rpn_losses = self.rpn(feature_map, sizes, targets if self.training else None)
        detections, head_losses = self.roi_heads(
            feature_map, proposals, sizes, targets if self.training else None
        )
        if self.training:
            return rpn_losses | head_losses
        return detections
