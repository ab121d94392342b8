"""Recipe of ``shapes_gan``: a DCGAN that draws 64 x 64 ShapeScenes, the generator GAN dissection opens.

Data: the 2,000 training scenes at 64 px (``shapes_segmenter``'s :func:`segmentation_scenes`), with
the eight flips and quarter turns of the square, under which the scenes' distribution does not change.

Training follows DCGAN (Radford et al. 2016, Sec. 4; the two changes to its networks are in
``models/gan.py``): Adam with ``beta1 = 0.5``, learning rate 2e-4, batches of 32, one discriminator
step then one generator step per batch with the non-saturating loss; the learning rate follows
``TrainConfig``'s cosine (no warm-up), which settles the last epochs. The shipped generator is the
moving average of G's weights (Karras et al. 2018; ``AVERAGE_DECAY``) with its batch-norm statistics
re-estimated at the end (:func:`~course_lib.models.gan.recalibrate_batch_norm`).
:func:`~course_lib.train.fit` minimizes one sum of losses with one optimizer step, which a GAN's two
alternating players do not fit, so :func:`train` is its own loop with ``fit``'s behaviour: batch
order and random numbers of step ``s`` depend only on ``(seed, s)``, and the checkpoint (both
networks, the optimizer, the step) resumes to the same weights. The zoo ships the generator only:
``zoo.load("shapes_gan")`` is a :class:`~course_lib.models.gan.Generator`.

What was tried, on the 200 validation scenes (precision / recall / coverage): width 32, batches
of 64, 1,600 steps (24 min): plaid colour fields, 0.65 / 0.08 / 0.31 (on test). Width 16,
batches of 32, 4,095 steps (22-24 min), run side by side: without DiffAugment (shipped) 0.88 /
0.33 / 0.58; with DiffAugment 0.78 / 0.11 / 0.43 (streaked samples: in so short a run, D's
augmented view slows G down more than D's over-fitting does). The samples are coloured grounds
with shape-like blobs; the segmenter labels 1-2% of their pixels as shapes, most of it "star"
and "ring" (notebook 27 measures it).

Metric (:func:`evaluate`): precision and recall (Kynkäänniemi et al. 2019) and coverage (Naeem et
al. 2020) of as many samples (``z`` seeded by 0) as real scenes, in the feature space of
``shapes_backbone`` (:func:`scene_features`). Precision: the share of samples that look like some
scene; recall and coverage: the share of scenes the samples come close to. All in [0, 1], higher is
better (as ``zoo verify`` expects), and no segmenter. Measured on the 200 test scenes against
references: 200 real training scenes 0.89 / 0.88 / 0.88; the untrained generator (grey images)
1.00 / 0.00 / 0.01 (precision alone is fooled by a collapsed generator: read it with the others);
real scenes blurred 4 x 4 0.91 / 0.48 / 0.58; real scenes with shuffled pixels 0.71 / 0.10 / 0.10.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from course_lib.models.gan import (
    Discriminator,
    Generator,
    diff_augment,
    discriminator_loss,
    generator_loss,
    recalibrate_batch_norm,
    update_average,
)
from course_lib.recipes.shapes_segmenter import augment, segmentation_scenes
from course_lib.train import (
    TrainConfig,
    batch_order,
    learning_rate,
    load_training_state,
    save_training_state,
)

# Width 16 and batches of 32: one step took 0.32 s alone on one thread (width 32: 0.80 s, whose
# 1,764 steps drew no shape the segmenter saw); 63 steps an epoch, so 65 epochs (4,095 steps) take
# about 22 minutes alone.
CONFIG = TrainConfig(
    epochs=65, batch_size=32, lr=2e-4, optimizer="adamw", weight_decay=0.0, warmup_steps=0, seed=0,
    grad_clip=None,
)  # fmt: skip
BETAS = (0.5, 0.999)  # DCGAN, Sec. 4: with beta1 = 0.9 training oscillated
AUGMENT = False  # DiffAugment (Zhao et al. 2020) on D's inputs: tried, worse here (see below)
AVERAGE_DECAY = 0.995  # the shipped generator is this moving average of G's weights (half-life 138 steps)
Z_DIM = 64
WIDTH = 16
SPLIT = "test"
QUICK_SIZE = 50
NEIGHBOURS = 3  # k of the precision / recall balls
__all__ = [
    "AUGMENT",
    "AVERAGE_DECAY",
    "BETAS",
    "CONFIG",
    "QUICK_SIZE",
    "SPLIT",
    "WIDTH",
    "Z_DIM",
    "build",
    "build_discriminator",
    "evaluate",
    "gan_step",
    "precision_recall",
    "scene_features",
    "train",
]


def build() -> Generator:
    """The generator of ``shapes_gan``, with fresh weights (what the zoo ships)."""
    return Generator(z_dim=Z_DIM, width=WIDTH)


def build_discriminator() -> Discriminator:
    """The discriminator it is trained against (not shipped)."""
    return Discriminator(width=WIDTH)


def gan_step(
    generator: Generator,
    discriminator: Discriminator,
    optimizer: torch.optim.Optimizer,
    real: Tensor,
    augment: bool = False,
) -> dict[str, Tensor]:
    """One discriminator step, then one generator step, on a batch of real images (Tensor[B, 3, 64, 64]).

    ``optimizer`` holds both networks' parameters; a step moves only those that have a gradient, so
    the generator's samples are detached for D's step and D is frozen (``requires_grad_(False)``)
    while G's loss flows back through it. With ``augment``, D sees every image, real or generated,
    through :func:`~course_lib.models.gan.diff_augment`. Returns both losses (before their step).
    """
    seen = diff_augment if augment else (lambda images: images)
    z = torch.randn(len(real), generator.z_dim)  # (B, Z)
    fake = generator(z)  # (B, 3, 64, 64)
    d_loss = discriminator_loss(discriminator(seen(real)), discriminator(seen(fake.detach())))
    optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    optimizer.step()

    discriminator.requires_grad_(False)
    try:
        g_loss = generator_loss(discriminator(seen(fake)))
        optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
    finally:
        discriminator.requires_grad_(True)
    optimizer.step()
    return {"discriminator": d_loss.detach(), "generator": g_loss.detach()}


def train(
    checkpoint: str | os.PathLike | None = None,
    config: TrainConfig = CONFIG,
    progress: bool = True,
    checkpoint_every: int = 200,
) -> tuple[Generator, list[dict]]:
    """Seed, build both networks, train; returns ``(the averaged generator in eval mode, loss history)``.

    The history has one row per step: ``step``, ``lr``, ``discriminator``, ``generator`` and
    ``loss`` (their sum, which the zoo records; a GAN's losses do not fall as a classifier's do).
    """
    torch.manual_seed(config.seed)
    generator, discriminator = build(), build_discriminator()
    average = copy.deepcopy(generator).requires_grad_(False)
    networks = nn.ModuleDict({"generator": generator, "discriminator": discriminator, "average": average})
    optimizer = torch.optim.AdamW(
        [{"params": generator.parameters()}, {"params": discriminator.parameters()}],
        lr=config.lr, betas=BETAS, weight_decay=config.weight_decay,
    )  # fmt: skip
    images, _ = segmentation_scenes("train")
    steps_per_epoch = math.ceil(len(images) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    last_step = total_steps if config.max_steps is None else min(total_steps, config.max_steps)
    step, history = 0, []
    if checkpoint is not None and Path(checkpoint).exists():
        step, history = load_training_state(checkpoint, networks, optimizer)
    networks.train()
    bar = tqdm(total=last_step, initial=step, disable=not progress, desc="training", leave=True)
    while step < last_step:
        epoch, position = divmod(step, steps_per_epoch)
        indices = batch_order(len(images), config.batch_size, config.seed, epoch)[position]
        torch.manual_seed(config.seed * 1_000_003 + step)  # the step's augmentation and noise
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, total_steps, config)
        real, _ = augment(images[indices])
        losses = gan_step(generator, discriminator, optimizer, real, augment=AUGMENT)
        update_average(average, generator, AVERAGE_DECAY)
        losses = {name: float(value) for name, value in losses.items()}
        if not all(math.isfinite(value) for value in losses.values()):
            raise FloatingPointError(f"step {step}: losses {losses}")
        lr = optimizer.param_groups[0]["lr"]
        history.append({"step": step, "lr": lr, "loss": sum(losses.values()), **losses})
        step += 1
        bar.update(1)
        bar.set_postfix(d=f"{losses['discriminator']:.3f}", g=f"{losses['generator']:.3f}")
        if checkpoint is not None and (step % checkpoint_every == 0 or step == last_step):
            save_training_state(checkpoint, networks, optimizer, step, history, config)
    bar.close()
    networks.eval()
    recalibrate_batch_norm(average, seed=config.seed)
    return average, history


def precision_recall(real_features: Tensor, fake_features: Tensor, k: int = NEIGHBOURS) -> dict[str, float]:
    """Precision, recall (Kynkäänniemi et al. 2019, Eq. 1-2) and coverage (Naeem et al. 2020, Eq. 4).

    Each point ``s`` of a set ``S`` gets a ball of radius ``||s - NN_k(s, S)||``, ``NN_k`` its k-th
    nearest other point. *Precision*: the share of fakes inside some real ball. *Recall*: the share
    of reals inside some fake ball. *Coverage*: the share of real balls that hold at least one fake;
    unlike precision it is not fooled by a generator that collapses onto one dense spot, and unlike
    recall it does not count the balls that a few outlying fakes inflate. A set with no more than
    ``k`` points has no balls: 0.

    Args:
        real_features (Tensor[N, D]): features of real images.
        fake_features (Tensor[M, D]): features of generated images.
        k: which neighbour sets a ball's radius.

    Returns:
        ``{"precision", "recall", "coverage"}``, each in [0, 1].
    """
    real, fake = real_features.double(), fake_features.double()
    if len(real) <= k or len(fake) <= k:
        return {"precision": 0.0, "recall": 0.0, "coverage": 0.0}
    real_radii = torch.cdist(real, real).kthvalue(k + 1, dim=1).values  # (N,), the 1st is the point itself
    fake_radii = torch.cdist(fake, fake).kthvalue(k + 1, dim=1).values  # (M,)
    distances = torch.cdist(fake, real)  # (M, N)
    in_real_ball = distances <= real_radii[None, :]  # (M, N)
    in_fake_ball = distances <= fake_radii[:, None]  # (M, N): real n inside fake m's ball
    return {
        "precision": float(in_real_ball.any(dim=1).double().mean()),
        "recall": float(in_fake_ball.any(dim=0).double().mean()),
        "coverage": float(in_real_ball.any(dim=0).double().mean()),
    }


@torch.no_grad()
def scene_features(backbone: nn.Module, images: Tensor) -> Tensor:
    """What :func:`evaluate` compares: ``shapes_backbone``'s three maps, globally averaged, Tensor[B, 14w].

    The 64 px images are upsampled to 128 px first, the size the scenes are drawn at: at 64 px the
    backbone hardly tells a sharp scene from one blurred 4 x 4 (coverage measured 0.86 sharp, 0.87 blurred).
    """
    images = F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)  # (B, 3, 128, 128)
    maps = backbone.features(images)
    return torch.cat([maps[name].mean(dim=(2, 3)) for name in ("stride4", "stride8", "stride16")], dim=1)


@torch.no_grad()
def evaluate(model: Generator, split: str = SPLIT, limit: int | None = None) -> dict[str, float]:
    """Precision, recall and coverage of the generator's samples against a split's scenes (see above)."""
    from course_lib import zoo

    model.eval()
    backbone = zoo.load("shapes_backbone")
    real, _ = segmentation_scenes(split, limit)
    if len(real) == 0:
        return precision_recall(torch.zeros(0, 1), torch.zeros(0, 1))
    z = torch.randn(len(real), model.z_dim, generator=torch.Generator().manual_seed(0))  # (N, Z)
    fake = torch.cat([model(part) for part in z.split(100)])  # (N, 3, 64, 64)
    real_features = torch.cat([scene_features(backbone, part) for part in real.split(100)])  # (N, 14w)
    fake_features = torch.cat([scene_features(backbone, part) for part in fake.split(100)])  # (N, 14w)
    return precision_recall(real_features, fake_features)
