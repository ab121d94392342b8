"""Explorer for SSD (chapter 10): the default boxes of each feature map, and which objects they match.

SSD puts default boxes at every cell of several feature maps, small ones on the fine maps and
large ones on the coarse maps, and matches them to the objects at IoU >= 0.5 (each object also
takes its best default box; Liu et al. 2016, "SSD", Sec. 2.2, ``models.ssd.match_default_boxes``).
``default_box_view`` says, for one level, how many default boxes it has and which of them match
an object; ``DefaultBoxExplorer`` draws them on an image, level by level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from torch import Tensor

from course_lib._checks import check_boxes, check_choice, check_number, check_tensor
from course_lib.data import CLASSES
from course_lib.models.ssd import LEVELS, SSD, match_default_boxes
from course_lib.plotting import class_color, draw_boxes, show_image
from course_lib.widgets.base import WIDE_LABEL, Explorer, outline_boxes, plural
from course_lib.widgets.yolo import check_scenes, grid_lines

SAMPLE_COLOR, GRID_COLOR = "#d0d0d0", "#ffffff"
TITLE_SIZE = 12  # points, at 100 dpi: readable on a projector


def object_color(index: int) -> tuple[float, float, float]:
    """The colour of object ``index`` of an image (``tab10``, repeating): its box and its matches."""
    return class_color(index)


def default_box_view(
    default_boxes_per_level: Sequence[Tensor],
    level: str,
    gt_boxes: Tensor,
    gt_labels: Tensor,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """One level's default boxes: how many, which are matched to an object, and a sample to draw.

    Matching runs over the default boxes of every level together, as in training
    (``match_default_boxes``): a box of this level is matched when it overlaps an object with IoU
    >= ``iou_threshold`` or is an object's best default box of all levels. The sample is every
    default box of the 3 x 3 cells around each object's centre (fewer at the image's edge), the
    candidates an object could have been matched to on this level.

    The level's grid is read from its boxes, laid out as SSD lays them (``models.ssd.default_boxes``:
    cell by cell, row-major, ``A`` boxes per cell centred at ``((j + 0.5) * stride, (i + 0.5) * stride)``).

    Args:
        default_boxes_per_level: one ``Tensor[N_l, 4]`` (``xyxy``) per level of ``LEVELS``, finest
            first (``SSD.default_boxes(maps)``).
        level: one of ``LEVELS``.
        gt_boxes (Tensor[M, 4]): ``xyxy`` objects; gt_labels (Tensor[M]) their classes in 1..K.
        iou_threshold: in [0, 1].

    Returns:
        dict with ``level``, ``level_index``, ``stride``, ``grid_size`` ``(H, W)``, ``boxes_per_cell``
        (``A``), ``boxes`` (Tensor[N, 4], this level's), ``num_default_boxes`` (N), ``matched``
        (int64 Tensor[N]: the object each box is matched to, -1 when background), ``num_matched``,
        ``objects_matched`` (sorted object indices with a match on this level),
        ``num_objects_matched``, ``num_objects`` (M), ``matched_per_level`` (level -> count),
        ``sample`` (bool Tensor[N]), ``iou_threshold``.
    """
    if not isinstance(default_boxes_per_level, list | tuple) or len(default_boxes_per_level) != len(LEVELS):
        raise ValueError(f"default_boxes_per_level: expected a list of {len(LEVELS)} Tensor[N, 4] (one per "
                         f"level of {LEVELS}), got {default_boxes_per_level!r:.60}")
    for name, boxes in zip(LEVELS, default_boxes_per_level, strict=True):
        check_boxes(boxes, f"default_boxes_per_level[{name!r}]", allow_degenerate=False)
    check_choice(level, LEVELS, "level")
    check_boxes(gt_boxes, "gt_boxes", allow_degenerate=False)
    check_tensor(gt_labels, "gt_labels")
    check_number(iou_threshold, "iou_threshold", 0.0, 1.0)
    index = LEVELS.index(level)
    sizes = [len(boxes) for boxes in default_boxes_per_level]
    everything = torch.cat([boxes.float() for boxes in default_boxes_per_level])  # (sum N_l, 4)
    if len(gt_boxes):
        classes, matched = match_default_boxes(everything, gt_boxes.float(), gt_labels, iou_threshold)
        matched = torch.where(classes > 0, matched, torch.full_like(matched, -1))  # (sum N_l,)
    else:
        if gt_labels.shape != (0,):
            raise ValueError(f"gt_labels: expected a Tensor[0] (one per box), "
                             f"got shape {tuple(gt_labels.shape)}")
        matched = torch.full((len(everything),), -1, dtype=torch.int64)
    per_level = matched.split(sizes)
    boxes = default_boxes_per_level[index].float()
    level_matched = per_level[index]  # (N,)
    objects = sorted(set(level_matched[level_matched >= 0].tolist()))
    stride, per_cell, grid = _grid(boxes)
    return {
        "level": level,
        "level_index": index,
        "stride": stride,
        "grid_size": grid,
        "boxes_per_cell": per_cell,
        "boxes": boxes,
        "num_default_boxes": len(boxes),
        "matched": level_matched,
        "num_matched": int((level_matched >= 0).sum()),
        "objects_matched": objects,
        "num_objects_matched": len(objects),
        "num_objects": len(gt_boxes),
        "matched_per_level": {name: int((part >= 0).sum())
                              for name, part in zip(LEVELS, per_level, strict=True)},
        "sample": _around_objects(boxes, gt_boxes.float(), stride),
        "iou_threshold": float(iou_threshold),
    }


def _grid(boxes: Tensor) -> tuple[float, int, tuple[int, int]]:
    """``(stride, A, (H, W))`` of one level's default boxes, laid out as ``default_boxes`` does."""
    if len(boxes) == 0:
        return 0.0, 0, (0, 0)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2  # (N, 2)
    stride = 2 * float(centres[0].min())  # the first cell's centre is (stride / 2, stride / 2)
    per_cell = int(torch.isclose(centres, centres[:1], atol=1e-3 * stride).all(dim=1).sum())
    cells = (centres[::per_cell] / stride - 0.5).round()  # (H*W, 2) column, row
    return stride, per_cell, (int(cells[:, 1].max()) + 1, int(cells[:, 0].max()) + 1)


def _around_objects(boxes: Tensor, gt_boxes: Tensor, stride: float) -> Tensor:
    """The default boxes whose cell is the cell of an object's centre or one of its 8 neighbours."""
    sample = torch.zeros(len(boxes), dtype=torch.bool)
    if len(boxes) == 0 or len(gt_boxes) == 0:
        return sample
    box_cells = (((boxes[:, :2] + boxes[:, 2:]) / 2) / stride - 0.5).round()  # (N, 2)
    object_cells = (((gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2) / stride).floor()  # (M, 2)
    distance = (box_cells[:, None, :] - object_cells[None, :, :]).abs().amax(dim=-1)  # (N, M)
    return (distance <= 1).any(dim=1)


def _count(count: int) -> str:
    """``"1,024 default boxes"``, ``"1 default box"``: ``plural`` with a thousands separator."""
    return f"{count:,} " + plural(count, "default box", "default boxes").partition(" ")[2]


class DefaultBoxExplorer(Explorer):
    """Choose an image and a level of SSD; see its grid, its default boxes and those matched to objects.

    The image with the level's grid (one line every ``stride`` pixels), the default boxes of the
    cells around each object (thin, grey), the default boxes matched to an object (in that
    object's colour) and the objects themselves (thick, tagged with their class).

    Controls: ``image`` and ``level`` (a dropdown of ``LEVELS``, with the grid and the box sizes in
    each label). The feature maps run once per image (cached); a level change only redraws.

    Args:
        model: an :class:`~course_lib.models.ssd.SSD` in eval mode.
        images: Tensor[3, H, W] images, floats in [0, 1].
        targets: per image ``{"boxes", "labels"}`` (labels in 1..K).
    """

    def __init__(self, model: SSD, images: Sequence[Tensor], targets: Sequence[dict]) -> None:
        if not isinstance(model, SSD):
            raise TypeError(f"model: expected a course_lib.models.ssd.SSD, got {type(model).__name__}")
        if model.training:
            raise ValueError("model: expected a model in eval mode (call model.eval()), got training mode")
        if targets is None:
            raise ValueError("targets: expected one {'boxes', 'labels'} per image, got None")
        check_scenes(images, targets)
        self.model, self.images, self.targets = model, list(images), list(targets)
        self._default_boxes: dict[int, list[Tensor]] = {}
        first = self.default_boxes(0)
        options = []
        for index, level in enumerate(LEVELS):
            stride, per_cell, (rows, cols) = _grid(first[index])
            small, large = model.sizes[index], (model.sizes[index] * model.sizes[index + 1]) ** 0.5
            options.append((f"{level}: {rows}×{cols} cells, {small:g}–{large:.0f} px boxes", level))
        controls = {
            "image": widgets.IntSlider(value=0, min=0, max=len(self.images) - 1, description="image",
                                       continuous_update=True, style=WIDE_LABEL),
            "level": widgets.Dropdown(options=options, value=LEVELS[1], description="level",
                                      style=WIDE_LABEL),
        }
        caption = ("<div style='font-size: 0.9em'>grey ▭: the default boxes of the 3 × 3 cells around "
                   "each object · coloured ▭: default boxes matched to the object of that colour (IoU ≥ "
                   f"{model.iou_threshold:g}, or its best default box of all levels) · thick, tagged: the "
                   "objects · white lines: the level's cells</div>")
        super().__init__(controls, figsize=(5.0, 5.2), dpi=100, caption=caption, palette=True,
                         margins={"left": 0.02, "right": 0.98, "bottom": 0.02, "top": 0.9})

    def default_boxes(self, index: int) -> list[Tensor]:
        """The default boxes of every level for image ``index`` (the feature maps run once)."""
        if index not in self._default_boxes:
            with torch.no_grad():
                maps, _ = self.model.feature_maps([self.images[index]])
            self._default_boxes[index] = [boxes.cpu() for boxes in self.model.default_boxes(maps)]
        return self._default_boxes[index]

    def compute(self, image: int, level: str) -> dict[str, Any]:
        target = self.targets[image]
        view = default_box_view(self.default_boxes(image), level, target["boxes"], target["labels"],
                                self.model.iou_threshold)
        return {**view, "image": image}

    def draw(self, result: dict[str, Any], ax: Axes) -> None:
        image = self.images[result["image"]]
        show_image(ax, image)
        rows, cols = result["grid_size"]
        if rows and cols:
            ax.add_collection(LineCollection(grid_lines(rows, cols, result["stride"]), colors=GRID_COLOR,
                                             linewidths=0.5, alpha=0.4))
        boxes, matched = result["boxes"], result["matched"]
        outline_boxes(ax, boxes[result["sample"] & (matched < 0)], edgecolors=SAMPLE_COLOR, linewidths=0.6,
                      alpha=0.5)
        for number in result["objects_matched"]:
            outline_boxes(ax, boxes[matched == number], edgecolors=[object_color(number)], linewidths=1.5)
        target = self.targets[result["image"]]
        colors = [object_color(number) for number in range(len(target["boxes"]))]
        draw_boxes(ax, target["boxes"], labels=target["labels"], class_names=CLASSES, color=colors,
                   linewidth=3, max_tags=8)
        height, width = image.shape[-2:]
        ax.set_xlim(0, width)  # default boxes reach past the image: keep the view on the image
        ax.set_ylim(height, 0)
        ax.set_title(f"{result['level']}: {result['num_matched']} matched of "
                     f"{_count(result['num_default_boxes'])}", fontsize=TITLE_SIZE)

    def summary(self, result: dict[str, Any]) -> str:
        others = ", ".join(f"{level} {count}" for level, count in result["matched_per_level"].items())
        return (f"image {result['image']} · level {result['level']}: {_count(result['num_default_boxes'])}, "
                f"{result['num_matched']} "
                f"matched to {result['num_objects_matched']} of {plural(result['num_objects'], 'object')} "
                f"· matched per level: {others}")
