"""Box sets shared by the NMS tests: seeded random sets, detector-like clusters, exact grids,
hypothesis bytes, and the stable order that torchvision's results are compared in."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from course_lib.references import clustered_boxes, random_boxes

THRESHOLDS = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.7, 1.0]) | st.floats(0.0, 1.0)
# IoUs of the grid sets land exactly on these: 1/10, 1/5, 1/4, 1/3, 1/2, 2/3, 3/4.
EXACT_THRESHOLDS = (0.1, 0.2, 0.25, 1 / 3, 0.5, 2 / 3, 0.75)




def grid_boxes(num_boxes: int, generator: torch.Generator) -> torch.Tensor:
    """Integer corners on a 12 x 12 grid: many IoUs are simple fractions, exactly on a threshold."""
    corners = torch.randint(0, 13, (num_boxes, 2, 2), generator=generator).float()  # (N, 2 corners, xy)
    corners = corners.sort(dim=1).values
    corners[:, 1] += corners[:, 1] == corners[:, 0]  # no empty boxes: every IoU is a true fraction
    return corners.reshape(-1, 4)  # (N, 4) x1, y1, x2, y2


BOX_SETS = {"random": random_boxes, "clustered": clustered_boxes, "grid": grid_boxes}


def detection_set(kind: str, num_boxes: int, dtype: torch.dtype, seed: int = 0):
    """Boxes, scores with many ties (two decimals) and every 10th box duplicated with its score."""
    generator = torch.Generator().manual_seed(seed)
    boxes = BOX_SETS[kind](num_boxes, generator).to(dtype)
    scores = (torch.rand(num_boxes, generator=generator) * 100).round().to(dtype) / 100
    boxes[1::10], scores[1::10] = boxes[0::10][: len(boxes[1::10])], scores[0::10][: len(scores[1::10])]
    classes = torch.randint(0, 5, (num_boxes,), generator=generator)
    return boxes, scores, classes


def from_bytes(data: bytes) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decode hypothesis bytes, 6 a box: xyxy on a 1/16-pixel grid, a score with ties, a class."""
    values = torch.tensor(list(data[: len(data) // 6 * 6]), dtype=torch.float32).reshape(-1, 6)
    coords = values[:, :4] % 16 + (values[:, :4] // 16) / 16
    corners = coords.reshape(-1, 2, 2).sort(dim=1).values  # (N, 2 corners, xy)
    return corners.reshape(-1, 4), (values[:, 4] % 8) / 8, values[:, 5].long() % 3


def stable_order(keep: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """``keep`` by decreasing score, lower index first on ties."""
    keep = keep.sort().values
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]
