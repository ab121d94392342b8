"""The course's small CNN backbone, pre-trained as a classifier on ShapeCrops.

It is the stand-in for an ImageNet-pretrained ResNet: every detector of the course starts from its
weights (zoo name ``shapes_backbone``), as R-CNN and its successors start from a network trained
to classify ImageNet (Girshick et al. 2014, Sec. 2.3, "supervised pre-training").

Four stages of 3x3 convolutions with batch norm and ReLU halve the resolution three times, so the
deepest map has stride 8::

    stem     3 -> 16,  stride 2     receptive field  3 px
    stage2  16 -> 32,  stride 2                      7 px
    stage3  32 -> 64,  stride 4   ("stride4" map)   19 px
    stage4  64 -> 128, stride 8   ("stride8" map)   43 px

As a classifier, global average pooling of the stride-8 map and one linear layer give the class
scores, so CAM (Zhou et al. 2016) applies to it as it is. The detectors take the two maps from
:meth:`ShapesBackbone.features`; objects in ShapeScenes are 6 to 64 px, so the stride-4 map is the
one the R-CNN family pools from.
"""

from __future__ import annotations

from torch import Tensor, nn

from course_lib._checks import check_tensor
from course_lib.data import CLASSES, NUM_CLASSES


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """A 3x3 convolution (padding 1, no bias), batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ShapesBackbone(nn.Module):
    """A 7-layer CNN: feature maps at strides 4 and 8, and a GAP + linear classifier on top.

    Args:
        num_classes: classifier outputs (the shape classes of ShapeCrops, background excluded).
        width: channels of the stem; later stages have 2x, 4x and 8x as many.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.width = width
        self.stem = conv_bn_relu(3, width, stride=2)
        self.stage2 = conv_bn_relu(width, 2 * width, stride=1)
        self.stage3 = nn.Sequential(
            conv_bn_relu(2 * width, 4 * width, stride=2), conv_bn_relu(4 * width, 4 * width)
        )
        self.stage4 = nn.Sequential(
            conv_bn_relu(4 * width, 8 * width, stride=2), conv_bn_relu(8 * width, 8 * width)
        )
        self.classifier = nn.Linear(8 * width, num_classes)
        # Output k - 1 scores class k of ShapeCrops: the name of each output, as classifiers give it.
        self.classes = CLASSES[1 : num_classes + 1]
        self.out_channels = {"stride4": 4 * width, "stride8": 8 * width}

    def features(self, images: Tensor) -> dict[str, Tensor]:
        """The stride-4 and stride-8 feature maps of a batch of images.

        Args:
            images (Tensor[B, 3, H, W]): in [0, 1].

        Returns:
            ``{"stride4": Tensor[B, 4w, H/4, W/4], "stride8": Tensor[B, 8w, H/8, W/8]}`` (sides
            rounded up), with ``w`` the width.
        """
        check_tensor(images, "images")
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images: expected a Tensor[B, 3, H, W], got shape {tuple(images.shape)}")
        x = self.stage2(self.stem(images))  # (B, 2w, H/2, W/2)
        stride4 = self.stage3(x)  # (B, 4w, H/4, W/4)
        stride8 = self.stage4(stride4)  # (B, 8w, H/8, W/8)
        return {"stride4": stride4, "stride8": stride8}

    def embed(self, images: Tensor) -> Tensor:
        """The input of the last linear layer: global average pooling of the stride-8 map, Tensor[B, 8w]."""
        return self.features(images)["stride8"].mean(dim=(2, 3))  # (B, 8w)

    def forward(self, images: Tensor) -> Tensor:
        """Class scores (logits), Tensor[B, num_classes]; class ``k`` of ShapeCrops is output ``k - 1``."""
        return self.classifier(self.embed(images))  # (B, K)


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
