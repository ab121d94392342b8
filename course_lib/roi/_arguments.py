"""Argument checks shared by ``roi_pool`` and ``roi_align``, readable and fast.

Every RoI op takes the same ``input``, ``boxes``, ``output_size`` and ``spatial_scale``; they are
checked here once, so that the four ops raise the very same ``expected X, got Y`` errors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from course_lib._checks import check_boxes, check_number, check_pair, check_tensor


def check_pool_arguments(
    input: Tensor, boxes: Tensor | Sequence[Tensor], output_size: int | Sequence[int], spatial_scale: float
) -> tuple[Tensor, tuple[int, int], float]:
    """Check what every RoI op takes; return ``(rois Tensor[K, 5], (h, w), spatial_scale)``.

    ``rois`` holds ``(batch index, x1, y1, x2, y2)`` per row in the input's dtype and device, cut off
    from autograd: like torchvision, the ops give no gradient to the boxes.
    """
    check_input(input)
    output_size = check_pair(output_size, "output_size", low=1)
    check_number(spatial_scale, "spatial_scale")
    if spatial_scale <= 0:
        raise ValueError(f"spatial_scale: expected a positive number, got {spatial_scale!r}")
    return to_rois(boxes, input), output_size, float(spatial_scale)


def check_align_options(sampling_ratio: int, aligned: bool) -> None:
    """Check ``roi_align``'s own arguments: an int ``sampling_ratio`` and a bool ``aligned``."""
    check_number(sampling_ratio, "sampling_ratio", integer=True)
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned: expected a bool, got {type(aligned).__name__} {aligned!r}")


def check_input(input: Tensor) -> Tensor:
    """Check that ``input`` is a floating ``Tensor[B, C, H, W]``."""
    check_tensor(input, "input")
    if input.dim() != 4:
        raise ValueError(f"input: expected a Tensor[B, C, H, W], got shape {tuple(input.shape)}")
    if not input.is_floating_point():
        raise TypeError(f"input: expected a floating-point tensor, got dtype {input.dtype}")
    return input


def to_rois(boxes: Tensor | Sequence[Tensor], input: Tensor) -> Tensor:
    """``boxes`` as one ``Tensor[K, 5]`` (batch index, x1, y1, x2, y2) in the input's dtype and device.

    Args:
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): batch index first, or one ``xyxy`` tensor per image.
        input (Tensor[B, C, H, W]): the feature maps the boxes index into.
    """
    if isinstance(boxes, list | tuple):
        for index, image_boxes in enumerate(boxes):
            check_boxes(image_boxes, f"boxes[{index}]")
        rois = [
            torch.cat((torch.full_like(image_boxes[:, :1], index), image_boxes), dim=1)  # (L, 5)
            for index, image_boxes in enumerate(boxes)
        ]
        rois = torch.cat(rois) if rois else input.new_zeros(0, 5)  # (K, 5)
    else:
        rois = check_tensor(boxes, "boxes")
        if rois.dim() != 2 or rois.shape[1] != 5:
            raise ValueError(
                f"boxes: expected a Tensor[K, 5] (batch index, x1, y1, x2, y2) or a list of "
                f"Tensor[L, 4], got shape {tuple(rois.shape)}"
            )
        if not rois.is_floating_point():
            raise TypeError(f"boxes: expected a floating-point tensor, got dtype {rois.dtype}")
        if rois.numel() and not torch.isfinite(rois).all():
            raise ValueError("boxes: expected finite coordinates, got NaN or inf")
    rois = rois.detach().to(device=input.device, dtype=input.dtype)  # torchvision needs the same dtype
    batch_index = rois[:, 0]
    whole = batch_index.long().to(batch_index.dtype)  # a cast, not floor(): see bins.round_half_away
    bad = (batch_index < 0) | (batch_index >= input.shape[0]) | (batch_index != whole)
    if bad.any():
        value = batch_index[bad][0].item()
        raise ValueError(
            f"boxes: expected batch indices that are integers in [0, {input.shape[0] - 1}], got {value!r}"
        )
    return rois


def nothing_to_read(input: Tensor, rois: Tensor, output_size: tuple[int, int]) -> Tensor:
    """The result when there is nothing to read: no RoI (``K = 0``) or an empty map (``C * H * W = 0``).

    Zeros of shape ``(K, C, h, w)``, still attached to autograd, so that a loss on them can call
    ``backward`` as usual (every gradient is zero).
    """
    assert rois.shape[0] == 0 or input[0].numel() == 0, "only for no RoI or an empty map"
    sums = input.sum(dim=(2, 3))[rois[:, 0].long()]  # (K, C): no row, or sums over no cell (zeros)
    return sums[:, :, None, None].expand(-1, -1, *output_size).contiguous()  # (K, C, h, w)
