"""Explorer for R-CNN: what the CNN sees of one proposal, how the SVMs score it, where regression moves it.

R-CNN (Girshick et al. 2014, "Rich feature hierarchies") cuts every proposal out of the image with
some context, warps it to a square (Sec. 2.1, Appendix A), runs the CNN on it, scores the feature
with one linear SVM per class (Sec. 2.3) and refines the box with a class-specific regressor
(Appendix C). ``rcnn_proposal_view`` follows one proposal through those steps of
``course_lib.models.RCNN``; ``RCNNExplorer`` draws it and lets the student walk through the
proposals of one scene, best-scoring first.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.axes import Axes
from torch import Tensor

from course_lib._checks import check_boxes, check_choice, check_number, check_tensor
from course_lib.boxes import box_iou, clip_boxes_to_image
from course_lib.data import CLASSES, NUM_CLASSES
from course_lib.models.rcnn import RCNN
from course_lib.plotting import class_color, draw_boxes, show_image
from course_lib.widgets.base import WIDE_LABEL, Explorer

ORDERS = ("best SVM score", "index")
PROPOSAL_COLOR, CONTEXT_COLOR, GT_COLOR = "#ffd700", "#d0d0d0", "white"


def _check_model_and_image(model: Any, image: Any) -> None:
    if not isinstance(model, RCNN):
        raise TypeError(f"model: expected a course_lib.models.RCNN, got {type(model).__name__}")
    if model.training:
        raise ValueError("model: expected a model in eval mode (call model.eval()), got training mode")
    check_tensor(image, "image")
    if image.dim() != 3 or image.shape[0] != 3 or not image.is_floating_point():
        raise ValueError(f"image: expected a float Tensor[3, H, W], got shape {tuple(image.shape)} "
                         f"and dtype {image.dtype}")


def _check_inputs(model: Any, image: Any, proposals: Any) -> None:
    _check_model_and_image(model, image)
    check_boxes(proposals, "proposals", allow_degenerate=False)
    if len(proposals) == 0:
        raise ValueError("proposals: expected at least one box, got 0")


def class_names(model: RCNN) -> tuple[str, ...]:
    """The names of the model's K classes: ``CLASSES[1:]`` for the course's shapes, else ``class k``."""
    if model.num_classes == NUM_CLASSES:
        return tuple(CLASSES[1:])
    return tuple(f"class {k}" for k in range(1, model.num_classes + 1))


def rcnn_scores(model: RCNN, image: Tensor, proposals: Tensor) -> tuple[Tensor, Tensor]:
    """Steps 2 to 4 of R-CNN for every proposal of one image: what an explorer computes once per scene.

    Args:
        model: an ``RCNN`` in eval mode.
        image (Tensor[3, H, W]): floats in [0, 1].
        proposals (Tensor[N, 4]): ``xyxy`` proposals in pixels, at least one.

    Returns:
        ``(scores Tensor[N, K], deltas Tensor[N, 4 K])``: ``model.classify(model.features(model.warp(
        image, proposals)))``, without gradients.
    """
    _check_inputs(model, image, proposals)
    with torch.no_grad():
        return model.classify(model.features(model.warp(image, proposals.float())))


def rcnn_proposal_view(
    model: RCNN,
    image: Tensor,
    proposals: Tensor,
    index: int,
    scores: Tensor | None = None,
    deltas: Tensor | None = None,
    gt_boxes: Tensor | None = None,
    crop: Tensor | None = None,
) -> dict[str, Any]:
    """One proposal through R-CNN: its warped crop, its K SVM scores, its box before and after regression.

    The regression is the best-scoring class's (Appendix C): the proposal decoded with its deltas by
    ``model.box_coder`` and clipped to the image, as ``RCNN.detect`` does before NMS.

    Args:
        model: an ``RCNN`` in eval mode.
        image (Tensor[3, H, W]): floats in [0, 1].
        proposals (Tensor[N, 4]): ``xyxy`` proposals in pixels.
        index: the proposal shown, in ``[0, N)``.
        scores (Tensor[N, K], optional), deltas (Tensor[N, 4 K], optional): ``rcnn_scores(model,
            image, proposals)`` if already computed (the explorer computes them once per scene);
            otherwise only this proposal goes through the CNN. Give both or neither.
        gt_boxes (Tensor[G, 4], optional): the scene's objects, to measure the regression.
        crop (Tensor[3, S, S], optional): ``model.warp(image, proposals[index:index + 1])[0]`` if
            already computed (the explorer keeps every crop of its scene); otherwise warped here.

    Returns:
        dict with ``index``, ``num_proposals`` (N), ``proposal`` (Tensor[4]), ``context_box``
        (Tensor[4], the region the crop covers), ``crop`` (Tensor[3, S, S], what the CNN sees),
        ``crop_proposal`` (Tensor[4], the proposal in crop pixels), ``scores`` (Tensor[K]),
        ``class_names`` (K names), ``best_label`` (in 1..K), ``best_score``, ``deltas`` (Tensor[4],
        the best class's ``(dx, dy, dw, dh)``), ``refined_box`` (Tensor[4]), and, with ``gt_boxes``
        (else None): ``object_index`` (the object the proposal overlaps most), ``iou_before`` and
        ``iou_after`` (IoU of the proposal and of the refined box with that object).
    """
    _check_inputs(model, image, proposals)
    num_proposals, K = len(proposals), model.num_classes
    check_number(index, "index", 0, num_proposals - 1, integer=True)
    if (scores is None) != (deltas is None):
        raise ValueError("scores, deltas: expected both (from rcnn_scores) or neither")
    if scores is not None:
        check_tensor(scores, "scores")
        check_tensor(deltas, "deltas")
        if scores.shape != (num_proposals, K) or deltas.shape != (num_proposals, 4 * K):
            raise ValueError(f"scores, deltas: expected shapes ({num_proposals}, {K}) and ({num_proposals}, "
                             f"{4 * K}), got {tuple(scores.shape)} and {tuple(deltas.shape)}")
    if gt_boxes is not None:
        check_boxes(gt_boxes, "gt_boxes")
    size = model.warp_size
    if crop is not None:
        check_tensor(crop, "crop")
        if crop.shape != (3, size, size):
            raise ValueError(f"crop: expected a Tensor[3, {size}, {size}], got shape {tuple(crop.shape)}")
    proposal = proposals[index].float()  # (4,)
    with torch.no_grad():
        crop = model.warp(image, proposal[None]) if crop is None else crop[None]  # (1, 3, S, S)
        if scores is None:
            scores, deltas = model.classify(model.features(crop))  # (1, K), (1, 4K)
        else:
            scores, deltas = scores[index : index + 1], deltas[index : index + 1]  # (1, K), (1, 4K)
        decoded = model.box_coder.decode(deltas, proposal[None]).view(K, 4)  # (K, 4)
    best_label = int(scores[0].argmax()) + 1
    refined = clip_boxes_to_image(decoded[best_label - 1 : best_label], tuple(image.shape[1:]))[0]  # (4,)
    margin = model.context
    result = {
        "index": index,
        "num_proposals": num_proposals,
        "proposal": proposal,
        "context_box": model.context_boxes(proposal[None])[0],
        "crop": crop[0],
        "crop_proposal": torch.tensor([margin, margin, size - margin, size - margin], dtype=torch.float32),
        "scores": scores[0].detach(),
        "class_names": class_names(model),
        "best_label": best_label,
        "best_score": float(scores[0, best_label - 1]),
        "deltas": deltas[0, 4 * (best_label - 1) : 4 * best_label].detach(),
        "refined_box": refined.detach(),
        "object_index": None,
        "iou_before": None,
        "iou_after": None,
    }
    if gt_boxes is not None and len(gt_boxes):
        overlaps = box_iou(torch.stack([proposal, refined.float()]), gt_boxes.float())  # (2, G)
        best = int(overlaps[0].argmax())
        result.update(object_index=best, iou_before=float(overlaps[0, best]),
                      iou_after=float(overlaps[1, best]))
    return result


class RCNNExplorer(Explorer):
    """Walk through the proposals of one scene and see what R-CNN makes of each.

    Left: the scene, the proposal (yellow), the region its crop covers (grey, dotted), the box after
    the best class's regression (in that class's colour, with its SVM score) and the objects (white,
    dashed) when given. Middle: the warped crop the CNN sees, the proposal's part of it dashed.
    Right: the K SVM scores of the proposal (one per class; above 0: the SVM says "this class").

    Controls: ``order`` ("best SVM score": the slider goes from the proposal with the highest score
    to the lowest; "index": in the proposer's order) and ``proposal`` (the position in that order;
    changing the order keeps the proposal shown). The CNN runs on all proposals once, when the
    explorer is made; moving the slider only warps one crop and redraws.

    Args:
        model: an ``RCNN`` in eval mode (``zoo.load("rcnn")``).
        image (Tensor[3, H, W]): the scene, floats in [0, 1].
        proposals (Tensor[N, 4], optional): its proposals; by default ``model.propose(image)``.
        gt_boxes (Tensor[G, 4], optional): its objects, to measure what the regression gains.
        order: the initial order, one of ``ORDERS``.
    """

    def __init__(self, model: RCNN, image: Tensor, proposals: Tensor | None = None,
                 gt_boxes: Tensor | None = None, order: str = "best SVM score") -> None:
        if proposals is None:
            _check_model_and_image(model, image)
            proposals = model.propose(image)
        check_choice(order, ORDERS, "order")
        if gt_boxes is not None:
            check_boxes(gt_boxes, "gt_boxes")
        self.model, self.image, self.proposals, self.gt_boxes = model, image, proposals.float(), gt_boxes
        _check_inputs(model, image, self.proposals)
        with torch.no_grad():  # rcnn_scores, keeping the crops: warping one again costs a redraw's time
            crops = model.warp(image, self.proposals)  # (N, 3, S, S)
            self.scores, self.deltas = model.classify(model.features(crops))  # (N, K), (N, 4K)
        # As bytes, a quarter of the memory: the explorer only shows them.
        self.crops = (crops.clamp(0, 1) * 255).round().to(torch.uint8)  # (N, 3, S, S)
        best = self.scores.max(dim=1).values  # (N,)
        self.ranking = torch.sort(best, descending=True, stable=True).indices  # (N,) best first
        self.rank = torch.empty_like(self.ranking)
        self.rank[self.ranking] = torch.arange(len(self.ranking))  # (N,) position of each proposal
        low, high = float(self.scores.min()), float(self.scores.max())
        margin = 0.08 * max(high - low, 1e-3)
        self.score_limits = (min(low, 0.0) - margin, max(high, 0.0) + margin)
        self._shown: tuple[str, int] | None = None  # (order, index) of the last drawn proposal
        controls = {
            "order": widgets.Dropdown(options=ORDERS, value=order, description="order", style=WIDE_LABEL),
            "proposal": widgets.IntSlider(value=0, min=0, max=len(self.proposals) - 1, description="proposal",
                                          continuous_update=True, style=WIDE_LABEL),
        }
        caption = (
            f"<div style='font-size: 0.9em'><span style='color: #b8a000'>▭ proposal</span> &nbsp; "
            f"<span style='color: #909090'>▭ region the crop covers ({model.context} px of context in "
            f"{model.warp_size})</span> &nbsp; ▭ after box regression (best class's colour) &nbsp; "
            "- - objects</div>"
        )
        # A photo: a 256-colour PNG is several times smaller.
        super().__init__(controls, num_axes=3, figsize=(11.0, 3.9), dpi=100, caption=caption, palette=True,
                         margins={"left": 0.02, "right": 0.98, "bottom": 0.12, "wspace": 0.28})

    def index(self, order: str, position: int) -> int:
        """The proposal at ``position`` in ``order``."""
        return int(self.ranking[position]) if order == ORDERS[0] else position

    def compute(self, order: str, proposal: int) -> dict[str, Any]:
        index = self.index(order, proposal)
        view = rcnn_proposal_view(self.model, self.image, self.proposals, index, self.scores, self.deltas,
                                  self.gt_boxes, crop=self.crops[index].float() / 255)
        return {**view, "order": order, "position": proposal, "rank": int(self.rank[index])}

    def sync_controls(self, result: dict[str, Any]) -> bool:
        """When the order changes, move the slider so that the same proposal stays shown."""
        previous, self._shown = self._shown, (result["order"], result["index"])
        if previous is None or previous[0] == result["order"]:
            return False
        index = previous[1]
        position = int(self.rank[index]) if result["order"] == ORDERS[0] else index
        self.controls["proposal"].value = position
        self._shown = (result["order"], index)
        return position != result["position"]

    def background_key(self, result: dict[str, Any]) -> Any:
        return "scene"  # the scene, its objects and the score axes never change

    def draw_background(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        scene_ax, crop_ax, score_ax = ax
        names = result["class_names"]
        show_image(scene_ax, self.image)
        if self.gt_boxes is not None and len(self.gt_boxes):
            draw_boxes(scene_ax, self.gt_boxes, color=GT_COLOR, linewidth=1, linestyle="--", alpha=0.8)
        height, width = self.image.shape[1:]
        scene_ax.set_xlim(0, width)
        scene_ax.set_ylim(height, 0)
        size = self.model.warp_size
        crop_ax.set_xlim(0, size)
        crop_ax.set_ylim(size, 0)
        crop_ax.set_aspect("equal")
        crop_ax.set_axis_off()
        positions = np.arange(len(names))
        score_ax.axhline(0.0, color="0.3", linewidth=0.8)
        score_ax.set_xticks(positions, names, fontsize=9)
        score_ax.set_xlim(-0.6, len(names) - 0.4)
        score_ax.set_ylim(*self.score_limits)
        score_ax.set_ylabel("SVM score", fontsize=9)
        score_ax.tick_params(axis="y", labelsize=8)

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        scene_ax, crop_ax, score_ax = ax
        label, names = result["best_label"], result["class_names"]
        draw_boxes(scene_ax, result["context_box"][None], color=CONTEXT_COLOR, linewidth=1, linestyle=":")
        # The refined box first and wider, so that the proposal stays visible on top where they overlap.
        draw_boxes(scene_ax, result["refined_box"][None], labels=[label], scores=[result["best_score"]],
                   class_names=("background", *names), linewidth=3)
        draw_boxes(scene_ax, result["proposal"][None], color=PROPOSAL_COLOR, linewidth=1.5)
        scene_ax.set_title(f"proposal {result['index']}: before and after box regression", fontsize=10)

        show_image(crop_ax, result["crop"].clamp(0, 1))
        draw_boxes(crop_ax, result["crop_proposal"][None], color=PROPOSAL_COLOR, linewidth=1.5,
                   linestyle="--")
        size = self.model.warp_size
        crop_ax.set_title(f"warped crop {size}x{size} ({self.model.context} px context)", fontsize=10)

        scores = result["scores"].numpy()
        colors = [class_color(k) for k in range(1, len(scores) + 1)]
        bars = score_ax.bar(np.arange(len(scores)), scores, color=colors, width=0.7)
        bars[label - 1].set_edgecolor("black")
        bars[label - 1].set_linewidth(2)
        score_ax.set_title(f"SVM scores ({names[label - 1]} is best)", fontsize=10)

    def summary(self, result: dict[str, Any]) -> str:
        dx, dy, dw, dh = result["deltas"].tolist()
        name = result["class_names"][result["best_label"] - 1]
        text = (f"proposal {result['index']} of {result['num_proposals']}, #{result['rank'] + 1} by best SVM "
                f"score · best class {name} ({result['best_score']:+.2f}) · its regression dx {dx:+.2f}, "
                f"dy {dy:+.2f}, dw {dw:+.2f}, dh {dh:+.2f}")
        if result["iou_before"] is not None:
            text += (f" · IoU with object {result['object_index']}: {result['iou_before']:.2f} -> "
                     f"{result['iou_after']:.2f}")
        return text
