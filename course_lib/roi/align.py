"""RoIAlign: RoI pooling without rounding (Sec. 3 of He et al. 2017, "Mask R-CNN").

RoI pooling snaps the box and its bins to whole feature cells, which shifts the pooled feature by
up to a cell (a stride of pixels) from the box: harmless for classification, harmful for masks.
RoIAlign keeps every coordinate exact. Each of the ``h x w`` bins is a fraction of a cell; it reads
a ``sampling_ratio x sampling_ratio`` grid of points inside it, each point by bilinear
interpolation of the four cells around it, and averages them.

This is the version to read. ``course_lib.roi.fast_align`` computes the same numbers with batched
matrix products (the models call it); both equal ``torchvision.ops.roi_align``, gradients included.
"""

from __future__ import annotations

import torch
from torch import Tensor

from course_lib.roi._arguments import check_align_options, check_pool_arguments, nothing_to_read


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
    outside the map reads 0; a point within one cell of the border reads the border. The gradient
    is autograd's through the interpolation: each point passes its share to its four cells.

    Departures from torchvision as in ``roi_pool``: boxes are cast to the input's dtype, and a batch
    index out of range raises ``ValueError``.

    Args:
        input (Tensor[B, C, H, W]): feature maps, any floating dtype.
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
    rois, (pooled_h, pooled_w), spatial_scale = check_pool_arguments(input, boxes, output_size, spatial_scale)
    check_align_options(sampling_ratio, aligned)
    B, C, H, W = input.shape  # batch, channels, height, width
    if rois.shape[0] == 0 or C * H * W == 0:
        return nothing_to_read(input, rois, (pooled_h, pooled_w))
    scale = rois.new_tensor(spatial_scale)  # torchvision computes in the input dtype

    feature_maps = input.unbind(0)  # one (C, H, W) map per image
    pooled = []
    for roi in rois:
        x1, y1, x2, y2 = roi[1:] * scale - (0.5 if aligned else 0.0)  # in cells, not rounded
        width, height = x2 - x1, y2 - y1
        if not aligned:
            width, height = width.clamp(min=1.0), height.clamp(min=1.0)  # malformed boxes: one cell
        rows = _sample_points(y1, height, pooled_h, sampling_ratio)  # (h, grid_h)
        cols = _sample_points(x1, width, pooled_w, sampling_ratio)  # (w, grid_w)
        grid_h, grid_w = rows.shape[1], cols.shape[1]
        feature_map = feature_maps[int(roi[0])]  # (C, H, W)
        values = bilinear_interpolate(feature_map, rows.flatten(), cols.flatten())  # (C, h*gh, w*gw)
        values = values.view(C, pooled_h, grid_h, pooled_w, grid_w)  # each bin's points apart
        # The mean of each bin's points; a bin with no point (an empty box, aligned=True) gives 0.
        pooled.append(values.sum(dim=(2, 4)) / max(grid_h * grid_w, 1))  # (C, h, w)
    return torch.stack(pooled)  # (K, C, h, w)


def _sample_points(start: Tensor, length: Tensor, num_bins: int, sampling_ratio: int) -> Tensor:
    """Where the points of each bin fall along one axis, in cells: Tensor[n, grid].

    Bin ``i`` spans ``start + i * bin`` to ``start + (i + 1) * bin`` with ``bin = length / n``; its
    ``grid`` points sit at the centres of ``grid`` equal parts of it. ``grid`` is ``sampling_ratio``,
    or ``ceil(bin)`` (about one point per cell) when ``sampling_ratio <= 0``.
    """
    bin_size = length / num_bins  # a fraction of a cell: no rounding
    grid = sampling_ratio if sampling_ratio > 0 else max(int(torch.ceil(bin_size)), 0)
    index = torch.arange(num_bins, dtype=start.dtype, device=start.device)[:, None]  # (n, 1)
    point = torch.arange(grid, dtype=start.dtype, device=start.device)[None, :]  # (1, grid)
    return start + index * bin_size + (point + 0.5) * bin_size / grid  # (n, grid)


def bilinear_interpolate(feature_map: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """The map read at every point ``(y[p], x[q])`` by bilinear interpolation: Tensor[C, P, Q].

    A point between four cells takes their values weighted by closeness: ``(1 - dy) (1 - dx)`` for
    the top-left cell, ``(1 - dy) dx`` for the top-right, and so on, where ``(dy, dx)`` is its
    offset from the top-left cell. Border rules are torchvision's (``bilinear_interpolate`` in
    ``roi_align_kernel.cpp``): see ``_neighbours``.

    Args:
        feature_map (Tensor[C, H, W]): one image's features.
        y (Tensor[P]): rows of the points, in cells (cell ``r`` has its centre at ``r``).
        x (Tensor[Q]): columns of the points.
    """
    C, H, W = feature_map.shape  # channels, height, width
    top, bottom, top_weight, bottom_weight = _neighbours(y, H)  # (P,) each
    left, right, left_weight, right_weight = _neighbours(x, W)  # (Q,) each
    # The four corners of every point: top-left, top-right, bottom-left, bottom-right.
    rows = torch.stack((top, top, bottom, bottom))[:, :, None]  # (4, P, 1)
    cols = torch.stack((left, right, left, right))[:, None, :]  # (4, 1, Q)
    row_weights = torch.stack((top_weight, top_weight, bottom_weight, bottom_weight))[:, :, None]  # (4, P, 1)
    col_weights = torch.stack((left_weight, right_weight, left_weight, right_weight))[:, None, :]  # (4, 1, Q)
    return (feature_map[:, rows, cols] * (row_weights * col_weights)).sum(dim=1)  # (C, 4, P, Q) -> (C, P, Q)


def _neighbours(position: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The two cells around each position along one axis, and their weights: four Tensor[P].

    A position beyond ``[-1, size]`` reads nothing (weights 0). One in ``[-1, 0]`` reads cell 0, one
    past the last cell reads the last cell: the map is extended by its border for one cell.
    """
    inside = (position >= -1.0) & (position <= size)  # (P,)
    position = position.clamp(min=0)
    low = position.floor().long()  # (P,)
    at_edge = low >= size - 1
    low = low.clamp(max=size - 1)
    high = torch.where(at_edge, low, low + 1)
    fraction = torch.where(at_edge, 0.0, position - low.to(position.dtype))  # (P,) offset from low
    return low, high, (1 - fraction) * inside, fraction * inside
