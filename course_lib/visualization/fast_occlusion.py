"""Occlusion by incremental inference: for each window, recompute only what the window changed.

:func:`~course_lib.visualization.occlusion.occlusion` is the readable method (Zeiler & Fergus 2014,
Sec. 4.2): each occluded copy goes through the whole network. Yet an 8 x 8 window changes only a
small block of each layer's output: a 3 x 3 convolution grows the block by a pixel on each side, a
2 x 2 max pooling halves it. This is the exact incremental inference of Nakandala, Kumar &
Papakonstantinou 2019, "Incremental and Approximate Inference for Faster Occlusion-based Deep CNN
Explanations" (SIGMOD, the Krypton system; its approximate optimizations are left out):

1. run the network once on the image and keep every layer's output;
2. for each window, carry only the changed block of each layer's output: the layer's input is the
   cached one (zero-padded for a convolution, -inf padded for a max pooling) with the window's
   recomputed block pasted in; the crop of it that the new block reads goes through the layer with
   padding 0 (a pooling stays on its stride grid);
3. global average pooling of the last map, ``(sum(original) - sum(original block) + sum(new
   block)) / (h * w)``, then ``fc``.

As in Krypton, the windows are batched: each layer's blocks get one size, the largest any window
needs, and a block that would run past the map's border is moved inside it. A block larger than
needed is still exact: its extra pixels are recomputed from unchanged inputs.

Supported: a :class:`~course_lib.models.classifier.GAPClassifier` whose ``features`` holds only
``Conv2d`` (numeric zero padding; any stride, dilation, groups), ``BatchNorm2d`` with running
statistics, ``ReLU`` and ``MaxPool2d`` (``ceil_mode=False``). Any other model raises ``TypeError``:
:func:`occlusion` runs any model. The scores equal the full forward passes up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib._checks import check_number, check_tensor
from course_lib.models.classifier import GAPClassifier
from course_lib.visualization.hooks import eval_mode
from course_lib.visualization.occlusion import window_masks
from course_lib.visualization.targets import Target, as_batch, class_indices, target_scores

ELEMENTWISE = (nn.BatchNorm2d, nn.ReLU)
WINDOWED = (nn.Conv2d, nn.MaxPool2d)


def apply(layer: nn.Module, features: Tensor) -> Tensor:
    """``layer(features)``, never in place (an in-place ReLU would overwrite a cached map)."""
    return F.relu(features) if isinstance(layer, nn.ReLU) else layer(features)


def incremental_layers(model: nn.Module) -> list[nn.Module]:
    """The layers of ``model.features`` if incremental inference can run ``model``, else ``TypeError``."""
    if not isinstance(model, GAPClassifier) or any(
        getattr(type(model), name) is not getattr(GAPClassifier, name) for name in ("forward", "embed")
    ):
        raise TypeError(
            f"model: expected a GAPClassifier (features, global average pooling, fc), got "
            f"{type(model).__name__}; use occlusion() for any other model"
        )
    for name, layer in model.features.named_children():
        supported = isinstance(layer, ELEMENTWISE + WINDOWED)
        if isinstance(layer, nn.Conv2d):
            supported = not isinstance(layer.padding, str) and layer.padding_mode == "zeros"
        if isinstance(layer, nn.MaxPool2d):
            supported = not layer.ceil_mode and not layer.return_indices
        if isinstance(layer, nn.BatchNorm2d):
            supported = layer.running_mean is not None  # batch statistics would mix the windows
        if not supported:
            raise TypeError(
                f"model: expected features of Conv2d (numeric zero padding), BatchNorm2d (running stats), "
                f"ReLU and MaxPool2d (ceil_mode=False), got features.{name} = {layer}; use occlusion()"
            )
    return list(model.features.children())


def geometry(layer: nn.Module) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(kernel, stride, padding)`` of a convolution or max pooling, per axis; a dilated kernel's span."""
    kernel, dilation, stride, padding = (
        (value, value) if isinstance(value, int) else tuple(value)
        for value in (layer.kernel_size, layer.dilation, layer.stride, layer.padding)
    )
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)), stride, padding


def changed_span(start: Tensor, length: int, kernel: int, stride: int, padding: int, size: int):
    """Where a layer's output changes, along one axis, when its input changed on ``[start, start + length)``.

    Output ``y`` reads the input ``[y * stride - padding, y * stride - padding + kernel)``, so it
    changes for ``(start + padding - kernel) // stride + 1 <= y <= (start + length - 1 + padding) //
    stride``, cut to the output's ``size``.

    Args:
        start: Tensor[P] int64, each window's first changed input index.

    Returns:
        ``(first, n)``: Tensor[P] first output indices and one common length ``n`` (the largest
        any window needs, at least 1), with ``first + n <= size``.
    """
    first = ((start + padding - kernel) // stride + 1).clamp(min=0)  # (P,)
    last = ((start + length - 1 + padding) // stride).clamp(max=size - 1)  # (P,)
    n = min(size, max(1, int((last - first + 1).max())))
    return first.clamp(max=size - n), n


def pixels(maps: Tensor) -> Tensor:
    """Tensor[..., C, H, W] as a table of its pixels, Tensor[N, C] with ``N = ... * H * W``, row by row."""
    return maps.movedim(-3, -1).reshape(-1, maps.shape[-3])


def crop_index(top: Tensor, left: Tensor, size: tuple[int, int], width: int) -> Tensor:
    """Tensor[P, h, w]: the row-major index of each pixel of the crops at ``(top, left)`` of a map
    ``width`` pixels wide."""
    rows = top[:, None] + torch.arange(size[0], device=top.device)  # (P, h)
    cols = left[:, None] + torch.arange(size[1], device=top.device)  # (P, w)
    return rows[:, :, None] * width + cols[:, None, :]  # (P, h, w)


def read(table: Tensor, index: Tensor) -> Tensor:
    """The pixels ``table[index]`` (Tensor[N, C], Tensor[P, h, w]) as Tensor[P, C, h, w], channels last.

    ``F.embedding`` is the fastest row look-up on the CPU; channels-last memory is what its
    convolution and max pooling kernels run fastest on.
    """
    return F.embedding(index, table).permute(0, 3, 1, 2)  # (P, h, w, C) rows of the table -> (P, C, h, w)


def crops(maps: Tensor, top: Tensor, left: Tensor, size: tuple[int, int]) -> Tensor:
    """Tensor[P, C, h, w]: crops of ``size`` at ``(top[p], left[p])`` of one map (Tensor[C, H, W])."""
    return read(pixels(maps), crop_index(top, left, size, maps.shape[-1]))


def pasted_crops(original: Tensor, block: Tensor, block_top, block_left, top, left, size, padding, fill):
    """Tensor[P, C, h, w]: each window's crop of a layer's input, the padded original with its block in.

    Args:
        original: Tensor[C, H, W], the layer's input for the original image.
        block: Tensor[P, C, bh, bw], each window's recomputed block, at ``(block_top, block_left)``.
        top, left: Tensor[P], the crops' corners in the padded input's coordinates.
        size: ``(h, w)`` of the crops; padding: ``(ph, pw)``; fill: the padding's value.
    """
    (ph, pw), (h, w) = padding, size
    P, C, bh, bw = block.shape  # windows, channels, block height, block width
    padded = F.pad(original, (pw, pw, ph, ph), value=fill)  # (C, H + 2ph, W + 2pw)
    # Each crop pixel is read from the window's block where it falls inside it, else from the original.
    rows = (top - ph - block_top)[:, None] + torch.arange(h, device=block.device)  # (P, h) in the block
    cols = (left - pw - block_left)[:, None] + torch.arange(w, device=block.device)  # (P, w)
    inside = ((rows >= 0) & (rows < bh))[:, :, None] & ((cols >= 0) & (cols < bw))[:, None, :]  # (P, h, w)
    rows, cols = rows.clamp(0, bh - 1), cols.clamp(0, bw - 1)
    windows = torch.arange(P, device=block.device)[:, None, None] * (bh * bw)  # (P, 1, 1) each block's start
    in_block = windows + rows[:, :, None] * bw + cols[:, None, :]  # (P, h, w)
    in_original = crop_index(top, left, size, padded.shape[-1])  # (P, h, w)
    table = torch.cat((pixels(padded), pixels(block)))  # (H'W' + P*bh*bw, C) padded, then blocks
    return read(table, torch.where(inside, padded[0].numel() + in_block, in_original))  # (P, C, h, w)


def feature_maps(layers: list[nn.Module], image: Tensor) -> list[Tensor]:
    """The original image's maps: ``[image, layers[0](image), ...]``, each Tensor[C, H, W], L + 1 of them."""
    maps = [image]
    for layer in layers:
        maps.append(apply(layer, maps[-1][None])[0])  # (C', H', W')
    return maps


def first_blocks(image: Tensor, masks: Tensor, baseline) -> tuple[Tensor, Tensor, Tensor]:
    """``(block, top, left)``: each occluded copy's pixels in its mask's bounding box, one size for all
    (Tensor[P, C, h, w]), and the boxes' corners (Tensor[P]); a box runs past no border."""
    C, H, W = image.shape  # channels, height, width
    corners, size = [], []
    for axis, side in ((2, H), (1, W)):  # the rows a mask touches, then its columns
        hit = masks.any(dim=axis)  # (P, side)
        first = hit.int().argmax(dim=1)  # (P,) 0 for an empty mask
        last = side - 1 - hit.flip(1).int().argmax(dim=1)  # (P,)
        n = min(side, max(1, int(torch.where(hit.any(1), last - first + 1, 0).max())))
        corners.append(first.clamp(max=side - n))
        size.append(n)
    (top, left), size = corners, tuple(size)
    in_image = crop_index(top, left, size, W)  # (P, h, w)
    hidden = masks.flatten(1).gather(1, in_image.flatten(1)).view_as(in_image)  # (P, h, w)
    fills = torch.as_tensor(baseline, dtype=image.dtype, device=image.device).expand_as(image)  # (C, H, W)
    table = torch.cat((pixels(image), pixels(fills)))  # (2HW, C) the image, then the occluder
    return read(table, torch.where(hidden, H * W + in_image, in_image)), top, left  # (P, C, h, w)


def changed_block(layer: nn.Module, maps: tuple[Tensor, Tensor], block: Tensor, top: Tensor, left: Tensor):
    """One layer of incremental inference: the window's changed block of the layer's output.

    Args:
        layer: a layer of :func:`incremental_layers`.
        maps: the layer's original input and output, Tensor[C, H, W] and Tensor[C', H', W'].
        block: Tensor[P, C, h, w], each window's changed block of the input, at ``(top, left)``.

    Returns:
        ``(block, top, left)`` of the output: Tensor[P, C', h', w'], Tensor[P], Tensor[P].
    """
    if isinstance(layer, ELEMENTWISE):
        return apply(layer, block), top, left  # the block keeps its place
    kernel, stride, padding = geometry(layer)
    block_top, block_left = top, left
    sides = zip((top, left), block.shape[2:], kernel, stride, padding, maps[1].shape[1:], strict=True)
    (top, h), (left, w) = (changed_span(*side) for side in sides)
    crop_size = ((h - 1) * stride[0] + kernel[0], (w - 1) * stride[1] + kernel[1])
    fill = 0.0 if isinstance(layer, nn.Conv2d) else float("-inf")
    corner = (top * stride[0], left * stride[1])  # in the padded input's coordinates
    crop = pasted_crops(maps[0], block, block_top, block_left, *corner, crop_size, padding, fill)
    if isinstance(layer, nn.Conv2d):
        block = F.conv2d(crop, layer.weight, layer.bias, stride, 0, layer.dilation, layer.groups)
    else:
        block = F.max_pool2d(crop, layer.kernel_size, stride, 0, layer.dilation)
    assert block.shape[2:] == (h, w), (block.shape, h, w)
    return block, top, left  # (P, C', h', w')


def occluded_outputs(
    model: nn.Module, image: Tensor, masks: Tensor, baseline: float | Tensor = 0.0, batch_size: int = 1024
) -> Tensor:
    """``model(occlude(image, masks, baseline))`` by incremental inference: Tensor[P, K] class scores.

    Args:
        model: a supported :class:`GAPClassifier` (see the module's docstring); it runs in eval mode,
            without gradients.
        image: Tensor[C, H, W].
        masks: Tensor[P, H, W] bool, the hidden pixels of each copy (any shape: each mask's bounding
            box is its first changed block).
        baseline: the occluder's value, a number or a tensor broadcastable to Tensor[C, H, W].
        batch_size: masks per pass (memory against speed; the result is the same).
    """
    layers = incremental_layers(model)
    batch_size = int(check_number(batch_size, "batch_size", low=1, integer=True))
    if check_tensor(image, "image").dim() != 3 or image.shape[0] != model.in_channels:
        raise ValueError(f"image: expected a Tensor[{model.in_channels}, H, W], got {tuple(image.shape)}")
    if check_tensor(masks, "masks").dtype != torch.bool or masks.shape[1:] != image.shape[1:]:
        raise ValueError(
            f"masks: expected a bool Tensor[P, {image.shape[1]}, {image.shape[2]}], got "
            f"{masks.dtype} {tuple(masks.shape)}"
        )
    scores = [image.new_zeros(0, model.num_classes)]
    with eval_mode(model), torch.no_grad():
        maps = feature_maps(layers, image)  # L + 1 maps, computed once for every mask
        last = maps[-1]  # (C', H', W')
        for start in range(0, len(masks), batch_size):
            chunk = masks[start : start + batch_size].to(image.device)  # (P', H, W)
            block, top, left = first_blocks(image, chunk, baseline)  # (P', C, h, w)
            for layer, before, after in zip(layers, maps[:-1], maps[1:], strict=True):
                block, top, left = changed_block(layer, (before, after), block, top, left)
            # Global average pooling: only the block's share of the sum changes.
            replaced = crops(last, top, left, block.shape[2:]).sum(dim=(2, 3))  # (P', C') the original block
            sums = last.sum(dim=(1, 2)) - replaced + block.sum(dim=(2, 3))  # (P', C')
            scores.append(model.fc(sums / (last.shape[1] * last.shape[2])))  # (P', K)
    return torch.cat(scores)  # (P, K)


def fast_occlusion(
    model: nn.Module,
    images: Tensor,
    target: Target,
    window=8,
    stride=4,
    baseline: float | Tensor = 0.0,
    batch_size: int = 1024,
) -> Tensor:
    """:func:`~course_lib.visualization.occlusion.occlusion` of a GAP classifier, by incremental inference.

    Same arguments and result as ``occlusion`` (Captum's window positions), up to float rounding. A
    callable ``target`` receives the class scores of one image and of its P occluded copies,
    Tensor[1 + P, K], in place of the model's output that ``occlusion`` passes it.

    Args:
        model: a :class:`GAPClassifier` of Conv2d, BatchNorm2d, ReLU and MaxPool2d layers
            (``TypeError`` otherwise: use ``occlusion``).
        images: Tensor[B, C, H, W].
        target, window, stride, baseline: as in ``occlusion``.
        batch_size: windows per pass (memory against speed; the result is the same).

    Returns:
        Tensor[B, H, W]: the mean drop of the score over the windows covering each pixel.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"images: expected a Tensor[B, C, H, W], got {type(images).__name__}")
    incremental_layers(model)
    batch_size = int(check_number(batch_size, "batch_size", low=1, integer=True))
    batch = as_batch(images)
    B, C, H, W = batch.shape  # batch, channels, height, width
    if C != model.in_channels:
        raise ValueError(f"images: expected a Tensor[B, {model.in_channels}, H, W], got {tuple(batch.shape)}")
    masks = window_masks((H, W), window, stride).to(batch.device)  # (P, H, W)
    if B == 0:
        return batch.new_zeros(0, H, W)
    nothing_and_windows = torch.cat((masks.new_zeros(1, H, W), masks))  # (1 + P, H, W)
    is_callable = callable(target) and not isinstance(target, Tensor)
    classes = None if is_callable else class_indices(target, B)  # (B,)
    coverage = masks.sum(dim=0).to(batch)  # (H, W) windows over each pixel
    maps = []
    with eval_mode(model), torch.no_grad():
        for index in range(B):
            image_target = target if is_callable else int(classes[index])
            outputs = occluded_outputs(model, batch[index], nothing_and_windows, baseline, batch_size)
            scores = target_scores(outputs, image_target, len(outputs))  # (1 + P,) the image, then each copy
            drop = scores[0] - scores[1:]  # (P,)
            total = (drop[:, None, None] * masks.to(batch)).sum(dim=0)  # (H, W)
            maps.append(total / coverage)
    return torch.stack(maps)  # (B, H, W)
