"""RetinaNet (Lin et al. 2017, "Focal Loss for Dense Object Detection"): FPN, two subnets, focal loss.

A one-stage detector that matched the two-stage ones, because of its loss, not its architecture:
- a feature pyramid (``neck.FeaturePyramid``): every level has the same width, so
- one *class subnet* and one *box subnet* (a few 3x3 convolutions each) are shared by all levels;
  at every cell of every level sit ``A = 9`` anchors (3 sizes, 2^0, 2^(1/3), 2^(2/3) times the
  level's base, x 3 aspect ratios), and the class subnet gives each a sigmoid score per class;
- anchors are matched as in the RPN but at IoU >= 0.5 (object) and < 0.4 (background);
- the classification loss over **all** anchors, not a sample, is the focal loss
  (``course_lib.losses.sigmoid_focal_loss``, alpha = 0.25, gamma = 2), divided by the number of
  positive anchors; the class subnet's last bias starts at ``-log((1 - pi) / pi)``, pi = 0.01, so
  that the first steps are not swamped by the background (Sec. 4.1, "Initialization").

With ``gamma = 0`` and ``alpha = -1`` the same network trains with the plain cross entropy: the
ablation of notebook 12. Here: levels at strides 4 to 32 (the paper's P3 to P7 are for 800-px
images), base anchor size twice the stride, subnets of 2 convolutions of width 64 (the paper's 4 of 256).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib.anchors import generate_anchors, label_anchors
from course_lib.boxes import BoxCoder
from course_lib.data import NUM_CLASSES
from course_lib.losses import sigmoid_focal_loss
from course_lib.models.backbone import ShapesBackbone
from course_lib.models.detector_io import check_targets
from course_lib.models.neck import FeaturePyramid
from course_lib.models.one_stage import OneStageDetector

SCALES = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))  # anchor sizes per level, relative to its base size
ASPECT_RATIOS = (0.5, 1.0, 2.0)


def subnet(channels: int, outputs: int, depth: int) -> nn.Sequential:
    """``depth`` x (3x3 conv, ReLU), then a 3x3 conv to ``outputs`` channels; weights N(0, 0.01)."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    layers.append(nn.Conv2d(channels, outputs, 3, padding=1))
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class RetinaNet(OneStageDetector):
    """``model(images, targets) -> losses`` in training, ``model(images) -> detections`` in eval mode.

    Args:
        backbone: a :class:`ShapesBackbone`.
        num_classes: ``K`` (one sigmoid per class, no background output).
        width: channels of the pyramid and the subnets.
        depth: 3x3 convolutions of each subnet before its output layer.
        alpha, gamma: of the focal loss (``gamma = 0, alpha = -1``: cross entropy).
        fg_iou_thresh, bg_iou_thresh: anchor matching.
        prior: the initial foreground probability of every anchor.
        **kwargs: post-processing, see :class:`OneStageDetector`.
    """

    def __init__(
        self,
        backbone: ShapesBackbone | None = None,
        num_classes: int = NUM_CLASSES,
        width: int = 64,
        depth: int = 2,
        alpha: float = 0.25,
        gamma: float = 2.0,
        fg_iou_thresh: float = 0.5,
        bg_iou_thresh: float = 0.4,
        prior: float = 0.01,
        scales: Sequence[float] = SCALES,
        aspect_ratios: Sequence[float] = ASPECT_RATIOS,
        **kwargs,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.alpha, self.gamma = alpha, gamma
        self.fg_iou_thresh, self.bg_iou_thresh = fg_iou_thresh, bg_iou_thresh
        self.scales, self.aspect_ratios = tuple(scales), tuple(aspect_ratios)
        self.num_anchors = len(self.scales) * len(self.aspect_ratios)
        self.fpn = FeaturePyramid(self.backbone.out_channels, width)
        self.strides = {level: int(level.removeprefix("stride")) for level in self.fpn.levels}
        self.class_subnet = subnet(width, self.num_anchors * num_classes, depth)
        self.box_subnet = subnet(width, self.num_anchors * 4, depth)
        nn.init.constant_(self.class_subnet[-1].bias, -math.log((1 - prior) / prior))
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self._anchor_cache: dict[tuple, Tensor] = {}

    def anchors(self, pyramid: dict[str, Tensor]) -> dict[str, Tensor]:
        """The anchors of each level, ``{level: Tensor[H_l * W_l * A, 4]}`` (cached per grid size)."""
        result = {}
        for level, feature_map in pyramid.items():
            grid = tuple(feature_map.shape[-2:])
            key = (level, grid, str(feature_map.device))
            if key not in self._anchor_cache:
                stride = self.strides[level]
                sizes = [2 * stride * scale for scale in self.scales]
                self._anchor_cache[key] = generate_anchors(
                    sizes, self.aspect_ratios, stride, grid, offset=0.5, device=feature_map.device
                )
            result[level] = self._anchor_cache[key]
        return result

    def pyramid(self, images: list[Tensor]) -> tuple[dict[str, Tensor], list[tuple[int, int]]]:
        """The feature pyramid of a list of images (finest level first), and their sizes."""
        features, sizes = self.backbone_features(images)
        return self.fpn(features), sizes

    def head(self, pyramid: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(class_logits Tensor[B, N, K], deltas Tensor[B, N, 4])`` over the anchors of every level."""
        logits, deltas = [], []
        for feature_map in pyramid.values():
            B = feature_map.shape[0]
            logits.append(self.class_subnet(feature_map).permute(0, 2, 3, 1).reshape(B, -1, self.num_classes))
            deltas.append(self.box_subnet(feature_map).permute(0, 2, 3, 1).reshape(B, -1, 4))
        return torch.cat(logits, dim=1), torch.cat(deltas, dim=1)

    def forward(self, images: list[Tensor], targets: list[dict] | None = None):
        """Detect, or in training mode return ``{"loss_classifier", "loss_box_reg"}``."""
        if self.training:
            targets = check_targets(targets, len(images), self.num_classes)
        pyramid, sizes = self.pyramid(images)
        logits, deltas = self.head(pyramid)  # (B, N, K), (B, N, 4)
        anchors = torch.cat(list(self.anchors(pyramid).values()))  # (N, 4)
        if self.training:
            return self.losses(logits, deltas, anchors, targets)
        return [
            self.select_detections(
                self.box_coder.decode(image_deltas, anchors), torch.sigmoid(image_logits), size
            )
            for image_deltas, image_logits, size in zip(deltas, logits, sizes, strict=True)
        ]

    def match(self, anchors: Tensor, target: dict) -> tuple[Tensor, Tensor, Tensor]:
        """One image's anchors: ``(state Tensor[N] 1 / 0 / -1, one-hot classes Tensor[N, K], matched)``."""
        state, matched = label_anchors(anchors, target["boxes"], self.fg_iou_thresh, self.bg_iou_thresh)
        classes = torch.zeros(len(anchors), self.num_classes, device=anchors.device)
        positive = torch.nonzero(state == 1)[:, 0]
        classes[positive, target["labels"][matched[positive]] - 1] = 1.0
        return state, classes, matched

    def losses(
        self, logits: Tensor, deltas: Tensor, anchors: Tensor, targets: list[dict]
    ) -> dict[str, Tensor]:
        """Focal loss over every anchor not ignored, smooth L1 (beta 1/9) over the positives' deltas,
        both summed over the batch and divided by the number of positive anchors."""
        class_terms, box_terms, num_positive = [], [], 0
        for image_logits, image_deltas, target in zip(logits, deltas, targets, strict=True):
            state, classes, matched = self.match(anchors, target)
            valid = state >= 0
            class_terms.append(
                sigmoid_focal_loss(
                    image_logits[valid], classes[valid], self.alpha, self.gamma, reduction="sum"
                )
            )
            positive = state == 1
            if positive.any():
                goal = self.box_coder.encode(target["boxes"][matched[positive]].float(), anchors[positive])
                box_terms.append(F.smooth_l1_loss(image_deltas[positive], goal, beta=1 / 9, reduction="sum"))
            num_positive += int(positive.sum())
        count = max(1, num_positive)
        loss_box = torch.stack(box_terms).sum() if box_terms else deltas.sum() * 0.0
        return {"loss_classifier": torch.stack(class_terms).sum() / count, "loss_box_reg": loss_box / count}
