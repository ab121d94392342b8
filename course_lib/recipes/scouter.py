"""What the recipes of ``scouter_pos`` and ``scouter_neg`` share: data, loss, training, evaluation.

Both start from ``shapes_backbone`` (batch norm frozen at its pre-training statistics) and learn
the 1x1 projection, the xSlot module and the whole backbone on the 5,000 training crops, with
the flips and quarter turns of the backbone's recipe and the SCOUTER loss (cross entropy plus the
area loss of Li et al. 2021, Sec. 3). They differ only in ``lambda_`` (+1 / -1), which each
recipe module passes to :func:`scouter_recipe`. Accuracy is measured on the 500 test crops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from course_lib._checks import check_number
from course_lib.models.backbone import freeze_batchnorm
from course_lib.models.scouter import Scouter, scouter_loss
from course_lib.recipes.backbone import augment, crops, output_indices
from course_lib.recipes.backbone import evaluate as evaluate_crops
from course_lib.train import TrainConfig, fit, learning_rate

SPLIT = "test"  # the 500 test crops, as for shapes_backbone and shapes_classifier
QUICK_SIZE = 100
# One step (batch 32: augmentation, forward, backward, AdamW) takes 0.11 s on one thread of an idle
# machine and 0.18 s (0.14-0.23 s) beside two other single-thread trainings on two cores; an epoch
# is 157 steps, so 25 epochs (3,925 steps) take 7-15 minutes, 25 at the slowest step seen (0.36 s).
CONFIG = TrainConfig(
    epochs=25, batch_size=32, lr=5e-4, optimizer="adamw", weight_decay=1e-4, warmup_steps=100, seed=0
)
# The area-loss weight (the authors' ``lambda_value``). In 300-400-step trial runs (accuracy on
# 300 val crops; mean attention of the true class): 0.1 left the maps at about half the image
# (0.41-0.49); 0.3 shrank them to 0.22-0.25 at the same accuracy (0.88-0.92); 1.0 drove every map
# to 0 before the classes separated (the sigmoid saturates, the cross entropy stays at log 5).
# With 0.3 and the first 1,200 steps of CONFIG: SCOUTER+ 0.953 val accuracy, true-class area 0.118
# (about 8 of 64 cells: the shape); SCOUTER- 0.940, 0.036 (its true class finds nothing against it).
AREA_WEIGHT = 0.3


def scouter_losses(area_weight: float) -> Callable[[nn.Module, list], dict[str, Tensor]]:
    """``compute_losses`` for :func:`course_lib.train.fit`: the SCOUTER loss of an augmented batch."""

    def compute_losses(model: Scouter, batch: list[tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
        images = augment(torch.stack([image for image, _ in batch]))  # (B, 3, 64, 64)
        labels = output_indices(model, torch.stack([label for _, label in batch]))  # (B,)
        logits, attention = model.explain(images)  # (B, n), (B, n, h, w)
        return scouter_loss(logits, labels, attention, area_weight)

    return compute_losses


def train_scouter(
    lambda_: int,
    area_weight: float,
    config: TrainConfig = CONFIG,
    checkpoint=None,
    progress: bool = True,
    limit: int | None = None,
) -> tuple[Scouter, list[dict]]:
    """Seed, build ``Scouter(lambda_)``, load ``shapes_backbone`` into it, fit on the training crops.

    Args:
        limit: train on the first ``limit`` crops only (tests, notebooks' live runs).

    Returns:
        ``(model in eval mode, loss history)``.
    """
    from course_lib import zoo

    torch.manual_seed(config.seed)
    model = Scouter(lambda_)
    model.backbone.load_state_dict(zoo.load("shapes_backbone").state_dict())
    images, labels = crops("train", limit)
    history = fit(
        model,
        list(zip(images, labels, strict=True)),
        scouter_losses(area_weight),
        config,
        checkpoint=checkpoint,
        checkpoint_every=200,
        progress=progress,
        on_train=freeze_batchnorm,
    )
    return model, history


@torch.no_grad()
def explanation_area(model: Scouter, split: str = SPLIT, limit: int | None = None) -> float:
    """The mean attention of the true class's slot on a split: how much of the map its explanation covers."""
    model.eval()
    images, labels = crops(split, limit)
    classes = output_indices(model, labels)  # (M,)
    areas = []
    for chunk, chunk_classes in zip(images.split(250), classes.split(250), strict=True):
        _, attention = model.explain(chunk)  # (b, n, h, w)
        areas.append(attention[torch.arange(len(chunk)), chunk_classes].mean(dim=(1, 2)))  # (b,)
    return float(torch.cat(areas).mean())


def scouter_recipe(lambda_: int, area_weight: float, config: TrainConfig = CONFIG) -> tuple[Callable, ...]:
    """The ``build``, ``train`` and ``evaluate`` of a SCOUTER recipe module.

    ``scouter_pos`` and ``scouter_neg`` write only their ``LAMBDA`` (+1 / -1), then
    ``build, train, evaluate = scouter_recipe(LAMBDA, AREA_WEIGHT, CONFIG)`` with the shared
    ``AREA_WEIGHT`` and ``CONFIG`` of this module.
    """

    def build() -> Scouter:
        """The architecture with fresh weights: ShapesBackbone, stride-8 tokens, 5 slots."""
        return Scouter(lambda_)

    def train(checkpoint=None, config: TrainConfig = config, progress: bool = True, limit: int | None = None):
        """Train from ``shapes_backbone``; returns ``(model in eval mode, loss history)``."""
        return train_scouter(lambda_, area_weight, config, checkpoint, progress, limit)

    def evaluate(model: Scouter, split: str = SPLIT, limit: int | None = None) -> dict[str, float]:
        """Top-1 accuracy on a ShapeCrops split (or its first ``limit`` crops)."""
        return evaluate_crops(model, split, limit)

    return build, train, evaluate


def area_sweep(
    area_weights: Sequence[float],
    lambda_: int = 1,
    steps: int = 600,
    limit: int = 2000,
    split: str = "val",
    seed: int = 0,
) -> list[dict[str, float]]:
    """What the area-loss weight buys: one short SCOUTER head per weight, its accuracy and explanation size.

    A sweep of whole trainings (``CONFIG``: ~15 minutes each) does not fit a notebook. Here the
    backbone is ``shapes_backbone``, frozen: its stride-8 maps of the first ``limit`` training crops
    are computed once, and for each weight a fresh head (projection and xSlot, seeded by ``seed``,
    the same start for every weight) is trained for ``steps`` AdamW steps of 32 maps, with
    ``CONFIG``'s warm-up and cosine and no augmentation. Each row: ``area_weight``, ``accuracy``
    and ``area`` (mean attention of the true class's slot, :func:`explanation_area`'s measure) on
    the first 500 crops of ``split``.
    """
    from course_lib import zoo

    check_number(steps, "steps", low=1, integer=True)
    template = Scouter(lambda_)
    template.backbone.load_state_dict(zoo.load("shapes_backbone").state_dict())
    template.eval()
    maps = {}
    for name, (part, count) in {"train": ("train", limit), "eval": (split, 500)}.items():
        images, labels = crops(part, count)
        with torch.no_grad():
            features = torch.cat([template.feature_map(chunk) for chunk in images.split(250)])
        maps[name] = (features, output_indices(template, labels))  # (M, 128, 8, 8), (M,)
    features, labels = maps["train"]
    rows = []
    for area_weight in area_weights:
        torch.manual_seed(seed)
        model = Scouter(lambda_)
        optimizer = torch.optim.AdamW([*model.project.parameters(), *model.slot_attention.parameters()],
                                      lr=CONFIG.lr, weight_decay=CONFIG.weight_decay)
        order = torch.Generator().manual_seed(seed)
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, steps, CONFIG)
            batch = torch.randint(0, len(features), (CONFIG.batch_size,), generator=order)
            logits, attention = model.explain_features(features[batch])
            losses = scouter_loss(logits, labels[batch], attention, area_weight)
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            optimizer.step()
        with torch.no_grad():
            logits, attention = model.explain_features(maps["eval"][0])  # (M, n), (M, n, h, w)
        truth = maps["eval"][1]
        rows.append({
            "area_weight": float(area_weight),
            "accuracy": float((logits.argmax(dim=1) == truth).float().mean()),
            "area": float(attention[torch.arange(len(truth)), truth].mean()),
        })
    return rows
