"""Looking inside CNNs: hooks, filters, embeddings, activations, receptive fields, class visualization."""

from course_lib.visualization.activations import (
    activation_mask,
    crop_patches,
    layer_activations,
    mask_from_map,
    top_activations,
    top_from_maps,
)
from course_lib.visualization.class_viz import ascent_step, class_visualization, initial_image
from course_lib.visualization.embeddings import (
    class_centroid_distances,
    closeness_report,
    embed,
    nearest_neighbors,
    tsne,
)
from course_lib.visualization.filters import channel_filters, filter_grid, first_layer_filters
from course_lib.visualization.hooks import Recorded, eval_mode, get_layer, has_hooks, layer_names, record
from course_lib.visualization.receptive_field import RF, receptive_field, unit_box

__all__ = [
    "RF",
    "Recorded",
    "activation_mask",
    "ascent_step",
    "channel_filters",
    "class_centroid_distances",
    "class_visualization",
    "closeness_report",
    "crop_patches",
    "embed",
    "eval_mode",
    "filter_grid",
    "first_layer_filters",
    "get_layer",
    "has_hooks",
    "initial_image",
    "layer_activations",
    "layer_names",
    "mask_from_map",
    "nearest_neighbors",
    "receptive_field",
    "record",
    "top_activations",
    "top_from_maps",
    "tsne",
    "unit_box",
]
