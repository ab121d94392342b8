"""CenterNet (Zhou, Wang & Krähenbühl 2019, "Objects as Points"): no anchors, no NMS.

An object is the **point** at its box's centre. The network predicts, on a stride-4 map:

* a heatmap per class (``K`` channels, sigmoid): high where an object's centre is;
* the box's width and height at each point (2 channels, in input pixels);
* the sub-cell offset of the centre (2 channels), lost when the centre is rounded to the map.

Training targets (:func:`centernet_targets`) splat a Gaussian on each object's centre, whose radius
follows the object's size (:func:`gaussian_radius`, CornerNet's rule), and the heatmap is trained
with a focal loss that spares the pixels near a centre (:func:`centernet_focal_loss`, Eq. 1 of the
paper). Decoding (:func:`heatmap_peaks`) keeps the pixels that are the maximum of their 3 x 3
neighbourhood, a max pooling that takes the place of NMS, and reads the size and offset there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib._checks import check_boxes, check_number
from course_lib.boxes import clip_boxes_to_image
from course_lib.models.backbone import ShapesBackbone
from course_lib.models.detector_io import check_targets
from course_lib.models.neck import Stride4Neck
from course_lib.models.one_stage import OneStageDetector
from course_lib.models.yolo import NUM_CLASSES

PRIOR = 0.1  # the heatmap's starting probability (the paper's bias of -2.19)


def gaussian_radius(heights: Tensor, widths: Tensor, min_overlap: float = 0.7) -> Tensor:
    """How far a centre may move with the box still overlapping the true one by ``min_overlap`` (IoU).

    CornerNet's rule (Law & Deng 2018, Sec. 3.2), used by CenterNet's code: the smallest of three
    radii, one for each way a shifted box can lose overlap (both corners outside, both inside, one
    of each), each the root of a quadratic. Returns Tensor[N] float, at least 0.
    """
    h, w = heights.double(), widths.double()
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + (b1**2 - 4 * c1).clamp(min=0).sqrt()) / 2
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + (b2**2 - 16 * c2).clamp(min=0).sqrt()) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + (b3**2 - 4 * a3 * c3).clamp(min=0).sqrt()) / 2
    return torch.minimum(torch.minimum(r1, r2), r3).clamp(min=0).float()


def draw_gaussian(heatmap: Tensor, centre: tuple[int, int], radius: int) -> None:
    """Splat ``exp(-d² / 2σ²)``, σ = (2r + 1) / 6, around ``centre = (x, y)``, keeping the maximum.

    ``heatmap`` is Tensor[H, W], changed in place; the splat is cut at the map's border.
    """
    H, W = heatmap.shape  # height, width
    x, y = centre
    sigma = (2 * radius + 1) / 6
    offsets = torch.arange(-radius, radius + 1, dtype=heatmap.dtype, device=heatmap.device)  # (2r+1,)
    blob = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))  # (2r+1, 2r+1)
    top, bottom = max(0, y - radius), min(H, y + radius + 1)
    left, right = max(0, x - radius), min(W, x + radius + 1)
    patch = blob[top - (y - radius) : bottom - (y - radius), left - (x - radius) : right - (x - radius)]
    heatmap[top:bottom, left:right] = torch.maximum(heatmap[top:bottom, left:right], patch)


def centernet_targets(
    boxes: Tensor, labels: Tensor, output_size: tuple[int, int], stride: int, num_classes: int
) -> dict[str, Tensor]:
    """One image's training targets on a map of ``output_size`` = (h, w) cells of ``stride`` pixels.

    Args:
        boxes: Tensor[N, 4] xyxy, in input pixels.
        labels: Tensor[N] in 1..K.

    Returns:
        ``heatmap`` Tensor[K, h, w] (Gaussians, 1 at each centre), ``size`` Tensor[2, h, w] (width
        and height in pixels at each centre cell), ``offset`` Tensor[2, h, w] (centre minus its
        cell, in cells), ``centres`` Tensor[h, w] bool (the cells that carry a size and offset).
        Two centres in one cell: the smaller object keeps the cell's size and offset.
    """
    check_boxes(boxes, "boxes")
    h, w = output_size
    heatmap = boxes.new_zeros(num_classes, h, w)
    size, offset = boxes.new_zeros(2, h, w), boxes.new_zeros(2, h, w)
    centres = torch.zeros(h, w, dtype=torch.bool, device=boxes.device)
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]  # (N,), (N,)
    radii = gaussian_radius(heights / stride, widths / stride).floor().int().clamp(min=0)  # (N,)
    order = torch.argsort(widths * heights, descending=True, stable=True)  # large first, small last wins
    for index in order.tolist():
        centre = ((boxes[index, :2] + boxes[index, 2:]) / 2) / stride  # (2,) x, y in cells
        cell = centre.floor().long().clamp(min=0)
        x, y = min(int(cell[0]), w - 1), min(int(cell[1]), h - 1)
        draw_gaussian(heatmap[int(labels[index]) - 1], (x, y), int(radii[index]))
        size[:, y, x] = torch.stack([widths[index], heights[index]])
        offset[:, y, x] = centre - torch.tensor([x, y], dtype=centre.dtype, device=centre.device)
        centres[y, x] = True
    return {"heatmap": heatmap, "size": size, "offset": offset, "centres": centres}


def centernet_focal_loss(logits: Tensor, heatmap: Tensor, alpha: float = 2.0, beta: float = 4.0) -> Tensor:
    """The penalty-reduced focal loss of Eq. 1, summed and divided by the number of objects.

    ``-(1 - p)^α log p`` at the centres (heatmap = 1), ``-(1 - Y)^β p^α log(1 - p)`` elsewhere: a pixel
    near a centre (Y close to 1) is hardly penalized for a high score. Both from logits, through
    ``logsigmoid``, so that no probability of exactly 0 or 1 reaches a log.

    Args:
        logits: Tensor[B, K, h, w], before the sigmoid.
        heatmap: Tensor[B, K, h, w], the Gaussian targets.
    """
    probabilities = torch.sigmoid(logits)
    positive = heatmap.eq(1).float()
    positive_loss = -((1 - probabilities) ** alpha) * F.logsigmoid(logits) * positive
    negative_weight = (1 - heatmap) ** beta * probabilities**alpha * (1 - positive)
    negative_loss = -negative_weight * F.logsigmoid(-logits)
    return (positive_loss.sum() + negative_loss.sum()) / positive.sum().clamp(min=1)


def heatmap_peaks(scores: Tensor, k: int = 100, kernel: int = 3) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The ``k`` best peaks of one image's heatmap: pixels that are the maximum of their neighbourhood.

    A 3 x 3 max pooling (stride 1) leaves a pixel unchanged only where it is the largest around:
    keeping those is CenterNet's replacement for NMS (Sec. 4 of the paper).

    Args:
        scores: Tensor[K, h, w], after the sigmoid (non-negative: a pixel that is not a peak is
            scored 0 in the ranking).

    Returns:
        ``(scores Tensor[k'], classes Tensor[k'] in 0..K-1, ys Tensor[k'], xs Tensor[k'])``, best
        first, ``k' = min(k, K h w)``; ties by lower index (class, then row, then column).
    """
    check_number(kernel, "kernel", low=1, integer=True)
    K, h, w = scores.shape  # classes, height, width
    if scores.numel() and scores.min() < 0:
        raise ValueError(f"scores: expected values >= 0 (after a sigmoid), got {float(scores.min()):.3g}")
    pooled = F.max_pool2d(scores[None], kernel, stride=1, padding=kernel // 2)[0]  # (K, h, w)
    peaks = torch.where(pooled == scores, scores, torch.zeros_like(scores)).flatten()  # (K*h*w,)
    count = min(k, peaks.numel())
    order = torch.argsort(peaks, descending=True, stable=True)[:count]  # (k',)
    classes, rest = order // (h * w), order % (h * w)
    return peaks[order], classes, rest // w, rest % w


class CenterNet(OneStageDetector):
    """``model(images, targets) -> losses`` in training, ``model(images) -> detections`` in eval mode.

    Args:
        backbone: a :class:`ShapesBackbone`.
        num_classes: ``K``.
        width: channels of the stride-4 map and of each head.
        size_weight, offset_weight: the loss weights of Eq. 4 (0.1 and 1 in the paper).
        max_detections: the peaks kept per image.
        **kwargs: ``score_thresh`` and the rest of :class:`OneStageDetector` (NMS is not used).
    """

    stride = 4

    def __init__(
        self,
        backbone: ShapesBackbone | None = None,
        num_classes: int = NUM_CLASSES,
        width: int = 64,
        size_weight: float = 0.1,
        offset_weight: float = 1.0,
        max_detections: int = 100,
        **kwargs,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.size_weight, self.offset_weight = size_weight, offset_weight
        self.max_detections = max_detections
        self.neck = Stride4Neck(self.backbone.out_channels, width)

        def head(outputs: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, outputs, 1)
            )

        self.heatmap_head, self.size_head, self.offset_head = head(num_classes), head(2), head(2)
        nn.init.constant_(self.heatmap_head[-1].bias, -math.log((1 - PRIOR) / PRIOR))

    def predict(self, images: list[Tensor]) -> tuple[dict[str, Tensor], list[tuple[int, int]]]:
        """``heatmap`` logits Tensor[B, K, h, w]; ``size`` and ``offset``, each Tensor[B, 2, h, w]."""
        features, sizes = self.backbone_features(images)
        merged = self.neck(features)  # (B, D, H/4, W/4)
        outputs = {"heatmap": self.heatmap_head(merged), "size": self.size_head(merged)}
        outputs["offset"] = self.offset_head(merged)
        return outputs, sizes

    def forward(self, images: list[Tensor], targets: list[dict] | None = None):
        """Detect, or in training mode return the three terms of the loss (Eq. 4 of the paper)."""
        if self.training:
            targets = check_targets(targets, len(images), self.num_classes)
        outputs, sizes = self.predict(images)
        h, w = outputs["heatmap"].shape[-2:]
        if self.training:
            maps = [centernet_targets(t["boxes"], t["labels"], (h, w), self.stride, self.num_classes)
                    for t in targets]
            heatmap = torch.stack([m["heatmap"] for m in maps])  # (B, K, h, w)
            centres = torch.stack([m["centres"] for m in maps])[:, None]  # (B, 1, h, w)
            count = centres.sum().clamp(min=1)
            size_error = (outputs["size"] - torch.stack([m["size"] for m in maps])).abs() * centres
            offset_error = (outputs["offset"] - torch.stack([m["offset"] for m in maps])).abs() * centres
            return {
                "loss_heatmap": centernet_focal_loss(outputs["heatmap"], heatmap),
                "loss_size": self.size_weight * size_error.sum() / count,
                "loss_offset": self.offset_weight * offset_error.sum() / count,
            }
        detections = []
        for index, image_size in enumerate(sizes):
            heat = torch.sigmoid(outputs["heatmap"][index])  # (K, h, w)
            scores, classes, ys, xs = heatmap_peaks(heat, self.max_detections)
            keep = scores > self.score_thresh
            scores, classes, ys, xs = scores[keep], classes[keep], ys[keep], xs[keep]
            centre_x = (xs + outputs["offset"][index, 0, ys, xs]) * self.stride  # (D,)
            centre_y = (ys + outputs["offset"][index, 1, ys, xs]) * self.stride
            half_w, half_h = outputs["size"][index, :, ys, xs].clamp(min=0) / 2  # (D,), (D,) no negative side
            corners = (centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h)
            boxes = torch.stack(corners, dim=1)  # (D, 4)
            boxes = clip_boxes_to_image(boxes, image_size)  # (D, 4)
            detections.append({"boxes": boxes, "scores": scores, "labels": classes + 1})
        return detections
