"""Explanations by back-propagation to the input: saliency (plain and SmoothGrad), deconvnet, guided backprop.

All three send the target score back to the pixels; they differ only in what a ReLU lets through
on the way back (:func:`~course_lib.visualization.hooks.relu_backward`):

* :func:`saliency` (Simonyan et al. 2014, Sec. 3.1): the true gradient, ``|d score / d x|``, its
  maximum over the colour channels. How much a small change of each pixel moves the score.
  ``samples > 0`` averages it over noisy copies of the image (SmoothGrad, Smilkov et al. 2017).
* :func:`deconvnet` (Zeiler & Fergus 2014): a ReLU on the backward signal instead of the forward
  mask.
* :func:`guided_backprop` (Springenberg et al. 2015): both masks.

They match Captum's ``Saliency``, ``NoiseTunnel(Saliency)``, ``Deconvolution`` and
``GuidedBackprop``. The model is looked at in eval mode and handed back unchanged: its modes,
hooks, ``inplace`` flags and its parameters' ``.grad`` are as they were, also after an error.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course_lib._checks import check_number
from course_lib.visualization.hooks import eval_mode, relu_rule
from course_lib.visualization.targets import Target, as_batch, class_indices, run_model, target_scores

SMOOTHGRAD_BATCH = 64  # noisy copies per forward and backward pass (the result does not depend on it)


def input_gradient(model: nn.Module, images, target: Target, rule: str = "backprop") -> Tensor:
    """The target score back-propagated to the input, under a ReLU ``rule``.

    Args:
        model: a classifier (``Tensor[B, C, H, W]`` in) or a detector (a list of images in).
        images: Tensor[B, C, H, W], or a list of same-sized Tensor[C, H, W] for a detector.
        target: what to explain (see :mod:`course_lib.visualization.targets`).
        rule: ``"backprop"`` (the gradient), ``"deconvnet"`` or ``"guided"``.

    Returns:
        Tensor[B, C, H, W]: with ``"backprop"``, d score_b / d images_b for each image b.
    """
    as_list = not isinstance(images, Tensor)
    batch = as_batch(images)
    if batch.shape[0] == 0:
        return torch.zeros_like(batch)
    inputs = batch.detach().clone().requires_grad_(True)
    with eval_mode(model), relu_rule(model, rule), torch.enable_grad():
        scores = target_scores(run_model(model, inputs, as_list), target, batch.shape[0])  # (B,)
        if not scores.requires_grad:  # a target that does not depend on the input (no detection)
            return torch.zeros_like(batch)
        # Each score depends on its own image only, so the gradient of the sum is every image's own.
        (gradient,) = torch.autograd.grad(scores.sum(), inputs, allow_unused=True)
    return torch.zeros_like(batch) if gradient is None else gradient  # (B, C, H, W)


def saliency(
    model: nn.Module,
    images,
    target: Target,
    samples: int = 0,
    noise: float = 0.15,
    seed: int = 0,
) -> Tensor:
    """Backprop saliency: ``max_c |d score / d x_c|`` per pixel (Simonyan et al. 2014, Sec. 3.1).

    Args:
        model, images, target: as in :func:`input_gradient`.
        samples: 0 for the plain gradient; n > 0 for SmoothGrad, the mean of ``|gradient|`` over n
            copies of each image with Gaussian noise added (Smilkov et al. 2017, Eq. 3).
        noise: the noise's standard deviation, in the image's units (the paper's 10-20% of the
            range, for images in [0, 1]).
        seed: the noise's seed. The noise is drawn as Captum's ``NoiseTunnel`` draws it after
            ``torch.manual_seed(seed)``, one ``Tensor[B * n, C, H, W]`` (each image's n copies
            in a row), so the two agree.

    Returns:
        Tensor[B, H, W], non-negative.
    """
    samples = int(check_number(samples, "samples", low=0, integer=True))
    noise = check_number(noise, "noise", low=0.0)
    batch = as_batch(images)
    if samples == 0:
        return input_gradient(model, images, target).abs().amax(dim=1)  # (B, H, W)
    B = batch.shape[0]  # batch
    generator = torch.Generator(device=batch.device).manual_seed(seed)
    noisy = batch.repeat_interleave(samples, dim=0)  # (B*n, C, H, W)
    noisy = noisy + noise * torch.randn(noisy.shape, generator=generator, device=batch.device)
    if callable(target) and not isinstance(target, Tensor):
        raise TypeError("target: SmoothGrad repeats each image, so it takes a class index, not a callable")
    classes = class_indices(target, B)  # (B,)
    copies_classes = classes.repeat_interleave(samples)  # (B*n,)
    gradients = []
    for start in range(0, len(noisy), SMOOTHGRAD_BATCH):  # a few copies at a time: memory stays small
        chunk = noisy[start : start + SMOOTHGRAD_BATCH]
        chunk_images = chunk if isinstance(images, Tensor) else list(chunk)
        chunk_classes = copies_classes[start : start + len(chunk)]
        gradients.append(input_gradient(model, chunk_images, chunk_classes).abs())
    gradients = torch.cat(gradients)  # (B*n, C, H, W)
    return gradients.unflatten(0, (B, samples)).mean(dim=1).amax(dim=1)  # (B, H, W)


def deconvnet(model: nn.Module, images, target: Target) -> Tensor:
    """Deconvnet's reconstruction: the score sent back with a ReLU on the backward signal.

    Zeiler & Fergus 2014 project one unit's activation back with transposed filters and "unpooling"
    through the max-pooling switches; applied to a class score with the network's own filters, that
    is the backward pass with :func:`~course_lib.visualization.hooks.relu_backward`'s
    ``"deconvnet"`` rule (Springenberg et al. 2015, Sec. 3.4), which is what Captum's
    ``Deconvolution`` computes, and this function too.

    Returns:
        Tensor[B, C, H, W], signed, one value per colour channel (shown as an image).
    """
    return input_gradient(model, images, target, rule="deconvnet")


def guided_backprop(model: nn.Module, images, target: Target) -> Tensor:
    """Guided backprop: the gradient, with only positive signals let back through each ReLU.

    Returns:
        Tensor[B, C, H, W], signed, one value per colour channel (shown as an image).
    """
    return input_gradient(model, images, target, rule="guided")
