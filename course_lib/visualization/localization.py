"""Weakly supervised localization: a box from an explanation map (Zhou et al. 2016, "Learning Deep
Features for Discriminative Localization", Sec. 3.1).

The CAM paper turns a map into a box in two steps: keep the pixels whose value is at least 20% of
the map's maximum, then take the box around the largest connected component of what is kept. The
classifier never saw a box; if that box overlaps the object's (IoU at least 0.5, the ILSVRC rule),
the map has localized the object.

:func:`connected_components` is the labelling step, written out as a breadth-first search so it can
be read; it gives the labels of ``scipy.ndimage.label`` with 8-connectivity (diagonal neighbours
touch), numbered in the order a row-by-row scan meets each component. Boxes are ``xyxy`` on pixel
edges: a component spanning columns 3 to 7 has ``x1 = 3`` and ``x2 = 8``, the convention of
``torchvision.ops.masks_to_boxes`` plus one (that op returns the last pixel's index as ``x2``).
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor

from course_lib._checks import check_number, check_tensor
from course_lib.boxes import box_iou
from course_lib.visualization.evaluation import check_maps, check_masks

# The 8 neighbours of a pixel: (row, column) offsets.
NEIGHBOURS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


def connected_components(binary: Tensor) -> tuple[Tensor, int]:
    """Label the 8-connected components of a binary image, as ``scipy.ndimage.label`` does.

    Scanning row by row, each pixel that is on and not yet labelled starts a new component, which a
    breadth-first search floods through its 8 neighbours.

    Args:
        binary: Tensor[H, W] of 0s and 1s (or bools).

    Returns:
        (Tensor[H, W] int64 labels: 0 off, 1 ... n the components in scan order, n the count).
    """
    check_tensor(binary, "binary")
    if binary.dim() != 2:
        raise ValueError(f"binary: expected a Tensor[H, W], got shape {tuple(binary.shape)}")
    on = check_masks(binary, binary.shape, "binary").tolist()
    H, W = binary.shape  # height, width
    labels = [[0] * W for _ in range(H)]
    count = 0
    for row in range(H):
        for col in range(W):
            if not on[row][col] or labels[row][col]:
                continue
            count += 1
            labels[row][col] = count
            queue = deque([(row, col)])
            while queue:
                r, c = queue.popleft()
                for dr, dc in NEIGHBOURS:
                    nr, nc = r + dr, c + dc
                    if 0 <= nr < H and 0 <= nc < W and on[nr][nc] and not labels[nr][nc]:
                        labels[nr][nc] = count
                        queue.append((nr, nc))
    return torch.tensor(labels, dtype=torch.int64).reshape(H, W), count


def _box_of(pixels: Tensor) -> Tensor:
    """The xyxy pixel-edge box around the True pixels of a Tensor[H, W] bool (at least one)."""
    rows, cols = pixels.nonzero(as_tuple=True)
    return torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=torch.float32)


def _check_map(map: Tensor) -> Tensor:
    check_tensor(map, "map")
    if map.dim() != 2:
        raise ValueError(f"map: expected a Tensor[H, W], got shape {tuple(map.shape)}")
    return check_maps(map[None], "map")[0]


def map_box(map: Tensor, fraction: float = 0.2) -> Tensor:
    """The CAM paper's box (Zhou et al. 2016, Sec. 3.1): around the largest component of the map's top part.

    The pixels with ``map >= fraction * max(map)`` are kept; the box is that of the largest
    8-connected component of them. Decisions the paper leaves open: among components of the same
    size, the one holding the highest map value wins, then the first in scan order; a map with no
    positive value (``max <= 0``: nothing to threshold) gives the whole image, ``[0, 0, W, H]``.

    Args:
        map: Tensor[H, W], one explanation map.
        fraction: the threshold, as a fraction of the maximum, in [0, 1] (the paper's 0.2).

    Returns:
        Tensor[4] float32, ``(x1, y1, x2, y2)`` on pixel edges.
    """
    map = _check_map(map)
    fraction = check_number(fraction, "fraction", low=0.0, high=1.0)
    H, W = map.shape  # height, width
    if map.numel() == 0 or map.max() <= 0:
        return torch.tensor([0.0, 0.0, W, H])
    labels, count = connected_components(map >= fraction * map.max())  # (H, W), n >= 1
    on = labels.flatten() > 0  # (H*W,)
    members = labels.flatten()[on] - 1  # (P,) component of each kept pixel
    sizes = torch.bincount(members, minlength=count)  # (n,)
    peaks = map.new_full((count,), -torch.inf).scatter_reduce(0, members, map.flatten()[on], "amax")  # (n,)
    best = max(range(count), key=lambda k: (int(sizes[k]), float(peaks[k])))  # the first among equals
    return _box_of(labels == best + 1)


def mask_box(mask: Tensor) -> Tensor:
    """The xyxy pixel-edge box of a mask's nonzero pixels, Tensor[4] float32; an empty mask raises."""
    check_tensor(mask, "mask")
    if mask.dim() != 2:
        raise ValueError(f"mask: expected a Tensor[H, W], got shape {tuple(mask.shape)}")
    mask = check_masks(mask, mask.shape, "mask")
    if not mask.any():
        raise ValueError("mask: expected at least one nonzero pixel, got an empty mask")
    return _box_of(mask)


def map_boxes(maps: Tensor, fraction: float = 0.2) -> Tensor:
    """:func:`map_box` of each map: Tensor[B, H, W] -> Tensor[B, 4] float32."""
    check_maps(maps)
    check_number(fraction, "fraction", low=0.0, high=1.0)
    boxes = [map_box(map, fraction) for map in maps]
    return torch.stack(boxes) if boxes else torch.zeros(0, 4)  # (B, 4)


def mask_boxes(masks: Tensor) -> Tensor:
    """:func:`mask_box` of each mask: Tensor[B, H, W] -> Tensor[B, 4] float32 (an empty mask raises)."""
    check_tensor(masks, "masks")
    if masks.dim() != 3:
        raise ValueError(f"masks: expected a Tensor[B, H, W], got shape {tuple(masks.shape)}")
    boxes = []
    for index, mask in enumerate(masks):
        if not mask.any():
            raise ValueError(f"masks: expected a nonzero pixel in each mask, got an empty masks[{index}]")
        boxes.append(mask_box(mask))
    return torch.stack(boxes) if boxes else torch.zeros(0, 4)  # (B, 4)


def localization_hits(
    maps: Tensor, masks: Tensor, fraction: float = 0.2, iou_threshold: float = 0.5
) -> Tensor:
    """Whether each map's box (:func:`map_box`) overlaps its mask's box by at least ``iou_threshold``.

    The localization criterion of the CAM paper's ILSVRC evaluation (Zhou et al. 2016, Sec. 3.1):
    a box is correct when its IoU with the ground-truth box is at least 0.5.

    Returns:
        Tensor[B] bool.
    """
    check_maps(maps)
    check_masks(masks, maps.shape)
    iou_threshold = check_number(iou_threshold, "iou_threshold", low=0.0, high=1.0)
    predicted, truth = map_boxes(maps, fraction), mask_boxes(masks)  # (B, 4), (B, 4)
    overlaps = box_iou(predicted, truth).diagonal()  # (B,)
    return overlaps >= iou_threshold
