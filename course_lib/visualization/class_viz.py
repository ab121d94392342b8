"""Class visualization by gradient ascent (Simonyan, Vedaldi and Zisserman 2014, Sec. 2).

Find an image that the network scores highly for one class::

    I* = argmax_I  S_c(I) - lambda * ||I - m||^2

``S_c`` is the *unnormalized* class score (the logit, not the softmax: raising a softmax can be
done by lowering the other classes). The paper's inputs are mean-subtracted, so its L2 term pulls
the image towards the mean image; ours are in [0, 1], so the term pulls towards ``m = 0.5``,
mid-grey, and the image is clipped to [0, 1] after every step (a deviation, so the result stays
a valid image). The lecture's ||I||^2 becomes our ||I - 0.5||^2 for the same reason: pulling
a [0, 1] image towards 0 would pull it towards black.

Three regularizers from later work are optional (Yosinski et al. 2015, "Understanding Neural
Networks Through Deep Visualization", Sec. 3; Olah et al. 2017, "Feature Visualization",
"transformation robustness"): **jitter** (shift the image by a few random pixels before each
step, so the result cannot rely on exact pixel positions), **blur** (a Gaussian blur every few
steps, against high-frequency noise) and **clipping pixels with small norm** (reset to grey the
pixels nearest to grey, so only the strongest evidence stays; from a black start this resets
whatever the ascent lifted towards grey, so use it from a grey or noise start). ``REGULARIZED``
holds the settings the course uses. The starting image changes the result: ``"zeros"``
(black), ``"grey"`` or ``"noise"``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.transforms.functional import gaussian_blur

from course_lib._checks import check_choice, check_number
from course_lib.visualization.hooks import eval_mode

INITS = ("zeros", "grey", "noise")
MEAN_PIXEL = 0.5
# Settings of the regularizers that make the course's gallery readable (notebook 21): a large step,
# jitter of up to 6 px, a blur of sigma 1.5 px every 2 steps and the 30% of pixels nearest to
# grey reset to grey. Chosen by eye on shapes_classifier; pass them as ``**REGULARIZED``.
REGULARIZED = {"lr": 0.2, "jitter": 6, "blur_every": 2, "blur_sigma": 1.5, "clip_percentile": 30.0}


def initial_image(init: str, image_size: tuple[int, int], channels: int = 3, seed: int = 0) -> Tensor:
    """The starting image, Tensor[C, H, W]: black, mid-grey, or uniform noise (seeded)."""
    check_choice(init, INITS, "init")
    height, width = image_size
    if init == "zeros":
        return torch.zeros(channels, height, width)
    if init == "grey":
        return torch.full((channels, height, width), MEAN_PIXEL)
    return torch.rand(channels, height, width, generator=torch.Generator().manual_seed(seed))


def ascent_step(
    model: nn.Module, image: Tensor, target: int, l2_weight: float, lr: float
) -> tuple[Tensor, float]:
    """One step of gradient ascent on ``S_c(I) - l2_weight * ||I - 0.5||^2``, clipped to [0, 1].

    Returns:
        ``(new image Tensor[C, H, W], the class score S_c before the step)``.
    """
    image = image.detach().requires_grad_(True)
    score = model(image[None])[0, target]  # the logit of the target class
    objective = score - l2_weight * ((image - MEAN_PIXEL) ** 2).sum()
    (gradient,) = torch.autograd.grad(objective, image)
    return (image + lr * gradient).clamp(0, 1).detach(), float(score.detach())


def clip_small_norm(image: Tensor, percentile: float) -> Tensor:
    """Set to grey the pixels of ``image`` (Tensor[C, H, W]) whose ``||I_p - 0.5||`` is below ``percentile``.

    The "clipping pixels with small norm" regularizer of Yosinski et al. 2015 (Sec. 3), measured
    from grey rather than from 0 because our images live in [0, 1] around 0.5. Pixels at the
    percentile itself are kept, so ``percentile=0`` returns the image unchanged.
    """
    check_number(percentile, "percentile", low=0, high=100)
    norms = (image - MEAN_PIXEL).norm(dim=0)  # (H, W)
    cut = torch.quantile(norms.flatten(), percentile / 100)
    return torch.where(norms < cut, torch.full_like(image, MEAN_PIXEL), image)


def class_visualization(
    model: nn.Module,
    target: int,
    steps: int = 200,
    l2_weight: float = 0.01,
    lr: float = 0.05,
    init: str = "grey",
    jitter: int = 0,
    blur_every: int = 0,
    blur_sigma: float = 0.5,
    clip_percentile: float = 0.0,
    image_size: tuple[int, int] = (64, 64),
    seed: int = 0,
) -> dict:
    """Gradient ascent from an initial image towards a high score for class output ``target``.

    Args:
        model: a classifier returning logits ``Tensor[B, K]``; put in eval mode for the call and
            restored afterwards (batch norm must use its running statistics).
        target: the output index to raise, in ``0..K-1``.
        steps: gradient-ascent steps.
        l2_weight: lambda, the weight of the L2 penalty (0 turns it off).
        lr: step size.
        init: ``"zeros"``, ``"grey"`` or ``"noise"``.
        jitter: largest random shift in pixels before each step (0: none).
        blur_every: blur the image every this many steps (0: never).
        blur_sigma: standard deviation of that blur, in pixels.
        clip_percentile: after every step, set to grey the pixels whose distance from grey
            (``||I_p - 0.5||`` over the channels) is below this percentile of the image's pixels
            (0: never); what remains is the part of the image farthest from grey.
        image_size: ``(H, W)`` of the image optimized.
        seed: seeds the noise start and the jitter.

    Returns:
        ``{"image": Tensor[3, H, W] in [0, 1], "start": the initial image, "scores": [S_c per
        step], "start_score": float, "final_score": float, "probability": softmax of the target
        at the end, "predicted": the model's class index for the final image}``.
    """
    check_number(target, "target", low=0, integer=True)
    check_number(steps, "steps", low=0, integer=True)
    check_number(l2_weight, "l2_weight", low=0)
    check_number(lr, "lr", low=0)
    check_number(jitter, "jitter", low=0, integer=True)
    check_number(blur_every, "blur_every", low=0, integer=True)
    check_number(blur_sigma, "blur_sigma", low=0)
    check_number(clip_percentile, "clip_percentile", low=0, high=100)
    channels = getattr(model, "in_channels", 3)
    image = initial_image(init, image_size, channels, seed)
    with eval_mode(model):
        with torch.no_grad():
            num_classes = model(image[None]).shape[1]
        if target >= num_classes:
            raise ValueError(f"target: expected a class index in 0..{num_classes - 1}, got {target}")
        generator = torch.Generator().manual_seed(seed)
        start, scores = image.clone(), []
        for step in range(steps):
            dy, dx = (
                torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist() if jitter else (0, 0)
            )
            shifted = torch.roll(image, shifts=(dy, dx), dims=(1, 2))
            shifted, score = ascent_step(model, shifted, target, l2_weight, lr)
            image = torch.roll(shifted, shifts=(-dy, -dx), dims=(1, 2))
            if blur_every and (step + 1) % blur_every == 0:
                image = gaussian_blur(image[None], kernel_size=3, sigma=blur_sigma)[0]
            if clip_percentile:
                image = clip_small_norm(image, clip_percentile)
            scores.append(score)
        with torch.no_grad():
            logits = model(torch.stack([start, image]))  # (2, K)
    return {
        "image": image,
        "start": start,
        "scores": scores,
        "start_score": float(logits[0, target]),
        "final_score": float(logits[1, target]),
        "probability": float(logits[1].softmax(dim=0)[target]),
        "predicted": int(logits[1].argmax()),
    }
