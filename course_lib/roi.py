"""RoI pooling and RoIAlign: a fixed-size feature for every region of interest.

A two-stage detector proposes boxes of every size; its second stage needs one feature of fixed shape
``(C, h, w)`` per box. Both ops cut the box into an ``h x w`` grid of bins and pool each bin:

* ``roi_pool`` (Girshick 2015, "Fast R-CNN", Sec. 2.1): the box is rounded to whole cells of the
  feature map, each bin to whole cells too (start rounded down, end up), and the bin's maximum is
  kept. The two roundings misalign the feature with the box by up to a cell (a stride of pixels).
* ``roi_align`` (He et al. 2017, "Mask R-CNN", Sec. 3): no rounding at all; each bin averages
  ``sampling_ratio x sampling_ratio`` points read by bilinear interpolation.

Both follow torchvision's CPU kernels (``torchvision/csrc/ops/cpu/roi_*_kernel.cpp``) rounding for
rounding, so ``course_lib.roi`` and ``torchvision.ops`` are interchangeable, gradients included.
Two departures, both about bad input: boxes are cast to the input's dtype (torchvision requires the
same dtype), and a batch index out of range raises ``ValueError`` (torchvision reads out of bounds).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from course_lib._checks import check_boxes, check_number, check_tensor

# Temporaries of roi_pool (the values of every bin) and roi_align (rows of the feature map read for
# a chunk of RoIs) stay below this many elements (64 MB of float32); larger work goes by chunks.
_MAX_ELEMENTS = 2**24


# ----------------------------------------------------------------------------- argument checks


def _check_input(input: Tensor) -> Tensor:
    check_tensor(input, "input")
    if input.dim() != 4:
        raise ValueError(f"input: expected a Tensor[B, C, H, W], got shape {tuple(input.shape)}")
    if not input.is_floating_point():
        raise TypeError(f"input: expected a floating-point tensor, got dtype {input.dtype}")
    return input


def _pair(output_size: int | Sequence[int]) -> tuple[int, int]:
    sizes = (output_size, output_size) if isinstance(output_size, int) else output_size
    if isinstance(sizes, Tensor) or not isinstance(sizes, Sequence) or len(sizes) != 2:
        raise TypeError(f"output_size: expected an int or a pair (h, w), got {output_size!r}")
    for size in sizes:
        check_number(size, "output_size", low=1, integer=True)
    return int(sizes[0]), int(sizes[1])


def _check_positive(value: float, name: str) -> float:
    check_number(value, name)
    if value <= 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return float(value)


def _to_rois(boxes: Tensor | Sequence[Tensor], input: Tensor) -> Tensor:
    """``boxes`` as one ``Tensor[K, 5]`` (batch index, x1, y1, x2, y2) in the input's dtype."""
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
    rois = rois.detach().to(input.dtype)  # no gradient to the boxes, as in torchvision
    batch_index = rois[:, 0]
    bad = (batch_index < 0) | (batch_index >= input.shape[0]) | (batch_index != batch_index.floor())
    if bad.any():
        value = batch_index[bad][0].item()
        raise ValueError(
            f"boxes: expected batch indices that are integers in [0, {input.shape[0] - 1}], got {value!r}"
        )
    return rois


def _nothing_to_read(input: Tensor, rois: Tensor, pooled_h: int, pooled_w: int) -> Tensor:
    """Zeros of shape (K, C, h, w) for no RoI or an empty map, still attached to autograd."""
    sums = input.sum(dim=(2, 3))[rois[:, 0].long()]  # (K, C): none, or sums over no cell (zeros)
    return sums[:, :, None, None].expand(-1, -1, pooled_h, pooled_w).contiguous()  # (K, C, h, w)


def _round_half_away(values: Tensor) -> Tensor:
    """C's ``round``: halves go away from zero (``torch.round`` sends them to the even neighbour)."""
    truncated = values.trunc()
    return torch.where((values - truncated).abs() == 0.5, truncated + values.sign(), values.round())


# ----------------------------------------------------------------------------- RoI max pooling


def roi_pool(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> Tensor:
    """RoI max pooling (Sec. 2.1 of Girshick 2015, "Fast R-CNN"), as ``torchvision.ops.roi_pool``.

    Each box is scaled by ``spatial_scale`` and rounded to whole cells (C's ``round``, halves away
    from zero); its width is ``x2 - x1 + 1`` cells (both ends included; at least 1). Bin ``(i, j)``
    covers rows ``floor(i * bin_h)`` to ``ceil((i + 1) * bin_h)`` (end excluded) from the box's first
    row, with ``bin_h = height / h``, and likewise for columns; bins are clipped to the map. The
    output is the bin's maximum, 0 for a bin entirely outside the map. The gradient goes to the
    maximum's location (the first one in row-major order on ties), as torchvision's ``argmax``.

    Args:
        input (Tensor[B, C, H, W]): feature maps.
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): ``(batch index, x1, y1, x2, y2)`` per row, or
            one ``xyxy`` tensor per image; in input-image pixels.
        output_size: ``(h, w)`` of the pooled feature, or an int for a square one.
        spatial_scale: feature-map cells per input pixel, e.g. 1/16 for a stride-16 backbone.

    Returns:
        Tensor[K, C, h, w]: the pooled features, one per box, in the order of ``boxes``.
    """
    _check_input(input)
    pooled_h, pooled_w = _pair(output_size)
    spatial_scale = _check_positive(spatial_scale, "spatial_scale")
    rois = _to_rois(boxes, input)  # (K, 5)
    B, C, H, W = input.shape  # batch, channels, height, width
    K = rois.shape[0]
    if K == 0 or C * H * W == 0:
        return _nothing_to_read(input, rois, pooled_h, pooled_w)

    with torch.no_grad():
        scale = torch.tensor(spatial_scale, dtype=input.dtype)  # the kernel scales in the input dtype
        corners = _round_half_away(rois[:, 1:] * scale)  # (K, 4) whole cells
        row_start, row_end = _bin_bounds(corners[:, 1], corners[:, 3], pooled_h, H)  # (K, h) each
        col_start, col_end = _bin_bounds(corners[:, 0], corners[:, 2], pooled_w, W)  # (K, w) each
        bin_rows = row_end - row_start  # (K, h) rows in each bin, 0 if outside the map
        bin_cols = col_end - col_start  # (K, w)
        max_rows, max_cols = bin_rows.amax(dim=1), bin_cols.amax(dim=1)  # (K,) largest bin of each RoI
        # offset = i * max_cols + j of the maximum at row i, column j of its bin; -1: none found.
        offset = torch.full((K, pooled_h, pooled_w, C), -1, dtype=torch.int32)  # (K, h, w, C)
        # The map as a table of cells (rows of C values), each image row ending with a NaN cell.
        cells = torch.nn.functional.pad(input.detach().permute(0, 2, 3, 1), (0, 0, 0, 1), value=float("nan"))
        cells = cells.reshape(B * H * (W + 1), C)  # (B*H*(W+1), C)
        row_first_cell = (rois[:, :1].long() * H + row_start.clamp(max=H - 1)) * (W + 1)  # (K, h)
        # RoIs whose largest bins have the same size go together: one scan of the bins per group.
        group_key = max_rows * (W + 1) + max_cols  # (K,)
        for key in torch.unique(group_key).tolist():
            rows, cols = divmod(key, W + 1)
            members = torch.nonzero(group_key == key).flatten()
            for chunk in members.split(max(1, _MAX_ELEMENTS // (pooled_h * pooled_w * C))):
                offset[chunk] = _scan_bins(
                    cells, W, row_first_cell[chunk], bin_rows[chunk], col_start[chunk], bin_cols[chunk],
                    rows, cols,
                )
        found = offset >= 0  # (K, h, w, C) False for empty bins
        offset = offset.clamp(min=0).long()
        arg_row = row_start[:, :, None, None] + offset // max_cols.clamp(min=1)[:, None, None, None]
        arg_col = col_start[:, None, :, None] + offset % max_cols.clamp(min=1)[:, None, None, None]
        # Where nothing was found the kernel writes its initial value: 0 for an empty bin, -FLT_MAX
        # for a bin of -inf or NaN values only.
        empty = (bin_rows[:, :, None] == 0) | (bin_cols[:, None, :] == 0)  # (K, h, w)
        fill = torch.where(empty, 0.0, -torch.finfo(torch.float32).max).to(input.dtype)[..., None]

    # Read the maxima again, now with autograd: the gradient flows to these cells only.
    # torch.gather, whose backward is one scatter_add: the cell of each (RoI, bin, channel).
    batch = rois[:, 0].long()[:, None, None, None]  # (K, 1, 1, 1)
    cell = (batch * H + arg_row.clamp(0, H - 1)) * W + arg_col.clamp(0, W - 1)  # (K, h, w, C)
    table = input.permute(0, 2, 3, 1).reshape(B * H * W, C)  # (B*H*W, C)
    pooled = table.gather(0, cell.view(-1, C)).view(K, pooled_h, pooled_w, C)  # (K, h, w, C)
    pooled = torch.where(found, pooled, fill)
    return pooled.permute(0, 3, 1, 2).contiguous()  # (K, C, h, w)


def _bin_bounds(start: Tensor, end: Tensor, num_bins: int, size: int) -> tuple[Tensor, Tensor]:
    """First and one-past-last cell of each bin along one axis, clipped to ``[0, size]``: (K, n) each."""
    length = (end - start + 1).clamp(min=1)  # (K,) cells, both ends included; malformed boxes -> 1
    bin_size = length / num_bins  # (K,) in the input dtype, as the kernel
    index = torch.arange(num_bins, dtype=start.dtype)  # (n,)
    first = torch.floor(index[None] * bin_size[:, None]) + start[:, None]  # (K, n)
    last = torch.ceil((index[None] + 1) * bin_size[:, None]) + start[:, None]  # (K, n)
    first, last = first.clamp(0, size).long(), last.clamp(0, size).long()
    return first, torch.maximum(last, first)


def _scan_bins(
    cells: Tensor, width: int, row_first_cell: Tensor, bin_rows: Tensor,
    col_start: Tensor, bin_cols: Tensor, rows: int, cols: int,
) -> Tensor:
    """Offset ``i * cols + j`` of each bin's first maximum, -1 if none: (k, h, w, C).

    The kernel's loop, vectorized over RoIs, bins and channels: visit the cells of every bin in
    row-major order, and take a value when it is strictly greater than the best so far (so the
    first maximum wins on ties, and NaN never does). ``cells`` is the map as a table of
    ``B * H * (width + 1)`` rows of C values whose last column is NaN: a bin smaller than
    ``rows x cols`` reads that column where it has no cell, and NaN is never greater.
    ``row_first_cell`` (k, h) is the table row of each bin's first row, column 0.
    """
    k, h, w, C = row_first_cell.shape[0], row_first_cell.shape[1], col_start.shape[1], cells.shape[1]
    best = cells.new_full((k, h, w, C), -torch.finfo(torch.float32).max)  # the kernel's start value
    offset = torch.full((k, h, w, C), -1, dtype=torch.int32)
    for i in range(rows):
        row_cell = row_first_cell[:, :, None] + i * (width + 1)  # (k, h, 1)
        row_inside = (bin_rows > i)[:, :, None]  # (k, h, 1)
        for j in range(cols):
            inside = row_inside & (bin_cols > j)[:, None, :]  # (k, h, w)
            nan_cell = row_first_cell[:, :, None] + width  # (k, h, 1)
            index = torch.where(inside, row_cell + col_start[:, None, :] + j, nan_cell)  # (k, h, w)
            values = cells.index_select(0, index.flatten()).view(k, h, w, C)  # (k, h, w, C)
            offset.masked_fill_(values > best, i * cols + j)
            torch.fmax(best, values, out=best)  # fmax skips NaN
    return offset


# ----------------------------------------------------------------------------- RoIAlign


def roi_align(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign (Sec. 3 of He et al. 2017, "Mask R-CNN"), as ``torchvision.ops.roi_align``.

    The box is scaled by ``spatial_scale`` and not rounded; with ``aligned=False`` it is at least one
    cell wide and high. Each of its ``h x w`` bins averages a ``sampling_ratio x sampling_ratio``
    grid of points (adaptive: ``ceil(box height / h)`` rows of points, per RoI, when
    ``sampling_ratio <= 0``), each point read by bilinear interpolation. A point more than one cell
    outside the map reads 0; a point within one cell of the border reads the border.

    Bilinear weights factor into a row part and a column part, so one RoI's output is two matrix
    products, ``Y @ feature_map @ X.T`` per channel, with ``Y[i, r]`` the total weight of map row
    ``r`` in output row ``i`` (averaged over the bin's points) and ``X`` the same for columns; only
    the window of the map under the RoI is read. This is the same sum as torchvision's, in another
    order; autograd gives its gradient.

    Args:
        input (Tensor[B, C, H, W]): feature maps.
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): ``(batch index, x1, y1, x2, y2)`` per row, or
            one ``xyxy`` tensor per image; in input-image pixels.
        output_size: ``(h, w)`` of the pooled feature, or an int for a square one.
        spatial_scale: feature-map cells per input pixel, e.g. 1/16 for a stride-16 backbone.
        sampling_ratio: points per bin along each axis; ``<= 0`` for the adaptive count.
        aligned: shift the box by half a cell (``x * spatial_scale - 0.5``) so that pixel centres
            line up (Detectron2's fix; Mask R-CNN's paper keeps ``False``). Boxes are then not
            enlarged to one cell, and a box with ``x2 < x1`` gives 0.

    Returns:
        Tensor[K, C, h, w]: the pooled features, one per box, in the order of ``boxes``.
    """
    _check_input(input)
    pooled_h, pooled_w = _pair(output_size)
    spatial_scale = _check_positive(spatial_scale, "spatial_scale")
    check_number(sampling_ratio, "sampling_ratio", integer=True)
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned: expected a bool, got {type(aligned).__name__} {aligned!r}")
    rois = _to_rois(boxes, input)  # (K, 5)
    B, C, H, W = input.shape  # batch, channels, height, width
    K = rois.shape[0]
    if K == 0 or C * H * W == 0:
        return _nothing_to_read(input, rois, pooled_h, pooled_w)

    with torch.no_grad():
        scale = torch.tensor(spatial_scale, dtype=input.dtype)
        corners = rois[:, 1:] * scale - (0.5 if aligned else 0.0)  # (K, 4) in cells, not rounded
        size = corners[:, 2:] - corners[:, :2]  # (K, 2) width, height
        if not aligned:
            size = size.clamp(min=1.0)  # malformed boxes become one cell
        bin_w, bin_h = size[:, 0] / pooled_w, size[:, 1] / pooled_h  # (K,) each
        if sampling_ratio > 0:
            grid_h = grid_w = torch.full((K,), sampling_ratio, dtype=torch.long)
        else:
            grid_h, grid_w = torch.ceil(bin_h).long(), torch.ceil(bin_w).long()  # (K,) each
        # The kernel averages over grid_h * grid_w points; an empty grid (<= 0 points) gives 0.
        count = (grid_h * grid_w).clamp(min=1).to(input.dtype)  # (K,)
        empty = (grid_h <= 0) | (grid_w <= 0)
        row_weights = _axis_weights(corners[:, 1], bin_h, grid_h, pooled_h, H, empty)  # (K, h, H)
        col_weights = _axis_weights(corners[:, 0], bin_w, grid_w, pooled_w, W, empty)  # (K, w, W)
        row_weights /= count[:, None, None]

    # Only the window of rows and columns that a RoI's points touch matters: RoIs with windows of
    # the same (rounded-up) size are cropped together and go through two batched matrix products.
    first_row, window_h = _window(row_weights, H)  # (K,) each
    first_col, window_w = _window(col_weights, W)
    cells = input.permute(0, 2, 3, 1).reshape(B * H * W, C)  # (B*H*W, C) with autograd
    group_key = window_h * (W + 1) + window_w  # (K,)
    pieces, order = [], []
    for key in torch.unique(group_key).tolist():
        rows, cols = divmod(key, W + 1)
        members = torch.nonzero(group_key == key).flatten()
        for chunk in members.split(max(1, _MAX_ELEMENTS // (rows * cols * C))):
            row = first_row[chunk, None] + torch.arange(rows)  # (k, r) map rows of the window
            col = first_col[chunk, None] + torch.arange(cols)  # (k, c)
            y = row_weights[chunk].gather(2, row[:, None, :].expand(-1, pooled_h, -1))  # (k, h, r)
            x = col_weights[chunk].gather(2, col[:, None, :].expand(-1, pooled_w, -1))  # (k, w, c)
            cell = (rois[chunk, 0].long()[:, None, None] * H + row[:, :, None]) * W + col[:, None, :]
            crop = cells.index_select(0, cell.flatten()).view(-1, rows, cols, C)  # (k, r, c, C)
            pooled = torch.einsum("khr,krcC->khcC", y, crop)  # (k, h, c, C)
            pieces.append(torch.einsum("khcC,kwc->kChw", pooled, x))  # (k, C, h, w)
            order.append(chunk)
    output = input.new_zeros(K, C, pooled_h, pooled_w)  # (K, C, h, w)
    return output.index_copy(0, torch.cat(order), torch.cat(pieces))


def _window(weights: Tensor, size: int, multiple: int = 4) -> tuple[Tensor, Tensor]:
    """First index and length of the window holding every nonzero weight of each RoI: (K,) each.

    Lengths are rounded up to a multiple of ``multiple`` (so that few groups form), at most ``size``;
    the window then starts early enough to stay inside the map.
    """
    used = weights.ne(0).any(dim=1)  # (K, size)
    anything = used.any(dim=1)  # (K,)
    first = used.to(torch.uint8).argmax(dim=1)  # (K,) first used index
    last = size - 1 - used.flip(1).to(torch.uint8).argmax(dim=1)  # (K,)
    length = torch.where(anything, last - first + 1, 1)
    length = ((length + multiple - 1) // multiple * multiple).clamp(max=size)
    return torch.minimum(first, size - length), length


def _axis_weights(
    start: Tensor, bin_size: Tensor, grid: Tensor, num_bins: int, size: int, empty: Tensor
) -> Tensor:
    """Bilinear weight of each map row (or column) in each output row (or column): (K, n, size).

    Sampling point ``p`` of bin ``i`` is at ``start + i * bin + (p + 0.5) * bin / grid``; it reads 0
    when outside ``[-1, size]``, is clamped to 0 from below, and to the last cell at the far border:
    the boundary rules of torchvision's ``bilinear_interpolate``.
    """
    K = start.shape[0]
    num_points = max(int(grid.max()), 1)
    point = torch.arange(num_points, dtype=start.dtype)  # (P,)
    index = torch.arange(num_bins, dtype=start.dtype)  # (n,)
    grid_float = grid.clamp(min=1).to(start.dtype)[:, None, None]
    bin_size = bin_size[:, None, None]
    position = (start[:, None, None] + index[None, :, None] * bin_size) + (
        (point[None, None, :] + 0.5) * bin_size / grid_float
    )  # (K, n, P)
    used = (point[None, None, :] < grid[:, None, None]) & ~empty[:, None, None]  # (K, 1, P) grid points
    used = used & (position >= -1.0) & (position <= size)  # (K, n, P)
    position = position.clamp(min=0)
    low = position.floor().long()  # position >= 0: floor is C's (int) cast
    at_edge = low >= size - 1
    low = low.clamp(max=size - 1)
    high = torch.where(at_edge, low, low + 1)
    fraction = torch.where(at_edge, torch.zeros_like(position), position - low.to(start.dtype))  # (K, n, P)
    fraction = fraction * used
    weights = torch.zeros(K, num_bins, size, dtype=start.dtype)  # (K, n, size)
    weights.scatter_add_(2, low, (1 - fraction) * used)
    weights.scatter_add_(2, high, fraction)
    return weights
