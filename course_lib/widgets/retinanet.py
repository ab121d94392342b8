"""Explorer for RetinaNet's feature pyramid (chapter 12): which level of the FPN learns which object?

RetinaNet puts anchors on every level of a feature pyramid, small ones on the fine levels and
large ones on the coarse levels, and matches them to the objects by IoU (>= 0.5 object, < 0.4
background; Lin et al. 2017, "Focal Loss for Dense Object Detection", Sec. 4; FPN: Lin et al.
2017, "Feature Pyramid Networks", Sec. 4.1). So an object is learned by the level whose anchors
fit its size. ``level_assignment_view`` finds, for each object, its positive anchors and the level
that holds most of them; ``FPNLevelExplorer`` draws the objects coloured by that level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from torch import Tensor

from course_lib._checks import check_boxes, check_number
from course_lib.anchors import label_anchors
from course_lib.data import CLASSES
from course_lib.models.retinanet import RetinaNet
from course_lib.plotting import draw_boxes, show_image
from course_lib.widgets.base import WIDE_LABEL, Explorer, outline_boxes, plural
from course_lib.widgets.yolo import check_scenes

# Okabe-Ito colours, finest level first (told apart with colour-blindness too).
LEVEL_COLORS = ("#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#D55E00", "#0072B2")
UNASSIGNED_COLOR = "#ffffff"
ALL = "all"
TITLE_SIZE, LABEL_SIZE = 12, 11  # points, at 100 dpi: readable on a projector


def level_color(index: int) -> str:
    """The colour of pyramid level ``index`` (0 the finest); -1 (no positive anchor) is white."""
    return UNASSIGNED_COLOR if index < 0 else LEVEL_COLORS[index % len(LEVEL_COLORS)]


def level_assignment_view(
    anchors_per_level: dict[str, Tensor], gt_boxes: Tensor, fg_iou: float = 0.5, bg_iou: float = 0.4
) -> dict[str, Any]:
    """For each object: its positive anchors, and the pyramid level that holds most of them.

    Anchors of all levels are matched together, as in training (``RetinaNet.match``,
    ``course_lib.anchors.label_anchors`` with the best-anchor rule): an anchor is positive for
    the object it overlaps most when that IoU is >= ``fg_iou``, or when it is an object's best
    anchor. An object's level is the one with most of its positive anchors, ties going to the finer
    level; an object without a positive anchor (every one of its best anchors taken by another
    object) has level -1.

    Args:
        anchors_per_level: level name -> its anchors ``Tensor[N_l, 4]`` (``xyxy``), finest first
            (``RetinaNet.anchors(pyramid)``).
        gt_boxes (Tensor[M, 4]): ``xyxy`` objects.
        fg_iou, bg_iou: the matching thresholds, ``0 <= bg_iou <= fg_iou <= 1``.

    Returns:
        dict with ``levels`` (the level names), ``anchors`` (Tensor[N, 4], all levels),
        ``anchor_level`` (int64 Tensor[N], the index of each anchor's level), ``matched``
        (int64 Tensor[N], the object of each positive anchor, -1 for the others), ``counts``
        (int64 Tensor[M, L], positive anchors of each object on each level), ``object_level``
        (int64 Tensor[M], -1 without positives), ``positive_anchors`` (one int64 Tensor of indices
        into ``anchors`` per object), ``objects_per_level`` (level -> number of objects; ``"none"``
        for level -1), ``num_positive``, ``num_objects``, ``fg_iou``, ``bg_iou``.
    """
    if not isinstance(anchors_per_level, dict) or not anchors_per_level:
        raise ValueError(f"anchors_per_level: expected a dict level -> Tensor[N, 4], "
                         f"got {anchors_per_level!r:.60}")
    for name, anchors in anchors_per_level.items():
        check_boxes(anchors, f"anchors_per_level[{name!r}]", allow_degenerate=False)
    check_boxes(gt_boxes, "gt_boxes", allow_degenerate=False)
    check_number(fg_iou, "fg_iou", 0.0, 1.0)
    check_number(bg_iou, "bg_iou", 0.0, fg_iou)
    levels = tuple(anchors_per_level)
    anchors = torch.cat([anchors.float() for anchors in anchors_per_level.values()])  # (N, 4)
    sizes = [len(level_anchors) for level_anchors in anchors_per_level.values()]
    anchor_level = torch.repeat_interleave(torch.arange(len(levels)), torch.tensor(sizes))  # (N,)
    num_objects = len(gt_boxes)
    if num_objects:
        state, best = label_anchors(anchors, gt_boxes.float(), fg_iou, bg_iou)
        matched = torch.where(state == 1, best, torch.full_like(best, -1))  # (N,)
    else:
        matched = torch.full((len(anchors),), -1, dtype=torch.int64)
    positive = matched >= 0
    counts = torch.zeros(num_objects, len(levels), dtype=torch.int64)  # (M, L)
    counts.index_put_((matched[positive], anchor_level[positive]), torch.ones(int(positive.sum()),
                      dtype=torch.int64), accumulate=True)
    # argmax returns the first maximum: ties go to the finer level.
    object_level = torch.where(counts.sum(dim=1) > 0, counts.argmax(dim=1), torch.full((num_objects,), -1))
    per_level = {name: int((object_level == index).sum()) for index, name in enumerate(levels)}
    per_level["none"] = int((object_level < 0).sum())
    return {
        "levels": levels,
        "anchors": anchors,
        "anchor_level": anchor_level,
        "matched": matched,
        "counts": counts,
        "object_level": object_level,
        "positive_anchors": [torch.nonzero(matched == j)[:, 0] for j in range(num_objects)],
        "objects_per_level": per_level,
        "num_positive": int(positive.sum()),
        "num_objects": num_objects,
        "fg_iou": float(fg_iou),
        "bg_iou": float(bg_iou),
    }


class FPNLevelExplorer(Explorer):
    """Choose an image and a pyramid level; see which objects that level learns, and their anchors.

    Left: the image, each object in the colour of its level (white: no positive anchor), and the
    positive anchors of the chosen level (or of every level, "all") in their level's colour.
    Right: how many of the image's objects each level learns.

    Controls: ``image`` and ``level`` (``"all"`` or one level, with its anchor sizes in the label).
    The pyramid runs once per image (cached); a level change only redraws.

    Args:
        model: a :class:`~course_lib.models.retinanet.RetinaNet` in eval mode.
        images: Tensor[3, H, W] images, floats in [0, 1].
        targets: per image ``{"boxes", "labels"}`` (labels in 1..K).
    """

    def __init__(self, model: RetinaNet, images: Sequence[Tensor], targets: Sequence[dict]) -> None:
        if not isinstance(model, RetinaNet):
            raise TypeError(f"model: expected a course_lib.models.retinanet.RetinaNet, "
                            f"got {type(model).__name__}")
        if model.training:
            raise ValueError("model: expected a model in eval mode (call model.eval()), got training mode")
        if targets is None:
            raise ValueError("targets: expected one {'boxes', 'labels'} per image, got None")
        check_scenes(images, targets)
        self.model, self.images, self.targets = model, list(images), list(targets)
        self._anchors: dict[int, dict[str, Tensor]] = {}
        self.levels = tuple(self.anchors(0))
        options = [("all levels", ALL)]
        for level in self.levels:
            stride = model.strides[level]
            sizes = [2 * stride * scale for scale in model.scales]
            options.append((f"{level}: anchors {min(sizes):.0f}–{max(sizes):.0f} px", level))
        controls = {
            "image": widgets.IntSlider(value=0, min=0, max=len(self.images) - 1, description="image",
                                       continuous_update=True, style=WIDE_LABEL),
            "level": widgets.Dropdown(options=options, value=ALL, description="level", style=WIDE_LABEL),
        }
        key = " &nbsp; ".join(
            f"<span style='color: {level_color(index)}; font-weight: bold'>■</span> {level}"
            for index, level in enumerate(self.levels))
        caption = (f"<div style='font-size: 0.9em'>{key} &nbsp; thick: objects, in the colour of the level "
                   "holding most of their positive anchors (ties: the finer level; white: none) · thin: "
                   f"positive anchors (IoU ≥ {model.fg_iou_thresh:g}, or an object's best anchor)</div>")
        super().__init__(controls, num_axes=2, figsize=(9.0, 4.4), dpi=100, caption=caption, palette=True,
                         margins={"left": 0.01, "right": 0.98, "bottom": 0.14, "top": 0.9, "wspace": 0.2})

    def anchors(self, index: int) -> dict[str, Tensor]:
        """The anchors of every level for image ``index`` (the pyramid runs once)."""
        if index not in self._anchors:
            with torch.no_grad():
                pyramid, _ = self.model.pyramid([self.images[index]])
            anchors = self.model.anchors(pyramid)
            self._anchors[index] = {level: level_anchors.cpu() for level, level_anchors in anchors.items()}
        return self._anchors[index]

    def compute(self, image: int, level: str) -> dict[str, Any]:
        view = level_assignment_view(self.anchors(image), self.targets[image]["boxes"],
                                     self.model.fg_iou_thresh, self.model.bg_iou_thresh)
        shown = view["matched"] >= 0
        if level != ALL:
            shown &= view["anchor_level"] == view["levels"].index(level)
        return {**view, "image": image, "level": level, "shown": shown}

    def background_key(self, result: dict[str, Any]) -> Any:
        return result["image"]  # the photo, the objects and the bar chart change with the image only

    def draw_background(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, bar_ax = ax
        image = self.images[result["image"]]
        show_image(image_ax, image)
        target = self.targets[result["image"]]
        colors = [level_color(index) for index in result["object_level"].tolist()]
        draw_boxes(image_ax, target["boxes"], labels=target["labels"], class_names=CLASSES, color=colors,
                   linewidth=3, max_tags=8)
        height, width = image.shape[-2:]
        image_ax.set_xlim(0, width)
        image_ax.set_ylim(height, 0)
        per_level = result["objects_per_level"]
        names = [*result["levels"], "none"]
        counts = [per_level[name] for name in names]
        bar_ax.bar(range(len(names)), counts, color=[level_color(i) for i in range(len(names) - 1)] + ["0.8"],
                   edgecolor="0.3")
        bar_ax.set_xticks(range(len(names)), names, fontsize=LABEL_SIZE)
        bar_ax.set_xlim(-0.6, len(names) - 0.4)
        top = max(counts + [1])
        bar_ax.set_ylim(0, top * 1.2)
        bar_ax.set_yticks(range(0, top + 1, max(1, top // 4)))
        bar_ax.tick_params(labelsize=LABEL_SIZE)
        bar_ax.set_ylabel("objects", fontsize=LABEL_SIZE)
        bar_ax.set_xlabel("level holding most positive anchors", fontsize=LABEL_SIZE)

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, bar_ax = ax
        shown = result["shown"]
        anchors, anchor_level = result["anchors"][shown], result["anchor_level"][shown]
        for index in anchor_level.unique().tolist():
            outline_boxes(image_ax, anchors[anchor_level == index], edgecolors=level_color(index),
                          linewidths=1.0, alpha=0.9)
        if result["level"] != ALL:  # frame the chosen level's bar
            position = result["levels"].index(result["level"])
            bar_ax.axvspan(position - 0.45, position + 0.45, facecolor="none", edgecolor="0.1", linewidth=2.5)
        where = "all levels" if result["level"] == ALL else result["level"]
        count = plural(int(shown.sum()), "positive anchor")
        image_ax.set_title(f"image {result['image']} · {count} ({where})", fontsize=TITLE_SIZE)
        bar_ax.set_title(f"which level learns each of {plural(result['num_objects'], 'object')}",
                         fontsize=TITLE_SIZE)

    def summary(self, result: dict[str, Any]) -> str:
        per_level = ", ".join(f"{name} {count}" for name, count in result["objects_per_level"].items()
                              if count or name != "none")
        where = "on all levels" if result["level"] == ALL else f"on {result['level']}"
        objects = plural(result["num_objects"], "object")
        anchors = plural(int(result["shown"].sum()), "positive anchor")
        return (f"image {result['image']}: {objects} by level: {per_level} · {anchors} {where} "
                f"of {result['num_positive']}")
