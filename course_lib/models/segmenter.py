"""A small fully convolutional segmenter: one class per pixel (background + the five shapes).

GAN dissection (Bau et al. 2019, Sec. 2.1) needs a semantic segmentation network ``s_c(x)`` that
labels each pixel of a generated image by concept; the paper uses a network trained on ADE20K
(Xiao et al. 2018). Here it is this one, trained on ShapeScenes' masks at 64 x 64.

It is the course's ``ShapesBackbone`` (pre-trained on ShapeCrops) as the encoder and a U-Net-like
decoder (Ronneberger et al. 2015; the top-down path is FPN's, Lin et al. 2017): 1 x 1 lateral
convolutions bring the stride-16, 8, 4 and 2 maps to ``decoder_channels``; from the coarsest,
each map is upsampled by 2 (nearest) and added to the next finer lateral; a 3 x 3 conv block
cleans the stride-2 sum and a 1 x 1 convolution scores the classes, upsampled bilinearly to the
input size. Small shapes (3 px across at 64 px) need the stride-2 map; the coarse maps say which
shape it is.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from course_lib._checks import check_number, check_tensor
from course_lib.data import CLASSES
from course_lib.models.backbone import ShapesBackbone, conv_bn_relu


class ShapesSegmenter(nn.Module):
    """``images`` (Tensor[B, 3, H, W] in [0, 1]) -> per-pixel class logits Tensor[B, K + 1, H, W].

    Output channel ``k`` scores ``classes[k]`` (``CLASSES``: 0 is background). ``H`` and ``W``
    should be multiples of 16.

    Args:
        backbone: the encoder; a fresh ``ShapesBackbone()`` if None (the recipe loads
            ``shapes_backbone``'s weights into it).
        decoder_channels: channels of the top-down path.
    """

    def __init__(self, backbone: ShapesBackbone | None = None, decoder_channels: int = 64) -> None:
        super().__init__()
        check_number(decoder_channels, "decoder_channels", low=1, integer=True)
        self.backbone = ShapesBackbone() if backbone is None else backbone
        self.classes = CLASSES
        width = self.backbone.width
        self.lateral = nn.ModuleDict(
            {
                "stride2": nn.Conv2d(width, decoder_channels, 1),
                "stride4": nn.Conv2d(2 * width, decoder_channels, 1),
                "stride8": nn.Conv2d(4 * width, decoder_channels, 1),
                "stride16": nn.Conv2d(8 * width, decoder_channels, 1),
            }
        )
        self.head = nn.Sequential(
            conv_bn_relu(decoder_channels, decoder_channels),
            conv_bn_relu(decoder_channels, decoder_channels),
            nn.Conv2d(decoder_channels, len(CLASSES), 1),
        )

    def forward(self, images: Tensor) -> Tensor:
        check_tensor(images, "images")
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images: expected a Tensor[B, 3, H, W], got shape {tuple(images.shape)}")
        backbone = self.backbone
        maps = {"stride2": backbone.stem(images)}  # (B, w, H/2, W/2)
        maps["stride4"] = backbone.stage4(maps["stride2"])  # (B, 2w, H/4, W/4)
        maps["stride8"] = backbone.stage8(maps["stride4"])  # (B, 4w, H/8, W/8)
        maps["stride16"] = backbone.stage16(maps["stride8"])  # (B, 8w, H/16, W/16)
        top = self.lateral["stride16"](maps["stride16"])  # (B, D, H/16, W/16)
        for name in ("stride8", "stride4", "stride2"):
            lateral = self.lateral[name](maps[name])  # (B, D, h, w), twice the previous side
            top = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")  # (B, D, h, w)
        logits = self.head(top)  # (B, K + 1, H/2, W/2)
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)

    def predict(self, images: Tensor) -> Tensor:
        """The most likely class of each pixel: Tensor[B, H, W] int64, ``CLASSES`` indices."""
        return self(images).argmax(dim=1)  # (B, H, W)
