"""Anchors: generate them on a feature map, label them against ground truth, sample a training batch.

The three steps of the Region Proposal Network's training targets (Ren et al. 2015, "Faster R-CNN",
Sec. 3.1 and 3.1.2):

1. ``generate_anchors``: at every cell of a feature map, ``len(sizes) * len(aspect_ratios)`` boxes
   centred on the cell, in the order and with the rounding of torchvision's ``AnchorGenerator``;
2. ``label_anchors``: 1 (object) when IoU >= 0.7 with some ground-truth box, 0 (background) when
   IoU < 0.3 with all of them, -1 (ignored) in between; plus, for each ground-truth box, the
   anchor(s) that overlap it most, so that no object is left without a positive anchor;
3. ``sample_anchors``: a mini-batch of 256 anchors, at most half of them positive.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from course_lib._checks import check_boxes, check_number, check_pair, check_tensor
from course_lib.boxes import box_iou


def generate_anchors(
    sizes: Sequence[float],
    aspect_ratios: Sequence[float],
    stride: int | Sequence[int],
    grid_size: int | Sequence[int],
    offset: float = 0.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Anchor boxes for every cell of one feature map.

    An anchor of size ``s`` and aspect ratio ``r = height / width`` has width ``s / sqrt(r)`` and
    height ``s * sqrt(r)``, so its area is ``s**2`` whatever ``r``. Half-sides are rounded to whole
    pixels, as torchvision does. For a feature pyramid, call once per level and concatenate.

    Args:
        sizes: anchor sizes in pixels of the input image, e.g. ``(32, 64, 128)``.
        aspect_ratios: height / width ratios, e.g. ``(0.5, 1.0, 2.0)``.
        stride: pixels of the image per feature-map cell, an int or ``(stride_h, stride_w)``.
        grid_size: ``(H, W)`` of the feature map, or an int for a square one.
        offset: where in its cell an anchor is centred, as a fraction of the stride. The default 0
            puts it at the cell's top-left pixel ``(x * stride, y * stride)``, as torchvision's
            ``AnchorGenerator``; 0.5 centres it in the cell, as detectron2 recommends.
        dtype: floating dtype of the result.
        device: device of the result (the feature map's, for a model on a GPU).

    Returns:
        Tensor[H * W * A, 4]: ``xyxy`` anchors with ``A = len(aspect_ratios) * len(sizes)``; row
        ``(y * W + x) * A + i * len(sizes) + j`` is the anchor of ratio ``i`` and size ``j`` at cell
        ``(y, x)``, the order of torchvision's ``AnchorGenerator``.
    """
    for name, values in (("sizes", sizes), ("aspect_ratios", aspect_ratios)):
        if len(values) == 0:
            raise ValueError(f"{name}: expected a non-empty sequence, got {values!r}")
        for value in values:
            check_number(value, name, low=0)
            if value == 0:
                raise ValueError(f"{name}: expected positive values, got {values!r}")
    stride_h, stride_w = check_pair(stride, "stride", low=1)
    grid_h, grid_w = check_pair(grid_size, "grid_size", low=0)
    check_number(offset, "offset", low=0.0, high=1.0)

    # A anchors centred on (0, 0); the same operations as torchvision, so the same rounding.
    scales = torch.as_tensor(sizes, dtype=dtype, device=device)  # (S,)
    ratios = torch.as_tensor(aspect_ratios, dtype=dtype, device=device)  # (R,)
    h_ratios = torch.sqrt(ratios)  # (R,)
    w_ratios = 1 / h_ratios  # (R,)
    widths = (w_ratios[:, None] * scales[None, :]).view(-1)  # (A,) ratio-major
    heights = (h_ratios[:, None] * scales[None, :]).view(-1)  # (A,)
    cell_anchors = (torch.stack((-widths, -heights, widths, heights), dim=1) / 2).round()  # (A, 4)

    # The centre of every cell, row by row, then every anchor at every centre.
    shift_x = (torch.arange(grid_w, dtype=dtype, device=device) + offset) * stride_w  # (W,)
    shift_y = (torch.arange(grid_h, dtype=dtype, device=device) + offset) * stride_h  # (H,)
    shift_y, shift_x = torch.meshgrid(shift_y, shift_x, indexing="ij")  # (H, W) each
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=-1).reshape(-1, 1, 4)  # (H*W, 1, 4)
    return (shifts + cell_anchors[None]).reshape(-1, 4)  # (H*W*A, 4)


def label_anchors(
    anchors: Tensor,
    gt_boxes: Tensor,
    fg_iou_thresh: float = 0.7,
    bg_iou_thresh: float = 0.3,
    allow_low_quality_matches: bool = True,
) -> tuple[Tensor, Tensor]:
    """Label each anchor positive, negative or ignored, and match it to a ground-truth box.

    The rule of Faster R-CNN (Sec. 3.1.2) and of torchvision's ``Matcher`` inside
    ``RegionProposalNetwork.assign_targets_to_anchors``:

    * positive (1): IoU >= ``fg_iou_thresh`` with its best ground-truth box;
    * negative (0): IoU < ``bg_iou_thresh`` with every ground-truth box;
    * ignored (-1): in between; the loss does not see it;
    * with ``allow_low_quality_matches``, also positive: for each ground-truth box, the anchor(s)
      with the highest IoU with it, ties included, even below ``fg_iou_thresh``. Such an anchor is
      matched to *its own* best ground-truth box, as torchvision does.

    One deviation: a ground-truth box that overlaps no anchor at all (best IoU 0) gives no
    low-quality match here. torchvision counts every anchor as tied at IoU 0 with it and turns them
    all positive, which is what the paper's rule means only for a positive overlap.

    Args:
        anchors (Tensor[N, 4]): ``xyxy`` anchors.
        gt_boxes (Tensor[M, 4]): ``xyxy`` ground-truth boxes; M may be 0 (an image of background).
        fg_iou_thresh: IoU at or above which an anchor is positive.
        bg_iou_thresh: IoU below which an anchor is negative; ``<= fg_iou_thresh``.
        allow_low_quality_matches: also make the best anchor(s) of each ground-truth box positive.

    Returns:
        ``(labels, matched_gt)``: Tensor[N] int64 of 1 / 0 / -1, and Tensor[N] int64, the index of
        the ground-truth box with the highest IoU with each anchor (the first one on ties; the
        regression target of a positive anchor). Where torchvision writes 0 for negative and
        ignored anchors, we still give the best box; with no ground-truth box it is 0.
    """
    check_boxes(anchors, "anchors", allow_degenerate=False)
    check_boxes(gt_boxes, "gt_boxes", allow_degenerate=False)
    check_number(fg_iou_thresh, "fg_iou_thresh", low=0.0, high=1.0)
    check_number(bg_iou_thresh, "bg_iou_thresh", low=0.0, high=fg_iou_thresh)
    num_anchors = anchors.shape[0]
    if gt_boxes.shape[0] == 0:  # nothing to find: every anchor is background
        zeros = torch.zeros(num_anchors, dtype=torch.int64, device=anchors.device)
        return zeros, zeros.clone()

    iou = box_iou(gt_boxes, anchors)  # (M, N)
    best_iou, matched_gt = iou.max(dim=0)  # (N,), (N,) first maximum on ties
    labels = torch.full((num_anchors,), -1, dtype=torch.int64, device=anchors.device)  # (N,)
    labels[best_iou < bg_iou_thresh] = 0
    labels[best_iou >= fg_iou_thresh] = 1
    if allow_low_quality_matches and num_anchors:
        best_for_each_gt = iou.max(dim=1).values[:, None]  # (M, 1)
        is_best = (iou == best_for_each_gt) & (best_for_each_gt > 0)  # (M, N) ties included
        labels[is_best.any(dim=0)] = 1
    return labels, matched_gt


def sample_anchors(
    labels: Tensor,
    batch_size_per_image: int = 256,
    positive_fraction: float = 0.5,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw a balanced mini-batch of positive and negative anchors (Faster R-CNN, Sec. 3.1.3).

    Up to ``batch_size_per_image * positive_fraction`` positives, drawn at random; negatives fill
    the rest of the batch. With few positives the batch is mostly negatives; with few anchors it is
    smaller than asked. As torchvision's ``BalancedPositiveNegativeSampler``; its random draws
    cannot be reproduced, the counts and the rule can.

    Args:
        labels (Tensor[N]): per anchor, >= 1 positive, 0 negative, -1 ignored (``label_anchors``).
        batch_size_per_image: number of anchors wanted.
        positive_fraction: largest fraction of positives in the batch, in [0, 1].
        generator: a seeded ``torch.Generator`` for reproducible draws.

    Returns:
        ``(pos_idx, neg_idx)``: Tensor[P] and Tensor[Q] int64 indices into ``labels``, each in
        increasing order, with ``P <= batch_size_per_image * positive_fraction`` and
        ``P + Q <= batch_size_per_image``.
    """
    check_tensor(labels, "labels")
    if labels.dim() != 1:
        raise ValueError(f"labels: expected a Tensor[N], got shape {tuple(labels.shape)}")
    check_number(batch_size_per_image, "batch_size_per_image", low=0, integer=True)
    check_number(positive_fraction, "positive_fraction", low=0.0, high=1.0)
    positive = torch.nonzero(labels >= 1)[:, 0]  # (P_all,)
    negative = torch.nonzero(labels == 0)[:, 0]  # (Q_all,)
    num_pos = min(int(batch_size_per_image * positive_fraction), positive.numel())
    num_neg = min(batch_size_per_image - num_pos, negative.numel())
    pos_pick = torch.randperm(positive.numel(), generator=generator, device=labels.device)[:num_pos]
    neg_pick = torch.randperm(negative.numel(), generator=generator, device=labels.device)[:num_neg]
    return positive[pos_pick].sort().values, negative[neg_pick].sort().values
