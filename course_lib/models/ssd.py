"""SSD (Liu et al. 2016, "Single Shot MultiBox Detector"): default boxes on several feature maps.

Where YOLO v1 reads every box from one coarse grid, SSD predicts on several maps, fine ones for
small objects and coarse ones for large: at every cell of level ``k`` sit default boxes of size
``s_k`` (growing with the level) and several aspect ratios, and a 3x3 convolution predicts, for each,
``K + 1`` class scores (background included) and 4 offsets. SSD300 has 8,732 of them.

Training (Sec. 2.2):
- *matching* (:func:`match_default_boxes`): a default box is positive for the object it overlaps
  with IoU >= 0.5, and each object also takes its best default box;
- *hard negative mining* (:func:`hard_negative_mining`): of the negatives, only the highest
  classification losses count, 3 for every positive;
- the loss: softmax cross entropy over the positives and the mined negatives, plus smooth L1 on the
  positives' offsets (encoded with the "variances" 0.1, 0.2), both divided by the positives' count.

Here: the backbone's stride-4, 8 and 16 maps and one extra stride-32 layer (SSD adds extra layers
after the base network the same way), default boxes of 8, 16, 32 and 64 px for 128-px images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib._checks import check_number, check_pair, check_tensor
from course_lib.anchors import label_anchors
from course_lib.boxes import BoxCoder
from course_lib.data import NUM_CLASSES
from course_lib.models.backbone import ShapesBackbone
from course_lib.models.detector_io import check_targets
from course_lib.models.one_stage import OneStageDetector

LEVELS = ("stride4", "stride8", "stride16", "stride32")


def default_boxes(
    grid_size: int | Sequence[int],
    stride: float,
    size: float,
    next_size: float,
    aspect_ratios: Sequence[float] = (2.0,),
    device: torch.device | str | None = None,
) -> Tensor:
    """The default boxes of one feature map, as SSD defines them (Sec. 2.2, "Choosing scales").

    At the centre of every cell: a square of side ``size``, a square of side ``sqrt(size *
    next_size)``, and for each ratio ``a`` a box of width ``size * sqrt(a)`` and height
    ``size / sqrt(a)`` and its transpose. Boxes are not clipped to the image.

    Args:
        grid_size: ``(H, W)`` of the feature map, or an int.
        stride: pixels per cell.
        size, next_size: ``s_k`` and ``s_{k+1}`` in pixels.
        aspect_ratios: the ratios ``a > 0`` besides 1 (``(2,)`` gives 4 boxes per cell, ``(2, 3)`` 6).

    Returns:
        Tensor[H * W * A, 4] ``xyxy``, ``A = 2 + 2 * len(aspect_ratios)``; cell by cell (row-major),
        then box by box in the order above.
    """
    grid_h, grid_w = check_pair(grid_size, "grid_size", low=0)
    check_number(stride, "stride", low=0)
    check_number(size, "size", low=0)
    check_number(next_size, "next_size", low=0)
    shapes = [(size, size), (math.sqrt(size * next_size),) * 2]
    for ratio in aspect_ratios:
        check_number(ratio, "aspect_ratios", low=0)
        if ratio == 0:
            raise ValueError(f"aspect_ratios: expected positive ratios, got {tuple(aspect_ratios)!r}")
        shapes += [
            (size * math.sqrt(ratio), size / math.sqrt(ratio)),
            (size / math.sqrt(ratio), size * math.sqrt(ratio)),
        ]
    half = torch.tensor(shapes, dtype=torch.float32, device=device) / 2  # (A, 2) half width, height
    centre_x = (torch.arange(grid_w, dtype=torch.float32, device=device) + 0.5) * stride  # (W,)
    centre_y = (torch.arange(grid_h, dtype=torch.float32, device=device) + 0.5) * stride  # (H,)
    centre_y, centre_x = torch.meshgrid(centre_y, centre_x, indexing="ij")  # (H, W)
    centres = torch.stack((centre_x, centre_y), dim=-1).reshape(-1, 1, 2)  # (H*W, 1, 2)
    return torch.cat((centres - half, centres + half), dim=-1).reshape(-1, 4)  # (H*W*A, 4)


def match_default_boxes(
    boxes: Tensor, gt_boxes: Tensor, gt_labels: Tensor, iou_threshold: float = 0.5
) -> tuple[Tensor, Tensor]:
    """SSD's matching: the class each default box must predict, and the object it regresses to.

    Positive: IoU >= ``iou_threshold`` with its best object, or the best default box of some object
    (ties included); negative (background, class 0) otherwise.

    Args:
        boxes (Tensor[N, 4]): default boxes; gt_boxes (Tensor[M, 4]) and gt_labels (Tensor[M], 1..K).

    Returns:
        ``(classes Tensor[N] int64 in 0..K, matched Tensor[N] int64)``: the index of the object of
        highest IoU with each default box (0 when there are no objects).
    """
    check_tensor(gt_labels, "gt_labels")
    if gt_labels.shape != gt_boxes.shape[:1]:
        raise ValueError(
            f"gt_labels: expected a Tensor[{gt_boxes.shape[0]}] (one per box), "
            f"got shape {tuple(gt_labels.shape)}"
        )
    labels, matched = label_anchors(
        boxes, gt_boxes, iou_threshold, iou_threshold, allow_low_quality_matches=True
    )
    classes = torch.zeros_like(labels)
    positive = labels == 1
    classes[positive] = gt_labels[matched[positive]].to(torch.int64)
    return classes, matched


def hard_negative_mining(class_loss: Tensor, positive: Tensor, neg_pos_ratio: int = 3) -> Tensor:
    """The negatives whose loss counts: the ``neg_pos_ratio * P`` highest losses among the negatives.

    Args:
        class_loss (Tensor[N]): each default box's classification loss.
        positive (Tensor[N] bool): the positives (``P`` of them).
        neg_pos_ratio: negatives kept per positive (3 in the paper).

    Returns:
        Tensor[N] bool: the mined negatives (ties broken by the lower index).
    """
    check_tensor(class_loss, "class_loss")
    if positive.shape != class_loss.shape or positive.dtype != torch.bool:
        raise ValueError(
            f"positive: expected a bool Tensor{list(class_loss.shape)}, "
            f"got {positive.dtype} {tuple(positive.shape)}"
        )
    count = min(int(positive.sum()) * neg_pos_ratio, int((~positive).sum()))
    loss = class_loss.detach().masked_fill(positive, -math.inf)
    order = loss.argsort(descending=True, stable=True)[:count]
    mined = torch.zeros_like(positive)
    mined[order] = True
    return mined


class SSD(OneStageDetector):
    """``model(images, targets) -> losses`` in training, ``model(images) -> detections`` in eval mode.

    Args:
        backbone: a :class:`ShapesBackbone`.
        num_classes: object classes ``K`` (the classifier has ``K + 1`` outputs, background first).
        sizes: ``s_k`` of each level in pixels, and ``s_{K+1}`` last (one more than the levels).
        aspect_ratios: ratios besides 1 at every level.
        iou_threshold, neg_pos_ratio: matching and hard negative mining.
        **kwargs: post-processing, see :class:`OneStageDetector`.
    """

    def __init__(
        self,
        backbone: ShapesBackbone | None = None,
        num_classes: int = NUM_CLASSES,
        sizes: Sequence[float] = (8.0, 16.0, 32.0, 64.0, 128.0),
        aspect_ratios: Sequence[float] = (2.0,),
        iou_threshold: float = 0.5,
        neg_pos_ratio: int = 3,
        **kwargs,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if len(sizes) != len(LEVELS) + 1:
            raise ValueError(
                f"sizes: expected {len(LEVELS) + 1} sizes (one per level and one more), got {sizes!r}"
            )
        self.sizes = tuple(float(size) for size in sizes)
        self.aspect_ratios = tuple(aspect_ratios)
        self.boxes_per_cell = 2 + 2 * len(self.aspect_ratios)
        self.iou_threshold = iou_threshold
        self.neg_pos_ratio = neg_pos_ratio
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))  # the paper's variances 0.1 and 0.2
        channels = dict(self.backbone.out_channels)
        self.extra = nn.Sequential(  # SSD's extra feature layer: 1x1 to half, then 3x3 at stride 2
            nn.Conv2d(channels["stride16"], channels["stride16"] // 2, 1),
            nn.ReLU(),
            nn.Conv2d(channels["stride16"] // 2, channels["stride16"], 3, stride=2, padding=1),
            nn.ReLU(),
        )
        channels["stride32"] = channels["stride16"]
        A = self.boxes_per_cell
        self.classifiers = nn.ModuleDict(
            {level: nn.Conv2d(channels[level], A * (num_classes + 1), 3, padding=1) for level in LEVELS}
        )
        self.regressors = nn.ModuleDict(
            {level: nn.Conv2d(channels[level], A * 4, 3, padding=1) for level in LEVELS}
        )
        self._box_cache: dict[tuple, Tensor] = {}

    def feature_maps(self, images: list[Tensor]) -> tuple[dict[str, Tensor], list[tuple[int, int]]]:
        """The four maps SSD predicts on (finest first), and the images' sizes."""
        features, sizes = self.backbone_features(images)
        features["stride32"] = self.extra(features["stride16"])
        return {level: features[level] for level in LEVELS}, sizes

    def default_boxes(self, maps: dict[str, Tensor]) -> list[Tensor]:
        """The default boxes of each level, ``[Tensor[H_k * W_k * A, 4]]``, finest first (cached)."""
        result = []
        for index, level in enumerate(LEVELS):
            grid = tuple(maps[level].shape[-2:])
            key = (level, grid, str(maps[level].device))
            if key not in self._box_cache:
                stride = 2 ** (index + 2)
                self._box_cache[key] = default_boxes(
                    grid,
                    stride,
                    self.sizes[index],
                    self.sizes[index + 1],
                    self.aspect_ratios,
                    maps[level].device,
                )
            result.append(self._box_cache[key])
        return result

    def head(self, maps: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(class_logits Tensor[B, N, K + 1], deltas Tensor[B, N, 4])`` over all levels' default boxes."""
        logits, deltas = [], []
        for level in LEVELS:
            B = maps[level].shape[0]
            logits.append(
                self.classifiers[level](maps[level]).permute(0, 2, 3, 1).reshape(B, -1, self.num_classes + 1)
            )
            deltas.append(self.regressors[level](maps[level]).permute(0, 2, 3, 1).reshape(B, -1, 4))
        return torch.cat(logits, dim=1), torch.cat(deltas, dim=1)

    def forward(self, images: list[Tensor], targets: list[dict] | None = None):
        """Detect, or in training mode return ``{"loss_classifier", "loss_box_reg"}``."""
        if self.training:
            targets = check_targets(targets, len(images), self.num_classes)
        maps, sizes = self.feature_maps(images)
        logits, deltas = self.head(maps)  # (B, N, K + 1), (B, N, 4)
        boxes = torch.cat(self.default_boxes(maps))  # (N, 4)
        if self.training:
            return self.losses(logits, deltas, boxes, targets)
        probs = F.softmax(logits, dim=-1)[..., 1:]  # (B, N, K) background dropped
        return [
            self.select_detections(self.box_coder.decode(image_deltas, boxes), image_probs, size)
            for image_deltas, image_probs, size in zip(deltas, probs, sizes, strict=True)
        ]

    def losses(self, logits: Tensor, deltas: Tensor, boxes: Tensor, targets: list[dict]) -> dict[str, Tensor]:
        """Softmax cross entropy over positives and mined negatives, smooth L1 over the positives'
        offsets, both summed over the batch and divided by the number of positives (Eq. 1)."""
        class_terms, box_terms, num_positive = [], [], 0
        for image_logits, image_deltas, target in zip(logits, deltas, targets, strict=True):
            classes, matched = match_default_boxes(
                boxes, target["boxes"], target["labels"], self.iou_threshold
            )
            positive = classes > 0  # (N,)
            class_loss = F.cross_entropy(image_logits, classes, reduction="none")  # (N,)
            negative = hard_negative_mining(class_loss, positive, self.neg_pos_ratio)
            class_terms.append(class_loss[positive | negative].sum())
            if positive.any():
                goal = self.box_coder.encode(target["boxes"][matched[positive]].float(), boxes[positive])
                box_terms.append(F.smooth_l1_loss(image_deltas[positive], goal, reduction="sum"))
            num_positive += int(positive.sum())
        count = max(1, num_positive)
        loss_box = torch.stack(box_terms).sum() if box_terms else deltas.sum() * 0.0
        return {"loss_classifier": torch.stack(class_terms).sum() / count, "loss_box_reg": loss_box / count}
