"""Explorer for chapter 0: page through a detection dataset with its boxes and masks."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
from matplotlib.axes import Axes

from course_lib._checks import check_number
from course_lib.plotting import draw_boxes, draw_masks, show_image
from course_lib.widgets.base import WIDE_LABEL, Explorer, plural


def scene_view(dataset: Any, index: int) -> dict[str, Any]:
    """What the scene figure shows for item ``index`` of a detection dataset.

    Args:
        dataset: yields ``(image Tensor[3, H, W], target)`` with ``boxes`` and ``labels`` (and
            optionally ``masks``), such as ``ShapeScenes`` or ``CocoDetection``.
        index: the item, ``0 <= index < len(dataset)``.

    Returns:
        dict with ``image``, ``boxes``, ``labels``, ``masks`` (None when the target has none),
        ``num_objects``, ``index`` and ``background`` (the background kind when the dataset can
        tell it, else None).
    """
    check_number(index, "index", low=0, high=max(len(dataset) - 1, 0), integer=True)
    if len(dataset) == 0:
        raise ValueError("dataset: expected at least one image, got an empty dataset")
    image, target = dataset[index]
    scene = getattr(dataset, "scene", None)
    return {
        "index": index,
        "image": image,
        "boxes": target["boxes"],
        "labels": target["labels"],
        "masks": target.get("masks"),
        "num_objects": len(target["labels"]),
        "background": scene(index).background if scene is not None else None,
    }


class SceneExplorer(Explorer):
    """Page through a dataset: an image slider and toggles for the masks and the boxes.

    Args:
        dataset: a detection dataset (see :func:`scene_view`).
        class_names: names for the labels (``CLASSES`` for ShapeScenes).
        index: the first image shown.
    """

    def __init__(self, dataset: Any, class_names: tuple[str, ...] | None = None, index: int = 0) -> None:
        self.dataset, self.class_names = dataset, class_names
        super().__init__(
            {
                "index": widgets.IntSlider(
                    value=index, min=0, max=max(len(dataset) - 1, 0), description="image", style=WIDE_LABEL
                ),
                "masks": widgets.Checkbox(value=True, description="masks"),
                "boxes": widgets.Checkbox(value=True, description="boxes"),
            },
            figsize=(4.5, 4.5),
            dpi=100,
        )

    def compute(self, index: int, masks: bool, boxes: bool) -> dict[str, Any]:
        return {**scene_view(self.dataset, index), "show_masks": masks, "show_boxes": boxes}

    def draw(self, result: dict[str, Any], ax: Axes) -> None:
        show_image(ax, result["image"])
        if result["show_masks"] and result["masks"] is not None:
            draw_masks(ax, result["masks"])
        if result["show_boxes"]:
            draw_boxes(ax, result["boxes"], labels=result["labels"], class_names=self.class_names)

    def summary(self, result: dict[str, Any]) -> str:
        background = f", {result['background']} background" if result["background"] else ""
        return f"image {result['index']}: {plural(result['num_objects'], 'object')}{background}"
