"""DETR (Carion et al. 2020, "End-to-End Object Detection with Transformers"), small, and made to converge.

DETR predicts a fixed **set** of Q boxes with classes, and is trained by first matching predictions
to objects one-to-one (the Hungarian algorithm on a matching cost), then scoring each matched pair
and pushing every other prediction to "no object". No anchors to design, no NMS: the matching
teaches each query to claim one object.

The plain recipe converges slowly (500 epochs on COCO; a plain small DETR here reached AP50 0.11 in
25 minutes). Four changes from its successors, each a few lines, make a small one converge on a CPU:

1. **Queries start from the encoder's best tokens** ("two-stage" query selection, Deformable DETR,
   Zhu et al. 2021, Sec. 4.2; DINO, Zhang et al. 2023): each encoder token also predicts a class and
   a box around its own cell, trained with the same set loss; the Q best tokens' boxes become the
   decoder's reference boxes. The decoder starts near the objects instead of from nothing.
2. **Queries are boxes** (DAB-DETR, Liu et al. 2022): a query's position embedding is the sine
   embedding of its reference box, so the cross-attention looks where the box is.
3. **Each decoder layer refines the box** (iterative refinement, Deformable DETR Sec. 4.1): it
   predicts a correction to the previous layer's box, in logit space.
4. **A focal classification loss and cost** (Deformable DETR): sigmoid class scores, the focal loss
   (Lin et al. 2017) in the loss and in the matching cost, which keeps the many unmatched queries
   from swamping the few matched ones.

Losses (all layers, plus the encoder's proposals: DETR's auxiliary losses): 2 x focal class loss,
5 x L1 and 2 x GIoU on normalized ``cxcywh`` boxes, each divided by the number of objects.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from course_lib.boxes import box_convert, clip_boxes_to_image, generalized_box_iou
from course_lib.losses import generalized_box_iou_loss, sigmoid_focal_loss
from course_lib.matching import linear_sum_assignment
from course_lib.models.backbone import ShapesBackbone
from course_lib.models.detector_io import check_targets
from course_lib.models.neck import top_down_merge
from course_lib.models.one_stage import OneStageDetector
from course_lib.models.transformer import MLP, DecoderLayer, EncoderLayer, box_positions, sine_positions
from course_lib.models.yolo import NUM_CLASSES

WEIGHTS = {"class": 2.0, "l1": 5.0, "giou": 2.0}  # Deformable DETR's, in the cost and in the loss
ALPHA, GAMMA = 0.25, 2.0  # the focal loss's
ANCHOR_SIZE = 0.125  # the side of each encoder token's starting box, a share of the image (16 of 128 px)


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """``log(x / (1 - x))``, with ``x`` kept inside ``[eps, 1 - eps]``."""
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


def matching_cost_parts(
    logits: Tensor, boxes: Tensor, labels: Tensor, target_boxes: Tensor
) -> dict[str, Tensor]:
    """The three unweighted terms of the matching cost, each Tensor[Q, M] (Eq. 1 of DETR, focal class term).

    ``class``: the focal loss of the object's class if the prediction were matched minus the one if it
    were not (Deformable DETR's class cost; DETR's is ``-p``); ``l1``: the L1 distance of the
    ``cxcywh`` boxes; ``giou``: ``-GIoU`` of the boxes as corners (the cost term, so lower is better).
    Arguments as :func:`matching_cost`.
    """
    p = torch.sigmoid(logits[:, labels])  # (Q, M) the probability each prediction gives each object's class
    positive = ALPHA * (1 - p) ** GAMMA * -torch.log(p + 1e-8)  # the focal loss if it were matched
    negative = (1 - ALPHA) * p**GAMMA * -torch.log(1 - p + 1e-8)  # ... and if it were not
    l1 = torch.cdist(boxes, target_boxes, p=1)  # (Q, M)
    giou = generalized_box_iou(
        box_convert(boxes, "cxcywh", "xyxy"), box_convert(target_boxes, "cxcywh", "xyxy")
    )
    return {"class": positive - negative, "l1": l1, "giou": -giou}


def matching_cost(
    logits: Tensor,
    boxes: Tensor,
    labels: Tensor,
    target_boxes: Tensor,
    weights: dict[str, float] | None = None,
) -> Tensor:
    """The cost of giving object j to prediction i: Tensor[Q, M] (Eq. 1 of DETR, focal class term).

    Args:
        logits: Tensor[Q, K], the predictions' class logits (sigmoid, no "no object" column).
        boxes: Tensor[Q, 4], normalized ``cxcywh``.
        labels: Tensor[M], the objects' classes in 0..K-1.
        target_boxes: Tensor[M, 4], normalized ``cxcywh``.
        weights: ``{"class", "l1", "giou"}``, each term's weight; default :data:`WEIGHTS`.
    """
    weights = WEIGHTS if weights is None else weights
    parts = matching_cost_parts(logits, boxes, labels, target_boxes)  # (Q, M) each
    return weights["class"] * parts["class"] + weights["l1"] * parts["l1"] + weights["giou"] * parts["giou"]


def match(logits: Tensor, boxes: Tensor, labels: Tensor, target_boxes: Tensor) -> tuple[Tensor, Tensor]:
    """The Hungarian matching of one image: ``(prediction indices, object indices)``, min(Q, M) each."""
    if len(labels) == 0:
        empty = torch.zeros(0, dtype=torch.int64, device=logits.device)
        return empty, empty
    with torch.no_grad():
        cost = matching_cost(logits, boxes, labels, target_boxes)
    rows, cols = linear_sum_assignment(cost.cpu())
    return rows.to(logits.device), cols.to(logits.device)


def set_loss(logits: Tensor, boxes: Tensor, targets: list[dict[str, Tensor]], num_objects: float) -> dict:
    """The set prediction loss of one set of predictions for a batch (DETR's Eq. 2, focal class term).

    Args:
        logits: Tensor[B, Q, K]; boxes: Tensor[B, Q, 4] normalized ``cxcywh``.
        targets: per image ``labels`` (0..K-1) and ``boxes`` (normalized ``cxcywh``).
        num_objects: the objects in the batch (at least 1), which every term is divided by.

    Returns:
        ``{"class", "l1", "giou"}``, each weighted.
    """
    B, Q, K = logits.shape  # batch, queries, classes
    class_targets = torch.zeros_like(logits)  # (B, Q, K) "no object" everywhere ...
    matched_boxes, matched_targets = [], []
    for index, target in enumerate(targets):
        rows, cols = match(logits[index], boxes[index], target["labels"], target["boxes"])
        class_targets[index, rows, target["labels"][cols]] = 1.0  # ... but at the matched pairs
        matched_boxes.append(boxes[index, rows])
        matched_targets.append(target["boxes"][cols])
    predicted, wanted = torch.cat(matched_boxes), torch.cat(matched_targets)  # (P, 4) each
    class_loss = sigmoid_focal_loss(logits, class_targets, ALPHA, GAMMA, reduction="sum") / num_objects
    l1 = (predicted - wanted).abs().sum() / num_objects
    corners = box_convert(predicted, "cxcywh", "xyxy"), box_convert(wanted, "cxcywh", "xyxy")
    giou_loss = generalized_box_iou_loss(*corners, reduction="sum") / num_objects
    return {
        "class": WEIGHTS["class"] * class_loss,
        "l1": WEIGHTS["l1"] * l1,
        "giou": WEIGHTS["giou"] * giou_loss,
    }


class DETR(OneStageDetector):
    """``model(images, targets) -> losses`` in training, ``model(images) -> detections`` in eval mode.

    Args:
        backbone: a :class:`ShapesBackbone` (batch norm frozen in training).
        num_classes: ``K``.
        dim: the transformer's width; heads: attention heads; hidden: the MLPs' width.
        encoder_layers, decoder_layers: the depths.
        num_queries: ``Q``, the size of the predicted set.
        **kwargs: ``score_thresh``, ``detections_per_img`` (NMS is not used).
    """

    stride = 8  # the tokens are the cells of the stride-8 map

    def __init__(
        self,
        backbone: ShapesBackbone | None = None,
        num_classes: int = NUM_CLASSES,
        dim: int = 128,
        heads: int = 8,
        hidden: int = 512,
        encoder_layers: int = 3,
        decoder_layers: int = 3,
        num_queries: int = 30,
        **kwargs,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        channels = self.backbone.out_channels
        self.dim, self.num_queries = dim, num_queries
        self.lateral8 = nn.Conv2d(channels["stride8"], dim, 1)
        self.lateral16 = nn.Conv2d(channels["stride16"], dim, 1)
        self.encoder = nn.ModuleList(EncoderLayer(dim, heads, hidden) for _ in range(encoder_layers))
        self.encoder_norm = nn.LayerNorm(dim)
        self.proposal_class, self.proposal_box = nn.Linear(dim, num_classes), MLP(dim, dim, 4, 3)
        self.query_content = nn.Embedding(num_queries, dim)
        self.query_position = MLP(2 * dim, dim, dim, 2)
        self.decoder = nn.ModuleList(DecoderLayer(dim, heads, hidden) for _ in range(decoder_layers))
        self.decoder_norm = nn.LayerNorm(dim)
        self.class_heads = nn.ModuleList(nn.Linear(dim, num_classes) for _ in range(decoder_layers))
        self.box_heads = nn.ModuleList(MLP(dim, dim, 4, 3) for _ in range(decoder_layers))
        prior = -math.log((1 - 0.01) / 0.01)  # every class starts at probability 0.01, as in RetinaNet
        for head in [self.proposal_class, *self.class_heads]:
            nn.init.constant_(head.bias, prior)
        for head in [self.proposal_box, *self.box_heads]:  # start at the reference box
            nn.init.zeros_(head[-1].weight), nn.init.zeros_(head[-1].bias)

    def encode(self, images: list[Tensor]) -> dict[str, Tensor]:
        """The encoder's tokens and their proposals; ``size`` is the padded batch's (H', W')."""
        features, _ = self.backbone_features(images)
        merged = top_down_merge(self.lateral16(features["stride16"]), self.lateral8(features["stride8"]))
        B, D, h, w = merged.shape  # batch, width, map height and width
        tokens = merged.flatten(2).transpose(1, 2)  # (B, N, D), N = h * w
        positions = sine_positions(h, w, D, device=merged.device)  # (N, D)
        for layer in self.encoder:
            tokens = layer(tokens, positions)
        memory = self.encoder_norm(tokens)
        ys, xs = torch.meshgrid(
            torch.arange(h, device=merged.device), torch.arange(w, device=merged.device), indexing="ij"
        )
        anchors = torch.stack(
            [
                (xs.flatten() + 0.5) / w,
                (ys.flatten() + 0.5) / h,
                torch.full((h * w,), ANCHOR_SIZE, device=merged.device),
                torch.full((h * w,), ANCHOR_SIZE, device=merged.device),
            ],
            dim=1,
        )  # (N, 4)
        proposals = torch.sigmoid(inverse_sigmoid(anchors) + self.proposal_box(memory))  # (B, N, 4)
        return {
            "memory": memory,
            "positions": positions,
            "proposal_logits": self.proposal_class(memory),
            "proposals": proposals,
            "size": (h * self.stride, w * self.stride),
        }

    def decode(self, encoded: dict[str, Tensor]) -> list[dict[str, Tensor]]:
        """Each decoder layer's ``logits`` Tensor[B, Q, K], ``boxes`` and cross-attention ``attention``."""
        memory = encoded["memory"]
        B = memory.shape[0]  # batch
        best = encoded["proposal_logits"].amax(dim=2).topk(self.num_queries, dim=1).indices  # (B, Q)
        reference = encoded["proposals"].gather(1, best[..., None].expand(-1, -1, 4)).detach()  # (B, Q, 4)
        queries = self.query_content.weight.expand(B, -1, -1)  # (B, Q, D)
        outputs = []
        for layer, class_head, box_head in zip(self.decoder, self.class_heads, self.box_heads, strict=True):
            query_positions = self.query_position(box_positions(reference, self.dim))  # (B, Q, D)
            queries, attention = layer(queries, query_positions, memory, encoded["positions"])
            normed = self.decoder_norm(queries)
            boxes = torch.sigmoid(inverse_sigmoid(reference) + box_head(normed))  # (B, Q, 4)
            outputs.append({"logits": class_head(normed), "boxes": boxes, "attention": attention})
            reference = boxes.detach()  # the next layer refines this box, without a gradient through it
        return outputs

    def forward(self, images: list[Tensor], targets: list[dict] | None = None):
        """Detect, or in training mode return the set losses of every layer and of the proposals."""
        if self.training:
            targets = check_targets(targets, len(images), self.num_classes)
        encoded = self.encode(images)
        outputs = self.decode(encoded)
        height, width = encoded["size"]
        scale = torch.tensor(
            [width, height, width, height], dtype=torch.float32, device=encoded["memory"].device
        )
        if self.training:
            normalized = [
                {"labels": t["labels"] - 1, "boxes": box_convert(t["boxes"], "xyxy", "cxcywh") / scale}
                for t in targets
            ]
            num_objects = max(1.0, float(sum(len(t["labels"]) for t in targets)))
            losses: dict[str, Tensor] = {}
            sets = [(f"layer{i}", o["logits"], o["boxes"]) for i, o in enumerate(outputs)]
            sets.append(("proposals", encoded["proposal_logits"], encoded["proposals"]))
            for name, logits, boxes in sets:
                for term, value in set_loss(logits, boxes, normalized, num_objects).items():
                    losses[f"loss_{term}_{name}"] = value
            return losses
        last = outputs[-1]
        return [
            self.detections(logits, boxes * scale, tuple(image.shape[-2:]))
            for logits, boxes, image in zip(last["logits"], last["boxes"], images, strict=True)
        ]

    def detections(self, logits: Tensor, boxes: Tensor, image_size: tuple[int, int]) -> dict[str, Tensor]:
        """One image's detections from Tensor[Q, K] logits and Tensor[Q, 4] ``cxcywh`` pixel boxes.

        The best (query, class) pairs above ``score_thresh``, at most ``detections_per_img``; no NMS.
        """
        scores = torch.sigmoid(logits).flatten()  # (Q*K,)
        top = scores.topk(min(self.detections_per_img, scores.numel()))
        keep = top.values > self.score_thresh
        query, label = top.indices[keep] // self.num_classes, top.indices[keep] % self.num_classes
        chosen = clip_boxes_to_image(box_convert(boxes[query], "cxcywh", "xyxy"), image_size)
        return {"boxes": chosen, "scores": top.values[keep], "labels": label + 1}
