"""Non-maximum suppression: greedy NMS, per-class NMS, Soft-NMS, and NMS step by step.

A detector proposes many overlapping boxes per object; NMS keeps the best-scoring box and removes
the boxes that overlap it too much, then repeats with the best remaining box (the lecture's five
steps). ``nms_steps`` runs exactly that loop and records each step for the notebook's animation.
``nms`` gives the same answer, fast: it takes the candidates in blocks and suppresses with whole
blocks of IoUs at once (see ``_greedy_nms``). Both return what ``torchvision.ops.nms`` returns,
index for index.

A box is suppressed when its IoU with a kept box is strictly greater than ``iou_threshold``, as in
torchvision; the lecture's slide says ">=", which differs only for an IoU exactly on the threshold.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from course_lib._checks import check_boxes, check_choice, check_number, check_scores, check_tensor
from course_lib.boxes import _area, _inter_union, _upcast

# Candidates go through in blocks: small enough that the (block x block) IoUs cost little when most
# candidates survive, large enough to amortize Python's per-op overhead. The first block is smaller,
# so that when a few boxes suppress most others (a detector's output) little work precedes them.
_BLOCK_SIZES = (128, 256)
# Blocks shrink when there are many candidates, to keep each (block x candidates) temporary <= 16 MB.
_MAX_PAIRS = 2**22
# Cluster-NMS passes before a block switches to the box-by-box scan (chains are usually 2-4 long).
_FIXPOINT_PASSES = 6


def _check_nms_args(boxes: Tensor, scores: Tensor, iou_threshold: float) -> None:
    check_boxes(boxes, allow_degenerate=False)
    check_scores(scores, boxes.shape[0])
    check_number(iou_threshold, "iou_threshold", low=0.0, high=1.0)


@functools.lru_cache(maxsize=64)
def _threshold_as(iou_threshold: float, dtype: torch.dtype) -> Tensor:
    """The threshold in ``dtype``, rounded down, so that ``iou > t`` in ``dtype`` equals the double test.

    torchvision's C++ kernel compares a float32 IoU with a double threshold; torch would round the
    threshold to the nearest float32 instead (0.1 becomes 0.10000000149), which flips an IoU equal
    to that float. Rounding down gives the double comparison's answer for every float32 IoU.
    """
    threshold = torch.tensor(iou_threshold, dtype=torch.float64).to(dtype)
    if threshold.item() > iou_threshold:
        threshold = torch.nextafter(threshold, torch.tensor(-1.0, dtype=dtype))
    return threshold


def _iou_rows(rows1: Tensor, rows2: Tensor) -> Tensor:
    """IoU of every pair from two ``(5, N)`` tables of boxes (rows x1, y1, x2, y2, area)."""
    inter, union = _inter_union(rows1[:4], rows1[4], rows2[:4], rows2[4])
    # 0 / 0 (two empty boxes) is NaN, and NaN > threshold is False: such a pair never suppresses.
    return inter.div_(union)  # (N, M)


def _greedy_nms(boxes: Tensor, scores: Tensor, iou_threshold: float, idxs: Tensor | None = None) -> Tensor:
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
    threshold = _threshold_as(iou_threshold, boxes.dtype)
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


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression, as ``torchvision.ops.nms``.

    Repeatedly keep the highest-scoring box left and discard every remaining box whose IoU with it is
    greater than ``iou_threshold``.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes.
        scores (Tensor[N]): a score per box.
        iou_threshold: discard boxes whose IoU with a kept box is ``> iou_threshold``, in [0, 1].

    Returns:
        Tensor[K]: int64 indices of the kept boxes, by decreasing score; equal scores are taken in
        the order of their index (a stable sort), as torchvision's CPU kernel does.
    """
    _check_nms_args(boxes, scores, iou_threshold)
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    return _greedy_nms(_upcast(boxes), scores, iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each category: boxes with different ``idxs`` never suppress each other.

    Two ways to do it, and we use both, switching where torchvision switches on CPU (at 1000
    boxes), so that the IoUs round identically and the two libraries keep the very same boxes:

    * the coordinate-offset trick: shift every box of class ``c`` by ``c * (max coordinate + 1)``
      so that classes cannot overlap, then run one plain ``nms``. It needs coordinates >= 0
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
    _check_nms_args(boxes, scores, iou_threshold)
    check_tensor(idxs, "idxs")
    if idxs.shape != scores.shape or idxs.is_floating_point() or idxs.dtype == torch.bool:
        raise ValueError(
            f"idxs: expected an integer Tensor[{boxes.shape[0]}], got shape {tuple(idxs.shape)}, {idxs.dtype}"
        )
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    boxes = _upcast(boxes)
    if boxes.numel() <= 4000 and boxes.min() >= 0:
        offsets = idxs.to(boxes) * (boxes.max() + 1)  # (N,)
        return _greedy_nms(boxes + offsets[:, None], scores, iou_threshold)
    return _greedy_nms(boxes, scores, iou_threshold, idxs)


def nms_steps(boxes: Tensor, scores: Tensor, iou_threshold: float) -> list[dict[str, Tensor | int]]:
    """Greedy NMS one step at a time, recording each step (for the notebook's animation).

    The lecture's loop: (1) sort by score; (2) select the highest-scoring remaining box and keep it;
    (3) compute its IoU with every other remaining box; (4) remove those with IoU above the threshold;
    (5) repeat until no box remains. The kept boxes are the ``selected`` of each step, and equal
    ``nms(boxes, scores, iou_threshold)``.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes.
        scores (Tensor[N]): a score per box.
        iou_threshold: remove boxes whose IoU with the selected box is ``> iou_threshold``.

    Returns:
        One dict per step: ``"selected"`` (int, index of the box kept), ``"candidates"``
        (LongTensor[R], the other remaining boxes by decreasing score), ``"ious"`` (Tensor[R], their
        IoU with the selected box), ``"removed"`` (LongTensor, those over the threshold) and
        ``"remaining"`` (LongTensor, those left for the next step).
    """
    _check_nms_args(boxes, scores, iou_threshold)
    boxes = _upcast(boxes)
    threshold = _threshold_as(iou_threshold, boxes.dtype)
    remaining = torch.sort(scores, descending=True, stable=True).indices  # (N,)
    rows = torch.cat((boxes.T, _area(boxes)[None]))  # (5, N) x1, y1, x2, y2, area
    steps = []
    while remaining.numel():
        selected, candidates = remaining[0], remaining[1:]  # (), (R,)
        ious = _iou_rows(rows[:, selected, None], rows[:, candidates])[0]  # (R,)
        over = ious > threshold  # (R,)
        remaining = candidates[~over]
        steps.append(
            {
                "selected": int(selected),
                "candidates": candidates,
                "ious": ious.nan_to_num(nan=0.0),  # 0 / 0 for two empty boxes: shown as 0
                "removed": candidates[over],
                "remaining": remaining,
            }
        )
    return steps


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
    method: str = "gaussian",
) -> tuple[Tensor, Tensor]:
    """Soft-NMS (Bodla et al. 2017, "Soft-NMS -- Improving Object Detection With One Line of Code").

    Instead of removing the boxes that overlap the selected box ``M``, lower their scores, so that a
    second object hidden behind the first can still be found:

    * ``"linear"`` (Eq. 2): ``s_i <- s_i * (1 - IoU(M, b_i))`` if ``IoU(M, b_i) >= iou_threshold``,
      else unchanged. (The authors' code tests ``>``; we follow the paper.)
    * ``"gaussian"`` (Eq. 3): ``s_i <- s_i * exp(-IoU(M, b_i)^2 / sigma)`` for every box;
      ``iou_threshold`` is not used.

    Boxes whose score falls below ``score_threshold`` are discarded. Each step costs one IoU row,
    so the whole is O(N * K); meant for the few hundred boxes of one image.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes.
        scores (Tensor[N]): a score per box (non-negative, as probabilities).
        iou_threshold: ``N_t`` of the linear method, in [0, 1].
        sigma: spread of the Gaussian penalty, > 0.
        score_threshold: boxes whose decayed score is below it are dropped.
        method: ``"gaussian"`` or ``"linear"``.

    Returns:
        ``(keep, new_scores)``: Tensor[K] int64 indices of the kept boxes in the order they were
        selected (by decreasing new score; ties by lower index) and Tensor[K] their decayed scores.
    """
    _check_nms_args(boxes, scores, iou_threshold)
    check_number(sigma, "sigma", low=0.0)
    if sigma == 0:
        raise ValueError(f"sigma: expected a positive number, got {sigma!r}")
    check_number(score_threshold, "score_threshold")
    check_choice(method, ("gaussian", "linear"), "method")
    boxes = _upcast(boxes)
    rows = torch.cat((boxes.T, _area(boxes)[None]))  # (5, N) x1, y1, x2, y2, area
    current = scores.to(torch.promote_types(scores.dtype, torch.float32), copy=True)  # (N,) decayed scores
    remaining = torch.nonzero(current >= score_threshold)[:, 0]  # (R,) candidates
    keep, new_scores = [], []
    while remaining.numel():
        best = int(torch.argmax(current[remaining]))  # the first maximum: lower index wins ties
        selected = remaining[best]
        keep.append(selected)
        new_scores.append(current[selected])
        remaining = torch.cat((remaining[:best], remaining[best + 1 :]))  # (R - 1,)
        ious = _iou_rows(rows[:, selected, None], rows[:, remaining])[0].nan_to_num_(nan=0.0)  # (R - 1,)
        if method == "linear":
            decay = torch.where(ious >= iou_threshold, 1 - ious, 1.0)  # (R - 1,)
        else:
            decay = torch.exp(-(ious * ious) / sigma)  # (R - 1,)
        current[remaining] *= decay.to(current.dtype)
        remaining = remaining[current[remaining] >= score_threshold]
    if not keep:
        return torch.empty(0, dtype=torch.int64, device=boxes.device), current[:0]
    return torch.stack(keep), torch.stack(new_scores)
