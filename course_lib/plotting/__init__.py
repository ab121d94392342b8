"""Matplotlib helpers shared by every notebook and explorer: images, boxes, masks, anchors, heatmaps.

Only drawing lives here; what to draw is computed elsewhere. Every helper follows one convention:
images are drawn with pixel-edge coordinates (``course_lib.plotting.images``), so boxes, masks and
heatmaps line up with pixels, and colours are fixed per class index (``course_lib.plotting.colors``).
"""

from course_lib.plotting.anchors import ANCHOR_STYLES, draw_anchor_grid
from course_lib.plotting.boxes import as_drawable_boxes, draw_boxes, per_box_values
from course_lib.plotting.colors import class_color
from course_lib.plotting.grids import image_grid
from course_lib.plotting.images import show_image, to_image_array
from course_lib.plotting.masks import draw_masks, overlay_heatmap

__all__ = [
    "ANCHOR_STYLES",
    "as_drawable_boxes",
    "class_color",
    "draw_anchor_grid",
    "draw_boxes",
    "draw_masks",
    "image_grid",
    "overlay_heatmap",
    "per_box_values",
    "show_image",
    "to_image_array",
]
