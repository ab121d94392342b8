"""Class activation maps: CAM (Zhou et al. 2016), Grad-CAM and Guided Grad-CAM (Selvaraju et al. 2017),
and HiResCAM (Draelos & Carin 2020) for heads whose score depends on a few positions (detections).

Both weigh the K channels of a late feature map ``A`` (``Tensor[K, h, w]``) and add them up:

* **CAM** needs a network that ends in global average pooling and one linear layer, ``y_c =
  sum_k w_ck mean(A_k) + b_c``. Average pooling and the linear layer commute, so ``y_c`` is the mean
  of the map ``M_c = sum_k w_ck A_k`` (plus the bias): ``M_c`` shows where the class score comes
  from (Eq. 1-2 of the CAM paper). The weights are the classifier's own.
* **Grad-CAM** takes the weights from the gradient instead, ``alpha_k = mean(d y_c / d A_k)``
  (Eq. 1 of the Grad-CAM paper), so it works for any layer and any differentiable head, then keeps
  the positive part, ``ReLU(sum_k alpha_k A_k)`` (Eq. 2). On a GAP network ``d y_c / d A_k`` is
  ``w_ck / (h w)`` everywhere, so Grad-CAM at the last map is ``ReLU(M_c) / (h w)``: CAM again, up to
  a positive factor.

Maps are upsampled bilinearly (``align_corners=False``) to the input's size, and not normalized:
the values are comparable across images. Grad-CAM equals Captum's ``LayerGradCam`` with
``relu_attributions=True`` upsampled with ``LayerAttribution.interpolate(..., "bilinear")``, and,
once both are min-max normalized, pytorch-grad-cam's ``GradCAM`` (which normalizes before it
upsamples, with OpenCV).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.visualization.hooks import eval_mode, get_layer, record
from course_lib.visualization.saliency import guided_backprop
from course_lib.visualization.targets import Target, as_batch, class_indices, run_model, target_scores


def upsample(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Tensor[B, h, w] maps resized bilinearly (half-pixel centres) to ``size`` = (H, W): Tensor[B, H, W]."""
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def weighted_channels(activations: Tensor, weights: Tensor) -> Tensor:
    """``sum_k weights[b, k] * activations[b, k]``: Tensor[B, K, h, w] and Tensor[B, K] -> Tensor[B, h, w]."""
    return torch.einsum("bkhw,bk->bhw", activations, weights)


def cam(model: nn.Module, images: Tensor, target: Target) -> Tensor:
    """CAM (Zhou et al. 2016, Eq. 2): ``M_c = sum_k w_ck A_k`` over the last feature map, upsampled.

    Args:
        model: a GAP classifier with ``features`` (images -> Tensor[B, K, h, w]) and ``fc`` (an
            ``nn.Linear`` from the K averaged channels to the classes), as
            :class:`~course_lib.models.classifier.GAPClassifier`.
        images: Tensor[B, C, H, W].
        target: a class index or one per image (the weights are a class's row of ``fc``, so a
            callable has no meaning here).

    Returns:
        Tensor[B, H, W], signed: the class score is the map's mean (at feature resolution) plus
        ``fc``'s bias.
    """
    features, classifier = getattr(model, "features", None), getattr(model, "fc", None)
    if not isinstance(features, nn.Module) or not isinstance(classifier, nn.Linear):
        raise TypeError(
            "model: CAM expected a GAP classifier with .features (the last feature map) and .fc "
            f"(nn.Linear), got {type(model).__name__}; Grad-CAM works on any model"
        )
    if callable(target) and not isinstance(target, Tensor):
        raise TypeError("target: CAM takes a class index (a row of .fc), not a callable")
    batch = as_batch(images)
    classes = class_indices(target, batch.shape[0], classifier.out_features)  # (B,)
    if batch.shape[0] == 0:
        return batch.new_zeros(0, *batch.shape[-2:])
    with eval_mode(model), torch.no_grad():
        activations = features(batch)  # (B, K, h, w)
        maps = weighted_channels(activations, classifier.weight[classes])  # (B, h, w)
    return upsample(maps, tuple(batch.shape[-2:]))  # (B, H, W)


def layer_gradients(model: nn.Module, layer: str, images, target: Target) -> tuple[Tensor, Tensor]:
    """A layer's activations ``A`` and the target score's gradient with respect to them, ``dy/dA``.

    The one place where the CAM family records a layer (pytorch-grad-cam's ``BaseCAM`` pattern):
    each method below only says how it weighs the two.

    Returns:
        (Tensor[B, K, h, w] activations, Tensor[B, K, h, w] gradients), detached.
    """
    as_list = not isinstance(images, Tensor)
    batch = as_batch(images)
    get_layer(model, layer)  # an unknown name lists the valid ones
    if batch.shape[0] == 0:
        return batch.new_zeros(0, 0, 0, 0), batch.new_zeros(0, 0, 0, 0)
    with eval_mode(model), record(model, layer, gradients=True) as recorded, torch.enable_grad():
        scores = target_scores(run_model(model, batch, as_list), target, batch.shape[0])  # (B,)
        activations = recorded.activations.get(layer)
        if not isinstance(activations, Tensor) or activations.dim() != 4:
            got = tuple(activations.shape) if isinstance(activations, Tensor) else type(activations).__name__
            raise ValueError(f"layer: expected {layer!r} to output a Tensor[B, K, h, w], got {got}")
        gradients = None
        if scores.requires_grad:
            (gradients,) = torch.autograd.grad(scores.sum(), activations, allow_unused=True)
    gradients = torch.zeros_like(activations) if gradients is None else gradients  # (B, K, h, w)
    return activations.detach(), gradients.detach()


def grad_cam_parts(model: nn.Module, layer: str, images, target: Target) -> tuple[Tensor, Tensor]:
    """The two things Grad-CAM needs: a layer's activations ``A`` and the channel weights ``alpha``.

    Returns:
        (Tensor[B, K, h, w] activations, Tensor[B, K] weights: the target score's gradient with
        respect to each channel, averaged over its h x w positions, Eq. 1 of Selvaraju et al.).
    """
    activations, gradients = layer_gradients(model, layer, images, target)  # (B, K, h, w) twice
    return activations, gradients.mean(dim=(2, 3))  # (B, K, h, w), (B, K)


def grad_cam(model: nn.Module, layer: str, images, target: Target) -> Tensor:
    """Grad-CAM (Selvaraju et al. 2017, Eq. 1-2): ``ReLU(sum_k alpha_k A_k)``, upsampled to the input.

    Args:
        model: any network that is differentiable from ``layer`` to the target score: a classifier,
            or a detector (images as a list; the target a callable such as
            :func:`~course_lib.visualization.targets.detection_score`).
        layer: the name of the layer whose output is ``A`` (see ``layer_names``).
        images: Tensor[B, C, H, W], or a list of same-sized Tensor[C, H, W] for a detector.
        target: what to explain.

    Returns:
        Tensor[B, H, W], non-negative, not normalized.
    """
    batch = as_batch(images)
    activations, weights = grad_cam_parts(model, layer, images, target)  # (B, K, h, w), (B, K)
    if batch.shape[0] == 0:
        return batch.new_zeros(0, *batch.shape[-2:])
    maps = weighted_channels(activations, weights).clamp(min=0)  # (B, h, w)
    return upsample(maps, tuple(batch.shape[-2:]))  # (B, H, W)


def hires_cam(model: nn.Module, layer: str, images, target: Target) -> Tensor:
    """HiResCAM (Draelos & Carin 2020): ``ReLU(sum_k dy/dA_k * A_k)``, the gradient kept per position.

    Grad-CAM averages the gradient over the map before weighing the channels, which is harmless
    for a classifier whose score pools the whole map (on a GAP network the gradient is the same at
    every position, and the two methods agree). A detection's score depends on a few positions
    only (its RoI, its cell, its anchors); averaging spreads that over the whole image, while the
    element-wise product keeps it where it is. Equal, after min-max normalization, to
    pytorch-grad-cam's ``HiResCAM``.

    Returns:
        Tensor[B, H, W], non-negative, not normalized.
    """
    batch = as_batch(images)
    activations, gradients = layer_gradients(model, layer, images, target)  # (B, K, h, w) twice
    if batch.shape[0] == 0:
        return batch.new_zeros(0, *batch.shape[-2:])
    maps = (gradients * activations).sum(dim=1).clamp(min=0)  # (B, h, w)
    return upsample(maps, tuple(batch.shape[-2:]))  # (B, H, W)


def guided_grad_cam(model: nn.Module, layer: str, images, target: Target) -> Tensor:
    """Guided Grad-CAM (Selvaraju et al. 2017, Sec. 3.1): guided backprop times the Grad-CAM map.

    Guided backprop is sharp but hardly depends on the class; Grad-CAM depends on the class but is
    coarse. Their product is both. (Captum's ``GuidedGradCam`` upsamples with ``"nearest"`` by
    default; here it is bilinear, as in the paper and in :func:`grad_cam`.)

    Returns:
        Tensor[B, C, H, W], signed, like guided backprop.
    """
    return guided_backprop(model, images, target) * grad_cam(model, layer, images, target)[:, None]
