"""Explorer for selective search (notebook 04): the regions and boxes as grouping proceeds.

``selective_search_view`` is the pure function (tested on its own): one grouping hierarchy of
``course_lib.classical.selective_search`` seen after ``step`` merges, and the first proposals of
that hierarchy with their recall. ``SelectiveSearchExplorer`` computes a hierarchy once per
(colour space, similarity set, k), caches it, and only redraws when the sliders move.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.axes import Axes
from torch import Tensor

from course_lib._checks import check_boxes, check_choice, check_number
from course_lib.classical.selective_search import (
    Hierarchy,
    as_rgb_uint8,
    hierarchy_rank,
    rank_and_deduplicate,
    selective_search_hierarchy,
)
from course_lib.metrics.proposals import best_overlaps
from course_lib.plotting import show_image
from course_lib.widgets.base import WIDE_LABEL, Explorer, outline_boxes, plural

# The similarity sets of Table 5 of Uijlings et al. 2013, and each similarity alone.
SIMILARITY_SETS = ("CTSF", "TSF", "F", "S", "C", "T")
K_VALUES = (50, 100, 150, 300)  # Felzenszwalb-Huttenlocher thresholds of the paper's quality mode
VIEW_COLOR_SPACES = ("hsv", "lab", "rgb")
FOUND_COLOR, MISSED_COLOR, PROPOSAL_COLOR, MERGED_COLOR = "#2ca02c", "#d62728", "#ffdd00", "#ffdd00"


def region_palette(num_colors: int, seed: int = 0) -> np.ndarray:
    """``num_colors`` random but fixed RGB colours in [0.15, 0.95]: (num_colors, 3) float32."""
    return np.random.default_rng(seed).uniform(0.15, 0.95, (num_colors, 3)).astype(np.float32)


def ranked_proposals(hierarchy: Hierarchy, seed: int = 0) -> Tensor:
    """The boxes of every region of one hierarchy, ranked as in Section 6.1 of the paper, no duplicates.

    The paper's ranking (``selective_search(..., ranking="paper")``), which the explorer teaches;
    ``selective_search``'s default ranks by objectness instead (see its module docstring).

    Returns:
        ``Tensor[N, 4]`` float32 xyxy, best-ranked first.
    """
    check_number(seed, "seed", low=0, integer=True)
    rng = np.random.default_rng(seed)
    boxes = hierarchy.boxes.numpy().astype(np.float64)  # (2R-1, 4)
    return rank_and_deduplicate(boxes, hierarchy_rank(len(boxes), rng))


def selective_search_view(
    hierarchy: Hierarchy,
    step: int,
    num_proposals: int,
    gt_boxes: Tensor | None = None,
    iou_threshold: float = 0.5,
    seed: int = 0,
    proposals: Tensor | None = None,
) -> dict[str, Any]:
    """What the selective search figure shows after ``step`` merges of one hierarchy.

    Hierarchical grouping (Algorithm 1 of Uijlings et al. 2013) starts from R regions and merges
    the most similar neighbours R - 1 times; step ``s`` shows the R - s regions left. Proposals
    are the boxes of all 2R - 1 regions, ranked and deduplicated (:func:`ranked_proposals`).

    Args:
        hierarchy: from ``course_lib.classical.selective_search.selective_search_hierarchy``.
        step: merges done, clamped to ``[0, R - 1]``.
        num_proposals: how many of the ranked proposals to show, clamped to ``[0, N]``.
        gt_boxes (Tensor[G, 4], optional): ground truth; gives ``recall`` and ``found``.
        iou_threshold: a ground-truth box is found when a shown proposal has IoU >= this with it.
        seed: seed of the ranking (ignored when ``proposals`` is given).
        proposals (Tensor[N, 4], optional): the ranked proposals, if already computed (the
            explorer caches them); by default ``ranked_proposals(hierarchy, seed)``.

    Returns:
        dict with ``step`` (after clamping), ``num_steps`` (R - 1), ``num_initial`` (R),
        ``num_regions`` (R - step), ``labels`` (int64 [H, W], region ids in ``[0, R + step)``),
        ``region_image`` (float32 [H, W, 3], one colour per region), ``region_boxes``
        (Tensor[R - step, 4], the boxes of the regions left), ``merged`` (the pair of ids merged
        at this step, or None at step 0), ``merged_box`` (its union box as a list, or None),
        ``similarity`` (of that pair, or None), ``proposals`` (Tensor[n, 4], the first ``n``),
        ``num_proposals`` (n), ``total_proposals`` (N), ``best_overlaps`` (Tensor[G], best IoU
        of each ground-truth box with the shown proposals; empty without ground truth),
        ``found`` (bool Tensor[G]), ``recall`` (float, or None without ground truth),
        ``iou_threshold``.
    """
    if not isinstance(hierarchy, Hierarchy):
        raise TypeError(f"hierarchy: expected a Hierarchy, got {type(hierarchy).__name__}")
    check_number(step, "step", low=0, integer=True)
    check_number(num_proposals, "num_proposals", low=0, integer=True)
    check_number(iou_threshold, "iou_threshold", low=0.0, high=1.0)
    if proposals is None:
        proposals = ranked_proposals(hierarchy, seed)
    check_boxes(proposals, "proposals")
    if gt_boxes is not None:
        check_boxes(gt_boxes, "gt_boxes")
    num_initial, num_steps = hierarchy.num_initial, len(hierarchy.merges)
    step = min(step, num_steps)
    labels = hierarchy.labels_at(step)  # (H, W) ids in [0, R + step)
    alive = np.ones(num_initial + step, dtype=bool)
    alive[hierarchy.merges[:step].reshape(-1)] = False  # merged regions are gone
    region_ids = np.flatnonzero(alive)  # (R - step,)
    palette = region_palette(2 * num_initial - 1)
    merged = merged_box = similarity = None
    if step > 0:
        merged = tuple(int(index) for index in hierarchy.merges[step - 1])
        merged_box = hierarchy.boxes[num_initial + step - 1].tolist()
        similarity = float(hierarchy.similarities[step - 1])
    num_proposals = min(num_proposals, len(proposals))
    shown = proposals[:num_proposals]  # (n, 4)
    recall, overlaps = None, torch.zeros(0)
    if gt_boxes is not None:
        overlaps = best_overlaps(shown, gt_boxes, counts=(num_proposals,))[0]  # (G,)
        recall = float((overlaps >= iou_threshold).float().mean()) if len(gt_boxes) else 0.0
    return {
        "step": step,
        "num_steps": num_steps,
        "num_initial": num_initial,
        "num_regions": num_initial - step,
        "labels": labels,
        "region_image": palette[labels],  # (H, W, 3)
        "region_boxes": hierarchy.boxes[torch.from_numpy(region_ids)],  # (R - step, 4)
        "merged": merged,
        "merged_box": merged_box,
        "similarity": similarity,
        "proposals": shown,
        "num_proposals": num_proposals,
        "total_proposals": len(proposals),
        "best_overlaps": overlaps,
        "found": overlaps >= iou_threshold,
        "recall": recall,
        "iou_threshold": float(iou_threshold),
    }


class SelectiveSearchExplorer(Explorer):
    """Step through hierarchical grouping and choose how many proposals to draw.

    Left: the regions after ``step`` merges, one colour each, with their boxes (white) and the
    region made by this step's merge (yellow). Right: the photo with the first ``proposals``
    boxes of the hierarchy's ranked list (yellow) and, when ground truth is given, each object
    green if a drawn proposal covers it at IoU >= 0.5, red otherwise; the status gives the recall.

    Controls: ``step`` (merges done), ``num_proposals`` ("proposals"), ``similarity`` (a set of
    ``"CTSF"``: colour, texture, size, fill), ``k`` (Felzenszwalb's threshold) and
    ``color_space``. A hierarchy is computed the first time its (colour space, similarity, k) is
    chosen, then cached: moving a slider only redraws.

    Args:
        image: ``np.ndarray[H, W, 3]`` uint8 RGB (grey is repeated on three channels).
        gt_boxes (Tensor[G, 4], optional): ground-truth ``xyxy`` boxes of the objects.
        k: the initial threshold, one of ``K_VALUES``.
        similarity: the initial similarity set, one of ``SIMILARITY_SETS``.
        seed: seed of the proposal ranking.
    """

    def __init__(self, image: np.ndarray, gt_boxes: Tensor | None = None, k: int = 100,
                 similarity: str = "CTSF", seed: int = 0) -> None:
        self.image = as_rgb_uint8(image)
        if gt_boxes is not None:
            check_boxes(gt_boxes, "gt_boxes")
        check_choice(k, K_VALUES, "k")
        check_choice(similarity, SIMILARITY_SETS, "similarity")
        self.gt_boxes, self.seed = gt_boxes, check_number(seed, "seed", low=0, integer=True)
        self.cache: dict[tuple[str, str, int], tuple[Hierarchy, Tensor]] = {}

        def slider(name: str, value: int) -> widgets.IntSlider:
            # The range is set by sync_controls once the first hierarchy is known.
            return widgets.IntSlider(value=value, min=0, max=10**6, description=name,
                                     continuous_update=True, style=WIDE_LABEL)

        controls = {
            "step": slider("step", 0),
            "num_proposals": slider("proposals", 20),
            "similarity": widgets.Dropdown(options=SIMILARITY_SETS, value=similarity,
                                           description="similarity", style=WIDE_LABEL),
            "k": widgets.Dropdown(options=K_VALUES, value=k, description="k", style=WIDE_LABEL),
            "color_space": widgets.Dropdown(options=VIEW_COLOR_SPACES, value="hsv",
                                            description="colour space", style=WIDE_LABEL),
        }
        caption = (
            "<div style='font-size: 0.9em'>left: regions after <i>step</i> merges (white: their "
            f"boxes, <span style='color: #b8a000'>yellow</span>: the region this step made) &nbsp; "
            f"right: the first proposals (<span style='color: #b8a000'>yellow</span>), objects "
            f"<span style='color: {FOUND_COLOR}'>found</span> / <span style='color: {MISSED_COLOR}'>"
            "missed</span> at IoU ≥ 0.5 &nbsp; similarity: C colour, T texture, S size, F fill</div>"
        )
        height, width = self.image.shape[:2]
        # Two panels about 3.4 inches wide; the height fits the image's shape, plus room for titles.
        figure_height = min(max(3.4 * height / width + 0.8, 2.5), 6.0)
        # A photo: a 256-colour PNG is ~4x smaller and looks the same.
        super().__init__(controls, num_axes=2, figsize=(8.6, figure_height), dpi=100, caption=caption,
                         palette=True)

    def hierarchy(self, color_space: str, similarity: str, k: int) -> tuple[Hierarchy, Tensor]:
        """The hierarchy of one strategy and its ranked proposals, computed once and cached."""
        key = (color_space, similarity, int(k))
        if key not in self.cache:
            hierarchy = selective_search_hierarchy(self.image, color_space, k, similarity)
            self.cache[key] = (hierarchy, ranked_proposals(hierarchy, self.seed))
        return self.cache[key]

    def compute(self, step: int, num_proposals: int, similarity: str, k: int,
                color_space: str) -> dict[str, Any]:
        hierarchy, proposals = self.hierarchy(color_space, similarity, k)
        return selective_search_view(hierarchy, step, num_proposals, self.gt_boxes, proposals=proposals)

    def sync_controls(self, result: dict[str, Any]) -> bool:
        step, count = self.controls["step"], self.controls["num_proposals"]
        step_at_end, count_at_end = step.value >= step.max, count.value >= count.max > 0
        with step.hold_sync(), count.hold_sync():
            step.max = max(result["num_steps"], 1)  # an IntSlider needs max > min to show a track
            count.max = max(result["total_proposals"], 1)
            if step_at_end and step.max > 0 and step.value != 0:
                step.value = result["num_steps"]  # it showed the last merge: keep showing it
            if count_at_end:
                count.value = result["total_proposals"]
            step.value = min(step.value, result["num_steps"])  # one region: the track is 0..1
        return step.value != result["step"] or count.value != result["num_proposals"]

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        regions_ax, proposals_ax = ax
        show_image(regions_ax, result["region_image"])
        outline_boxes(regions_ax, result["region_boxes"], edgecolors="white", linewidths=0.8, alpha=0.7)
        if result["merged_box"] is not None:
            merged_box = torch.tensor([result["merged_box"]])
            outline_boxes(regions_ax, merged_box, edgecolors=MERGED_COLOR, linewidths=2.5)
        regions_ax.set_title(f"step {result['step']} of {result['num_steps']}: "
                             f"{plural(result['num_regions'], 'region')}", fontsize=11)
        show_image(proposals_ax, self.image)
        outline_boxes(proposals_ax, result["proposals"], edgecolors=PROPOSAL_COLOR, linewidths=1.0, alpha=0.8)
        if self.gt_boxes is not None and len(self.gt_boxes):
            colors = [FOUND_COLOR if found else MISSED_COLOR for found in result["found"].tolist()]
            outline_boxes(proposals_ax, self.gt_boxes, edgecolors=colors, linewidths=2.0, linestyles="--")
        title = f"first {result['num_proposals']} of {plural(result['total_proposals'], 'proposal')}"
        if result["recall"] is not None:
            title += f", recall {result['recall']:.2f}"
        proposals_ax.set_title(title, fontsize=11)

    def summary(self, result: dict[str, Any]) -> str:
        text = f"step {result['step']} of {result['num_steps']}: {plural(result['num_regions'], 'region')}"
        if result["merged"] is not None:
            a, b = result["merged"]
            text += f" (merged {a} + {b}, similarity {result['similarity']:.2f})"
        text += f" · {result['num_proposals']} of {plural(result['total_proposals'], 'proposal')}"
        if result["recall"] is not None:
            found = int(result["found"].sum())
            text += (f" · recall@IoU≥{result['iou_threshold']:.1f} = {result['recall']:.2f} "
                     f"({found} of {plural(len(result['found']), 'object')})")
        return text
