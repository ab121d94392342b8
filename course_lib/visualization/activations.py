"""What one channel responds to: its activation as a mask on the image, and its strongest patches.

Two views from the lecture (after Zeiler & Fergus 2014, "Visualizing and Understanding
Convolutional Networks", and Girshick et al. 2014, "Rich feature hierarchies", Sec. 3.1):

* **Activation mask** (the AlexNet conv5 example): one channel's feature map for one image,
  thresholded and upsampled to the image, shows *where* that channel fires.
* **Maximally activating patches**: 1. choose a layer and a channel; 2. run many images and record
  that channel's map; 3. crop, around the strongest units, the input patch each unit sees (its
  receptive field, :mod:`course_lib.visualization.receptive_field`). The crops show *what* it fires on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib._checks import check_boxes, check_number, check_tensor
from course_lib.visualization.hooks import record
from course_lib.visualization.receptive_field import receptive_field, unit_box


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every module in eval mode for the block, then give each its own mode back."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _channel_maps(model: nn.Module, images: Tensor, layer: str, channel: int, batch_size: int) -> Tensor:
    """``channel``'s map at ``layer`` for each image, Tensor[B, h, w], recorded in batches in eval mode."""
    check_number(channel, "channel", integer=True)  # its range is known once the layer has run
    maps = []
    with torch.no_grad(), _eval_mode(model), record(model, layer) as recorded:
        for first in range(0, max(len(images), 1), batch_size):  # an empty batch still runs once
            model(images[first : first + batch_size])
            activation = recorded.activations[layer]  # (b, C, h, w)
            if activation.dim() != 4:
                raise ValueError(
                    f"layer: expected a layer with a (B, C, H, W) output, "
                    f"got shape {tuple(activation.shape)} at {layer!r}"
                )
            if not 0 <= channel < activation.shape[1]:
                raise ValueError(f"channel: expected 0..{activation.shape[1] - 1}, got {channel}")
            maps.append(activation[:, channel].detach())  # (b, h, w)
    return torch.cat(maps)  # (B, h, w)


def activation_mask(
    model: nn.Module, image: Tensor, layer: str, channel: int, threshold: float = 0.5
) -> dict[str, Tensor]:
    """Where one channel fires on one image: its map, upsampled to the image, and thresholded.

    The map is divided by its own maximum over this image, so ``threshold`` is a fraction of the
    channel's strongest response here (as in the lecture's conv5 masks, which are per image).
    Negative values (a layer before its ReLU) count as not firing. A map that is zero everywhere
    gives an all-zero ``upsampled`` and an empty mask, never NaN.

    Args:
        model: a classifier; it runs in eval mode for the call (batch norm with its running
            statistics), and each module's mode is restored afterwards.
        image: Tensor[C, H, W], as the model expects it.
        layer: a layer name from :func:`~course_lib.visualization.hooks.layer_names` with a
            ``(B, C, h, w)`` output.
        channel: 0..C-1 of that layer.
        threshold: in [0, 1]; the mask keeps the pixels whose upsampled value is ``>= threshold``
            and above 0 (so threshold 0 shows wherever the channel fires at all).

    Returns:
        ``{"activation": Tensor[h, w]`` the raw map, ``"upsampled": Tensor[H, W]`` in [0, 1] (the map
        clamped at 0, divided by its maximum, resized bilinearly), ``"mask": bool Tensor[H, W]}``.
    """
    check_tensor(image, "image")
    if image.dim() != 3:
        raise ValueError(f"image: expected a Tensor[C, H, W], got shape {tuple(image.shape)}")
    check_number(threshold, "threshold", low=0.0, high=1.0)
    activation = _channel_maps(model, image[None], layer, channel, batch_size=1)[0]  # (h, w)
    positive = activation.clamp(min=0)
    peak = positive.max()
    normalized = positive / peak if peak > 0 else torch.zeros_like(positive)  # (h, w) in [0, 1]
    upsampled = F.interpolate(
        normalized[None, None], size=image.shape[-2:], mode="bilinear", align_corners=False
    )[0, 0].clamp(0, 1)  # (H, W); bilinear weights are convex, clamp trims rounding
    mask = (upsampled >= threshold) & (upsampled > 0)  # (H, W)
    return {"activation": activation, "upsampled": upsampled, "mask": mask}


def top_activations(
    model: nn.Module, images: Tensor, layer: str, channel: int, k: int = 9, batch_size: int = 128
) -> dict:
    """The ``k`` units of one channel that respond most strongly over a set of images, and their fields.

    Each image contributes at most one unit, its strongest (ties: the first in row-major order), so
    the patches show ``k`` different images rather than ``k`` neighbouring units of one. Images are
    ranked by that value, decreasing; ties go to the lower image index.

    Args:
        model: the network, run in eval mode for the call (each module's mode is restored).
        images: Tensor[N, C, H, W].
        layer: a layer whose path from the input :func:`receptive_field` supports.
        channel: 0..C-1 of that layer.
        k: how many units; fewer are returned when there are fewer images.
        batch_size: images per forward pass.

    Returns:
        A dict with ``"indices"``, ``"rows"``, ``"cols"`` (int64 Tensor[k]: image and unit position),
        ``"values"`` (Tensor[k]), ``"boxes"`` (float Tensor[k, 4], the fields clipped by
        :func:`unit_box`, to draw), ``"fields"`` (float Tensor[k, 4], the whole windows, which may
        reach outside the image, to crop with :func:`crop_patches`) and ``"rf"``.
    """
    check_tensor(images, "images")
    if images.dim() != 4:
        raise ValueError(f"images: expected a Tensor[N, C, H, W], got shape {tuple(images.shape)}")
    check_number(k, "k", low=0, integer=True)
    check_number(batch_size, "batch_size", low=1, integer=True)
    rf = receptive_field(model, layer)  # unknown or unsupported layers fail here, before any run
    maps = _channel_maps(model, images, layer, channel, batch_size)  # (N, h, w)
    N, h, w = maps.shape
    best, where = maps.reshape(N, h * w).max(dim=1)  # (N,) each image's strongest unit, first of ties
    order = torch.sort(best, descending=True, stable=True).indices[:k]  # (k,)
    rows, cols = where[order] // w, where[order] % w  # (k,), (k,)
    size = tuple(images.shape[-2:])
    positions = list(zip(rows.tolist(), cols.tolist(), strict=True))
    boxes = [unit_box(rf, row, col, size) for row, col in positions]
    corners = [(rf.start + int(col) * rf.stride, rf.start + int(row) * rf.stride) for row, col in positions]
    fields = [(x, y, x + rf.size, y + rf.size) for x, y in corners]
    return {
        "indices": order,
        "rows": rows,
        "cols": cols,
        "values": best[order],
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "fields": torch.tensor(fields, dtype=torch.float32).reshape(-1, 4),
        "rf": rf,
    }


def crop_patches(images: Tensor, boxes: Tensor, size: int | None = None) -> Tensor:
    """Cut box ``i`` out of image ``i``, with zeros wherever the box leaves the image.

    Args:
        images: Tensor[N, C, H, W], one image per box (``images[result["indices"]]``).
        boxes: Tensor[N, 4] xyxy with integer coordinates. Whole fields (``result["fields"]``) may
            reach outside the image: those pixels are zeros, so every crop has the field's size.
        size: side of the square crops; default the largest box side. A box smaller than ``size``
            (a field already clipped by :func:`unit_box`) is padded back on the side where it touches
            the image border; when it touches both borders of an axis the image is centred, a guess,
            which is why ``result["fields"]`` is the exact choice.

    Returns:
        Tensor[N, C, size, size].
    """
    check_tensor(images, "images")
    check_boxes(boxes, allow_degenerate=False)
    if images.dim() != 4 or len(images) != len(boxes):
        raise ValueError(
            f"images: expected a Tensor[{len(boxes)}, C, H, W] (one per box), got shape {tuple(images.shape)}"
        )
    if not torch.equal(boxes, boxes.round()):
        examples = boxes[boxes != boxes.round()][:3].tolist()
        raise ValueError(f"boxes: expected integer pixel coordinates, got values such as {examples}")
    N, C, H, W = images.shape
    sides = (boxes[:, 2:] - boxes[:, :2]).long()  # (N, 2) widths, heights
    if size is None:
        size = int(sides.max()) if N else 0
    check_number(size, "size", low=0, integer=True)
    if N and int(sides.max()) > size:
        raise ValueError(f"boxes: expected sides of at most size={size}, got {int(sides.max())}")
    crops = images.new_zeros(N, C, size, size)
    for index, box in enumerate(boxes.long().tolist()):
        x1, y1 = _pad_start(box[0], box[2], W, size), _pad_start(box[1], box[3], H, size)
        # Paste the part of the window [x1, x1 + size) that lies inside the image.
        left, top, right, bottom = max(x1, 0), max(y1, 0), min(x1 + size, W), min(y1 + size, H)
        if right > left and bottom > top:
            patch = images[index, :, top:bottom, left:right]  # (C, bottom - top, right - left)
            crops[index, :, top - y1 : bottom - y1, left - x1 : right - x1] = patch
    return crops


def _pad_start(first: int, last: int, length: int, size: int) -> int:
    """Where a window of ``size`` starts along one axis, given a box ``[first, last)`` that may be clipped."""
    missing = size - (last - first)
    if missing == 0:
        return first
    at_start, at_end = first <= 0, last >= length
    if at_start and not at_end:
        return last - size
    if at_start and at_end:
        return first - missing // 2
    return first
