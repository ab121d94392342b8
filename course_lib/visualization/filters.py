"""Look at what a convolution has learned by drawing its weights, as ZFNet did.

Zeiler and Fergus 2014 ("Visualizing and Understanding Convolutional Networks", Fig. 5 and 6)
showed the first layer's filters of a trained network as small colour images: oriented edges,
colour blobs and gratings, the same few patterns every well-trained CNN learns. The first layer
reads RGB pixels directly, so a ``3 x k x k`` kernel *is* an RGB image once its values are mapped
to [0, 1].

Deeper layers read feature maps, not colours. A kernel of ``conv2`` with 32 input channels is 32
unrelated greyscale ``k x k`` images, and :func:`channel_filters` returns them one input channel at
a time. They are hard to read, which is the lecture's point: see that function's docstring.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from course_lib._checks import check_number, check_tensor
from course_lib.visualization.hooks import get_layer, layer_names

__all__ = ["channel_filters", "filter_grid", "first_layer_filters"]


def _conv_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Conv2d]:
    """The ``nn.Conv2d`` named (or given as) ``layer``; anything else is a ValueError naming it."""
    if isinstance(layer, nn.Module):
        name, module = type(layer).__name__, layer
    else:
        name, module = repr(layer), get_layer(model, layer)  # unknown name -> lists the valid ones
    if not isinstance(module, nn.Conv2d):
        convs = ", ".join(repr(conv) for conv in layer_names(model, (nn.Conv2d,)))
        raise ValueError(
            f"layer: expected an nn.Conv2d (one of {convs}), got {type(module).__name__} {name}"
        )
    return name, module


def _scale(values: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Min-max scale ``values`` to [0, 1] over ``dims``; a constant block becomes 0.5 (never NaN)."""
    low = values.amin(dim=dims, keepdim=True)
    high = values.amax(dim=dims, keepdim=True)
    span = high - low
    return torch.where(span > 0, (values - low) / span.clamp_min(1e-12), torch.full_like(values, 0.5))


def first_layer_filters(model: nn.Module, layer: str | None = None, per_filter: bool = True) -> Tensor:
    """The filters of the first convolution, scaled to [0, 1] so that each one is an image.

    Args:
        model: a CNN.
        layer: the name of the convolution to read; by default the first ``nn.Conv2d`` in
            :func:`~course_lib.visualization.hooks.layer_names` order.
        per_filter: if True (the default, as in ZFNet's figure), each filter is min-max scaled on
            its own, so every filter uses the full range and its pattern is visible; if False,
            all filters share one scale, so a filter with small weights looks faint (its
            magnitude relative to the others shows).

    Returns:
        Tensor[N, C, k, k] in [0, 1], N output channels and C input channels (3 for RGB input,
        1 for greyscale such as the digits). A filter whose weights are all equal becomes 0.5.
    """
    if layer is None:
        convs = layer_names(model, (nn.Conv2d,))
        if not convs:
            raise ValueError(f"model: expected at least one nn.Conv2d, got none in {type(model).__name__}")
        layer = convs[0]
    _, conv = _conv_layer(model, layer)
    weight = conv.weight.detach().float()  # (N, C, k, k)
    dims = (1, 2, 3) if per_filter else (0, 1, 2, 3)
    return _scale(weight, dims) if weight.numel() else weight.clone()


def filter_grid(filters: Tensor, ncols: int = 8, pad_value: float = 1.0) -> Tensor:
    """Lay out small images in a grid, row by row, with 1-pixel separators between them.

    The same layout as ``torchvision.utils.make_grid(filters, nrow=ncols, padding=1)`` without the
    outer border: ``ncols`` is capped at N, and unused cells at the end of the last row are filled
    with ``pad_value``, like the separators.

    Args:
        filters: Tensor[N, C, k, k], for example from :func:`first_layer_filters`.
        ncols: images per row.
        pad_value: the value of the separators (1.0 draws white lines on a [0, 1] image).

    Returns:
        Tensor[C, H, W] with ``H = rows * (k + 1) - 1`` and ``W = cols * (k + 1) - 1``, where
        ``cols = min(ncols, N)`` and ``rows = ceil(N / cols)``; Tensor[C, 0, 0] if N is 0.
    """
    check_tensor(filters, "filters")
    if filters.dim() != 4:
        raise ValueError(f"filters: expected a Tensor[N, C, k, k], got shape {tuple(filters.shape)}")
    check_number(ncols, "ncols", low=1, integer=True)
    check_number(pad_value, "pad_value")
    N, C, kh, kw = filters.shape  # filters, channels, kernel height and width
    if N == 0:
        return filters.new_zeros(C, 0, 0)
    cols = min(ncols, N)
    rows = math.ceil(N / cols)
    grid = filters.new_full((C, rows * (kh + 1) - 1, cols * (kw + 1) - 1), pad_value)
    for index in range(N):
        top, left = (index // cols) * (kh + 1), (index % cols) * (kw + 1)
        grid[:, top : top + kh, left : left + kw] = filters[index]
    return grid


def channel_filters(
    model: nn.Module, layer: str | nn.Module, out_channel: int, normalize: bool = True
) -> Tensor:
    """The kernel of one output channel of a deeper convolution, one greyscale image per input channel.

    Why this gets hard to read: a 3x3 kernel of a layer with 64 input channels is 64 tiny 3x3
    greyscale images for *one* output channel. Each weights a feature map, not a colour, and that
    map's meaning is itself defined by the layer below. What the unit detects comes from how the
    64 slices combine, not from any single weight, so the picture says little. This is why the
    lecture (after ZFNet) moves from weights to activations: the patches and images that make a
    unit fire.

    Args:
        model: a CNN.
        layer: the name of an ``nn.Conv2d`` in ``model`` (or the module itself).
        out_channel: which output channel (filter) to show, in ``0..C_out-1``.
        normalize: min-max scale to [0, 1] with one scale shared by the whole kernel, so the
            slices can be compared with each other (a faint slice has small weights); if False,
            return the raw weights.

    Returns:
        Tensor[C_in, k, k]; show it with ``filter_grid(result[:, None])``.
    """
    name, conv = _conv_layer(model, layer)
    num_out = conv.out_channels
    if isinstance(out_channel, bool) or not isinstance(out_channel, int):
        raise TypeError(f"out_channel: expected an int, got {type(out_channel).__name__} {out_channel!r}")
    if not 0 <= out_channel < num_out:
        raise ValueError(f"out_channel of {name}: expected 0..{num_out - 1}, got {out_channel}")
    kernel = conv.weight.detach().float()[out_channel]  # (C_in, k, k)
    return _scale(kernel, (0, 1, 2)) if normalize else kernel.clone()
