"""Looking inside CNNs: hooks, filters, embeddings, activations, receptive fields, class visualization."""

from course_lib.visualization.activations import (
    activation_mask,
    crop_patches,
    layer_activations,
    mask_from_map,
    on_mask_share,
    top_activations,
    top_from_maps,
)
from course_lib.visualization.class_viz import (
    REGULARIZED,
    ascent_step,
    class_visualization,
    clip_small_norm,
    initial_image,
)
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
    "REGULARIZED",
    "RF",
    "Recorded",
    "activation_mask",
    "ascent_step",
    "channel_filters",
    "class_centroid_distances",
    "class_visualization",
    "clip_small_norm",
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
    "on_mask_share",
    "receptive_field",
    "record",
    "top_activations",
    "top_from_maps",
    "tsne",
    "unit_box",
]
