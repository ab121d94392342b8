"""What every detector of the course checks and does to its input, torchvision's I/O convention.

In training mode ``model(images, targets)`` returns a dict of losses; in eval mode ``model(images)``
returns one dict per image with ``boxes`` (``Tensor[N, 4]`` xyxy pixels), ``scores`` and ``labels``.
``images`` is a list of ``Tensor[3, H, W]`` in [0, 1]; a target holds ``boxes`` (``Tensor[M, 4]``)
and ``labels`` (``Tensor[M]`` int64 in ``1..K``). An image with no objects (``M = 0``) is valid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from course_lib._checks import check_boxes, check_tensor


def check_images(images) -> list[Tensor]:
    """Check a non-empty list of ``Tensor[3, H, W]`` float images in [0, 1]."""
    if isinstance(images, Tensor) or not isinstance(images, Sequence):
        raise TypeError(
            "images: expected a list of Tensor[3, H, W] (torchvision's detector input), "
            f"got {type(images).__name__}"
        )
    if len(images) == 0:
        raise ValueError("images: expected at least one image, got an empty list")
    for index, image in enumerate(images):
        check_tensor(image, f"images[{index}]")
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"images[{index}]: expected a Tensor[3, H, W], got shape {tuple(image.shape)}")
        if not image.is_floating_point():
            raise TypeError(f"images[{index}]: expected a float tensor in [0, 1], got dtype {image.dtype}")
        if image.numel() and (image.min() < 0 or image.max() > 1):
            raise ValueError(
                f"images[{index}]: expected values in [0, 1], "
                f"got [{float(image.min()):.3g}, {float(image.max()):.3g}]"
            )
    return list(images)


def check_targets(targets, num_images: int, num_classes: int) -> list[dict]:
    """Check one target dict per image: ``boxes`` Tensor[M, 4] xyxy, ``labels`` Tensor[M] in 1..K."""
    if targets is None:
        raise ValueError("targets: expected one dict per image in training mode, got None")
    if not isinstance(targets, Sequence) or len(targets) != num_images:
        count = len(targets) if isinstance(targets, Sequence) else type(targets).__name__
        raise ValueError(f"targets: expected a list of {num_images} dicts (one per image), got {count}")
    for index, target in enumerate(targets):
        if not isinstance(target, dict) or "boxes" not in target or "labels" not in target:
            raise ValueError(
                f"targets[{index}]: expected a dict with 'boxes' and 'labels', got {target!r:.80}"
            )
        boxes = check_boxes(target["boxes"], f"targets[{index}]['boxes']", allow_degenerate=False)
        labels = check_tensor(target["labels"], f"targets[{index}]['labels']")
        if labels.dim() != 1 or labels.shape[0] != boxes.shape[0] or labels.dtype != torch.int64:
            raise ValueError(
                f"targets[{index}]['labels']: expected an int64 Tensor[{boxes.shape[0]}], "
                f"got {labels.dtype} of shape {tuple(labels.shape)}"
            )
        if labels.numel() and (labels.min() < 1 or labels.max() > num_classes):
            raise ValueError(
                f"targets[{index}]['labels']: expected classes in 1..{num_classes} (0 is background), "
                f"got {sorted(set(labels.tolist()))}"
            )
    return list(targets)


def batch_images(images: list[Tensor], size_divisible: int = 8) -> tuple[Tensor, list[tuple[int, int]]]:
    """Stack images of any sizes into one zero-padded batch, sides rounded up to ``size_divisible``.

    Returns:
        ``(batch Tensor[B, 3, H, W], [(height, width) of each image])``.
    """
    sizes = [(int(image.shape[1]), int(image.shape[2])) for image in images]
    height = -(-max(h for h, _ in sizes) // size_divisible) * size_divisible
    width = -(-max(w for _, w in sizes) // size_divisible) * size_divisible
    batch = torch.stack(
        [F.pad(image, (0, width - image.shape[2], 0, height - image.shape[1])) for image in images]
    )
    return batch, sizes  # (B, 3, H, W)
