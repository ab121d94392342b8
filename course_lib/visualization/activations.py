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

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib._checks import check_boxes, check_number, check_tensor
from course_lib.visualization.hooks import eval_mode, record
from course_lib.visualization.receptive_field import RF, receptive_field, unit_box


def _record_batches(
    model: nn.Module, images: Tensor, layer: str, batch_size: int, keep: Callable[[Tensor], Tensor]
) -> Tensor:
    """``keep(output)`` of ``layer`` for each batch of ``images``, concatenated; eval mode, no gradients.

    ``keep`` picks what to hold on to from each ``Tensor[b, C, h, w]`` batch (one channel, say),
    so a large image set never holds every channel at once.
    """
    kept = []
    with torch.no_grad(), eval_mode(model), record(model, layer) as recorded:
        for first in range(0, max(len(images), 1), batch_size):  # an empty batch still runs once
            model(images[first : first + batch_size])
            activation = recorded.activations[layer]  # (b, C, h, w)
            if activation.dim() != 4:
                raise ValueError(
                    f"layer: expected a layer with a (B, C, H, W) output, "
                    f"got shape {tuple(activation.shape)} at {layer!r}"
                )
            kept.append(keep(activation.detach()))
    return torch.cat(kept)


def layer_activations(model: nn.Module, images: Tensor, layer: str, batch_size: int = 128) -> Tensor:
    """Every channel of ``layer`` for each image, recorded in batches, in eval mode, without gradients.

    An explorer records a layer once and then moves between its channels without running the
    model again (:func:`mask_from_map` and :func:`top_from_maps` take what this returns).

    Args:
        model: the network; each module's train/eval mode is restored afterwards (:func:`eval_mode`).
        images: Tensor[N, C_in, H, W], as the model expects them.
        layer: a layer name (:func:`~course_lib.visualization.hooks.layer_names`) with a
            ``(B, C, h, w)`` output.
        batch_size: images per forward pass.

    Returns:
        Tensor[N, C, h, w], detached.
    """
    check_tensor(images, "images")
    if images.dim() != 4:
        raise ValueError(f"images: expected a Tensor[N, C, H, W], got shape {tuple(images.shape)}")
    check_number(batch_size, "batch_size", low=1, integer=True)
    return _record_batches(model, images, layer, batch_size, keep=lambda activation: activation)


def _channel_maps(model: nn.Module, images: Tensor, layer: str, channel: int, batch_size: int) -> Tensor:
    """``channel``'s map at ``layer`` for each image, Tensor[B, h, w]; keeps one channel per batch only."""
    check_number(channel, "channel", integer=True)  # its range is known once the layer has run

    def keep_channel(activation: Tensor) -> Tensor:  # (b, C, h, w) -> (b, h, w)
        if not 0 <= channel < activation.shape[1]:
            raise ValueError(f"channel: expected 0..{activation.shape[1] - 1}, got {channel}")
        return activation[:, channel]

    return _record_batches(model, images, layer, batch_size, keep=keep_channel)  # (B, h, w)


def mask_from_map(activation: Tensor, size: tuple[int, int], threshold: float) -> dict[str, Tensor]:
    """Threshold one recorded channel map into a mask of the image: :func:`activation_mask`'s arithmetic.

    The map is clamped at 0 (negative values count as not firing), divided by its own maximum,
    upsampled bilinearly to ``size`` and compared with ``threshold``. A map that is zero everywhere
    gives an all-zero ``upsampled`` and an empty mask, never NaN.

    Args:
        activation: Tensor[h, w], one channel's map for one image.
        size: ``(H, W)`` of the image.
        threshold: in [0, 1]; the mask keeps the pixels whose upsampled value is ``>= threshold``
            and above 0.

    Returns:
        ``{"activation": Tensor[h, w]`` (the input), ``"upsampled": Tensor[H, W]`` in [0, 1],
        ``"mask": bool Tensor[H, W]}``.
    """
    check_tensor(activation, "activation")
    if activation.dim() != 2:
        raise ValueError(f"activation: expected a Tensor[h, w], got shape {tuple(activation.shape)}")
    check_number(threshold, "threshold", low=0.0, high=1.0)
    positive = activation.clamp(min=0)
    peak = positive.max()
    normalized = positive / peak if peak > 0 else torch.zeros_like(positive)  # (h, w) in [0, 1]
    upsampled = F.interpolate(
        normalized[None, None], size=tuple(size), mode="bilinear", align_corners=False
    )[0, 0].clamp(0, 1)  # (H, W); bilinear weights are convex, clamp trims rounding
    mask = (upsampled >= threshold) & (upsampled > 0)  # (H, W)
    return {"activation": activation, "upsampled": upsampled, "mask": mask}


def top_from_maps(maps: Tensor, rf: RF, k: int) -> dict[str, Tensor]:
    """Rank recorded maps of one channel: each image's strongest unit, the ``k`` strongest images.

    This is :func:`top_activations`' ranking on maps already recorded (with
    :func:`layer_activations`): ties go to the first unit in row-major order within an image and
    to the lower index between images.

    Args:
        maps: Tensor[N, h, w], one channel's map for each image.
        rf: the receptive field of the layer's units (:func:`receptive_field`).
        k: how many images; fewer are returned when there are fewer.

    Returns:
        A dict with ``"indices"``, ``"rows"``, ``"cols"`` (int64 Tensor[k]: image and unit position),
        ``"values"`` (Tensor[k]) and ``"fields"`` (float Tensor[k, 4] xyxy, each unit's whole
        window, which may reach outside the image).
    """
    check_tensor(maps, "maps")
    if maps.dim() != 3:
        raise ValueError(f"maps: expected a Tensor[N, h, w], got shape {tuple(maps.shape)}")
    check_number(k, "k", low=0, integer=True)
    N, h, w = maps.shape
    best, where = maps.reshape(N, h * w).max(dim=1)  # (N,) each image's strongest unit, first of ties
    order = torch.sort(best, descending=True, stable=True).indices[:k]  # (k,)
    rows, cols = where[order] // w, where[order] % w  # (k,), (k,)
    x1, y1 = rf.start + cols * rf.stride, rf.start + rows * rf.stride  # (k,), (k,)
    fields = torch.stack([x1, y1, x1 + rf.size, y1 + rf.size], dim=1).float()  # (k, 4)
    return {"indices": order, "rows": rows, "cols": cols, "values": best[order], "fields": fields}


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
    return mask_from_map(activation, tuple(image.shape[-2:]), threshold)


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
    top = top_from_maps(maps, rf, k)
    size = tuple(images.shape[-2:])
    boxes = [unit_box(rf, row, col, size) for row, col in zip(top["rows"].tolist(), top["cols"].tolist(),
                                                             strict=True)]
    return {**top, "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "rf": rf}


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


def on_mask_share(
    model: nn.Module,
    layer: str,
    images: Tensor,
    masks: Tensor,
    threshold: float = 0.5,
    channel: int | None = None,
    batch_size: int = 128,
) -> dict[str, Tensor]:
    """How much of each image's activation mask lies on the object: :func:`activation_mask` over a set.

    One example of a mask says little; this measures, for every image, the share of its mask
    (at ``threshold``, as :func:`mask_from_map` makes it) that falls on the object's pixels.
    Compare the mean share with the mean ``object_area``: a mask placed at random would land on
    the object that often, so only a share above it says the channel fires *on* the object.

    Args:
        model: the network, run in eval mode for the call (each module's mode is restored).
        layer: a layer name with a ``(B, C, h, w)`` output.
        images: Tensor[N, C_in, H, W].
        masks: Tensor[N, H, W] of {0, 1} or bool, the object's pixels in each image.
        threshold: in [0, 1], as in :func:`activation_mask`.
        channel: one channel for every image; ``None`` (default) takes, for each image, the channel
            with the strongest response on it (the largest value of its map), as the lecture's
            example shows one channel that fires on the image.
        batch_size: images per forward pass.

    Returns:
        A dict of Tensor[N]: ``"share"`` (|mask ∩ object| / |mask|; 0 where the mask is empty, see
        ``"mask_area"``), ``"mask_area"`` and ``"object_area"`` (fractions of the image) and
        ``"channels"`` (int64, the channel used for each image).
    """
    check_tensor(images, "images")
    check_tensor(masks, "masks")
    if images.dim() != 4:
        raise ValueError(f"images: expected a Tensor[N, C, H, W], got shape {tuple(images.shape)}")
    N, _, H, W = images.shape
    if masks.shape != (N, H, W):
        raise ValueError(
            f"masks: expected a Tensor[{N}, {H}, {W}] (one per image), got shape {tuple(masks.shape)}"
        )
    if not torch.all((masks == 0) | (masks == 1)):
        raise ValueError("masks: expected values in {0, 1}")
    check_number(threshold, "threshold", low=0.0, high=1.0)
    check_number(batch_size, "batch_size", low=1, integer=True)
    if channel is not None:
        check_number(channel, "channel", integer=True)
    maps = layer_activations(model, images, layer, batch_size)  # (N, C, h, w)
    if channel is None:
        channels = maps.amax(dim=(2, 3)).argmax(dim=1)  # (N,) each image's strongest channel
    elif 0 <= channel < maps.shape[1]:
        channels = torch.full((N,), channel, dtype=torch.int64)
    else:
        raise ValueError(f"channel: expected 0..{maps.shape[1] - 1}, got {channel}")
    objects = masks.bool()
    share, mask_area = torch.zeros(N), torch.zeros(N)
    for index in range(N):
        mask = mask_from_map(maps[index, channels[index]], (H, W), threshold)["mask"]  # (H, W)
        covered = int(mask.sum())
        mask_area[index] = covered / (H * W)
        share[index] = int((mask & objects[index]).sum()) / covered if covered else 0.0
    object_area = objects.flatten(1).float().mean(dim=1)  # (N,)
    return {"share": share, "mask_area": mask_area, "object_area": object_area, "channels": channels}
