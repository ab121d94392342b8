"""The Region Proposal Network of Faster R-CNN (Ren et al. 2015, Sec. 3.1).

A 3x3 convolution slides over the feature map; at each cell, two sibling 1x1 convolutions score
``A`` anchors (objectness) and regress a box for each. Training labels anchors with the 0.7 / 0.3
rule (``course_lib.anchors.label_anchors``), samples 256 per image with at most half positive, and
minimizes binary cross-entropy plus smooth-L1 on the positives' deltas (Eq. 1). At inference, the
top-scoring anchors are decoded, clipped, and thinned by NMS at 0.7 into the proposals. The same
steps as torchvision's ``RegionProposalNetwork``, on one feature map.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib.anchors import generate_anchors, label_anchors, sample_anchors
from course_lib.boxes import BoxCoder, clip_boxes_to_image
from course_lib.nms import fast_nms


class RPNHead(nn.Module):
    """3x3 conv + ReLU, then 1x1 convs for ``A`` objectness logits and ``4 A`` deltas per cell."""

    def __init__(self, in_channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.objectness = nn.Conv2d(in_channels, num_anchors, 1)
        self.deltas = nn.Conv2d(in_channels, 4 * num_anchors, 1)
        for layer in (self.conv, self.objectness, self.deltas):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, feature_map: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(objectness Tensor[B, H*W*A], deltas Tensor[B, H*W*A, 4])``, anchor order."""
        B, _, H, W = feature_map.shape  # batch, channels, height, width
        hidden = F.relu(self.conv(feature_map))  # (B, C, H, W)
        objectness = self.objectness(hidden).permute(0, 2, 3, 1).reshape(B, -1)  # (B, H*W*A)
        deltas = self.deltas(hidden).view(B, -1, 4, H, W)  # (B, A, 4, H, W)
        deltas = deltas.permute(0, 3, 4, 1, 2).reshape(B, -1, 4)  # (B, H*W*A, 4)
        return objectness, deltas


class RegionProposalNetwork(nn.Module):
    """Anchors, objectness and box regression on one feature map; proposals and the RPN losses.

    Args:
        in_channels: channels of the feature map.
        stride: pixels of the image per feature-map cell.
        sizes: anchor sizes in pixels (3 scales, as the paper's 128, 256, 512 for 600-px images).
        aspect_ratios: height / width ratios (the paper's 1:2, 1:1, 2:1).
        pre_nms_top_n, post_nms_top_n: proposals kept before and after NMS, per image, as
            ``{"training": n, "testing": n}``.
        nms_thresh: NMS IoU threshold on proposals (0.7 in the paper).
        fg_iou_thresh, bg_iou_thresh: the anchor labelling rule.
        batch_size_per_image, positive_fraction: the anchor sample of each image's loss.
    """

    def __init__(
        self,
        in_channels: int,
        stride: int = 4,
        sizes: tuple[float, ...] = (12.0, 24.0, 48.0),
        aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0),
        pre_nms_top_n: dict[str, int] | None = None,
        post_nms_top_n: dict[str, int] | None = None,
        nms_thresh: float = 0.7,
        fg_iou_thresh: float = 0.7,
        bg_iou_thresh: float = 0.3,
        batch_size_per_image: int = 256,
        positive_fraction: float = 0.5,
        min_size: float = 1.0,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.sizes = tuple(sizes)
        self.aspect_ratios = tuple(aspect_ratios)
        self.num_anchors = len(self.sizes) * len(self.aspect_ratios)
        self.head = RPNHead(in_channels, self.num_anchors)
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.pre_nms_top_n = pre_nms_top_n or {"training": 2000, "testing": 1000}
        self.post_nms_top_n = post_nms_top_n or {"training": 500, "testing": 300}
        self.nms_thresh = nms_thresh
        self.fg_iou_thresh = fg_iou_thresh
        self.bg_iou_thresh = bg_iou_thresh
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.min_size = min_size
        self._anchor_cache: dict[tuple[tuple[int, int], str], Tensor] = {}

    def anchors(self, grid_size: tuple[int, int], device: torch.device | str | None = None) -> Tensor:
        """All anchors of a feature map of ``grid_size = (H, W)``, Tensor[H*W*A, 4], on ``device``.

        Generated once per grid size and device; each call returns a copy, which the caller may change.
        """
        key = (tuple(grid_size), str(device))
        if key not in self._anchor_cache:
            self._anchor_cache[key] = generate_anchors(
                self.sizes, self.aspect_ratios, self.stride, grid_size, device=device
            )
        return self._anchor_cache[key].clone()

    def forward(
        self, feature_map: Tensor, image_sizes: list[tuple[int, int]], targets: list[dict] | None = None
    ) -> tuple[list[Tensor], list[Tensor], dict[str, Tensor]]:
        """Proposals for each image, their objectness scores, and (in training) the two RPN losses.

        Returns:
            ``(proposals, scores, losses)``: lists of Tensor[P_i, 4] and Tensor[P_i] (sigmoid
            objectness), and ``{"loss_objectness", "loss_rpn_box_reg"}`` (empty dict at inference).
        """
        objectness, deltas = self.head(feature_map)  # (B, N), (B, N, 4)
        anchors = self.anchors(tuple(feature_map.shape[-2:]), feature_map.device)  # (N, 4)
        mode = "training" if self.training else "testing"
        proposals, scores = [], []
        for image_index, (height, width) in enumerate(image_sizes):
            boxes, probs = self.select_proposals(
                anchors,
                objectness[image_index].detach(),
                deltas[image_index].detach(),
                (height, width),
                self.pre_nms_top_n[mode],
                self.post_nms_top_n[mode],
                self.nms_thresh,
            )
            proposals.append(boxes)
            scores.append(probs)
        losses: dict[str, Tensor] = {}
        if self.training:
            losses = self.losses(anchors, objectness, deltas, targets)
        return proposals, scores, losses

    def select_proposals(
        self,
        anchors: Tensor,
        objectness: Tensor,
        deltas: Tensor,
        image_size: tuple[int, int],
        pre_nms_top_n: int,
        post_nms_top_n: int,
        nms_thresh: float,
    ) -> tuple[Tensor, Tensor]:
        """Decode the top ``pre_nms_top_n`` anchors of one image, clip, drop tiny boxes, NMS, keep the top.

        Returns:
            ``(boxes Tensor[P, 4], scores Tensor[P])``, best first.
        """
        top = objectness.topk(min(pre_nms_top_n, objectness.numel())).indices  # (T,)
        boxes = self.box_coder.decode(deltas[top], anchors[top])  # (T, 4)
        boxes = clip_boxes_to_image(boxes, image_size)
        probs = torch.sigmoid(objectness[top])  # (T,)
        wide = ((boxes[:, 2] - boxes[:, 0]) >= self.min_size) & ((boxes[:, 3] - boxes[:, 1]) >= self.min_size)
        boxes, probs = boxes[wide], probs[wide]
        keep = fast_nms(boxes, probs, nms_thresh)[:post_nms_top_n]  # (P,)
        return boxes[keep], probs[keep]

    @torch.no_grad()
    def candidates(
        self, feature_map: Tensor, image_size: tuple[int, int], top_n: int = 1000
    ) -> tuple[Tensor, Tensor]:
        """What NMS sees: the ``top_n`` best anchors of the first image, decoded and clipped, best first.

        Returns:
            ``(boxes Tensor[T, 4], scores Tensor[T])`` (sigmoid objectness).
        """
        objectness, deltas = self.head(feature_map[:1])  # (1, N), (1, N, 4)
        anchors = self.anchors(tuple(feature_map.shape[-2:]), feature_map.device)  # (N, 4)
        # IoU never exceeds 1, so NMS at 1.0 removes nothing: only the top-n, decode and clip steps.
        return self.select_proposals(
            anchors, objectness[0], deltas[0], image_size, top_n, top_n, nms_thresh=1.0
        )

    def losses(
        self, anchors: Tensor, objectness: Tensor, deltas: Tensor, targets: list[dict]
    ) -> dict[str, Tensor]:
        """Eq. 1 of the paper, as torchvision computes it: BCE over the sampled anchors of every image,
        plus smooth-L1 (beta 1/9) over the positives' deltas, both divided by the number sampled."""
        sampled_logits, sampled_labels, positive_deltas, positive_targets = [], [], [], []
        for image_index, target in enumerate(targets):
            labels, matched = label_anchors(anchors, target["boxes"], self.fg_iou_thresh, self.bg_iou_thresh)
            positive, negative = sample_anchors(labels, self.batch_size_per_image, self.positive_fraction)
            chosen = torch.cat([positive, negative])  # (S,)
            sampled_logits.append(objectness[image_index, chosen])
            sampled_labels.append((labels[chosen] == 1).to(objectness.dtype))
            if positive.numel():
                gt = target["boxes"][matched[positive]].to(deltas.dtype)  # (P, 4)
                positive_targets.append(self.box_coder.encode(gt, anchors[positive]))
                positive_deltas.append(deltas[image_index, positive])
        logits = torch.cat(sampled_logits)  # (S_total,)
        count = max(1, logits.numel())
        loss_objectness = (
            F.binary_cross_entropy_with_logits(logits, torch.cat(sampled_labels), reduction="sum") / count
        )
        if positive_deltas:
            loss_box = (
                F.smooth_l1_loss(
                    torch.cat(positive_deltas), torch.cat(positive_targets), beta=1 / 9, reduction="sum"
                )
                / count
            )
        else:
            loss_box = deltas.sum() * 0.0  # keeps the graph connected when no image has an object
        return {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_box}
