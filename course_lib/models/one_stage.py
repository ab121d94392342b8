"""What the one-stage detectors share: the backbone, their input checks, and the last step.

A one-stage detector (YOLO, SSD, RetinaNet) has no proposals and no RoI pooling: one pass of
convolutions predicts, at every cell of one or more feature maps, class scores and a box for each
of a fixed set of candidates. What is left to do after the network is the same for all of them
(:meth:`OneStageDetector.select_detections`): keep the candidates whose class score passes a
threshold, the best few thousand, clip them to the image, and suppress duplicates by per-class NMS.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course_lib.boxes import clip_boxes_to_image
from course_lib.models.backbone import ShapesBackbone, freeze_batchnorm
from course_lib.models.detector_io import batch_images, check_images
from course_lib.nms import fast_batched_nms


class OneStageDetector(nn.Module):
    """A backbone (batch norm frozen in training) and the post-processing of dense predictions.

    Args:
        backbone: a :class:`ShapesBackbone` (its weights are the starting point).
        num_classes: object classes ``K``.
        score_thresh: a candidate's class score must exceed it to be kept.
        nms_thresh: IoU threshold of the per-class NMS.
        detections_per_img: at most this many detections per image, best first.
        topk_candidates: at most this many candidates go into NMS, the best scores.
        min_size: boxes narrower or lower than this (pixels) after clipping are dropped.
    """

    size_divisible = 32

    def __init__(
        self,
        backbone: ShapesBackbone | None,
        num_classes: int,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        topk_candidates: int = 1000,
        min_size: float = 1.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone or ShapesBackbone()
        self.num_classes = num_classes
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.topk_candidates = topk_candidates
        self.min_size = min_size

    def train(self, mode: bool = True) -> OneStageDetector:
        super().train(mode)
        freeze_batchnorm(self.backbone)  # a few images per batch: keep pre-training's statistics
        return self

    def backbone_features(self, images: list[Tensor]) -> tuple[dict[str, Tensor], list[tuple[int, int]]]:
        """The backbone's maps of a list of images (zero-padded to one size), and the images' sizes."""
        batch, sizes = batch_images(check_images(images), self.size_divisible)  # (B, 3, H', W')
        return self.backbone.features(batch), sizes

    def select_detections(
        self, boxes: Tensor, scores: Tensor, image_size: tuple[int, int]
    ) -> dict[str, Tensor]:
        """Threshold, top-k, clip, per-class NMS: one image's candidates into its detections.

        Args:
            boxes (Tensor[N, 4]): ``xyxy`` box of each candidate.
            scores (Tensor[N, K]): each candidate's score for each class (no background column).
            image_size: ``(height, width)`` to clip to.

        Returns:
            ``{"boxes": Tensor[D, 4], "scores": Tensor[D], "labels": Tensor[D]}``, best first,
            labels in ``1..K``.
        """
        if scores.dim() != 2 or scores.shape != (boxes.shape[0], self.num_classes):
            raise ValueError(
                f"scores: expected a Tensor[{boxes.shape[0]}, {self.num_classes}] (one column per class), "
                f"got shape {tuple(scores.shape)}"
            )
        flat = scores.reshape(-1)  # (N*K,) candidate-major
        keep = torch.nonzero(flat > self.score_thresh)[:, 0]  # (M,)
        if keep.numel() > self.topk_candidates:
            keep = keep[flat[keep].topk(self.topk_candidates).indices]
        candidate, label = keep // self.num_classes, keep % self.num_classes + 1
        chosen = clip_boxes_to_image(boxes[candidate], image_size)  # (M, 4)
        chosen_scores = flat[keep]
        wide = ((chosen[:, 2] - chosen[:, 0]) >= self.min_size) & (
            (chosen[:, 3] - chosen[:, 1]) >= self.min_size
        )
        chosen, chosen_scores, label = chosen[wide], chosen_scores[wide], label[wide]
        kept = fast_batched_nms(chosen, chosen_scores, label, self.nms_thresh)[: self.detections_per_img]
        return {"boxes": chosen[kept], "scores": chosen_scores[kept], "labels": label[kept]}
