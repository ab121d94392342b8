"""One verb for every explanation method of the chapter: ``explain(method, model, images, target)``.

Each method lives in its own module (:mod:`~course_lib.visualization.saliency`,
:mod:`~course_lib.visualization.occlusion`, :mod:`~course_lib.visualization.cam`); this one only
dispatches, as Captum's ``attr`` classes share one ``attribute`` verb, so that a notebook or an
explorer can put the methods side by side on the same image and the same target:

* :func:`attribute`: what the method itself returns, ``Tensor[B, H, W]`` for the map methods
  (saliency, SmoothGrad, occlusion, CAM, Grad-CAM, HiResCAM) and ``Tensor[B, C, H, W]`` for the signed,
  per-channel ones (deconvnet, guided backprop, Guided Grad-CAM);
* :func:`channel_map`: one map per image, ``max_c |a_c|`` for a per-channel attribution, the
  reduction that Simonyan et al. 2014 (Sec. 3.1) apply to the gradient to get the saliency map;
* :func:`explain`: the two in a row, ``Tensor[B, H, W]`` for every method.

:func:`signed_image` turns a signed per-channel attribution into an RGB picture (grey = 0).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from course_lib._checks import check_choice, check_number, check_tensor
from course_lib.visualization.cam import cam, grad_cam, guided_grad_cam, hires_cam
from course_lib.visualization.fast_occlusion import fast_occlusion, incremental_layers
from course_lib.visualization.occlusion import occlusion
from course_lib.visualization.saliency import deconvnet, guided_backprop, saliency
from course_lib.visualization.targets import Target, as_batch

METHODS = ("saliency", "smoothgrad", "deconvnet", "guided backprop", "occlusion", "cam", "grad-cam",
           "guided grad-cam", "hires-cam")
SIGNED_METHODS = ("deconvnet", "guided backprop", "guided grad-cam")  # Tensor[B, C, H, W], signed
LAYER_METHODS = ("grad-cam", "guided grad-cam", "hires-cam")  # the ones that need ``layer``
SMOOTHGRAD_SAMPLES = 25  # noisy copies per image (Smilkov et al. 2017 find 50 hardly better than 25)

# The keyword options each method takes, passed on unchanged; their defaults are the functions' own
# (occlusion: an 8x8 window moved by 4 pixels), except SmoothGrad's number of samples.
OPTIONS = {
    "saliency": (),
    "smoothgrad": ("samples", "noise", "seed"),
    "deconvnet": (),
    "guided backprop": (),
    "occlusion": ("window", "stride", "baseline", "batch_size"),
    "cam": (),
    "grad-cam": (),
    "guided grad-cam": (),
    "hires-cam": (),
}


def supports_incremental(model: nn.Module) -> bool:
    """Whether :func:`~course_lib.visualization.fast_occlusion.fast_occlusion` can run ``model``."""
    try:
        incremental_layers(model)
    except TypeError:
        return False
    return True


def attribute(method: str, model: nn.Module, images, target: Target, layer: str | None = None,
              **options: Any) -> Tensor:
    """What ``method`` itself returns for ``images``: a map per image, or a signed map per channel.

    Args:
        method: one of :data:`METHODS`.
        model: a classifier (a detector for the gradient methods and occlusion, with ``images`` a
            list and ``target`` a callable such as
            :func:`~course_lib.visualization.targets.detection_score`).
        images: Tensor[B, C, H, W], or a list of same-sized Tensor[C, H, W] for a detector.
        target: what to explain (see :mod:`course_lib.visualization.targets`).
        layer: the layer Grad-CAM and Guided Grad-CAM weigh (see ``layer_names``); required by
            those two, accepted and ignored by the others (so that one call site serves every
            method, as the explorer's does).
        **options: the method's own keyword options, listed in :data:`OPTIONS`
            (``samples``/``noise``/``seed`` for SmoothGrad, ``window``/``stride``/``baseline``/
            ``batch_size`` for occlusion).

    Returns:
        Tensor[B, C, H, W] for the :data:`SIGNED_METHODS`, Tensor[B, H, W] for the others.

    Raises:
        ValueError: an unknown method (the error lists them), a missing ``layer``, or an option
            the method does not take.
    """
    check_choice(method, METHODS, "method")
    unknown = sorted(set(options) - set(OPTIONS[method]))
    if unknown:
        expected = ", ".join(map(repr, OPTIONS[method])) or "none"
        got = ", ".join(map(repr, unknown))
        raise ValueError(f"options: method {method!r} takes options {expected}, got {got}")
    if method in LAYER_METHODS and layer is None:
        raise ValueError(f"layer: expected a layer name for {method!r} (see layer_names(model)), got None")
    if method == "saliency":
        return saliency(model, images, target)
    if method == "smoothgrad":
        return saliency(model, images, target, **{"samples": SMOOTHGRAD_SAMPLES, **options})
    if method == "deconvnet":
        return deconvnet(model, images, target)
    if method == "guided backprop":
        return guided_backprop(model, images, target)
    if method == "occlusion":  # the same map; incremental inference where the model allows it
        method_function = fast_occlusion if supports_incremental(model) else occlusion
        return method_function(model, images, target, **options)
    if method == "cam":
        return cam(model, images, target)
    if method == "grad-cam":
        return grad_cam(model, layer, images, target)
    if method == "hires-cam":
        return hires_cam(model, layer, images, target)
    return guided_grad_cam(model, layer, images, target)


def channel_map(attribution: Tensor) -> Tensor:
    """One map per image: ``max_c |a_c|`` of a Tensor[B, C, H, W]; a Tensor[B, H, W] unchanged.

    The reduction of the saliency map (Simonyan et al. 2014, Sec. 3.1: "the maximum magnitude of
    w across all colour channels"), applied to deconvnet, guided backprop and Guided Grad-CAM too,
    so that every method gives a non-negative map of the same kind. The sign is lost: see
    :func:`signed_image` to show it.
    """
    check_tensor(attribution, "attribution")
    if attribution.dim() == 3:
        return attribution
    if attribution.dim() != 4:
        shape = tuple(attribution.shape)
        raise ValueError(f"attribution: expected a Tensor[B, H, W] or Tensor[B, C, H, W], got shape {shape}")
    return attribution.abs().amax(dim=1)  # (B, H, W)


def explain(method: str, model: nn.Module, images, target: Target, layer: str | None = None,
            **options: Any) -> Tensor:
    """Explain ``target`` on ``images`` with any method of the chapter: one map per image.

    ``channel_map(attribute(...))``: the method's own result (:func:`attribute`), with per-channel
    attributions (deconvnet, guided backprop, Guided Grad-CAM) reduced to ``max_c |a_c|`` as the
    saliency map is (:func:`channel_map`). The maps are not normalized: their values compare across
    images but not across methods (a gradient, a drop of score, a weighted activation).

    Args:
        method, model, images, target, layer, **options: as in :func:`attribute` (``layer`` is
            required by Grad-CAM and Guided Grad-CAM and ignored by the others).

    Returns:
        Tensor[B, H, W]; non-negative except for occlusion and CAM, which are signed. An empty batch
        gives Tensor[0, H, W] (Tensor[0, 0, 0] for an empty list).

    Example::

        maps = explain("grad-cam", model, images, labels, layer="features.relu4")  # (B, H, W)
    """
    batch = as_batch(images)  # a wrong type or shape fails here, before any method runs
    if batch.shape[0] == 0:  # occlusion and CAM cannot size their windows or run on an empty list's 0x0
        check_choice(method, METHODS, "method")
        return batch.new_zeros(0, *batch.shape[-2:])  # (0, H, W)
    return channel_map(attribute(method, model, images, target, layer, **options))


def signed_image(attribution: Tensor, percentile: float = 99.0) -> Tensor:
    """A signed per-channel attribution (guided backprop) as an RGB image: grey 0.5 is zero.

    ``0.5 + 0.5 * a / s``, clipped to [0, 1], where ``s`` is the ``percentile`` of ``|a|`` over the
    whole image (the maximum with ``percentile=100``): a few extreme pixels then do not wash out the
    others, as Captum's ``visualize_image_attr`` clips its outliers (2% by default). When that
    percentile is 0 (a signal on fewer pixels than ``100 - percentile`` %) the maximum is used
    instead; an all-zero signal is mid-grey everywhere. Never NaN.

    Args:
        attribution: Tensor[C, H, W], finite.
        percentile: in (0, 100], the share of ``|a|`` values that are not clipped.

    Returns:
        Tensor[H, W, C] float in [0, 1], as ``matplotlib.pyplot.imshow`` takes it.
    """
    check_tensor(attribution, "attribution")
    check_number(percentile, "percentile", low=0.0, high=100.0)
    if percentile == 0:
        raise ValueError(f"percentile: expected a value in (0, 100], got {percentile!r}")
    if attribution.dim() != 3:
        raise ValueError(f"attribution: expected a Tensor[C, H, W], got shape {tuple(attribution.shape)}")
    values = attribution.detach().float().cpu().permute(1, 2, 0)  # (H, W, C)
    if values.numel() == 0:
        return values
    if not torch.isfinite(values).all():
        raise ValueError("attribution: expected finite values, got NaN or inf")
    magnitudes = values.abs().flatten()  # (H*W*C,)
    scale = float(torch.quantile(magnitudes, percentile / 100)) if percentile < 100 else 0.0
    if scale <= 0:
        scale = float(magnitudes.max())
    if scale <= 0:
        return torch.full_like(values, 0.5)
    return (0.5 + 0.5 * values / scale).clamp(0, 1)  # (H, W, C)
