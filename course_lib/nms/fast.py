"""Fast greedy NMS: the optimized equivalent of ``course_lib.nms.greedy``, which the models call.

``greedy.nms`` takes one box per pass of a Python loop and computes one row of IoUs: clear, but
a few hundred kept boxes cost a few hundred passes of small tensor ops. ``fast_nms`` returns the
same indices (and what ``torchvision.ops.nms`` returns) from a few dozen large tensor ops: it takes
the candidates in blocks, decides a whole block at once, and lets the block's kept boxes suppress
every remaining candidate in one matrix of IoUs (see ``_block_nms``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from course_lib.boxes import box_inter_union, upcast_boxes
from course_lib.nms.greedy import check_batched_nms_args, check_nms_args, threshold_as

# Candidates go through in blocks: small enough that the (block x block) IoUs cost little when most
# candidates survive, large enough to amortize Python's per-op overhead. The first block is smaller,
# so that when a few boxes suppress most others (a detector's output) little work precedes them.
_BLOCK_SIZES = (128, 256)
# Blocks shrink when there are many candidates, to keep each (block x candidates) temporary <= 16 MB.
_MAX_PAIRS = 2**22
# Cluster-NMS passes before a block switches to the box-by-box scan (chains are usually 2-4 long).
_FIXPOINT_PASSES = 6


def fast_nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression, block by block: ``greedy.nms``'s result, faster.

    Same arguments, checks and result as ``course_lib.nms.nms`` and ``torchvision.ops.nms``.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes.
        scores (Tensor[N]): a score per box.
        iou_threshold: discard boxes whose IoU with a kept box is ``> iou_threshold``, in [0, 1].

    Returns:
        Tensor[K]: int64 indices of the kept boxes, by decreasing score (ties by lower index).
    """
    check_nms_args(boxes, scores, iou_threshold)
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    return _block_nms(upcast_boxes(boxes), scores, iou_threshold)


def fast_batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each category, block by block: ``greedy.batched_nms``'s result, faster.

    Two ways to do it, and we use both, switching where torchvision switches on CPU (at 1000
    boxes), so that the IoUs round identically and the two libraries keep the very same boxes:

    * the coordinate-offset trick: shift every box of class ``c`` by ``c * (max coordinate + 1)``
      so that classes cannot overlap, then run one plain NMS. It needs coordinates >= 0
      (torchvision assumes that too, and is wrong otherwise), so we skip it when any is negative;
    * NMS class by class on the original coordinates (the block algorithm, with the candidates
      sorted by class first), the kept boxes then merged by score.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes.
        scores (Tensor[N]): a score per box.
        idxs (Tensor[N]): integer category of each box.
        iou_threshold: discard boxes whose IoU with a kept box of its category is ``> iou_threshold``.

    Returns:
        Tensor[K]: int64 indices of the kept boxes, by decreasing score (ties by lower index).
    """
    check_batched_nms_args(boxes, scores, idxs, iou_threshold)
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    boxes = upcast_boxes(boxes)
    if boxes.numel() <= 4000 and boxes.min() >= 0:
        offsets = idxs.to(boxes) * (boxes.max() + 1)  # (N,)
        return _block_nms(boxes + offsets[:, None], scores, iou_threshold)
    return _block_nms(boxes, scores, iou_threshold, idxs)


def _iou_rows(rows1: Tensor, rows2: Tensor) -> Tensor:
    """IoU of every pair from two ``(5, N)`` tables of boxes (rows x1, y1, x2, y2, area)."""
    inter, union = box_inter_union(rows1[:4], rows1[4], rows2[:4], rows2[4])
    # 0 / 0 (two empty boxes) is NaN, and NaN > threshold is False: such a pair never suppresses.
    return inter.div_(union)  # (N, M)


def _block_nms(boxes: Tensor, scores: Tensor, iou_threshold: float, idxs: Tensor | None = None) -> Tensor:
    """Greedy NMS, vectorized by blocks; with ``idxs``, boxes of different classes never interact.

    Sort by score. Take the best few candidates left (a block); inside it, a candidate is kept when
    no kept candidate before it overlaps it. Those decisions depend on each other, so they are
    found by the fixpoint iteration of Cluster-NMS (Zheng et al. 2020, "Enhancing Geometric Factors
    in Model Learning and Inference for Object Detection", Sec. 4.2), which provably gives the greedy
    result, usually in 2-4 passes. Then the block's kept boxes suppress all remaining candidates at
    once, so a suppressed box is never compared again (the C++ kernel skips them too). The work is
    about (kept x candidates) IoUs, like torchvision's, done in a few dozen tensor ops.

    Per class, candidates are sorted by class first: then a block's kept boxes can only meet the
    remaining candidates of the block's last class, a prefix of them.
    """
    threshold = threshold_as(iou_threshold, boxes.dtype)
    order = torch.sort(scores, descending=True, stable=True).indices  # (N,) ties: lower index first
    if idxs is not None:
        order = order[torch.sort(idxs[order], stable=True).indices]  # (N,) by class, then as before
        classes = idxs[order]  # (N,)
    x1, y1, x2, y2 = boxes.index_select(0, order).unbind(1)  # 4 x (N,)
    # One column per candidate, in that order: one gather moves all that a candidate needs.
    candidates = torch.stack((x1, y1, x2, y2, (x2 - x1) * (y2 - y1)))  # (5, N) x1, y1, x2, y2, area
    index = order  # (N,) original index of each candidate
    kept, step = [], 0
    while index.numel():
        size = _BLOCK_SIZES[min(step, len(_BLOCK_SIZES) - 1)]
        size, step = max(16, min(size, _MAX_PAIRS // index.numel())), step + 1
        block, candidates = candidates[:, :size], candidates[:, size:]  # (5, B), (5, R)
        block_index, index = index[:size], index[size:]  # (B,), (R,)
        # suppresses[i, j] = 1: block box i, if kept, removes block box j (only better boxes do).
        suppresses = (_iou_rows(block, block) > threshold).triu_(diagonal=1)  # (B, B)
        reach = index.numel()  # how many of the remaining candidates the block's boxes can suppress
        if idxs is not None:
            block_classes, classes = classes[:size], classes[size:]  # (B,), (R,)
            suppresses &= block_classes[:, None] == block_classes
            reach = int((classes == block_classes[-1]).sum())
        suppresses = suppresses.to(boxes.dtype)
        keep = suppresses.sum(dim=0) == 0  # (B,) first pass: as if every box were kept
        for _ in range(_FIXPOINT_PASSES):  # Cluster-NMS: iterate keep = "no kept box before me suppresses me"
            new_keep = (keep.to(boxes.dtype) @ suppresses) == 0  # (B,)
            if torch.equal(new_keep, keep):
                break
            keep = new_keep
        else:  # a long chain of suppressions (low threshold, heavy overlap): one pass per link is slower
            keep = _sequential_keep(suppresses)
        keep = keep.nonzero()[:, 0]  # (b,)
        block = block.index_select(1, keep)  # (5, b)
        kept.append(block_index.index_select(0, keep))
        if reach == 0:
            continue
        # The block's kept boxes remove, at once, every remaining candidate they overlap.
        overlaps = _iou_rows(block, candidates[:, :reach])  # (b, reach)
        if idxs is not None:  # only the block's boxes of the last class count
            overlaps *= (block_classes.index_select(0, keep) == classes[0])[:, None]
        survivors = (overlaps.amax(dim=0) > threshold).logical_not_().nonzero()[:, 0]  # (R',)
        if reach < index.numel():
            survivors = torch.cat((survivors, torch.arange(reach, index.numel(), device=index.device)))
        candidates, index = candidates.index_select(1, survivors), index.index_select(0, survivors)
        if idxs is not None:
            classes = classes.index_select(0, survivors)
    kept = torch.cat(kept)  # (K,) original indices
    if idxs is not None:  # from class by class back to decreasing score, ties by lower index
        kept = kept.sort().values
        kept = kept[torch.sort(scores[kept], descending=True, stable=True).indices]
    return kept


def _sequential_keep(suppresses: Tensor) -> Tensor:
    """Greedy NMS inside one block, box by box: kept unless a kept box before it suppresses it."""
    matrix = suppresses.bool().cpu().numpy()  # (B, B) upper triangular
    keep = np.ones(len(matrix), dtype=bool)
    for i in range(len(matrix)):
        if keep[i]:
            keep[i + 1 :] &= ~matrix[i, i + 1 :]
    return torch.from_numpy(keep).to(suppresses.device)
