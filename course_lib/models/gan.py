"""A small DCGAN (Radford et al. 2016) that draws 64 x 64 ShapeScenes, and the GAN losses.

The generator turns a noise vector ``z`` into an image through four named blocks; each after the
first doubles the resolution and halves the channels (nearest upsampling, conv 3 x 3, batch norm,
ReLU). GAN dissection (Bau et al. 2019) hooks the output of one block and reads its channels as
*units*. With ``width=w``::

    z        Tensor[B, z_dim]
    layer1   z_dim -> 8w, 1 -> 4 px       (a 4 x 4 transposed convolution of a 1 x 1 map)
    layer2   8w -> 4w,    4 -> 8 px
    layer3   4w -> 2w,    8 -> 16 px
    layer4   2w -> w,    16 -> 32 px
    output   w -> 3,     32 -> 64 px, tanh

The discriminator mirrors it: strided 4 x 4 convolutions with leaky ReLU (slope 0.2) and one logit
per image. Both follow the DCGAN paper's guidelines (Sec. 3: no pooling, no fully connected hidden
layers, batch norm in G, ReLU in G and leaky ReLU in D, weights drawn from N(0, 0.02)) but two,
both measured on the 2,000 training scenes in a CPU budget:

* D's convolutions are spectrally normalized (Miyato et al. 2018) instead of batch normalized.
  With batch norm, D won within 50 steps (its loss near 0.01, G's near 8); dividing each weight by
  its largest singular value kept the two losses balanced (near 1.3 and 0.9).
* G upsamples by nearest neighbour and a 3 x 3 convolution rather than DCGAN's stride-2 transposed
  convolutions, whose uneven overlap paints checkerboards (Odena et al. 2016, "Deconvolution and
  Checkerboard Artifacts"): with them every sample was still a plaid after 900 steps; with
  upsampling, 600 steps gave varied colour fields with shapes beginning (recall 0.2), for ~1.5x
  the time per step.

Images are in [0, 1] at both ends, as everywhere in the course: the generator's tanh output
``t`` in [-1, 1] is returned as ``(t + 1) / 2``, and the discriminator maps its input back with
``2 x - 1`` before its first convolution.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from course_lib._checks import check_number, check_tensor

IMAGE_SIZE = 64


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN's initialization (Sec. 4): convolutions from N(0, 0.02), batch norm scales from N(1, 0.02)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def up_block(in_channels: int, out_channels: int, first: bool = False) -> nn.Sequential:
    """Nearest upsampling x2 and conv 3x3 (or, when ``first``, transposed conv 1 x 1 -> 4 x 4), BN, ReLU."""
    if first:
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_channels, out_channels, 4, bias=False)]
    else:
        layers = [nn.Upsample(scale_factor=2), nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)]
    return nn.Sequential(*layers, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class Generator(nn.Module):
    """DCGAN generator: ``z`` (Tensor[B, z_dim]) -> images (Tensor[B, 3, 64, 64]) in [0, 1].

    Args:
        z_dim: length of the noise vector.
        width: channels of ``layer4``; ``layer3``, ``layer2`` and ``layer1`` have 2, 4 and 8 times as many.
    """

    def __init__(self, z_dim: int = 64, width: int = 32) -> None:
        super().__init__()
        self.z_dim = int(check_number(z_dim, "z_dim", low=1, integer=True))
        self.width = int(check_number(width, "width", low=1, integer=True))
        self.layer1 = up_block(z_dim, 8 * width, first=True)
        self.layer2 = up_block(8 * width, 4 * width)
        self.layer3 = up_block(4 * width, 2 * width)
        self.layer4 = up_block(2 * width, width)
        self.output = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(width, 3, 3, padding=1))
        self.apply(init_dcgan_weights)

    @property
    def layers(self) -> tuple[str, ...]:
        """Names of the blocks whose channels dissection reads as units."""
        return ("layer1", "layer2", "layer3", "layer4")

    def sample_z(self, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
        """``num_samples`` noise vectors from N(0, I): Tensor[num_samples, z_dim]."""
        check_number(num_samples, "num_samples", low=0, integer=True)
        return torch.randn(num_samples, self.z_dim, generator=generator)

    def forward(self, z: Tensor) -> Tensor:
        check_tensor(z, "z")
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z: expected a Tensor[B, {self.z_dim}], got shape {tuple(z.shape)}")
        x = self.layer1(z[:, :, None, None])  # (B, 8w, 4, 4)
        x = self.layer2(x)  # (B, 4w, 8, 8)
        x = self.layer3(x)  # (B, 2w, 16, 16)
        x = self.layer4(x)  # (B, w, 32, 32)
        return (torch.tanh(self.output(x)) + 1) / 2  # (B, 3, 64, 64), [-1, 1] -> [0, 1]


def normalized_conv(in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> nn.Conv2d:
    """A convolution drawn as DCGAN's, then spectrally normalized: ``W / sigma_max(W)`` at each forward.

    (Initialized first: once normalized, ``.weight`` is computed from ``.parametrizations.weight.original``.)
    """
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, **kwargs)
    init_dcgan_weights(conv)
    return spectral_norm(conv)


def down_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Spectrally normalized conv 4x4 stride 2 (halves the side), leaky ReLU 0.2."""
    return nn.Sequential(
        normalized_conv(in_channels, out_channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)
    )


class Discriminator(nn.Module):
    """DCGAN discriminator: images (Tensor[B, 3, 64, 64] in [0, 1]) -> logits Tensor[B] (real > 0).

    Args:
        width: channels of ``layer1``; ``layer2..layer4`` have 2, 4 and 8 times as many.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = int(check_number(width, "width", low=1, integer=True))
        self.layer1 = down_block(3, width)
        self.layer2 = down_block(width, 2 * width)
        self.layer3 = down_block(2 * width, 4 * width)
        self.layer4 = down_block(4 * width, 8 * width)
        self.output = normalized_conv(8 * width, 1, 4)

    def forward(self, images: Tensor) -> Tensor:
        check_tensor(images, "images")
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, IMAGE_SIZE, IMAGE_SIZE):
            size = IMAGE_SIZE
            raise ValueError(f"images: expected a Tensor[B, 3, {size}, {size}], got {tuple(images.shape)}")
        x = self.layer1(2 * images - 1)  # (B, w, 32, 32), [0, 1] -> [-1, 1] as G's tanh
        x = self.layer2(x)  # (B, 2w, 16, 16)
        x = self.layer3(x)  # (B, 4w, 8, 8)
        x = self.layer4(x)  # (B, 8w, 4, 4)
        return self.output(x).flatten()  # (B,)


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The discriminator's loss: ``-log D(x) - log(1 - D(G(z)))``, averaged over each batch.

    Goodfellow et al. 2014, Eq. 1 (the value function D maximizes), with ``D = sigmoid(logit)``,
    written with softplus for stability: ``-log sigmoid(l) = softplus(-l)`` and
    ``-log(1 - sigmoid(l)) = softplus(l)``. Both logits at 0 give ``2 log 2``. An empty batch
    contributes 0.

    Args:
        real_logits (Tensor[B]): the discriminator's logits on real images.
        fake_logits (Tensor[B']): its logits on generated images.

    Returns:
        A scalar tensor.
    """
    check_tensor(real_logits, "real_logits")
    check_tensor(fake_logits, "fake_logits")
    return _mean(F.softplus(-real_logits)) + _mean(F.softplus(fake_logits))


def generator_loss(fake_logits: Tensor) -> Tensor:
    """The non-saturating generator loss ``-log D(G(z))``, averaged (Goodfellow et al. 2014, Sec. 3).

    Minimizing ``log(1 - D(G(z)))`` (the game of Eq. 1) gives G almost no gradient while D easily
    rejects its samples, early in training; maximizing ``log D(G(z))`` has the same fixed point
    and strong gradients then. A logit of 0 gives ``log 2``; an empty batch gives 0.

    Args:
        fake_logits (Tensor[B]): the discriminator's logits on generated images.

    Returns:
        A scalar tensor.
    """
    check_tensor(fake_logits, "fake_logits")
    return _mean(F.softplus(-fake_logits))


def _mean(values: Tensor) -> Tensor:
    return values.mean() if values.numel() else values.sum()  # sum of nothing is 0, mean is NaN


def diff_augment(images: Tensor, translation: float = 0.125, cutout: float = 0.5) -> Tensor:
    """DiffAugment (Zhao et al. 2020, policy "color,translation,cutout"), differentiable, torch's global RNG.

    With a few thousand images the discriminator memorizes the real ones and its gradient stops
    teaching the generator; the paper augments *both* real and generated images on their way into D,
    with operations that let gradients through to G. Per image: brightness ``+ U(-0.5, 0.5)``,
    saturation ``x U(0, 2)``, contrast ``x U(0.5, 1.5)`` (in [-1, 1], as the paper), a shift by up
    to ``translation`` of the side, and a grey square of ``cutout`` of the side at a random place.

    Args:
        images (Tensor[B, 3, H, W]): in [0, 1].

    Returns:
        Tensor[B, 3, H, W], no longer clipped to [0, 1] (the discriminator reads any value).
    """
    check_tensor(images, "images")
    if images.dim() != 4:
        raise ValueError(f"images: expected a Tensor[B, 3, H, W], got shape {tuple(images.shape)}")
    B, _, H, W = images.shape  # batch, height, width
    if B == 0:
        return images
    shape, device = (B, 1, 1, 1), images.device
    x = 2 * images - 1  # (B, 3, H, W) in [-1, 1]
    x = x + (torch.rand(shape, device=device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)  # (B, 1, H, W): grey of each pixel
    x = (x - mean) * (2 * torch.rand(shape, device=device)) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    x = (x - mean) * (torch.rand(shape, device=device) + 0.5) + mean
    # Translation: whole pixels, what leaves the image is dropped, what enters is 0 (grey).
    limit_y, limit_x = int(H * translation + 0.5), int(W * translation + 0.5)
    shift_y = torch.randint(-limit_y, limit_y + 1, (B, 1, 1), device=device)
    shift_x = torch.randint(-limit_x, limit_x + 1, (B, 1, 1), device=device)
    rows = torch.arange(H, device=device)[None, :, None] - shift_y  # (B, H, 1): source row
    cols = torch.arange(W, device=device)[None, None, :] - shift_x  # (B, 1, W): source column
    inside = ((rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)).float()  # (B, H, W)
    batch = torch.arange(B, device=device)[:, None, None]
    x = x.permute(0, 2, 3, 1)[batch, rows.clamp(0, H - 1), cols.clamp(0, W - 1)].permute(0, 3, 1, 2)
    x = x * inside[:, None]
    # Cutout: a square of side cutout * size, its centre anywhere in the image, set to 0 (grey).
    side_y, side_x = int(H * cutout + 0.5), int(W * cutout + 0.5)
    top = torch.randint(0, H + (1 - side_y % 2), (B, 1, 1), device=device) - side_y // 2
    left = torch.randint(0, W + (1 - side_x % 2), (B, 1, 1), device=device) - side_x // 2
    row, col = torch.arange(H, device=device)[None, :, None], torch.arange(W, device=device)[None, None, :]
    hole = (row >= top) & (row < top + side_y) & (col >= left) & (col < left + side_x)  # (B, H, W)
    x = x * (~hole).float()[:, None]
    return (x + 1) / 2


@torch.no_grad()
def update_average(average: nn.Module, model: nn.Module, decay: float) -> None:
    """Exponential moving average of the weights: ``a <- decay a + (1 - decay) p`` (Karras et al. 2018).

    A GAN's generator wanders around a good solution rather than settling on it; the average of its
    recent weights draws cleaner images than any one of them. Buffers are not averaged (see
    :func:`recalibrate_batch_norm`).
    """
    for mean, value in zip(average.parameters(), model.parameters(), strict=True):
        mean.lerp_(value, 1.0 - decay)


@torch.no_grad()
def recalibrate_batch_norm(
    generator: Generator, batches: int = 50, batch_size: int = 64, seed: int = 0
) -> None:
    """Re-estimate the batch-norm statistics of ``generator``'s current weights from seeded samples.

    The running statistics kept during training belong to the weights of each step, not to their
    average; the average needs its own. They are set to the plain mean over ``batches`` batches of
    noise (``momentum=None``), then the generator is put in eval mode.
    """
    norms = [module for module in generator.modules() if isinstance(module, nn.BatchNorm2d)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative mean
    noise = torch.Generator().manual_seed(seed)
    generator.train()
    for _ in range(batches):
        generator(generator.sample_z(batch_size, generator=noise))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    generator.eval()
