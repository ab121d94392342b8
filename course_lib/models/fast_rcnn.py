"""Fast R-CNN (Girshick 2015): one feature map per image, RoI pooling of external proposals.

R-CNN ran the CNN once per proposal; Fast R-CNN runs it once per image and cuts each proposal's
features out of the shared map with RoI max pooling (Sec. 2.1), so thousands of proposals cost one
forward pass plus a small head. The proposals still come from selective search, outside the
network: that step now dominates the time per image, which is what Faster R-CNN removes.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from course_lib.data import NUM_CLASSES
from course_lib.models.backbone import ShapesBackbone
from course_lib.models.detector_io import check_images, check_targets
from course_lib.models.proposals import SelectiveSearchProposer
from course_lib.models.two_stage import TwoStageDetector


class FastRCNN(TwoStageDetector):
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
        super().__init__(backbone, num_classes, "pool", head_kwargs)
        self.proposer = proposer or SelectiveSearchProposer()

    def forward(
        self, images: list[Tensor], targets: list[dict] | None = None, proposals: list[Tensor] | None = None
    ):
        """Detect, or in training mode return the head's losses.

        Args:
            images: ``list[Tensor[3, H, W]]`` in [0, 1].
            targets: in training, one ``{"boxes": Tensor[M, 4] xyxy, "labels": Tensor[M] in 1..K}``
                per image.
            proposals: ``list[Tensor[N, 4]]`` xyxy, one per image; computed by ``proposer`` if
                ``None``.

        Returns:
            Training: ``{"loss_classifier": Tensor[], "loss_box_reg": Tensor[]}``. Eval: one
            ``{"boxes": Tensor[D, 4], "scores": Tensor[D], "labels": Tensor[D]}`` per image.
        """
        images = check_images(images)
        if self.training:
            targets = check_targets(targets, len(images), self.num_classes)
        if proposals is None:
            proposals = [self.proposer(image) for image in images]
        elif len(proposals) != len(images):
            raise ValueError(
                f"proposals: expected one Tensor[N, 4] per image ({len(images)}), got {len(proposals)}"
            )
        feature_map, sizes = self.feature_map(images)  # (B, D, H/4, W/4)
        detections, losses = self.roi_heads(
            feature_map, list(proposals), sizes, targets if self.training else None
        )
        return losses if self.training else detections
