"""The course's small CNN backbone, pre-trained as a classifier on ShapeCrops.

It is the stand-in for an ImageNet-pretrained ResNet: every detector of the course starts from its
weights (zoo name ``shapes_backbone``), as R-CNN and its successors start from a network trained
to classify ImageNet (Girshick et al. 2014, Sec. 2.3, "supervised pre-training").

It is a small ResNet (He et al. 2016): a stem of two 3x3 convolutions, then three stages of one
*basic block* each (two 3x3 convolutions with batch norm, and a shortcut added before the last
ReLU; the shortcut is a strided 1x1 convolution because every stage halves the resolution and
doubles the channels, the paper's option B). With ``width=32``::

    stem     3 -> 32,   stride 2
    stage4  32 -> 64,   stride 4   ("stride4" map)
    stage8  64 -> 128,  stride 8   ("stride8" map)
    stage16 128 -> 256, stride 16  ("stride16" map)

The three maps are the levels a feature pyramid (FPN, Lin et al. 2017) and the one-stage
detectors read; their names and channel counts are in ``out_channels``. As a classifier, global
average pooling of the stride-16 map and one linear layer give the class scores (output ``k`` is
``CLASSES[k]``, as in ``shapes_classifier``), so CAM (Zhou et al. 2016) applies to it as it is.
"""

from __future__ import annotations

from torch import Tensor, nn

from course_lib._checks import check_tensor
from course_lib.data import CLASSES


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """A 3x3 convolution (padding 1, no bias), batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """ResNet's basic block that halves the resolution: ``relu(F(x) + shortcut(x))``.

    ``F`` is conv 3x3 (stride 2), BN, ReLU, conv 3x3, BN; the shortcut is a 1x1 convolution with
    stride 2 and BN, which matches the new shape (He et al. 2016, Sec. 3.3, option B).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False), nn.BatchNorm2d(out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        residual = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))  # (B, C', H/2, W/2)
        return (residual + self.shortcut(x)).relu()


class ShapesBackbone(nn.Module):
    """A small ResNet: feature maps at strides 4, 8 and 16, and a GAP + linear classifier on top.

    Args:
        classes: the name of each classifier output (``CLASSES``: output ``k`` scores label ``k``).
        width: channels of the stem; the stages have 2x, 4x and 8x as many.
    """

    def __init__(self, classes: tuple[str, ...] = CLASSES, width: int = 32) -> None:
        super().__init__()
        self.classes = tuple(classes)
        self.num_classes = len(self.classes)
        self.width = width
        self.stem = nn.Sequential(conv_bn_relu(3, width), conv_bn_relu(width, width, stride=2))
        self.stage4 = BasicBlock(width, 2 * width)
        self.stage8 = BasicBlock(2 * width, 4 * width)
        self.stage16 = BasicBlock(4 * width, 8 * width)
        self.classifier = nn.Linear(8 * width, self.num_classes)
        self.out_channels = {"stride4": 2 * width, "stride8": 4 * width, "stride16": 8 * width}

    def features(self, images: Tensor) -> dict[str, Tensor]:
        """The stride-4, 8 and 16 feature maps of a batch of images.

        Args:
            images (Tensor[B, 3, H, W]): in [0, 1].

        Returns:
            ``{"stride4": Tensor[B, 2w, H/4, W/4], "stride8": Tensor[B, 4w, H/8, W/8],
            "stride16": Tensor[B, 8w, H/16, W/16]}`` (sides rounded up), ``w`` the width.
        """
        check_tensor(images, "images")
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images: expected a Tensor[B, 3, H, W], got shape {tuple(images.shape)}")
        stride4 = self.stage4(self.stem(images))  # (B, 2w, H/4, W/4)
        stride8 = self.stage8(stride4)  # (B, 4w, H/8, W/8)
        stride16 = self.stage16(stride8)  # (B, 8w, H/16, W/16)
        return {"stride4": stride4, "stride8": stride8, "stride16": stride16}

    def embed(self, images: Tensor) -> Tensor:
        """The input of the last linear layer: global average pooling of the stride-16 map, Tensor[B, 8w]."""
        return self.features(images)["stride16"].mean(dim=(2, 3))  # (B, 8w)

    def forward(self, images: Tensor) -> Tensor:
        """Class scores (logits), Tensor[B, num_classes]; output ``k`` scores ``classes[k]``."""
        return self.classifier(self.embed(images))  # (B, K + 1)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Put every batch-norm layer of ``module`` in eval mode, to keep it there during training.

    Detectors train on a few images per batch, too few for batch statistics; like torchvision's
    ``FrozenBatchNorm2d``, they use the running statistics of pre-training. Call it after
    ``module.train()``. The affine weights still learn.
    """
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()
    return module
