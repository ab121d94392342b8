"""Looking inside CNNs: hooks, filters, embeddings, activations, saliency and CAM."""

from course_lib.visualization.activations import activation_mask, crop_patches, top_activations
from course_lib.visualization.embeddings import (
    class_centroid_distances,
    closeness_report,
    embed,
    nearest_neighbors,
    tsne,
)
from course_lib.visualization.filters import channel_filters, filter_grid, first_layer_filters
from course_lib.visualization.hooks import Recorded, get_layer, has_hooks, layer_names, record
from course_lib.visualization.receptive_field import RF, receptive_field, unit_box

__all__ = ["Recorded", "get_layer", "has_hooks", "layer_names", "record"]
__all__ += ["channel_filters", "filter_grid", "first_layer_filters"]
__all__ += ["RF", "receptive_field", "unit_box"]
__all__ += ["class_centroid_distances", "closeness_report", "embed", "nearest_neighbors", "tsne"]
__all__ += ["activation_mask", "crop_patches", "top_activations"]
