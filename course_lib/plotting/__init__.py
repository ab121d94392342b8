"""Matplotlib helpers shared by every notebook and explorer: images, boxes, masks, anchors, heatmaps.

Only drawing lives here; what to draw is computed elsewhere. Every helper follows one convention:
figures readable on a projector (100 dpi or more, fonts of 11 points or more, every panel titled:
``course_lib.plotting.style``), images drawn with pixel-edge coordinates
(``course_lib.plotting.images``) so that boxes, masks and heatmaps line up with pixels, box tags
inside the axes and never on top of each other (``course_lib.plotting.tags``), and colours fixed
per class index (``course_lib.plotting.colors``).
"""

from course_lib.plotting.anchors import ANCHOR_STYLES, draw_anchor_grid
from course_lib.plotting.boxes import as_drawable_boxes, draw_boxes, per_box_values
from course_lib.plotting.colors import class_color
from course_lib.plotting.grids import image_grid
from course_lib.plotting.images import show_image, to_image_array
from course_lib.plotting.masks import draw_masks, overlay_heatmap
from course_lib.plotting.style import PROJECTOR_RC, apply_style, figure_grid
from course_lib.plotting.tags import place_tags

__all__ = [
    "ANCHOR_STYLES",
    "PROJECTOR_RC",
    "apply_style",
    "as_drawable_boxes",
    "class_color",
    "draw_anchor_grid",
    "draw_boxes",
    "draw_masks",
    "figure_grid",
    "image_grid",
    "overlay_heatmap",
    "per_box_values",
    "place_tags",
    "show_image",
    "to_image_array",
]
