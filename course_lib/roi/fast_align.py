"""Fast RoIAlign: the optimized equivalent of ``course_lib.roi.align``, which the models call.

``align.roi_align`` reads the points of one RoI at a time. Here, bilinear weights factor into a row
part and a column part, so one RoI's output is two matrix products, ``Y @ feature_map @ X.T`` per
channel: ``Y[i, r]`` is the total weight of map row ``r`` in output row ``i`` (averaged over the
bin's points) and ``X`` the same for columns. Only the window of the map under the RoI is read, and
RoIs whose windows have the same size go through batched products together. This is the same sum as
torchvision's, in another order; autograd gives its gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor

from course_lib.roi._arguments import check_align_options, check_pool_arguments, nothing_to_read

# Temporaries (rows of the feature map read for a chunk of RoIs) stay below this many elements
# (64 MB of float32); larger work goes by chunks.
_MAX_ELEMENTS = 2**24


def fast_roi_align(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign by batched matrix products: ``align.roi_align``'s result, faster.

    Same arguments, checks and result as ``course_lib.roi.roi_align`` and
    ``torchvision.ops.roi_align`` (up to the order of floating-point sums).

    Args:
        input (Tensor[B, C, H, W]): feature maps, any floating dtype.
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): ``(batch index, x1, y1, x2, y2)`` per row, or
            one ``xyxy`` tensor per image; in input-image pixels.
        output_size: ``(h, w)`` of the pooled feature, or an int for a square one.
        spatial_scale: feature-map cells per input pixel, e.g. 1/16 for a stride-16 backbone.
        sampling_ratio: points per bin along each axis; ``<= 0`` for the adaptive count.
        aligned: shift the box by half a cell so that pixel centres line up.

    Returns:
        Tensor[K, C, h, w]: the pooled features, one per box, in the order of ``boxes``.
    """
    rois, (pooled_h, pooled_w), spatial_scale = check_pool_arguments(input, boxes, output_size, spatial_scale)
    check_align_options(sampling_ratio, aligned)
    B, C, H, W = input.shape  # batch, channels, height, width
    K = rois.shape[0]
    if K == 0 or C * H * W == 0:
        return nothing_to_read(input, rois, (pooled_h, pooled_w))
    device = input.device

    with torch.no_grad():
        corners = rois[:, 1:] * rois.new_tensor(spatial_scale) - (0.5 if aligned else 0.0)  # (K, 4) cells
        size = corners[:, 2:] - corners[:, :2]  # (K, 2) width, height
        if not aligned:
            size = size.clamp(min=1.0)  # malformed boxes become one cell
        bin_w, bin_h = size[:, 0] / pooled_w, size[:, 1] / pooled_h  # (K,) each
        if sampling_ratio > 0:
            grid_h = grid_w = torch.full((K,), sampling_ratio, dtype=torch.long, device=device)
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
            row = first_row[chunk, None] + torch.arange(rows, device=device)  # (k, r) map rows of the window
            col = first_col[chunk, None] + torch.arange(cols, device=device)  # (k, c)
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
    the boundary rules of torchvision's ``bilinear_interpolate`` (see ``align._neighbours``).
    """
    K = start.shape[0]
    num_points = max(int(grid.max()), 1)
    point = torch.arange(num_points, dtype=start.dtype, device=start.device)  # (P,)
    index = torch.arange(num_bins, dtype=start.dtype, device=start.device)  # (n,)
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
    weights = start.new_zeros(K, num_bins, size)  # (K, n, size)
    weights.scatter_add_(2, low, (1 - fraction) * used)
    weights.scatter_add_(2, high, fraction)
    return weights
