"""The receptive field of a unit: the input pixels that can change it, from the layers' geometry.

A unit of a convolutional layer sees a square window of the input. Going up one layer with kernel
``k``, stride ``s``, padding ``p`` and dilation ``d`` (effective kernel ``d * (k - 1) + 1``), the
standard recurrence (Araujo et al. 2019, "Computing Receptive Fields of Convolutional Neural
Networks", Distill, Eq. 1-3) updates three numbers::

    size  <- size + (d * (k - 1)) * jump     # the window grows by the kernel, in input pixels
    start <- start - p * jump                # padding shifts unit 0's window left/up
    jump  <- jump * s                        # distance between neighbouring units, in input pixels

starting from ``size = 1, jump = 1, start = 0`` at the input. Unit ``i`` of the layer then sees the
input pixels ``start + i * jump`` ... ``start + i * jump + size - 1`` along each axis; near the border
part of that window is padding, which :func:`unit_box` clips away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import nn

from course_lib._checks import check_number
from course_lib.visualization.hooks import get_layer

# Layers that act on each pixel on its own: they leave the geometry unchanged. Batch norm counts as
# its eval-mode per-pixel affine map (in training mode it mixes the whole batch's statistics).
POINTWISE_LAYERS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.BatchNorm2d,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
)
WINDOW_LAYERS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


@dataclass(frozen=True)
class RF:
    """The receptive field of a layer's units, the same along both axes.

    Attributes:
        size: side of the square window of input pixels one unit sees (padding included).
        stride: the jump, in input pixels, between the windows of neighbouring units.
        start: the input coordinate of the **top-left** pixel of unit ``(0, 0)``'s window; negative
            when the window reaches into the padding. Its centre is ``start + (size - 1) / 2``.
        layers: ``(kernel_size, stride, padding, dilation, ceil_mode)`` of each window layer on the
            path, which :func:`unit_box` uses to clip the window exactly; not compared by ``==``.
    """

    size: int
    stride: int
    start: int
    layers: tuple[tuple[int, int, int, int, bool], ...] = field(default=(), compare=False, repr=False)

    def center(self, index: int) -> float:
        """The input coordinate (pixel index, along one axis) of the centre of unit ``index``'s window."""
        return self.start + index * self.stride + (self.size - 1) / 2


def _square(value, what: str, module: nn.Module) -> int:
    """One int from an int or a pair of equal ints; non-square geometry is refused."""
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ValueError(
                f"{what}: expected the same value along both axes, got {tuple(value)} in {module}"
            )
        value = value[0]
    return int(value)


def _geometry(module: nn.Module) -> tuple[int, int, int, int]:
    """``(kernel_size, stride, padding, dilation)`` of a Conv2d, MaxPool2d or AvgPool2d."""
    kernel = _square(module.kernel_size, "kernel_size", module)
    stride = _square(module.stride if module.stride is not None else kernel, "stride", module)
    dilation = _square(getattr(module, "dilation", 1), "dilation", module)
    padding = module.padding
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            raise ValueError(
                f"padding_mode: expected 'zeros' (reflect/circular padding moves the field), "
                f"got {module.padding_mode!r} in {module}"
            )
        if padding == "valid":
            padding = 0
        elif padding == "same":  # PyTorch puts the smaller half of the padding first (stride is 1)
            padding = dilation * (kernel - 1) // 2
    return kernel, stride, _square(padding, "padding", module), dilation


def _leaves(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The leaf modules of a Sequential (nested ones expanded) or the module itself, in order."""
    if isinstance(module, nn.Sequential):
        return [(name, leaf) for child in module for name, leaf in _leaves(child)]
    return [(type(module).__name__, module)]


def _path(model: nn.Module, layer: str) -> list[nn.Module]:
    """The modules that run, in order, from the input up to and including ``layer``."""
    target = get_layer(model, layer)  # an unknown name lists the valid ones
    path, parent = [], model
    for part in layer.split("."):
        children = list(parent.named_children())
        names = [name for name, _ in children]
        position = names.index(part)
        if isinstance(parent, nn.Sequential):
            for _, earlier in children[:position]:
                path += [module for _, module in _leaves(earlier)]
        elif position != 0:
            # Only a Sequential says what runs before a child; elsewhere (forward() code) trust the
            # first child alone to receive the container's input, as `features` does in GAPClassifier.
            raise ValueError(
                f"layer: expected a path of nn.Sequential containers (or first children) from the input, "
                f"got {layer!r}, whose part {part!r} follows other modules in {type(parent).__name__}"
            )
        parent = parent.get_submodule(part)
    if list(target.children()) and not isinstance(target, nn.Sequential):
        kind = type(target).__name__
        raise ValueError(f"layer: expected a layer or an nn.Sequential, got {kind} {layer!r}")
    return path + [module for _, module in _leaves(target)]


def receptive_field(model: nn.Module, layer: str) -> RF:
    """The exact receptive field of the units of ``layer``, from the layers between it and the input.

    Supported on the path: Conv2d (zero padding, any dilation), MaxPool2d, AvgPool2d (square geometry)
    and point-wise layers (ReLU and friends, BatchNorm2d, Dropout, Identity), which leave the field as
    it is. The path is read from ``nn.Sequential`` containers, so ``model`` is a Sequential stack or,
    like :class:`~course_lib.models.classifier.GAPClassifier` and torchvision's VGG/AlexNet, holds
    one as its first child (``features``) that receives the image.

    Args:
        model: the network.
        layer: a layer name from :func:`~course_lib.visualization.hooks.layer_names`
            (``"features.relu3"``).

    Returns:
        An :class:`RF` with the window ``size``, the ``stride`` (jump) between units and the ``start``
        (top-left input coordinate) of unit ``(0, 0)``'s window.

    Raises:
        ValueError: unknown layer name, a layer of another kind on the path (Linear, adaptive pooling,
            transposed convolution, ...), non-square or non-zero padding geometry.
    """
    size, jump, start, layers = 1, 1, 0, []
    for module in _path(model, layer):
        if isinstance(module, POINTWISE_LAYERS):
            continue
        if not isinstance(module, WINDOW_LAYERS):
            supported = ", ".join(kind.__name__ for kind in WINDOW_LAYERS + POINTWISE_LAYERS)
            raise ValueError(
                f"layer: expected only {supported} up to {layer!r}, got {type(module).__name__} on the path"
            )
        kernel, stride, padding, dilation = _geometry(module)
        size += dilation * (kernel - 1) * jump
        start -= padding * jump
        jump *= stride
        layers.append((kernel, stride, padding, dilation, bool(getattr(module, "ceil_mode", False))))
    return RF(size=size, stride=jump, start=start, layers=tuple(layers))


def _output_size(length: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """Output length of a window layer, as PyTorch computes it (floor, or ceil for ``ceil_mode`` pools)."""
    span = length + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    size = math.ceil(span / stride) + 1
    return size - 1 if (size - 1) * stride >= length + padding else size  # last window must start inside


def _interval(rf: RF, index: int, length: int, axis: str) -> tuple[int, int]:
    """Input pixels ``[first, last + 1)`` that unit ``index`` reaches along one axis of ``length`` pixels."""
    lengths = [length]
    for geometry in rf.layers:
        lengths.append(_output_size(lengths[-1], *geometry))
    if not rf.layers:  # a hand-made RF: only the input border is known
        first = rf.start + index * rf.stride
        if first >= length or first + rf.size <= 0:
            raise ValueError(f"{axis}: expected a unit whose field overlaps the {length} pixels, got {index}")
        return max(first, 0), min(first + rf.size, length)
    if lengths[-1] < 1 or index >= lengths[-1]:
        valid = f"0..{lengths[-1] - 1}"
        raise ValueError(f"{axis}: expected {valid} for an input of {length} pixels, got {index}")
    first = last = index
    # Walk down: a window of units maps to the layer below, minus the padding and the units that
    # a strided layer dropped there (they exist in the formula's window but feed no unit).
    for geometry, below in zip(reversed(rf.layers), reversed(lengths[:-1]), strict=True):
        kernel, stride, padding, dilation, _ = geometry
        first = max(first * stride - padding, 0)
        last = min(last * stride - padding + dilation * (kernel - 1), below - 1)
    return first, last + 1


def unit_box(rf: RF, row: int, col: int, image_size: int | tuple[int, int]) -> tuple[int, int, int, int]:
    """The input region seen by unit ``(row, col)``, clipped to the image.

    Args:
        rf: the layer's field, from :func:`receptive_field`.
        row, col: the unit's position in the layer's feature map.
        image_size: ``(H, W)`` of the input, or one int for a square input.

    Returns:
        ``(x1, y1, x2, y2)`` in pixel-edge coordinates (the course's ``xyxy``): the window covers the
        pixels ``x1 .. x2 - 1`` and ``y1 .. y2 - 1``, so ``x2 - x1`` is its width. Away from the border
        the width is ``rf.size``. Near it the box is cut to the pixels that can reach the unit: the
        image, minus the padding of every layer and the last rows/columns that a strided layer drops
        when its stride does not divide its input (this needs ``rf.layers``; an ``RF`` built by hand
        is only clipped to the image). A dilated layer leaves holes inside the box.

    Raises:
        ValueError: the unit is not in the layer's map for this image size.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    check_number(height, "image_size", low=1, integer=True)
    check_number(width, "image_size", low=1, integer=True)
    check_number(row, "row", low=0, integer=True)
    check_number(col, "col", low=0, integer=True)
    y1, y2 = _interval(rf, row, height, "row")
    x1, x2 = _interval(rf, col, width, "col")
    return x1, y1, x2, y2
