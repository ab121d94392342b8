"""The first test crops of ShapeCrops, shared by the explanation tests."""

import torch

from course_lib.data import ShapeCrops


def shape_crops(count: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images Tensor[count, 3, 64, 64], labels Tensor[count])``: the first ``count`` test crops."""
    test = ShapeCrops.split("test")
    images = torch.stack([test[index][0] for index in range(count)])
    labels = torch.stack([test[index][1]["label"] for index in range(count)])
    return images, labels
