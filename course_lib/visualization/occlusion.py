"""Occlusion maps (Zeiler & Fergus 2014, Sec. 4.2): hide a patch, see how much the score drops.

A grey (``baseline``) window slides over the image with a stride; at each position the network
scores the occluded copy. A pixel's value is the drop of the target score, ``score(image) -
score(occluded)``, averaged over every window position that covers it. A large drop means the
network needed that region; a negative value means hiding it *helped* the class.

No gradient is involved, so the method works on any model, differentiable or not, at the price of
one forward pass per window position. The windows are scored in batches (``batch_size`` occluded
copies per forward pass) rather than one at a time.

The window positions are Captum's ``Occlusion``: ``ceil((H - h) / stride) + 1`` positions per
side, the last ones cut at the image's border, and the result equals Captum's for the same
window, stride and baseline (Captum returns it once per channel; here it is one map per image).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from course_lib._checks import check_number, check_pair
from course_lib.visualization.hooks import eval_mode
from course_lib.visualization.targets import Target, as_batch, class_indices, run_model, target_scores


def window_positions(
    size: tuple[int, int], window: tuple[int, int], stride: tuple[int, int]
) -> list[tuple[int, int]]:
    """The top-left corners ``(top, left)`` of every window, row by row.

    ``ceil((H - h) / s) + 1`` positions per side (Captum's count): they cover the whole image, and
    the last window of a row or column may run past the border (it is cut there).
    """
    (H, W), (h, w), (sh, sw) = size, window, stride
    rows = math.ceil((H - h) / sh) + 1
    cols = math.ceil((W - w) / sw) + 1
    return [(row * sh, col * sw) for row in range(rows) for col in range(cols)]


def window_masks(size: tuple[int, int], window, stride) -> Tensor:
    """Tensor[P, H, W] bool: ``True`` inside the P window positions of :func:`window_positions`."""
    window, stride = check_pair(window, "window", low=1), check_pair(stride, "stride", low=1)
    H, W = size  # height, width
    if window[0] > H or window[1] > W:
        raise ValueError(f"window: expected at most the image size {(H, W)}, got {window}")
    for axis, (side, length, step) in enumerate(zip((H, W), window, stride, strict=True)):
        if side > length and step > length:
            raise ValueError(
                f"stride: expected at most the window {window} (else some pixels are never hidden), "
                f"got {stride} along axis {axis}"
            )
    positions = window_positions((H, W), window, stride)
    masks = torch.zeros(len(positions), H, W, dtype=torch.bool)  # (P, H, W)
    for index, (top, left) in enumerate(positions):
        masks[index, top : top + window[0], left : left + window[1]] = True
    return masks


def occlude(image: Tensor, masks: Tensor, baseline: float | Tensor = 0.0) -> Tensor:
    """Copies of one ``image`` (Tensor[C, H, W]) with each mask's pixels set to ``baseline``.

    ``image`` may also be Tensor[P, C, H, W], one image per mask.

    Returns:
        Tensor[P, C, H, W], one occluded copy per mask of ``masks`` (Tensor[P, H, W] bool).
    """
    baseline = torch.as_tensor(baseline, dtype=image.dtype, device=image.device)
    baseline = baseline.expand(image.shape[-3:])  # (C, H, W)
    return torch.where(masks[:, None].to(image.device), baseline, image)  # (P, C, H, W)


def occlusion(
    model: nn.Module,
    images,
    target: Target,
    window=8,
    stride=4,
    baseline: float | Tensor = 0.0,
    batch_size: int = 32,
) -> Tensor:
    """The occlusion map of each image: the target score's drop when a window hides each pixel.

    Args:
        model: a classifier (or a detector, given a list of images).
        images: Tensor[B, C, H, W] (or a list of same-sized Tensor[C, H, W] for a detector).
        target: a class index, one per image, or a callable from the output of a batch of images
            (occluded copies, possibly of several images) to one score per row.
        window: the occluding patch, ``n`` or ``(h, w)`` pixels; it covers every channel.
        stride: how far the window moves, at most the window (``n`` or ``(sh, sw)``).
        baseline: the occluder's value (a number, or a tensor broadcastable to Tensor[C, H, W]).
        batch_size: occluded copies per forward pass (memory against speed; the result is the same).

    Returns:
        Tensor[B, H, W]: the mean drop of the score over the windows covering each pixel.
    """
    batch_size = int(check_number(batch_size, "batch_size", low=1, integer=True))
    as_list = not isinstance(images, Tensor)
    batch = as_batch(images)
    B, C, H, W = batch.shape  # batch, channels, height, width
    if B == 0:
        return batch.new_zeros(0, H, W)
    masks = window_masks((H, W), window, stride)  # (P, H, W)
    is_callable = callable(target) and not isinstance(target, Tensor)
    classes = None if is_callable else class_indices(target, B)  # (B,)
    P = len(masks)  # window positions
    with eval_mode(model), torch.no_grad():
        # A copy of the images, so that a model with in-place layers cannot change the caller's.
        original = target_scores(run_model(model, batch.clone(), as_list), target, B)  # (B,)
        drops = []
        # The B * P occluded copies, image by image, go through the model batch_size at a time.
        for start in range(0, B * P, batch_size):
            pairs = torch.arange(start, min(start + batch_size, B * P))  # (n,) = image * P + window
            image_index, window_index = pairs // P, pairs % P  # (n,), (n,)
            occluded = occlude(batch[image_index], masks[window_index], baseline)  # (n, C, H, W)
            copies_target = target if is_callable else classes[image_index]
            scores = target_scores(run_model(model, occluded, as_list), copies_target, len(pairs))  # (n,)
            drops.append(original[image_index] - scores)
        drop = torch.cat(drops).view(B, P)  # (B, P)
    coverage = masks.sum(dim=0).to(batch)  # (H, W) windows over each pixel
    total = torch.einsum("bp,phw->bhw", drop, masks.to(batch))  # (B, H, W) summed drops
    return total / coverage  # (B, H, W)
