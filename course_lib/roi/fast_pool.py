"""Fast RoI max pooling: the optimized equivalent of ``course_lib.roi.pool``, which the models call.

``pool.roi_pool`` takes the maximum of one bin at a time: a few Python steps for each of the
``K * h * w`` bins. Here every bin is answered by four table look-ups, the *sparse table* trick
for range-maximum queries, in two dimensions:

* ``table[a, b]`` holds, at cell ``(y, x)``, the maximum of the ``2**a x 2**b`` cells from
  ``(y, x)`` down and to the right. ``table[0, 0]`` is the map; each next table is the maximum of
  the one before and a shifted copy of it (one element-wise op over the map).
* A bin of ``rows x cols`` cells is covered by four such windows, with ``2**a <= rows < 2**(a+1)``
  (and ``b`` for columns), anchored at its four corners; they overlap, which a maximum does not
  mind. So the bin's maximum is the largest of four entries of ``table[a, b]``.

All the tables a call needs sit in one buffer, so that four ``index_select`` and three
``maximum`` answer a block of RoIs at once, copied straight into the output. The gradient needs the
*place* of each maximum, torchvision's ``argmax``, the first maximum in row-major order; when the
input requires a gradient, the tables carry places too, and the backward pass adds each output's
gradient there. Outputs and gradients equal ``pool.roi_pool``'s and ``torchvision.ops.roi_pool``'s.

Every op here works on fewer elements than ATen's grain size, so it runs on the calling thread
(see ``_blocks``). A multi-threaded op wakes the pool's other threads, which then spin for a few
milliseconds waiting for more work; on a busy two-core machine they take the CPU from the calling
thread, and a kernel of many ops crawls. For the same reason the geometry avoids ``floor``/``ceil``
(vectorized math that goes multi-threaded from 2048 elements) and advanced indexing.
"""

from __future__ import annotations

import torch
from torch import Tensor

from course_lib.roi._arguments import check_pool_arguments, nothing_to_read
from course_lib.roi.bins import max_start_value, pool_bins

_TABLE_ELEMENTS = 2**25  # all tables of one pass; with more channels, channels go in slices
_GRAIN = 32768  # ATen's grain size (at::internal::GRAIN_SIZE): smaller ops run on the calling thread


def fast_roi_pool(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> Tensor:
    """RoI max pooling by sparse-table look-ups: ``pool.roi_pool``'s result, faster.

    Same arguments, checks and result as ``course_lib.roi.roi_pool`` and ``torchvision.ops.roi_pool``.

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
    if rois.shape[0] == 0 or C * H * W == 0:
        return nothing_to_read(input, rois, (pooled_h, pooled_w))
    bins = pool_bins(rois, (pooled_h, pooled_w), spatial_scale, (H, W))  # (K, h), (K, h), (K, w), (K, w)
    if not (torch.is_grad_enabled() and input.requires_grad):
        return _bin_maxima(input, rois[:, 0].long(), *bins, track=False)[0]
    return _MaxAtPlaces.apply(input, rois[:, 0].long(), *bins)


class _MaxAtPlaces(torch.autograd.Function):
    """The bin maxima, whose gradient goes to the place of each maximum (torchvision's argmax)."""

    @staticmethod
    def forward(ctx, input: Tensor, batch: Tensor, *bins: Tensor) -> Tensor:
        output, argmax = _bin_maxima(input, batch, *bins, track=True)  # (K, C, h, w) each
        ctx.save_for_backward(argmax)
        ctx.input_shape = input.shape
        return output

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        (argmax,) = ctx.saved_tensors
        # One add per output entry, in the output's order as in torchvision's backward loop. A bin
        # that found no cell adds into one spare entry past the end, dropped afterwards.
        numel = ctx.input_shape.numel()
        grad = grad_output.new_zeros(numel + 1)
        grad.scatter_add_(0, argmax.flatten(), grad_output.reshape(-1))
        return grad[:numel].view(ctx.input_shape), None, None, None, None, None


def _bin_maxima(
    input: Tensor, batch: Tensor, row_first: Tensor, row_last: Tensor, col_first: Tensor, col_last: Tensor,
    track: bool,
) -> tuple[Tensor, Tensor | None]:
    """Maximum of every bin and, if ``track``, its place: its index in ``input.flatten()``.

    A bin with no place (empty, or no cell above ``-FLT_MAX``) gets ``input.numel()``, one past the
    last entry, so that the backward pass can add its gradient out of the way.

    Returns:
        (Tensor[K, C, h, w], int64 Tensor[K, C, h, w] or None)
    """
    B, C, H, W = input.shape  # batch, channels, height, width
    K, h, w = row_first.shape[0], row_first.shape[1], col_first.shape[1]
    row_level = _floor_log2(row_last - row_first)  # (K, h): 2**a <= rows < 2**(a+1); -1 for no row
    col_level = _floor_log2(col_last - col_first)  # (K, w)
    plan = _plan(row_level, col_level)
    num_a = plan[-1][0] + 1  # row levels per column level

    # Each bin's four windows start at its first row or 2**a rows before its end, and likewise for
    # columns: their rows in the flat buffer of tables (top-left, top-right, bottom-left, bottom-right).
    entries = torch.empty(4, K, h * w, dtype=torch.long, device=input.device)
    for rois in _blocks(K, 4 * h * w):
        levels = row_level[rois], col_level[rois]
        nonempty = (levels[0][:, :, None] >= 0) & (levels[1][:, None, :] >= 0)  # (k, h, w)
        a, b = levels[0].clamp(min=0), levels[1].clamp(min=0)  # an empty bin reads the spare row anyway
        slot = b[:, None, :] * num_a + a[:, :, None]  # (k, h, w) its table in the plan
        row_starts = torch.stack((row_first[rois], row_last[rois] - 2**a))  # (2, k, h)
        col_starts = torch.stack((col_first[rois], col_last[rois] - 2**b))  # (2, k, w)
        image_rows = (slot * B + batch[rois, None, None]) * H  # (k, h, w) row 0 of its table and image
        table_rows = image_rows[None] + row_starts[:, :, :, None]  # (2, k, h, w)
        corners = (table_rows[:, None] * W + col_starts[None, :, :, None, :]).flatten(3)  # (2, 2, k, h*w)
        spare = torch.tensor(len(plan) * B * H * W, device=input.device)  # the last row of the buffer
        torch.where(nonempty.flatten(1), corners.view(4, -1, h * w), spare, out=entries[:, rois])

    output = input.new_empty(K, C, h, w)
    argmax = torch.empty(K, C, h, w, dtype=torch.long, device=input.device) if track else None
    # Channels go in slices when the tables would be too large, or one RoI's bins too many.
    channel_step = max(1, min(C, _TABLE_ELEMENTS // (len(plan) * B * H * W + 1), _GRAIN // (h * w)))
    for c0 in range(0, C, channel_step):
        channels = slice(c0, min(C, c0 + channel_step))
        tables = _build_tables(input, channels, plan, track)  # (T*B*H*W + 1, c) values, places
        c = tables[0].shape[1]
        scratch_shape = (4, min(K, max(1, _GRAIN // (h * w * c))) * h * w, c)
        scratch = tuple(None if table is None else table.new_empty(scratch_shape) for table in tables)
        for rois in _blocks(K, h * w * c):
            corners = entries[:, rois].flatten(1)  # (4, n)
            # Outputs seen as (RoIs, bins, channels): the look-ups write into them directly.
            out = output[rois, channels].flatten(2).transpose(1, 2)
            arg = argmax[rois, channels].flatten(2).transpose(1, 2) if track else None
            _look_up(tables, corners, scratch, out, arg)
    return output, argmax


def _blocks(count: int, size: int) -> list[slice]:
    """Consecutive slices of ``range(count)`` whose items of ``size`` elements total under ``_GRAIN``.

    ATen runs an element-wise op, ``index_select`` or a copy of fewer than ``_GRAIN`` elements on
    the calling thread. (One item per slice when an item alone is larger.)
    """
    step = max(1, (_GRAIN - 1) // max(size, 1))
    return [slice(low, min(count, low + step)) for low in range(0, count, step)]


def _plan(row_level: Tensor, col_level: Tensor) -> list[tuple[int, int]]:
    """The tables ``(a, b)`` to build, in an order where each is built from one before it.

    Every row level up to the largest in use, for every column level up to the largest in use
    (a few tables may go unused; in exchange a bin's table is ``b * (max a + 1) + a``, arithmetic).
    ``table[0, b]`` comes from ``table[0, b - 1]`` (columns), ``table[a, b]`` from ``table[a - 1, b]``.
    """
    max_a, max_b = max(int(row_level.max()), 0), max(int(col_level.max()), 0)
    return [(a, b) for b in range(max_b + 1) for a in range(max_a + 1)]


def _build_tables(
    input: Tensor, channels: slice, plan: list[tuple[int, int]], track: bool
) -> tuple[Tensor, Tensor | None]:
    """The tables of ``plan`` for these channels, one after the other: ``(T*B*H*W + 1, c)``.

    Rows are cells ``((slot * B + b) * H + y) * W + x``, channels last so that a look-up reads a
    cell's channels side by side; table ``(a, b)`` is valid where its window stays on the map. The
    last row is the spare one that empty bins read: 0, with no place.
    """
    B, C, H, W = input.shape  # batch, channels, height, width
    map_ = input[:, channels].permute(0, 2, 3, 1)  # (B, H, W, c)
    c, cells, start = map_.shape[3], B * H * W, max_start_value(input)
    values = input.new_empty(len(plan) * cells + 1, c)
    tables = values[:-1].view(len(plan), B * H, W, c)  # rows of all images one after the other
    places = place_tables = None
    if track:
        index_dtype = torch.int32 if input.numel() < 2**31 - 1 else torch.long  # int32: half the bytes
        places = torch.empty(len(plan) * cells + 1, c, dtype=index_dtype, device=input.device)
        place_tables = places[:-1].view(len(plan), B * H, W, c)
        x = torch.arange(W, dtype=index_dtype, device=input.device)[:, None]  # (W, 1)
        channel = torch.arange(channels.start, channels.start + c, dtype=index_dtype, device=input.device)
    for image in range(B):
        for ys in _blocks(H, W * c):
            rows = slice(image * H + ys.start, image * H + ys.stop)  # rows b * H + y of the tables
            table = tables[0, rows]  # (r, W, c)
            # The kernel takes a cell only when it beats -FLT_MAX: NaN, -inf (float64: anything below) never.
            table.copy_(map_[image, ys]).nan_to_num_(nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)
            table.clamp_(min=float(start))
            if track:  # each cell's index in input.flatten(): ((b * C + channel) * H + y) * W + x
                y = torch.arange(ys.start, ys.stop, dtype=index_dtype, device=input.device)[:, None, None]
                torch.add(((image * C + channel) * H + y) * W, x, out=place_tables[0, rows])
                _choose(table == start, input.numel(), place_tables[0, rows])  # below the start: no place
    values[-1] = 0
    if track:
        places[-1] = input.numel()

    slot_of = {pair: slot for slot, pair in enumerate(plan)}
    for slot, (a, b) in enumerate(plan[1:], start=1):
        source = slot_of[(a - 1, b)] if a > 0 else slot_of[(a, b - 1)]
        shift = 2 ** (a - 1) if a > 0 else 2 ** (b - 1)
        width = W - 2**b + 1  # where the 2**a x 2**b window stays on the map
        for image in range(B):
            for ys in _blocks(H - 2**a + 1, width * c):
                rows = slice(image * H + ys.start, image * H + ys.stop)
                if a > 0:  # down the rows: the same columns, rows further down
                    second = (slice(rows.start + shift, rows.stop + shift), slice(0, width))
                else:  # along the columns
                    second = (rows, slice(shift, shift + width))
                _merge(tables, place_tables, source, slot, (rows, slice(0, width)), second)
    return values, places


def _merge(
    tables: Tensor, places: Tensor | None, source: int, target: int, first: tuple[slice, slice],
    second: tuple[slice, slice],
) -> None:
    """``tables[target][first]``: the larger of ``tables[source]`` at ``first`` and at ``second``.

    Every cell of the second window comes after every cell of the first in row-major order (same
    rows, further right; or rows further down), so on a tie the first window keeps the place.
    """
    first_values, second_values = tables[source][first], tables[source][second]
    if places is not None:
        first_places, second_places = places[source][first], places[source][second]
        torch.sub(second_places, first_places, out=places[target][first])
        places[target][first].mul_(second_values > first_values).add_(first_places)
    torch.maximum(first_values, second_values, out=tables[target][first])


def _look_up(
    tables: tuple[Tensor, Tensor | None], corners: Tensor, scratch: tuple[Tensor, Tensor | None],
    out: Tensor, arg: Tensor | None,
) -> None:
    """Write the largest of four windows per bin (and its place) into ``out`` (and ``arg``).

    Args:
        tables: the flat buffers of ``_build_tables``.
        corners (Tensor[4, n]): rows of the top-left, top-right, bottom-left, bottom-right windows.
        scratch: two buffers ``(4, >= n, c)`` for the windows' values and places, reused chunk to
            chunk (fresh memory would cost a page fault per 4 KB).
        out, arg (Tensor[k, h*w, c]): views of the outputs, ``n = k * h * w``.
    """
    n = corners.shape[1]
    found = [torch.index_select(tables[0], 0, rows, out=scratch[0][q, :n]) for q, rows in enumerate(corners)]
    if arg is None:
        torch.maximum(found[0], found[2], out=found[0])
        torch.maximum(found[1], found[3], out=found[1])
        # Into the scratch, then one copy: a maximum written across strides is twice as slow.
        out.copy_(torch.maximum(found[0], found[1], out=found[0]).view(out.shape))
        return
    where = [torch.index_select(tables[1], 0, rows, out=scratch[1][q, :n]) for q, rows in enumerate(corners)]
    _keep_larger(found, where, 0, 2, ties_to_first=True)  # top-left vs bottom-left: the upper one on ties
    _keep_larger(found, where, 1, 3, ties_to_first=True)
    # Side by side, the right window's first maximum may sit on an earlier row: compare places.
    _keep_larger(found, where, 0, 1, ties_to_first=False)
    out.copy_(found[0].view(out.shape))
    arg.copy_(where[0].view(arg.shape))


def _keep_larger(
    found: list[Tensor], where: list[Tensor], first: int, second: int, ties_to_first: bool
) -> None:
    """Window ``first`` becomes the larger of itself and window ``second``, entry by entry."""
    take = found[second] > found[first]
    if not ties_to_first:
        take |= (found[second] == found[first]) & (where[second] < where[first])
    _choose(take, where[second], where[first])
    torch.maximum(found[first], found[second], out=found[first])


def _choose(take: Tensor, other: Tensor | int, places: Tensor) -> None:
    """``places = where(take, other, places)``, in place, as ``places + take * (other - places)``.

    ``torch.where`` is an element-by-element loop on the CPU; this form runs vectorized, 10x faster.
    A tensor ``other`` is overwritten.
    """
    difference = torch.neg(places).add_(other) if isinstance(other, int) else other.sub_(places)
    places.add_(difference.mul_(take))


def _floor_log2(counts: Tensor) -> Tensor:
    """``floor(log2(n))`` of each count, -1 for 0: ``n = mantissa * 2**exponent``, mantissa in [0.5, 1)."""
    exponent = torch.frexp(counts.to(torch.float32)).exponent.long() - 1
    return torch.where(counts > 0, exponent, -1)
