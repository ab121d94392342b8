"""Interactive explorers: each is a pure function (tested on its own) plus a thin ipywidgets wrapper."""

from course_lib.widgets.base import Explorer, clear_axes, draw_canvas
from course_lib.widgets.boxes import APExplorer, IoUExplorer, ap_view, iou_view

__all__ = [
    "Explorer",
    "clear_axes",
    "draw_canvas",
    "IoUExplorer",
    "iou_view",
    "APExplorer",
    "ap_view",
]
