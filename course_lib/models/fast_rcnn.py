"""Fast R-CNN (Girshick 2015): one feature map per image, RoI pooling of external proposals.

R-CNN ran the CNN once per proposal; Fast R-CNN runs it once per image and cuts each proposal's
features out of the shared map with RoI max pooling (Sec. 2.1), so thousands of proposals cost one
forward pass plus a small head. The proposals still come from selective search, outside the
network: that step now dominates the time per image, which is what Faster R-CNN removes.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from course_lib.data import NUM_CLASSES
from course_lib.models.backbone import ShapesBackbone, freeze_batchnorm
from course_lib.models.detector_io import batch_images, check_images, check_targets
from course_lib.models.neck import Stride4Neck
from course_lib.models.proposals import SelectiveSearchProposer
from course_lib.models.roi_heads import RoIHeads


class FastRCNN(nn.Module):
    """``model(images, targets)`` -> losses in training, ``model(images)`` -> detections in eval mode.

    Proposals come from ``proposer(image) -> Tensor[N, 4]`` (selective search by default), or are
    passed in as ``model(images, targets, proposals=[...])``, which training uses with a cache.

    Args:
        backbone: a :class:`ShapesBackbone` (its weights are the starting point).
        num_classes: object classes ``K``.
        proposer: the region proposal method.
        head_kwargs: passed to :class:`RoIHeads` (``pooler="pool"`` by default, as the paper).
    """

    def __init__(
        self,
        backbone: ShapesBackbone | None = None,
        num_classes: int = NUM_CLASSES,
        proposer: Callable[[Tensor], Tensor] | None = None,
        head_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone or ShapesBackbone()
        self.neck = Stride4Neck(self.backbone.out_channels)
        self.roi_heads = RoIHeads(
            self.neck.out_channels, num_classes, stride=4, **({"pooler": "pool"} | (head_kwargs or {}))
        )
        self.proposer = proposer or SelectiveSearchProposer()
        self.num_classes = num_classes

    def train(self, mode: bool = True) -> FastRCNN:
        super().train(mode)
        freeze_batchnorm(self.backbone)
        return self

    def feature_map(self, images: list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
        """The shared stride-4 feature map of a list of images, and their sizes."""
        batch, sizes = batch_images(check_images(images))  # (B, 3, H, W)
        return self.neck(self.backbone.features(batch)), sizes  # (B, D, H/4, W/4)

    def forward(
        self, images: list[Tensor], targets: list[dict] | None = None, proposals: list[Tensor] | None = None
    ):
        images = check_images(images)
        if self.training:
            targets = check_targets(targets, len(images), self.num_classes)
        if proposals is None:
            proposals = [self.proposer(image) for image in images]
        elif len(proposals) != len(images):
            raise ValueError(
                f"proposals: expected one Tensor[N, 4] per image ({len(images)}), got {len(proposals)}"
            )
        feature_map, sizes = self.feature_map(images)
        detections, losses = self.roi_heads(
            feature_map, list(proposals), sizes, targets if self.training else None
        )
        return losses if self.training else detections
