"""What Fast R-CNN and Faster R-CNN share: a backbone, one stride-4 feature map, and the RoI head.

Both detectors run the CNN once per image (Girshick 2015, Sec. 2): the backbone and the neck make
one shared feature map, and the Fast R-CNN head (``roi_heads.py``) pools every proposal from it,
classifies it and refines its box. They differ only in where the proposals come from (selective
search outside the network, or the RPN inside it), which is all that a subclass adds.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from course_lib.models.backbone import ShapesBackbone, freeze_batchnorm
from course_lib.models.detector_io import batch_images, check_images
from course_lib.models.neck import Stride4Neck
from course_lib.models.roi_heads import RoIHeads


class TwoStageDetector(nn.Module):
    """Backbone, stride-4 neck and RoI head; a subclass adds the proposals and ``forward``.

    Args:
        backbone: a :class:`ShapesBackbone` (its weights are the starting point).
        num_classes: object classes ``K``.
        pooler: ``"pool"`` (RoI max pooling, Fast R-CNN) or ``"align"`` (RoIAlign).
        head_kwargs: passed to :class:`RoIHeads`, over ``pooler``.
        proposal_modules: ``{attribute: build(feature_channels) -> nn.Module}``, the learned part
            of the proposal stage (Faster R-CNN's RPN), created between the neck and the head.
    """

    def __init__(
        self,
        backbone: ShapesBackbone | None,
        num_classes: int,
        pooler: str,
        head_kwargs: dict | None,
        proposal_modules: dict[str, Callable[[int], nn.Module]] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone or ShapesBackbone()
        self.neck = Stride4Neck(self.backbone.out_channels)
        # The order in which layers are created decides which random numbers initialize which
        # weights: backbone, neck, proposals, head, as the detectors' recipes were trained.
        for name, build in (proposal_modules or {}).items():
            setattr(self, name, build(self.neck.out_channels))
        self.roi_heads = RoIHeads(
            self.neck.out_channels, num_classes, stride=4, **({"pooler": pooler} | (head_kwargs or {}))
        )
        self.num_classes = num_classes

    def train(self, mode: bool = True) -> TwoStageDetector:
        super().train(mode)
        freeze_batchnorm(self.backbone)  # a few images per batch: keep pre-training's statistics
        return self

    def feature_map(self, images: list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
        """The shared stride-4 feature map of a list of images, and their sizes.

        Args:
            images: ``list[Tensor[3, H, W]]`` in [0, 1], sizes may differ (padded to the largest).

        Returns:
            ``(Tensor[B, D, H'/4, W'/4], [(H, W) of each image])`` with ``D = neck.out_channels``.
        """
        batch, sizes = batch_images(check_images(images))  # (B, 3, H', W')
        return self.neck(self.backbone.features(batch)), sizes  # (B, D, H'/4, W'/4)
