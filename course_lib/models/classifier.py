"""The two classifiers the visualization chapters open up: one for ShapeCrops, one for digits.

Both are the classic design that ZFNet and the CAM paper looked into: 3x3 convolutions, ReLU and
max pooling, then **global average pooling** and a single linear layer, so that

* each layer has a readable name (``conv1`` ... ``fc``) to pick in an explorer;
* the last convolution's channels map straight to class scores, and CAM (Zhou et al. 2016,
  Eq. 1) applies without changing anything;
* the input of ``fc`` is the image's embedding (nearest neighbours, t-SNE).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from course_lib._checks import check_tensor
from course_lib.data import CLASSES


def _stage(index: int, in_channels: int, out_channels: int, pool: bool) -> list[tuple[str, nn.Module]]:
    layers = [
        (f"conv{index}", nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)),
        (f"bn{index}", nn.BatchNorm2d(out_channels)),
        (f"relu{index}", nn.ReLU()),
    ]
    if pool:
        layers.append((f"pool{index}", nn.MaxPool2d(2)))
    return layers


class GAPClassifier(nn.Module):
    """Convolutional stages (conv, batch norm, ReLU, optional 2x2 max pooling), GAP, one linear layer.

    Args:
        in_channels: 3 for colour images, 1 for digits.
        widths: output channels of each stage.
        pools: whether each stage ends with a 2x2 max pooling.
        classes: the name of each output of the linear layer, in order: output ``k`` is the score
            of ``classes[k]``, so ``model(x).argmax(1)`` indexes ``classes`` and a visualization
            ``target`` is an index into it.
    """

    def __init__(
        self, in_channels: int, widths: tuple[int, ...], pools: tuple[bool, ...], classes: tuple[str, ...]
    ) -> None:
        super().__init__()
        layers, channels = [], in_channels
        for index, (width, pool) in enumerate(zip(widths, pools, strict=True), start=1):
            layers += _stage(index, channels, width, pool)
            channels = width
        self.in_channels = in_channels
        self.features = nn.Sequential(OrderedDict(layers))
        self.classes = tuple(classes)
        self.num_classes = len(self.classes)
        self.fc = nn.Linear(channels, self.num_classes)

    def embed(self, images: Tensor) -> Tensor:
        """The input of ``fc``: the last feature map averaged over space, Tensor[B, C]."""
        check_tensor(images, "images")
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"images: expected a Tensor[B, {self.in_channels}, H, W], got shape {tuple(images.shape)}"
            )
        return self.features(images).mean(dim=(2, 3))  # (B, C)

    def forward(self, images: Tensor) -> Tensor:
        """Class scores (logits), Tensor[B, num_classes]."""
        return self.fc(self.embed(images))  # (B, K)


def shapes_classifier() -> GAPClassifier:
    """ShapeCrops (3 x 64 x 64) -> one score per name of ``CLASSES``: output ``k`` is label ``k``.

    Output 0 is ``"background"``, as in torchvision's classifiers of detection classes. No crop has
    that label, so training pushes its score down; it is there so that a dataset label, an output
    index and a visualization ``target`` are one and the same number.
    """
    return GAPClassifier(3, (32, 64, 128, 128), (True, True, True, False), CLASSES)


def digits_cnn() -> GAPClassifier:
    """scikit-learn's digits (1 x 8 x 8, in [0, 1]) -> 10 classes; output ``k`` is the digit ``k``."""
    return GAPClassifier(1, (16, 32, 64), (False, True, False), tuple("0123456789"))
