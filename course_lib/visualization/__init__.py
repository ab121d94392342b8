"""Looking inside CNNs (hooks, filters, embeddings, activations, receptive fields, class visualization)
and explaining their decisions (saliency, deconvnet, guided backprop, occlusion, CAM, Grad-CAM)."""

from course_lib.visualization.activations import (
    activation_mask,
    crop_patches,
    layer_activations,
    mask_from_map,
    on_mask_share,
    top_activations,
    top_from_maps,
)
from course_lib.visualization.cam import (
    cam,
    grad_cam,
    grad_cam_parts,
    guided_grad_cam,
    upsample,
    weighted_channels,
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
from course_lib.visualization.hooks import (
    RELU_RULES,
    Recorded,
    eval_mode,
    get_layer,
    has_hooks,
    layer_names,
    record,
    relu_backward,
    relu_rule,
)
from course_lib.visualization.occlusion import occlude, occlusion, window_masks, window_positions
from course_lib.visualization.receptive_field import RF, receptive_field, unit_box
from course_lib.visualization.saliency import deconvnet, guided_backprop, input_gradient, saliency
from course_lib.visualization.targets import (
    as_batch,
    class_indices,
    detection_score,
    run_model,
    target_scores,
)

__all__ = [
    "REGULARIZED",
    "RELU_RULES",
    "RF",
    "Recorded",
    "activation_mask",
    "as_batch",
    "ascent_step",
    "cam",
    "channel_filters",
    "class_centroid_distances",
    "class_indices",
    "class_visualization",
    "clip_small_norm",
    "closeness_report",
    "crop_patches",
    "deconvnet",
    "detection_score",
    "embed",
    "eval_mode",
    "filter_grid",
    "first_layer_filters",
    "get_layer",
    "grad_cam",
    "grad_cam_parts",
    "guided_backprop",
    "guided_grad_cam",
    "has_hooks",
    "initial_image",
    "input_gradient",
    "layer_activations",
    "layer_names",
    "mask_from_map",
    "nearest_neighbors",
    "occlude",
    "occlusion",
    "on_mask_share",
    "receptive_field",
    "record",
    "relu_backward",
    "relu_rule",
    "run_model",
    "saliency",
    "target_scores",
    "top_activations",
    "top_from_maps",
    "tsne",
    "unit_box",
    "upsample",
    "weighted_channels",
    "window_masks",
    "window_positions",
]
