"""The Fast R-CNN head, shared by Fast R-CNN and Faster R-CNN (Girshick 2015, Sec. 2).

Each proposal is pooled from the feature map into a fixed ``7 x 7`` grid (RoI pooling, or
RoIAlign), flattened, passed through two fully connected layers, and split into ``K + 1`` class
scores (a softmax with background) and ``4 K`` class-specific box deltas. Training samples 128
proposals per image, at most 25% of them foreground (IoU >= 0.5 with a ground-truth box, the
ground-truth boxes themselves added to the proposals), and minimizes the multi-task loss of Eq. 1:
cross-entropy plus smooth-L1 on the foreground's deltas for its true class. At inference, per-class
boxes above a score threshold go through per-class NMS. The same rules as torchvision's ``RoIHeads``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib._checks import check_choice, check_number
from course_lib.anchors import sample_anchors
from course_lib.boxes import BoxCoder, box_iou, clip_boxes_to_image
from course_lib.nms import fast_batched_nms
from course_lib.roi import fast_roi_align, fast_roi_pool

POOLERS = ("pool", "align")


class RoIHeads(nn.Module):
    """Pool, two fc layers, class scores and boxes; the multi-task loss; post-processing.

    Args:
        in_channels: channels of the feature map.
        num_classes: object classes ``K``; the classifier has ``K + 1`` outputs, 0 = background.
        stride: pixels of the image per feature-map cell (``spatial_scale = 1 / stride``).
        pooler: ``"pool"`` (RoI max pooling, Fast R-CNN) or ``"align"`` (RoIAlign, Mask R-CNN).
        pool_size: side of the pooled grid.
        hidden: width of the two fully connected layers.
        score_thresh, nms_thresh, detections_per_img: inference settings.
        min_size: detections narrower or lower than this many pixels are dropped.
        gt_jitter: in training, this many jittered copies of each ground-truth box join the
            proposals (see :func:`jitter_boxes`).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        stride: int = 4,
        pooler: str = "align",
        pool_size: int = 7,
        hidden: int = 256,
        fg_iou_thresh: float = 0.5,
        batch_size_per_image: int = 128,
        positive_fraction: float = 0.25,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        min_size: float = 1.0,
        gt_jitter: int = 0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stride = stride
        self.pooler = check_choice(pooler, POOLERS, "pooler")
        self.pool_size = pool_size
        self.fc6 = nn.Linear(in_channels * pool_size * pool_size, hidden)
        self.fc7 = nn.Linear(hidden, hidden)
        self.cls_score = nn.Linear(hidden, num_classes + 1)
        self.bbox_pred = nn.Linear(hidden, 4 * num_classes)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
        self.fg_iou_thresh = fg_iou_thresh
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.min_size = min_size
        self.gt_jitter = int(check_number(gt_jitter, "gt_jitter", low=0, integer=True))

    def pool(self, feature_map: Tensor, proposals: list[Tensor]) -> Tensor:
        """The pooled grid of every proposal, Tensor[R, C, pool_size, pool_size], images in order."""
        if self.pooler == "pool":
            return fast_roi_pool(feature_map, proposals, self.pool_size, spatial_scale=1 / self.stride)
        return fast_roi_align(
            feature_map,
            proposals,
            self.pool_size,
            spatial_scale=1 / self.stride,
            sampling_ratio=2,
            aligned=True,
        )

    def predict(self, feature_map: Tensor, proposals: list[Tensor]) -> tuple[Tensor, Tensor]:
        """``(class_logits Tensor[R, K + 1], box_deltas Tensor[R, 4 K])`` for every proposal."""
        pooled = self.pool(feature_map, proposals)  # (R, C, P, P)
        hidden = F.relu(self.fc7(F.relu(self.fc6(pooled.flatten(1)))))  # (R, hidden)
        return self.cls_score(hidden), self.bbox_pred(hidden)  # (R, K + 1), (R, 4 K)

    def forward(
        self,
        feature_map: Tensor,
        proposals: list[Tensor],
        image_sizes: list[tuple[int, int]],
        targets: list[dict] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Detections per image at inference; the two head losses in training (detections empty)."""
        if self.training:
            proposals, labels, regression_targets = self.sample(proposals, targets)
            class_logits, box_deltas = self.predict(feature_map, proposals)
            return [], self.losses(class_logits, box_deltas, labels, regression_targets)
        class_logits, box_deltas = self.predict(feature_map, proposals)
        return self.postprocess(class_logits, box_deltas, proposals, image_sizes), {}

    def sample(self, proposals: list[Tensor], targets: list[dict]) -> tuple[list[Tensor], Tensor, Tensor]:
        """Add the ground truth to each image's proposals, label them, and draw the training sample.

        Returns:
            ``(sampled proposals per image, labels Tensor[R] in 0..K, regression targets Tensor[R, 4])``;
            the targets of background rows are zeros and unused.
        """
        sampled, all_labels, all_targets = [], [], []
        for boxes, target in zip(proposals, targets, strict=True):
            gt_boxes, gt_labels = target["boxes"].to(boxes.dtype), target["labels"]
            extra = [jitter_boxes(gt_boxes, self.gt_jitter)] if self.gt_jitter else []
            boxes = torch.cat([boxes, gt_boxes, *extra])  # (P + M + J M, 4)
            if gt_boxes.numel():
                best_iou, matched = box_iou(gt_boxes, boxes).max(dim=0)  # (P + M,)
                labels = torch.where(best_iou >= self.fg_iou_thresh, gt_labels[matched], 0)  # (P + M,)
            else:
                matched = torch.zeros(len(boxes), dtype=torch.int64, device=boxes.device)
                labels = torch.zeros(len(boxes), dtype=torch.int64, device=boxes.device)
            positive, negative = sample_anchors(labels, self.batch_size_per_image, self.positive_fraction)
            chosen = torch.cat([positive, negative])  # (S,)
            regression = torch.zeros(len(chosen), 4, dtype=boxes.dtype, device=boxes.device)  # (S, 4)
            if positive.numel():
                regression[: len(positive)] = self.box_coder.encode(
                    gt_boxes[matched[positive]], boxes[positive]
                )
            sampled.append(boxes[chosen])
            all_labels.append(labels[chosen])
            all_targets.append(regression)
        return sampled, torch.cat(all_labels), torch.cat(all_targets)

    def losses(
        self, class_logits: Tensor, box_deltas: Tensor, labels: Tensor, regression_targets: Tensor
    ) -> dict:
        """Eq. 1 of Fast R-CNN: cross-entropy, plus smooth-L1 on the deltas of each foreground
        RoI's true class, divided by the number of sampled RoIs (torchvision's normalization)."""
        loss_classifier = F.cross_entropy(class_logits, labels)
        foreground = torch.nonzero(labels > 0)[:, 0]  # (F,)
        deltas = box_deltas.view(len(box_deltas), -1, 4)  # (R, K, 4)
        chosen = deltas[foreground, labels[foreground] - 1]  # (F, 4)
        loss_box = F.smooth_l1_loss(chosen, regression_targets[foreground], beta=1 / 9, reduction="sum")
        return {"loss_classifier": loss_classifier, "loss_box_reg": loss_box / max(1, labels.numel())}

    def postprocess(
        self,
        class_logits: Tensor,
        box_deltas: Tensor,
        proposals: list[Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        """Softmax, class-specific boxes, score threshold, per-class NMS, the top ``detections_per_img``."""
        K = self.num_classes  # object classes
        probs = F.softmax(class_logits, dim=1)  # (R, K + 1)
        counts = [len(boxes) for boxes in proposals]
        results = []
        for image_probs, image_deltas, boxes, size in zip(
            probs.split(counts), box_deltas.split(counts), proposals, image_sizes, strict=True
        ):
            decoded = self.box_coder.decode(image_deltas, boxes).view(-1, K, 4)  # (P, K, 4)
            decoded = clip_boxes_to_image(decoded.reshape(-1, 4), size)  # (P*K, 4)
            scores = image_probs[:, 1:].reshape(-1)  # (P*K,) background dropped
            labels = torch.arange(1, K + 1, device=boxes.device).repeat(len(boxes))  # (P*K,)
            keep = (
                (scores > self.score_thresh)
                & ((decoded[:, 2] - decoded[:, 0]) >= self.min_size)
                & ((decoded[:, 3] - decoded[:, 1]) >= self.min_size)
            )
            decoded, scores, labels = decoded[keep], scores[keep], labels[keep]
            kept = fast_batched_nms(decoded, scores, labels, self.nms_thresh)[: self.detections_per_img]
            results.append({"boxes": decoded[kept], "scores": scores[kept], "labels": labels[kept]})
        return results


def jitter_boxes(boxes: Tensor, copies: int, amount: float = 0.1) -> Tensor:
    """``copies`` randomly moved and resized copies of each box, Tensor[copies * M, 4].

    Each centre moves by up to ``amount`` of the box's width and height, and each side is scaled by
    ``exp(u)``, ``u`` uniform in ``[-amount, amount]`` (torch's global RNG). Our departure from the
    papers: a 6-px object gets few RPN proposals at IoU >= 0.5, a 60-px one dozens, so without
    these copies the head rarely trains on small objects; with them every object gets
    ``copies`` more foreground samples, most at IoU >= 0.6 with it.
    """
    if copies == 0 or boxes.numel() == 0:
        return boxes.new_zeros(0, 4)
    sizes = (boxes[:, 2:] - boxes[:, :2]).repeat(copies, 1)  # (J M, 2)
    centres = ((boxes[:, :2] + boxes[:, 2:]) / 2).repeat(copies, 1)  # (J M, 2)
    shift = (torch.rand(sizes.shape, device=boxes.device) * 2 - 1) * amount * sizes
    scale = torch.exp((torch.rand(sizes.shape, device=boxes.device) * 2 - 1) * amount)
    half = sizes * scale / 2
    return torch.cat([centres + shift - half, centres + shift + half], dim=1).to(boxes.dtype)
