"""Where the bins of RoI max pooling fall: the geometry of Sec. 2.1 of Girshick 2015, "Fast R-CNN".

RoI pooling cuts a box into an ``h x w`` grid of bins and keeps the maximum of each. The box and its
bins are snapped to whole cells of the feature map:

1. the box is scaled to feature cells (``x * spatial_scale``) and rounded, halves away from zero
   (C's ``round``; ``torch.round`` would send halves to the even neighbour);
2. its height is ``y2 - y1 + 1`` cells (both ends included, at least 1), so a bin is
   ``bin_h = height / h`` cells high, a fraction in general;
3. bin ``i`` covers rows ``y1 + floor(i * bin_h)`` to ``y1 + ceil((i + 1) * bin_h)``, the end
   excluded: neighbouring bins may share a row. Columns likewise. Bins are clipped to the map; a bin
   left with no cell is empty.

The arithmetic is torchvision's (``torchvision/csrc/ops/cpu/roi_pool_kernel.cpp``), in the input's
dtype, so that every bin falls on the same cells as there, in float16 too. ``roi_pool``, its fast
kernel and the RoI explorer (``course_lib.widgets.roi_geometry``) all take their bins from here.
"""

from __future__ import annotations

import torch
from torch import Tensor


def round_half_away(values: Tensor) -> Tensor:
    """Round to the nearest integer, halves away from zero: C's ``round`` (2.5 -> 3, -2.5 -> -3).

    The whole part (a cast to int truncates toward zero, as in C), then one step away from zero
    when the rest is at least a half. (Integer casts rather than ``trunc``/``floor``/``ceil`` here
    and below: on the CPU those run on every thread from a few thousand elements, and a kernel
    made of many small ops stalls on a busy machine when each op waits for its threads.)

    Args:
        values (Tensor): any floating tensor of finite values.

    Returns:
        Tensor: the rounded values, same shape and dtype.
    """
    whole = values.long()  # (...) truncated toward zero
    rest = values - whole.to(values.dtype)  # exact: the fraction bits of each value
    return (whole + (rest >= 0.5).long() - (rest <= -0.5).long()).to(values.dtype)


def bin_bounds(start: Tensor, end: Tensor, num_bins: int, size: int) -> tuple[Tensor, Tensor]:
    """First and one-past-last cell of each bin along one axis, clipped to ``[0, size]``.

    Args:
        start (Tensor[K]): first cell of each box (rounded, as ``round_half_away`` gives), float.
        end (Tensor[K]): last cell of each box, included; ``end < start`` counts as one cell.
        num_bins: bins along this axis (``h`` for rows, ``w`` for columns).
        size: cells of the map along this axis (``H`` or ``W``).

    Returns:
        (Tensor[K, n], Tensor[K, n]): int64 ``first`` and ``last`` with ``first <= last``; the bin
        covers cells ``first, ..., last - 1`` and is empty when ``first == last``.
    """
    length = (end.long() - start.long() + 1).clamp(min=1)  # (K,) cells, both ends included
    bin_size = length.to(start.dtype) / num_bins  # (K,) in the box's dtype, as the kernel
    index = torch.arange(num_bins, dtype=start.dtype, device=start.device)  # (n,)
    low = index[None] * bin_size[:, None]  # (K, n) >= 0, where bin i starts within the box
    high = (index[None] + 1) * bin_size[:, None]  # (K, n) where it ends
    floor_low = low.long()  # for values >= 0 a cast is the floor
    ceil_high = high.long() + (high > high.long().to(high.dtype)).long()
    first = (floor_low + start.long()[:, None]).clamp(0, size)
    last = (ceil_high + start.long()[:, None]).clamp(0, size)
    return first, torch.maximum(last, first)


def pool_bins(
    rois: Tensor, output_size: tuple[int, int], spatial_scale: float, map_size: tuple[int, int]
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The cells of every bin of every RoI: steps 1 to 3 above.

    Args:
        rois (Tensor[K, 5]): ``(batch index, x1, y1, x2, y2)`` per row, in input-image pixels.
        output_size: ``(h, w)``, bins per column and per row.
        spatial_scale: feature-map cells per input pixel.
        map_size: ``(H, W)`` of the feature map.

    Returns:
        ``(row_first, row_last, col_first, col_last)``: int64 ``Tensor[K, h]``, ``Tensor[K, h]``,
        ``Tensor[K, w]``, ``Tensor[K, w]``. Bin ``(i, j)`` of RoI ``k`` covers rows
        ``row_first[k, i]`` to ``row_last[k, i] - 1`` and columns ``col_first[k, j]`` to
        ``col_last[k, j] - 1``.
    """
    scale = rois.new_tensor(spatial_scale)  # the kernel scales in the input dtype
    corners = round_half_away(rois[:, 1:] * scale)  # (K, 4) whole cells: x1, y1, x2, y2
    row_first, row_last = bin_bounds(corners[:, 1], corners[:, 3], output_size[0], map_size[0])  # (K, h)
    col_first, col_last = bin_bounds(corners[:, 0], corners[:, 2], output_size[1], map_size[1])  # (K, w)
    return row_first, row_last, col_first, col_last


def max_start_value(input: Tensor) -> Tensor:
    """The value torchvision's kernel starts each bin's maximum from: ``-FLT_MAX`` in the input dtype.

    A cell replaces it only when strictly greater, so a bin of ``-inf`` or NaN cells only keeps it
    (and passes no gradient). In float16 and bfloat16 ``-FLT_MAX`` does not fit and becomes
    ``-inf``, as in C.

    Returns:
        Tensor[]: a scalar of the input's dtype and device.
    """
    return torch.tensor(-torch.finfo(torch.float32).max).to(device=input.device, dtype=input.dtype)
