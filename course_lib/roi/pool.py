"""RoI max pooling, bin by bin (Sec. 2.1 and 2.3 of Girshick 2015, "Fast R-CNN").

A two-stage detector proposes boxes of every size; its second stage needs one feature of fixed
shape ``(C, h, w)`` per box. RoI pooling cuts each box into an ``h x w`` grid of bins, snapped to
whole cells of the feature map (``course_lib.roi.bins``), and keeps the maximum of each bin: a
max-pooling whose window size adapts to the box.

The paper's backward pass (Sec. 2.3, Eq. 4) sends the gradient of each output to the one cell that
was the bin's maximum, its ``argmax``. So the forward pass below records that cell for every bin,
and reads the maxima there with ``torch.gather``, whose backward is exactly Eq. 4.

This is the version to read. ``course_lib.roi.fast_pool`` computes the same numbers with tables of
maxima (the models call it); both equal ``torchvision.ops.roi_pool``, gradients included.
"""

from __future__ import annotations

import torch
from torch import Tensor

from course_lib.roi._arguments import check_pool_arguments, nothing_to_read
from course_lib.roi.bins import max_start_value, pool_bins


def roi_pool(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> Tensor:
    """RoI max pooling (Sec. 2.1 of Girshick 2015, "Fast R-CNN"), as ``torchvision.ops.roi_pool``.

    Each box is scaled by ``spatial_scale`` and rounded to whole cells (halves away from zero); its
    width is ``x2 - x1 + 1`` cells (both ends included; at least 1). Bin ``(i, j)`` covers rows
    ``floor(i * bin_h)`` to ``ceil((i + 1) * bin_h)`` (end excluded) from the box's first row,
    with ``bin_h = height / h``, and likewise for columns; bins are clipped to the map
    (``course_lib.roi.bins.pool_bins``). The output is the bin's maximum, 0 for a bin entirely
    outside the map. The gradient goes to the maximum's cell (the first one in row-major order on
    ties), as torchvision's ``argmax``.

    Two departures from torchvision, both about bad input: boxes are cast to the input's dtype
    (torchvision requires the same dtype), and a batch index out of range raises ``ValueError``
    (torchvision reads out of bounds).

    Args:
        input (Tensor[B, C, H, W]): feature maps, any floating dtype.
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): ``(batch index, x1, y1, x2, y2)`` per row, or
            one ``xyxy`` tensor per image; in input-image pixels.
        output_size: ``(h, w)`` of the pooled feature, or an int for a square one.
        spatial_scale: feature-map cells per input pixel, e.g. 1/16 for a stride-16 backbone.

    Returns:
        Tensor[K, C, h, w]: the pooled features, one per box, in the order of ``boxes``.
    """
    rois, (pooled_h, pooled_w), spatial_scale = check_pool_arguments(input, boxes, output_size, spatial_scale)
    B, C, H, W = input.shape  # batch, channels, height, width
    K = rois.shape[0]
    if K == 0 or C * H * W == 0:
        return nothing_to_read(input, rois, (pooled_h, pooled_w))
    row_first, row_last, col_first, col_last = pool_bins(rois, (pooled_h, pooled_w), spatial_scale, (H, W))
    # torchvision's kernel takes a cell when it is greater than the best so far: NaN never is.
    cells = torch.where(input.isnan(), -torch.inf, input.detach())  # (B, C, H, W)

    # Forward: for every bin, where its maximum is (an index into input.flatten()); -1 if nowhere.
    argmax = torch.full((K, C, pooled_h, pooled_w), -1, dtype=torch.long, device=input.device)
    for k, image in enumerate(rois[:, 0].long().tolist()):
        for i, (top, bottom) in enumerate(zip(row_first[k].tolist(), row_last[k].tolist(), strict=True)):
            for j, (left, right) in enumerate(zip(col_first[k].tolist(), col_last[k].tolist(), strict=True)):
                if bottom > top and right > left:  # else the bin lies off the map: it pools nothing
                    argmax[k, :, i, j] = _bin_argmax(cells, image, top, bottom, left, right)

    # Read the maxima where they are. Backward, torch.gather sends each output's gradient to its
    # argmax cell and nowhere else: Eq. 4 of the paper.
    pooled = input.flatten().gather(0, argmax.clamp(min=0).flatten()).view(argmax.shape)  # (K, C, h, w)
    # No argmax: 0 for a bin off the map; for a bin of -inf or NaN only, the kernel's start value.
    empty = (row_last == row_first)[:, None, :, None] | (col_last == col_first)[:, None, None, :]
    nothing = torch.where(empty, 0.0, max_start_value(input)).to(input.dtype)  # (K, 1, h, w)
    return torch.where(argmax >= 0, pooled, nothing)


def _bin_argmax(cells: Tensor, image: int, top: int, bottom: int, left: int, right: int) -> Tensor:
    """Index in ``input.flatten()`` of the maximum of one bin, per channel: int64 Tensor[C].

    The first maximum in row-major order on ties (``Tensor.argmax`` returns the first), as in
    torchvision's kernel, which keeps a cell only when it is strictly greater than the best so far,
    starting from ``-FLT_MAX``; a bin with no cell above that gets -1.
    """
    B, C, H, W = cells.shape  # batch, channels, height, width
    window = cells[image, :, top:bottom, left:right].flatten(1)  # (C, rows * cols) row by row
    best = window.argmax(dim=1)  # (C,)
    row, col = top + best // (right - left), left + best % (right - left)  # (C,) each: in the map
    channel = torch.arange(C, device=cells.device)
    index = ((image * C + channel) * H + row) * W + col  # (C,) into input.flatten()
    beats_start = window.gather(1, best[:, None])[:, 0] > max_start_value(cells)
    return torch.where(beats_start, index, -1)
