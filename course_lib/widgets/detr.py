"""Explorers for DETR (Carion et al. 2020): the Hungarian matching, and where each query looks.

``MatchingExplorer``: training matches each object to the query of least total cost, a class term
plus the L1 distance plus ``-GIoU`` of the boxes (Eq. 1): the weights decide which prediction claims
which object. ``CrossAttentionExplorer``: a decoder query's cross-attention over the encoder's tokens,
which in a trained DETR gathers on its object's extremities, the edges that fix the box (Fig. 6).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from torch import Tensor

from course_lib._checks import check_boxes, check_number, check_pair, check_tensor
from course_lib.boxes import box_convert
from course_lib.data import CLASSES
from course_lib.matching import linear_sum_assignment
from course_lib.models.detr import DETR, WEIGHTS, matching_cost, matching_cost_parts
from course_lib.plotting import class_color, draw_boxes, show_image
from course_lib.widgets.base import WIDE_LABEL, Explorer, plural
from course_lib.widgets.yolo import check_scenes

TITLE_SIZE = 12  # points, at 100 dpi: readable on a projector
TERMS, NAMES = ("class", "l1", "giou"), ("class", "L1", "GIoU")  # the matching cost's terms (``WEIGHTS``)


def _check_cxcywh(boxes: Any, name: str, count: int) -> Tensor:
    """A float Tensor[count, 4] of ``cxcywh`` boxes with sides >= 0, detached, on the CPU."""
    check_boxes(boxes, name)
    if len(boxes) != count or (boxes[:, 2:] < 0).any():
        raise ValueError(f"{name}: expected a Tensor[{count}, 4] of cxcywh boxes with sides >= 0, got shape "
                         f"{tuple(boxes.shape)}" + (" and a negative side" if len(boxes) == count else ""))
    return boxes.detach().float().cpu()


def _check_logits(logits: Any, name: str = "logits", count: int | None = None) -> Tensor:
    """A float Tensor[Q, K] (Q = ``count`` when given), detached, on the CPU."""
    check_tensor(logits, name)
    if logits.dim() != 2 or not logits.is_floating_point() or count not in (None, len(logits)):
        raise ValueError(f"{name}: expected a float Tensor[{count or 'Q'}, K], got {tuple(logits.shape)}, "
                         f"{logits.dtype}")
    return logits.detach().float().cpu()


def matching_view(logits: Tensor, boxes: Tensor, labels: Tensor, target_boxes: Tensor,
                  weights: dict[str, float], num_shown: int = 10) -> dict[str, Any]:
    """DETR's matching of one image under the given weights (Eq. 1 of Carion et al. 2020).

    ``cost = weights["class"] * class + weights["l1"] * L1 + weights["giou"] * (-GIoU)``
    (:func:`~course_lib.models.detr.matching_cost`), matched by least total cost
    (:func:`course_lib.matching.linear_sum_assignment`), one query per object.

    Args:
        logits: Tensor[Q, K] class logits; boxes: Tensor[Q, 4] normalized ``cxcywh``.
        labels: int Tensor[M], classes in ``0..K-1``; target_boxes: Tensor[M, 4] normalized ``cxcywh``.
        weights: ``{"class", "l1", "giou"}``, each >= 0; num_shown: the cost matrix's rows to show.

    Returns:
        dict: ``cost`` Tensor[Q, M] and its unweighted ``parts`` (``class``, ``l1``, ``giou``); the matched
        pairs ``rows``, ``cols`` (int64 Tensor[min(Q, M)], ``rows`` ascending), their ``total`` cost and its
        weighted ``matched_terms``; ``shown``, the matched queries in object order, then the others cheapest
        first; ``weights``.
    """
    logits = _check_logits(logits)
    Q, K = logits.shape  # queries, classes
    boxes = _check_cxcywh(boxes, "boxes", Q)
    check_tensor(labels, "labels")
    if labels.dim() != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels: expected an int Tensor[M], got {tuple(labels.shape)}, {labels.dtype}")
    if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < K):
        raise ValueError(f"labels: expected classes in 0..{K - 1}, got {labels.tolist()}")
    target_boxes = _check_cxcywh(target_boxes, "target_boxes", len(labels))
    if not isinstance(weights, dict) or set(weights) != set(TERMS):
        raise ValueError(f"weights: expected a dict with keys 'class', 'l1' and 'giou', got {weights!r:.60}")
    weights = {term: float(check_number(weights[term], f"weights[{term!r}]", 0.0)) for term in TERMS}
    check_number(num_shown, "num_shown", 0, integer=True)
    arguments = (logits, boxes, labels.cpu().long(), target_boxes)
    cost = matching_cost(*arguments, weights=weights)  # (Q, M)
    rows, cols = linear_sum_assignment(cost)  # (P,) each, P = min(Q, M)
    matched = rows[torch.argsort(cols)]  # (P,) the matched queries in object order
    cheapest = cost.amin(dim=1) if cost.shape[1] else torch.zeros(Q)  # (Q,) each query's cheapest object
    rest = torch.argsort(cheapest.index_fill(0, matched, torch.inf), stable=True)[: Q - len(matched)]
    parts = matching_cost_parts(*arguments)
    return {"cost": cost, "parts": parts, "rows": rows, "cols": cols, "total": float(cost[rows, cols].sum()),
            "matched_terms": {term: weights[term] * float(parts[term][rows, cols].sum()) for term in TERMS},
            "shown": torch.cat([matched, rest[: max(num_shown - len(matched), 0)]]), "weights": weights}


def attention_view(attention: Tensor, logits: Tensor, boxes: Tensor, image_size: tuple[int, int], rank: int,
                   order_logits: Tensor | None = None, stride: int = 8) -> dict[str, Any]:
    """One decoder query's cross-attention map, its box, best class and score.

    Queries are ranked by their best sigmoid score in ``order_logits`` (default ``logits``), ties by index.

    Args:
        attention: Tensor[Q, h * w], one layer's cross-attention (mean over heads), ``h = H // stride``.
        logits: Tensor[Q, K], that layer's class logits; boxes: Tensor[Q, 4], its normalized ``cxcywh``.
        image_size: the padded input's ``(H, W)`` (``DETR.encode(images)["size"]``); rank: in ``0..Q-1``.
        order_logits: Tensor[Q, K] that rank the queries (the last layer's: a query keeps its rank).
        stride: pixels per token.

    Returns:
        dict: ``query``, ``rank``, ``map`` (Tensor[h, w], sums to 1), ``box`` (Tensor[4] ``xyxy`` pixels),
        ``label`` (1..K), ``score``, ``inside`` (the share of attention on tokens centred in the box),
        ``order`` (int64 Tensor[Q], the query of each rank), ``image_size``.
    """
    logits = _check_logits(logits)
    boxes = _check_cxcywh(boxes, "boxes", len(logits))
    check_tensor(attention, "attention")
    height, width = check_pair(image_size, "image_size", low=1)
    check_number(stride, "stride", 1, integer=True)
    Q, h, w = len(logits), height // stride, width // stride  # queries, token map height and width
    if attention.shape != (Q, h * w):
        raise ValueError(f"attention: expected a Tensor[{Q}, {h * w}] (queries, {h} x {w} tokens), got shape "
                         f"{tuple(attention.shape)}")
    order_logits = logits if order_logits is None else _check_logits(order_logits, "order_logits", Q)
    check_number(rank, "rank", 0, Q - 1, integer=True)
    order = torch.argsort(torch.sigmoid(order_logits).amax(dim=1), descending=True, stable=True)  # (Q,)
    best_scores, best_classes = torch.sigmoid(logits).max(dim=1)  # (Q,) each
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    corners = box_convert(boxes, "cxcywh", "xyxy") * scale  # (Q, 4) pixels
    query = int(order[rank])
    attention_map = attention[query].detach().float().cpu().view(h, w)  # (h, w)
    x1, y1, x2, y2 = corners[query].tolist()
    centre_y, centre_x = (torch.arange(h) + 0.5) * stride, (torch.arange(w) + 0.5) * stride  # (h,), (w,)
    inside = ((centre_y >= y1) & (centre_y <= y2))[:, None] & ((centre_x >= x1) & (centre_x <= x2))  # (h, w)
    return {"query": query, "rank": rank, "map": attention_map, "box": corners[query], "order": order,
            "label": int(best_classes[query]) + 1, "score": float(best_scores[query]),
            "inside": float(attention_map[inside].sum()), "image_size": (height, width)}


def _check_model(model: Any, layer: Any) -> int:
    """Check the model and a decoder layer index (negative counts from the end); the index, >= 0."""
    if not isinstance(model, DETR):
        raise TypeError(f"model: expected a course_lib.models.detr.DETR, got {type(model).__name__}")
    if model.training:
        raise ValueError("model: expected a model in eval mode (call model.eval()), got training mode")
    num_layers = len(model.decoder)
    return check_number(layer, "layer", -num_layers, num_layers - 1, integer=True) % num_layers


def _slider(description: str, value: float, low: float, high: float, step: float = 1) -> widgets.Widget:
    kind = widgets.IntSlider if isinstance(step, int) else widgets.FloatSlider  # an int step: an int slider
    return kind(value=value, min=low, max=high, step=step, description=description, style=WIDE_LABEL)


class _DETRExplorer(Explorer):
    """What both explorers share: a scene slider, the per-scene cache of the model's output, the image."""

    def __init__(self, model: DETR, images: list[Tensor], targets: list[dict] | None, controls: dict,
                 caption: str) -> None:
        check_scenes(images, targets)
        self.model, self.images, self.targets = model, list(images), targets
        self.class_names = [*CLASSES, *map(str, range(len(CLASSES), model.num_classes + 1))]  # then numbers
        self._outputs: dict[int, tuple[list[dict[str, Tensor]], tuple[int, int]]] = {}
        super().__init__({"scene": _slider("scene", 0, 0, len(images) - 1), **controls}, 2, (10.0, 4.8),
                         palette=True, caption=f"<div style='font-size: 90%'>{caption}</div>",
                         margins={"left": 0.01, "right": 0.98, "bottom": 0.13, "top": 0.91, "wspace": 0.12})

    def scene_output(self, index: int) -> tuple[list[dict[str, Tensor]], tuple[int, int]]:
        """Scene ``index``'s ``DETR.decode`` per layer (batch dropped) and padded ``(H, W)``; run once."""
        if index not in self._outputs:
            with torch.no_grad():
                encoded = self.model.encode([self.images[index]])
                decoded = self.model.decode(encoded)  # per layer, Tensor[1, ...] each
            layers = [{key: value[0].cpu() for key, value in out.items()} for out in decoded]
            self._outputs[index] = layers, encoded["size"]
        return self._outputs[index]

    def show_scene(self, ax: Axes, scene: int) -> None:
        """The image, and its objects dashed in their class colour when there are targets."""
        show_image(ax, self.images[scene])
        if self.targets is not None:
            colors = [class_color(k) for k in self.targets[scene]["labels"].tolist()]
            draw_boxes(ax, self.targets[scene]["boxes"], color=colors, linestyle="--", linewidth=1.5)


class MatchingExplorer(_DETRExplorer):
    """Move the three weights of DETR's matching cost and watch which query claims which object.

    Left: the objects (dashed) and the matched queries' boxes (solid, the colour of the object they
    claim, tagged with the query and its score for that class), a dotted line to their object. Right:
    the cost matrix (dark = cheap): the matched queries in object order (the outlined diagonal), then
    the others, cheapest first, up to "queries shown" (30 rows are unreadable). The model runs once per
    scene (cached). ``targets``: ``{"boxes" xyxy pixels, "labels" 1..K}``; ``layer``: the one matched.
    """

    def __init__(self, model: DETR, images: list[Tensor], targets: list[dict], layer: int = -1) -> None:
        self.layer = _check_model(model, layer)
        controls = {f"{term}_weight": _slider(f"{name} weight", WEIGHTS[term], 0.0, 10.0, 0.5)
                    for term, name in zip(TERMS, NAMES, strict=True)}
        controls["num_shown"] = _slider("queries shown", min(10, model.num_queries), 1, model.num_queries)
        super().__init__(model, images, targets, controls, "cost = class weight × focal class cost + L1 "
                         "weight × L1 + GIoU weight × (−GIoU), boxes as (cx, cy, w, h); outlined: a match")

    def compute(self, scene: int, class_weight: float, l1_weight: float, giou_weight: float,
                num_shown: int) -> dict[str, Any]:
        layers, (height, width) = self.scene_output(scene)
        output, target = layers[self.layer], self.targets[scene]
        scale = torch.tensor([width, height, width, height], dtype=torch.float32)
        target_boxes = box_convert(target["boxes"].float().cpu(), "xyxy", "cxcywh") / scale  # (M, 4)
        labels = target["labels"].cpu().long() - 1  # (M,) in 0..K-1
        weights = dict(zip(TERMS, (class_weight, l1_weight, giou_weight), strict=True))
        view = matching_view(output["logits"], output["boxes"], labels, target_boxes, weights, num_shown)
        scores = torch.sigmoid(output["logits"][view["rows"], labels[view["cols"]]])  # (P,)
        boxes = box_convert(output["boxes"][view["rows"]], "cxcywh", "xyxy") * scale  # (P, 4) pixels
        return {**view, "scene": scene, "labels": labels, "matched_boxes": boxes, "matched_scores": scores}

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, cost_ax = ax
        self.show_scene(image_ax, result["scene"])
        rows, cols = result["rows"].tolist(), result["cols"].tolist()
        colors = [class_color(k + 1) for k in result["labels"].tolist()]
        draw_boxes(image_ax, result["matched_boxes"], labels=list(range(len(rows))), linewidth=2.5,
                   class_names=[f"q{q}" for q in rows], scores=result["matched_scores"].tolist(),
                   color=[colors[j] for j in cols])
        objects = self.targets[result["scene"]]["boxes"].float()[cols]  # (P, 4) pixels, as the matched boxes
        for box, obj, color in zip(result["matched_boxes"], objects, [colors[j] for j in cols], strict=True):
            ends = torch.stack([box[:2] + box[2:], obj[:2] + obj[2:]]) / 2  # (2, 2): the two centres
            image_ax.plot(*ends.T.tolist(), ":", color=color)
        num_objects, weights = len(colors), result["weights"]
        image_ax.set_title(f"scene {result['scene']} · {plural(num_objects, 'object')} · total cost "
                           f"{result['total']:.2f}", fontsize=TITLE_SIZE)
        cost_ax.set_title(f"{weights['class']:g}·class + {weights['l1']:g}·L1 + {weights['giou']:g}·(−GIoU)",
                          fontsize=TITLE_SIZE)
        cost_ax.set_axis_on() if num_objects else cost_ax.set_axis_off()
        if not num_objects:
            cost_ax.text(0.5, 0.5, "no object to match", ha="center", size=12, transform=cost_ax.transAxes)
            return
        shown = result["shown"].tolist()
        cost_ax.imshow(result["cost"][shown].numpy(), cmap="viridis", aspect="auto", interpolation="nearest")
        names = [f"{j}: {self.class_names[k + 1]}" for j, k in enumerate(result["labels"].tolist())]
        cost_ax.set_xticks(range(num_objects), names, fontsize=10)
        cost_ax.set_yticks(range(len(shown)), [f"q{q}" for q in shown], fontsize=9 if len(shown) <= 15 else 7)
        cost_ax.set_xlabel("object", fontsize=11), cost_ax.set_ylabel("query", fontsize=11)
        for query, obj in zip(rows, cols, strict=True):
            row = shown.index(query)
            cost_ax.add_patch(Rectangle((obj - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", lw=2.5))
            cost_ax.text(obj, row, f"{result['cost'][query, obj]:.2f}", ha="center", va="center", color="w")

    def summary(self, result: dict[str, Any]) -> str:
        pairs = sorted(zip(result["cols"].tolist(), result["rows"].tolist(), strict=True))
        matching = ", ".join(f"object {obj} ← q{query}" for obj, query in pairs) or "no object to match"
        terms = [f"{name} {result['matched_terms'][t]:.2f}" for t, name in zip(TERMS, NAMES, strict=True)]
        return f"scene {result['scene']}: {matching} · total {result['total']:.2f} = {' + '.join(terms)}"


class CrossAttentionExplorer(_DETRExplorer):
    """Pick a scene, a decoder layer and a query; see where in the image the query looks.

    Left: the query's cross-attention (mean over heads, upsampled bilinearly, opaque where highest)
    and its box, best class and score. Right: the same weights as they are, one per stride-8 token.
    Queries are ranked by the last layer's best score (0 = the most confident), so a query keeps its
    rank across layers. ``layer``: the one shown first (-1: the last).
    """

    def __init__(self, model: DETR, images: list[Tensor], layer: int = -1) -> None:
        controls = {"layer": _slider("decoder layer", _check_model(model, layer), 0, len(model.decoder) - 1),
                    "rank": _slider("query (0 = most confident)", 0, 0, model.num_queries - 1)}
        super().__init__(model, images, None, controls, "the query's cross-attention over the encoder's "
                         "tokens, bright = attended most (relative to the map's maximum), and its box")

    def compute(self, scene: int, layer: int, rank: int) -> dict[str, Any]:
        layers, image_size = self.scene_output(scene)
        output = layers[layer]
        view = attention_view(output["attention"], output["logits"], output["boxes"], image_size, rank,
                              layers[-1]["logits"], self.model.stride)
        return {**view, "scene": scene, "layer": layer}

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        overlay_ax, tokens_ax = ax
        self.show_scene(overlay_ax, result["scene"])
        height, width = extent = result["image_size"]  # padded: the token map covers it
        upsampled = F.interpolate(result["map"][None, None], size=extent, mode="bilinear")[0, 0]  # (H, W)
        relative = (upsampled / upsampled.max().clamp_min(1e-12)).clamp(0, 1).numpy()  # in [0, 1]
        overlay_ax.imshow(relative, extent=(0, width, height, 0), cmap="inferno", vmin=0, vmax=1,
                          alpha=0.85 * relative, interpolation="nearest")
        tokens_ax.imshow(result["map"].numpy(), extent=(0, width, height, 0), cmap="inferno")  # one per token
        tokens_ax.set_axis_off()
        for axes in ax:
            draw_boxes(axes, result["box"][None], labels=[result["label"]], scores=[result["score"]],
                       class_names=self.class_names, linewidth=3)
            axes.set_xlim(0, self.images[result["scene"]].shape[-1])  # the padded map cropped to the image
            axes.set_ylim(self.images[result["scene"]].shape[-2], 0)
        overlay_ax.set_title(f"layer {result['layer']} · query {result['query']} · {result['inside']:.0%} in "
                             "its box", fontsize=TITLE_SIZE)
        (h, w), most = result["map"].shape, float(result["map"].max())
        tokens_ax.set_title(f"its {h} × {w} token weights, max {most:.3f}", fontsize=TITLE_SIZE)

    def summary(self, result: dict[str, Any]) -> str:
        return (f"scene {result['scene']}, layer {result['layer']}: query {result['query']} (rank "
                f"{result['rank']}) predicts {self.class_names[result['label']]} {result['score']:.2f}; "
                f"{result['inside']:.0%} of its cross-attention falls on the tokens inside its box")
