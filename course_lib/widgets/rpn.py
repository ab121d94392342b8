"""Explorer for Faster R-CNN's proposals: how many RPN boxes, after how much NMS, find the objects?

The region proposal network scores and regresses thousands of anchors; Faster R-CNN keeps the best
of them after NMS at IoU 0.7 and hands ~300 to the detector (Ren et al. 2015, "Faster R-CNN",
Sec. 3.1 and Fig. 3 / Table 1: with 300 RPN proposals recall stays high, while selective search's
recall falls fast as its list is cut). ``proposal_view`` measures that on one image;
``ProposalExplorer`` draws it.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from torch import Tensor

from course_lib._checks import check_boxes, check_number, check_scores, check_tensor
from course_lib.boxes import box_iou
from course_lib.metrics.proposals import best_overlaps, proposal_recall
from course_lib.nms import fast_nms
from course_lib.plotting import show_image
from course_lib.widgets.base import WIDE_LABEL, Explorer, outline_boxes, plural

COUNT_CHOICES = (1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1000, 2000, 5000)
PROPOSAL_COLOR, FOUND_COLOR, MISSED_COLOR, BEST_COLOR = "#ffd700", "#2ca02c", "#d62728", "#00e5ff"
REFERENCE_COLOR = "0.45"
TITLE_SIZE, LABEL_SIZE = 12, 11  # points, at 100 dpi: readable on a projector


def rank_proposals(candidate_boxes: Tensor, candidate_scores: Tensor, nms_threshold: float) -> Tensor:
    """Indices of the candidates that survive NMS at ``nms_threshold``, best score first.

    ``nms_threshold=1.0`` means no NMS (an IoU is never above 1): every candidate, by decreasing
    score, ties by lower index, which is what ``nms`` returns at 1.0, without its pairwise IoUs.

    Args:
        candidate_boxes (Tensor[M, 4]): ``xyxy`` boxes, e.g. an RPN's decoded boxes before NMS.
        candidate_scores (Tensor[M]): their objectness scores.
        nms_threshold: in [0, 1].

    Returns:
        int64 Tensor[K], K <= M.
    """
    check_boxes(candidate_boxes, "candidate_boxes", allow_degenerate=False)
    check_scores(candidate_scores, candidate_boxes.shape[0], "candidate_scores")
    check_number(nms_threshold, "nms_threshold", 0.0, 1.0)
    if nms_threshold >= 1.0:
        return torch.sort(candidate_scores, descending=True, stable=True).indices
    return fast_nms(candidate_boxes, candidate_scores, nms_threshold)


def _recall_curve(proposals: Tensor, gt_boxes: Tensor, iou_threshold: float) -> Tensor:
    """Recall with the first ``k + 1`` proposals, for every k: Tensor[N] (empty without ground truth)."""
    if len(gt_boxes) == 0 or len(proposals) == 0:
        return torch.zeros(len(proposals) if len(gt_boxes) else 0)
    running_best = box_iou(proposals.float(), gt_boxes.float()).cummax(dim=0).values  # (N, G)
    return (running_best >= iou_threshold).float().mean(dim=1)  # (N,)


def proposal_view(
    gt_boxes: Tensor,
    candidate_boxes: Tensor,
    candidate_scores: Tensor,
    num_proposals: int,
    nms_threshold: float = 0.7,
    reference: Tensor | None = None,
    iou_threshold: float = 0.5,
    kept: Tensor | None = None,
) -> dict[str, Any]:
    """The first ``num_proposals`` candidates after NMS, and how many objects they find.

    An object is found when a proposal overlaps it with IoU >= ``iou_threshold``
    (``course_lib.metrics.proposal_recall``, Sec. 4 of Uijlings et al. 2013). The
    ``reference`` list (selective search's, say) is cut at the same count and scored the same way.

    Args:
        gt_boxes (Tensor[G, 4]): ``xyxy`` ground-truth boxes.
        candidate_boxes (Tensor[M, 4]): ``xyxy`` candidates before NMS, in any order.
        candidate_scores (Tensor[M]): their scores.
        num_proposals: how many proposals to keep after NMS (fewer if NMS leaves fewer), >= 0.
        nms_threshold: NMS IoU threshold in [0, 1]; 1.0 means no NMS.
        reference (Tensor[R, 4], optional): another ranked proposal list, best first.
        iou_threshold: the overlap that counts as found.
        kept (Tensor[K], optional): ``rank_proposals(candidate_boxes, candidate_scores,
            nms_threshold)`` if already computed (the explorer caches it per threshold).

    Returns:
        dict with ``proposals`` (Tensor[n, 4], n = min(num_proposals, K)), ``num_proposals`` (n),
        ``requested`` (num_proposals), ``num_kept`` (K), ``num_candidates`` (M), ``best_iou``
        (Tensor[G], best IoU of each object with the proposals), ``best_index`` (int64 Tensor[G],
        the proposal giving it, -1 without proposals), ``found`` (bool Tensor[G]), ``num_found``,
        ``num_gt``, ``recall`` (0.0 without ground truth), ``recall_curve`` (Tensor[K], recall
        with the first k + 1 proposals), ``reference_recall`` and ``reference_count`` (None
        without a reference), ``reference_curve`` (Tensor[R] or None), ``nms_threshold``,
        ``iou_threshold``.
    """
    check_boxes(gt_boxes, "gt_boxes")
    check_number(num_proposals, "num_proposals", 0, integer=True)
    check_number(iou_threshold, "iou_threshold", 0.0, 1.0)
    check_boxes(candidate_boxes, "candidate_boxes")
    check_scores(candidate_scores, candidate_boxes.shape[0], "candidate_scores")
    check_number(nms_threshold, "nms_threshold", 0.0, 1.0)
    if kept is None:
        kept = rank_proposals(candidate_boxes, candidate_scores, nms_threshold)
    check_tensor(kept, "kept")
    if reference is not None:
        check_boxes(reference, "reference")
    ranked = candidate_boxes[kept].float()  # (K, 4)
    proposals = ranked[:num_proposals]  # (n, 4)
    n = len(proposals)
    if len(gt_boxes) and n:
        # (G, n), reduced along its last dimension: torch runs max(dim=0) with indices of a small
        # tensor on its thread pool, which costs tens of milliseconds on a busy machine.
        overlaps = box_iou(gt_boxes.float(), proposals)  # (G, n)
        best_iou, best_index = overlaps.max(dim=1)  # (G,) each
    else:
        best_iou = torch.zeros(len(gt_boxes))
        best_index = torch.full((len(gt_boxes),), -1, dtype=torch.int64)
    found = best_iou >= iou_threshold
    count = max(n, 1)  # proposal_recall's counts must be >= 0; with 0 proposals nothing is found
    recall = proposal_recall(proposals, gt_boxes, iou_threshold, counts=(count,))[count] if n else 0.0
    result = {
        "proposals": proposals,
        "num_proposals": n,
        "requested": num_proposals,
        "num_kept": len(kept),
        "num_candidates": len(candidate_boxes),
        "best_iou": best_iou,
        "best_index": best_index,
        "found": found,
        "num_found": int(found.sum()),
        "num_gt": len(gt_boxes),
        "recall": recall,
        "recall_curve": _recall_curve(ranked, gt_boxes, iou_threshold),
        "reference_recall": None,
        "reference_count": None,
        "reference_curve": None,
        "nms_threshold": float(nms_threshold),
        "iou_threshold": float(iou_threshold),
    }
    if reference is not None:
        reference_count = min(num_proposals, len(reference))
        reference_best = best_overlaps(reference, gt_boxes, counts=(reference_count,))[0]  # (G,)
        result.update(
            reference_recall=float((reference_best >= iou_threshold).float().mean())
            if len(gt_boxes) else 0.0,
            reference_count=reference_count,
            reference_curve=_recall_curve(reference, gt_boxes, iou_threshold),
        )
    return result


class ProposalExplorer(Explorer):
    """Choose how many RPN proposals to keep and the NMS threshold; see which objects are found.

    Left: the image, the kept proposals (thin, translucent yellow), each object green when a
    proposal covers it at IoU >= 0.5 (that proposal in cyan), red when none does. Right: recall
    against the number of proposals (log scale) after this NMS, with the reference list's curve
    and the current count marked.

    Controls: ``num_proposals`` ("proposals", log-spaced values up to the number of candidates)
    and ``nms_threshold`` ("NMS IoU", 0.3 to 1.0; 1.0 = no NMS). NMS runs once per threshold and
    is cached, so moving the count only redraws.

    Args:
        image (Tensor[3, H, W]): the image, floats in [0, 1].
        gt_boxes (Tensor[G, 4]): ``xyxy`` ground-truth boxes.
        candidate_boxes (Tensor[M, 4]): the RPN's decoded boxes before NMS.
        candidate_scores (Tensor[M]): their objectness scores.
        reference (Tensor[R, 4], optional): another ranked proposal list, best first.
        reference_name: how the status and the plot call the reference.
    """

    def __init__(self, image: Tensor, gt_boxes: Tensor, candidate_boxes: Tensor, candidate_scores: Tensor,
                 reference: Tensor | None = None, reference_name: str = "selective search") -> None:
        check_tensor(image, "image")
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image: expected a Tensor[3, H, W], got shape {tuple(image.shape)}")
        check_boxes(gt_boxes, "gt_boxes")
        check_boxes(candidate_boxes, "candidate_boxes", allow_degenerate=False)
        check_scores(candidate_scores, candidate_boxes.shape[0], "candidate_scores")
        if reference is not None:
            check_boxes(reference, "reference")
        self.image, self.gt_boxes, self.reference = image, gt_boxes, reference
        self.candidate_boxes, self.candidate_scores = candidate_boxes, candidate_scores
        self.reference_name = reference_name
        self._kept: dict[float, Tensor] = {}
        num_candidates = len(candidate_boxes)
        counts = [count for count in COUNT_CHOICES if count < num_candidates] + [num_candidates]
        value = max((count for count in counts if count <= 300), default=counts[0])
        controls = {
            "num_proposals": widgets.SelectionSlider(options=counts, value=value, description="proposals",
                                                     continuous_update=True, style=WIDE_LABEL),
            "nms_threshold": widgets.FloatSlider(value=0.7, min=0.3, max=1.0, step=0.05,
                                                 description="NMS IoU", readout_format=".2f",
                                                 continuous_update=True, style=WIDE_LABEL),
        }
        caption = (
            f"<div style='font-size: 0.9em'><span style='color: #b8a000'>▭ proposals</span> &nbsp; objects "
            f"<span style='color: {FOUND_COLOR}'>▭ found</span> (<span style='color: #00a0b0'>▭ by this "
            f"proposal</span>) / <span style='color: {MISSED_COLOR}'>▭ missed</span> at IoU ≥ 0.5 "
            "&nbsp; NMS IoU 1.0 = no NMS</div>"
        )
        # A photo: a 256-colour PNG is several times smaller.
        # Room for the curve's axis labels.
        super().__init__(controls, num_axes=2, figsize=(8.6, 4.0), dpi=100, caption=caption, palette=True,
                         margins={"left": 0.03, "bottom": 0.15, "wspace": 0.3})

    def kept(self, nms_threshold: float) -> Tensor:
        """``rank_proposals`` at this threshold, computed once and cached."""
        if nms_threshold not in self._kept:
            self._kept[nms_threshold] = rank_proposals(self.candidate_boxes, self.candidate_scores,
                                                       nms_threshold)
        return self._kept[nms_threshold]

    def compute(self, num_proposals: int, nms_threshold: float) -> dict[str, Any]:
        nms_threshold = round(nms_threshold, 4)  # 0.7000000000000001 reads as 0.70
        return proposal_view(self.gt_boxes, self.candidate_boxes, self.candidate_scores, num_proposals,
                             nms_threshold, self.reference, kept=self.kept(nms_threshold))

    def background_key(self, result: dict[str, Any]) -> Any:
        return result["nms_threshold"]  # the photo and the recall curves change only with NMS

    def draw_background(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, curve_ax = ax
        show_image(image_ax, self.image)
        curve = result["recall_curve"]
        if len(curve):
            curve_ax.plot(range(1, len(curve) + 1), curve.numpy(), color="#1f77b4",
                          label=f"RPN, {self._nms_text(result)}")
        if result["reference_curve"] is not None and len(result["reference_curve"]):
            reference_curve = result["reference_curve"]
            curve_ax.plot(range(1, len(reference_curve) + 1), reference_curve.numpy(), color=REFERENCE_COLOR,
                          label=self.reference_name)
        curve_ax.set_xscale("log")
        reference_length = 0 if result["reference_curve"] is None else len(result["reference_curve"])
        longest = max(len(curve), reference_length, 2)
        curve_ax.set_xlim(1, longest)
        # Decades only, no minor ticks: tick labels are text, the slowest thing to rasterize.
        curve_ax.set_xticks([10**e for e in range(len(str(longest))) if 10**e <= longest], minor=False)
        curve_ax.set_xticks([], minor=True)
        curve_ax.set_ylim(-0.02, 1.02)
        curve_ax.set_yticks([0, 0.5, 1])
        curve_ax.tick_params(labelsize=LABEL_SIZE)
        curve_ax.set_xlabel("number of proposals", fontsize=LABEL_SIZE)
        curve_ax.set_ylabel(f"recall at IoU {result['iou_threshold']:.1f}", fontsize=LABEL_SIZE)
        if curve_ax.lines:
            curve_ax.legend(loc="lower right", fontsize=LABEL_SIZE)

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, curve_ax = ax
        outline_boxes(image_ax, result["proposals"], edgecolors=PROPOSAL_COLOR, linewidths=0.6, alpha=0.35)
        found = result["found"]
        best = result["best_index"][found]
        outline_boxes(image_ax, result["proposals"][best], edgecolors=BEST_COLOR, linewidths=1.2)
        colors = [FOUND_COLOR if hit else MISSED_COLOR for hit in found.tolist()]
        styles = ["-" if hit else "--" for hit in found.tolist()]
        outline_boxes(image_ax, self.gt_boxes, edgecolors=colors, linewidths=2.2, linestyles=styles)
        image_ax.set_title(f"{plural(result['num_proposals'], 'proposal')}, {result['num_found']} of "
                           f"{plural(result['num_gt'], 'object')} found", fontsize=TITLE_SIZE)
        curve_ax.axvline(max(result["requested"], 1), color="0.3", linestyle=":", linewidth=1.5)

    @staticmethod
    def _nms_text(result: dict[str, Any]) -> str:
        return "no NMS" if result["nms_threshold"] >= 1.0 else f"NMS at {result['nms_threshold']:.2f}"

    def summary(self, result: dict[str, Any]) -> str:
        threshold = result["nms_threshold"]
        nms_text = "without NMS" if threshold >= 1.0 else f"after NMS at {threshold:.2f}"
        text = (f"{plural(result['num_proposals'], 'proposal')} {nms_text} ({result['num_kept']} kept of "
                f"{plural(result['num_candidates'], 'candidate')}) · recall@{result['iou_threshold']:.1f} "
                f"{result['num_found']}/{result['num_gt']} = {result['recall']:.2f}")
        if result["reference_recall"] is not None:
            text += (f" · {self.reference_name} at {result['reference_count']}: "
                     f"{result['reference_recall']:.2f}")
        return text
