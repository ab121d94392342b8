"""Histograms of Oriented Gradients, from scratch (Dalal and Triggs, CVPR 2005).

The four steps of Section 6 of the paper, each a short vectorized function:

1. ``image_gradients``: centred differences ``[-1, 0, 1]``; on a colour image each pixel takes the
   gradient of the channel where it is strongest (Section 6.2).
2. ``cell_histograms``: every pixel votes its gradient magnitude into the histogram of its cell,
   9 unsigned orientation bins over 0-180 degrees (Section 6.3), shared linearly between the two
   nearest bin centres.
3. ``normalize_blocks``: overlapping blocks of 2 x 2 cells, each normalized (L2-Hys by default:
   L2, clip at 0.2, L2 again; Section 6.4).
4. ``hog``: the normalized blocks, flattened into one feature vector.

``hog_glyph`` draws the classic picture: in each cell, one line per bin, across the bin's direction
(along the edge), as bright as the bin's vote.

Oracle: ``skimage.feature.hog(image, orientations, pixels_per_cell, cells_per_block, block_norm,
channel_axis=-1 for colour)`` gives the same vector as ``hog(..., interpolate=False)`` to 1e-6
(absolute; scikit-image sums each cell in float32). With the default ``interpolate=True`` the two
differ on purpose: scikit-image gives each pixel's whole vote to one bin, whereas Dalal and Triggs
share it between the two nearest bins, so a small rotation does not move a vote from one bin to the
next. Like scikit-image (and unlike the paper) there is no Gaussian window over the block and no
spatial (tri)linear interpolation between neighbouring cells.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from course_lib._checks import check_choice, check_number, check_pair

BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
EPS = 1e-5  # scikit-image's epsilon in every block norm


def as_float_image(image: Any, name: str = "image") -> np.ndarray:
    """Check an image and return it as float ``H x W`` (grey) or ``H x W x 3`` (colour).

    Accepts numpy arrays ``H x W``, ``H x W x 1`` or ``H x W x 3`` of any integer or float dtype
    (values kept as they are, as scikit-image does: 0-255 stays 0-255), and torch tensors
    ``Tensor[H, W]`` or ``Tensor[C, H, W]`` (torchvision layout). RGBA is refused: blend or drop
    the alpha channel first. float16 and float32 images become float32 (gradients are then taken
    in float32, as scikit-image does), everything else float64.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
        if image.ndim == 3:
            image = image.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array or a torch tensor, got {type(image).__name__}")
    if image.dtype == bool or not (np.issubdtype(image.dtype, np.integer) or
                                   np.issubdtype(image.dtype, np.floating)):
        raise TypeError(f"{name}: expected an integer or float image, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        raise ValueError(f"{name}: expected grey or RGB, got RGBA of shape {image.shape}; drop the alpha "
                         "channel (image[..., :3]) or blend it (skimage.color.rgba2rgb) first")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"{name}: expected an H x W or H x W x 3 image, got shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"{name}: expected a non-empty image, got shape {image.shape}")
    image = image.astype(np.float32 if image.dtype in (np.float16, np.float32) else np.float64)
    if not np.isfinite(image).all():
        raise ValueError(f"{name}: expected finite pixel values, got NaN or inf")
    return image


def image_gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred-difference gradients ``(g_row, g_col)``, each ``H x W``; zero on the border rows/cols.

    Colour: per pixel, the channel with the largest gradient magnitude (the first on ties).
    """
    image = as_float_image(image)
    g_row = np.zeros_like(image)
    g_col = np.zeros_like(image)
    g_row[1:-1] = image[2:] - image[:-2]  # [-1, 0, 1] down the rows
    g_col[:, 1:-1] = image[:, 2:] - image[:, :-2]  # and along the columns
    if image.ndim == 3:
        strongest = np.hypot(g_row, g_col).argmax(axis=2)[:, :, None]  # (H, W, 1)
        g_row = np.take_along_axis(g_row, strongest, axis=2)[:, :, 0]  # (H, W)
        g_col = np.take_along_axis(g_col, strongest, axis=2)[:, :, 0]  # (H, W)
    return g_row.astype(np.float64), g_col.astype(np.float64)


def orientation_votes(g_row: np.ndarray, g_col: np.ndarray, orientations: int = 9, interpolate: bool = True):
    """Each pixel's two votes: ``(bin_low, bin_high, weight_low, weight_high)``, arrays like ``g_row``.

    The unsigned orientation ``atan2(g_row, g_col) mod 180`` degrees falls between two bin centres
    ``(i + 0.5) * 180 / orientations``; the magnitude is shared linearly between them (wrapping
    around 180 degrees). Without interpolation the whole magnitude goes to the bin
    ``[i, i + 1) * 180 / orientations`` that contains the angle, as in scikit-image.
    """
    magnitude = np.hypot(g_row, g_col)
    angle = np.rad2deg(np.arctan2(g_row, g_col)) % 180  # unsigned: an edge and its reverse agree
    if not interpolate:
        # scikit-image compares with bin edges held in float32; the same edges give the same bins
        edges = (np.float32(180.0 / orientations) * np.arange(1, orientations, dtype=np.float32))
        bins = np.searchsorted(edges.astype(np.float64), angle, side="right")
        return bins, bins, magnitude, np.zeros_like(magnitude)
    position = angle / (180.0 / orientations) - 0.5  # in bin units, 0 = centre of bin 0
    low = np.floor(position)
    fraction = position - low
    low = low.astype(np.int64)
    return low % orientations, (low + 1) % orientations, magnitude * (1 - fraction), magnitude * fraction


def cell_histograms(
    image: Any, orientations: int = 9, pixels_per_cell: tuple[int, int] = (8, 8), interpolate: bool = True
) -> np.ndarray:
    """Orientation histogram of every cell: ``ndarray[Hc, Wc, orientations]``.

    ``Hc = H // cell_rows``, ``Wc = W // cell_cols``: pixels past the last whole cell are dropped,
    as in scikit-image. Each bin holds the cell's summed votes divided by the number of pixels in
    the cell (scikit-image's scaling; it cancels in the block normalization).
    """
    orientations = int(check_number(orientations, "orientations", low=1, integer=True))
    cell_rows, cell_cols = check_pair(pixels_per_cell, "pixels_per_cell", low=1)
    image = as_float_image(image)
    height, width = image.shape[:2]
    if height < cell_rows or width < cell_cols:
        raise ValueError(f"image: expected at least one cell of {cell_rows} x {cell_cols} pixels, "
                         f"got an image of {height} x {width}")
    num_rows, num_cols = height // cell_rows, width // cell_cols
    g_row, g_col = image_gradients(image)
    g_row = g_row[: num_rows * cell_rows, : num_cols * cell_cols]  # whole cells only
    g_col = g_col[: num_rows * cell_rows, : num_cols * cell_cols]
    rows = np.arange(num_rows * cell_rows) // cell_rows
    cols = np.arange(num_cols * cell_cols) // cell_cols
    cell = (rows[:, None] * num_cols + cols[None, :]) * orientations  # (H', W') first bin of the cell
    bin_low, bin_high, weight_low, weight_high = orientation_votes(g_row, g_col, orientations, interpolate)
    size = num_rows * num_cols * orientations
    histogram = np.bincount((cell + bin_low).ravel(), weight_low.ravel(), minlength=size)
    histogram += np.bincount((cell + bin_high).ravel(), weight_high.ravel(), minlength=size)
    return histogram.reshape(num_rows, num_cols, orientations) / (cell_rows * cell_cols)


def normalize_blocks(
    histograms: np.ndarray, cells_per_block: tuple[int, int] = (2, 2), block_norm: str = "L2-Hys"
) -> np.ndarray:
    """Normalize every overlapping block of cells (stride one cell), Section 6.4 of the paper.

    Args:
        histograms: ``ndarray[Hc, Wc, n]`` from :func:`cell_histograms`.
        cells_per_block: block size in cells ``(rows, cols)``.
        block_norm: ``"L1"`` v / (|v|_1 + eps); ``"L1-sqrt"`` its square root; ``"L2"``
            v / sqrt(|v|_2^2 + eps^2); ``"L2-Hys"`` L2, clipped at 0.2, then L2 again.

    Returns:
        ``ndarray[Hb, Wb, block_rows, block_cols, n]`` with ``Hb = Hc - block_rows + 1``.
    """
    check_choice(block_norm, BLOCK_NORMS, "block_norm")
    block_rows, block_cols = check_pair(cells_per_block, "cells_per_block", low=1)
    num_rows, num_cols = histograms.shape[:2]
    if num_rows < block_rows or num_cols < block_cols:
        raise ValueError(f"image: expected at least one block of {block_rows} x {block_cols} cells, "
                         f"got {num_rows} x {num_cols} cells")
    windows = np.lib.stride_tricks.sliding_window_view(histograms, (block_rows, block_cols), axis=(0, 1))
    blocks = windows.transpose(0, 1, 3, 4, 2)  # (Hb, Wb, n, br, bc) -> (Hb, Wb, br, bc, n)
    axes = (2, 3, 4)
    if block_norm.startswith("L1"):
        blocks = blocks / (np.abs(blocks).sum(axis=axes, keepdims=True) + EPS)
        return np.sqrt(blocks) if block_norm == "L1-sqrt" else blocks
    blocks = blocks / np.sqrt((blocks**2).sum(axis=axes, keepdims=True) + EPS**2)
    if block_norm == "L2-Hys":
        blocks = np.minimum(blocks, 0.2)  # no single gradient direction dominates the block
        blocks = blocks / np.sqrt((blocks**2).sum(axis=axes, keepdims=True) + EPS**2)
    return blocks


def hog(
    image: Any,
    orientations: int = 9,
    pixels_per_cell: tuple[int, int] = (8, 8),
    cells_per_block: tuple[int, int] = (2, 2),
    block_norm: str = "L2-Hys",
    *,
    interpolate: bool = True,
) -> np.ndarray:
    """The HOG feature vector of an image (Dalal and Triggs 2005), arguments as in scikit-image.

    Args:
        image: ``H x W`` grey or ``H x W x 3`` colour array (any int or float dtype), or a
            ``Tensor[C, H, W]``; see :func:`as_float_image`.
        orientations: number of unsigned orientation bins over 0-180 degrees.
        pixels_per_cell: cell size ``(rows, cols)`` in pixels.
        cells_per_block: block size ``(rows, cols)`` in cells; blocks overlap with a one-cell stride.
        block_norm: ``"L1"``, ``"L1-sqrt"``, ``"L2"`` or ``"L2-Hys"`` (the paper's best).
        interpolate: share each vote between the two nearest orientation bins (the paper). With
            ``False`` the result equals ``skimage.feature.hog`` with the same arguments to 1e-6.

    Returns:
        ``ndarray[Hb * Wb * block_rows * block_cols * orientations]`` (float64), in
        scikit-image's order: block row, block column, cell row, cell column, bin.
    """
    histograms = cell_histograms(image, orientations, pixels_per_cell, interpolate)
    return normalize_blocks(histograms, cells_per_block, block_norm).ravel()


def hog_glyph(histograms: np.ndarray, pixels_per_cell: tuple[int, int] = (8, 8)) -> np.ndarray:
    """The classic HOG picture: ``ndarray[Hc * cell_rows, Wc * cell_cols]``.

    Each cell holds one line per bin, through the cell's centre and perpendicular to the bin's
    mid-direction (gradients point across edges, so the line follows the edge), weighted by the
    bin's value. Same lines as ``skimage.feature.hog(..., visualize=True)``.

    Args:
        histograms: ``ndarray[Hc, Wc, n]`` from :func:`cell_histograms`.
        pixels_per_cell: the cell size used to compute them.
    """
    from skimage.draw import line  # a Bresenham line: drawing, not part of the method

    cell_rows, cell_cols = check_pair(pixels_per_cell, "pixels_per_cell", low=1)
    num_rows, num_cols, orientations = histograms.shape
    radius = max(min(cell_rows, cell_cols) // 2 - 1, 0)
    middle = np.pi * (np.arange(orientations) + 0.5) / orientations
    templates = np.zeros((orientations, cell_rows, cell_cols))  # (n, ch, cw) one line per bin
    centre_row, centre_col = cell_rows // 2, cell_cols // 2
    for index, angle in enumerate(middle):
        d_row, d_col = radius * np.sin(angle), radius * np.cos(angle)
        rr, cc = line(int(centre_row - d_col), int(centre_col + d_row),
                      int(centre_row + d_col), int(centre_col - d_row))
        templates[index, rr, cc] = 1
    glyph = np.einsum("ijn,nab->iajb", histograms, templates)  # (Hc, ch, Wc, cw)
    return glyph.reshape(num_rows * cell_rows, num_cols * cell_cols)
