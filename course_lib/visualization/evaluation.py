"""How good is an explanation? Scores for maps (``Tensor[B, H, W]``) from any method of the chapter.

Three kinds of test, each from its paper:

* **Against the ground truth** (does the map look at the object?): the pointing game
  (:func:`pointing_game`, Zhang et al. 2016) and the share of positive attribution inside the
  object's mask (:func:`energy_in_mask`, Wang et al. 2020). Box localization (Zhou et al. 2016) is
  in :mod:`course_lib.visualization.localization`.
* **Against the model** (does the model need what the map shows?): deletion and insertion curves
  and their areas (:func:`deletion_curve`, :func:`insertion_curve`, :func:`auc`, Petsiuk et al. 2018).
* **Sanity** (does the map depend on the model at all?): cascading randomization of the weights
  (:func:`randomized_copies`) and the rank correlation of the maps before and after
  (:func:`rank_correlation`, Adebayo et al. 2018).

:func:`random_maps` is the floor of every table: a method that scores no better than uniform noise
explains nothing. Maps are floating ``Tensor[B, H, W]``; masks are ``Tensor[B, H, W]`` of 0s and 1s
(bool or any dtype). An empty batch gives an empty result; no score is ever NaN.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from course_lib._checks import check_number, check_tensor
from course_lib.visualization.hooks import eval_mode, get_layer
from course_lib.visualization.occlusion import occlude
from course_lib.visualization.targets import as_batch, class_indices, run_model, target_scores


def check_maps(maps: Tensor, name: str = "maps") -> Tensor:
    """Check that ``maps`` is a finite floating ``Tensor[B, H, W]``; return it."""
    check_tensor(maps, name)
    if maps.dim() != 3:
        raise ValueError(f"{name}: expected a Tensor[B, H, W], got shape {tuple(maps.shape)}")
    if not maps.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {maps.dtype}")
    if maps.numel() and not torch.isfinite(maps).all():
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return maps


def check_masks(masks: Tensor, shape: tuple[int, ...], name: str = "masks") -> Tensor:
    """Check that ``masks`` holds only 0s and 1s and has ``shape``; return it as a bool tensor."""
    check_tensor(masks, name)
    if tuple(masks.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)} (the maps'), got {tuple(masks.shape)}")
    if masks.is_complex() or (masks.numel() and not ((masks == 0) | (masks == 1)).all()):
        values = masks.unique()[:5].tolist()
        raise ValueError(f"{name}: expected a binary mask (0s and 1s), got values {values}")
    return masks.bool()


TIE_TOLERANCE = 1e-5  # relative: the pointing game's maximum ignores differences below float rounding


def pointing_game(maps: Tensor, masks: Tensor, tolerance: float = 0) -> Tensor:
    """The pointing game (Zhang et al. 2016, "Top-down neural attention by excitation backprop").

    A hit when the map's maximum lies on the object: within ``tolerance`` pixels (Euclidean
    distance between pixel centres) of a pixel of the mask. The paper allows 15 pixels on ImageNet
    images (about 224 pixels wide); the default 0 asks for the maximum to be on the mask itself.

    Decisions the paper leaves open: among tied maxima the first in row-major order is *the*
    maximum (``argmax``'s choice); values within ``TIE_TOLERANCE`` of the maximum (relative to the
    map's largest magnitude) count as tied, so that float rounding, which differs from one CPU's
    kernels to another's, cannot move the peak between two near-equal pixels; a constant map (all
    zeros, say) points nowhere and is a miss; an empty mask is a miss.

    Args:
        maps: Tensor[B, H, W].
        masks: Tensor[B, H, W] of 0s and 1s, the objects.
        tolerance: how many pixels away from the mask the maximum may be, at least 0.

    Returns:
        Tensor[B] bool, True for a hit; ``.float().mean()`` is the paper's accuracy.
    """
    check_maps(maps)
    masks = check_masks(masks, maps.shape)
    tolerance = check_number(tolerance, "tolerance", low=0)
    B, H, W = maps.shape  # batch, height, width
    hits = torch.zeros(B, dtype=torch.bool)
    for index in range(B):
        flat = maps[index].flatten()  # (H*W,)
        if flat.numel() == 0 or flat.max() == flat.min():
            continue
        near_maximum = flat >= flat.max() - TIE_TOLERANCE * flat.abs().max()  # (H*W,)
        first = int(near_maximum.nonzero()[0])
        peak = torch.tensor(divmod(first, W), dtype=torch.float64, device=masks.device)  # (2,)
        on_mask = masks[index].nonzero().to(torch.float64)  # (N, 2)
        if len(on_mask):
            hits[index] = bool(((on_mask - peak) ** 2).sum(dim=1).min() <= tolerance**2)
    return hits


def energy_in_mask(maps: Tensor, masks: Tensor) -> Tensor:
    """The share of a map's positive attribution that falls inside the mask.

    The "energy-based pointing game" of Score-CAM (Wang et al. 2020, "Score-CAM: Score-weighted
    visual explanations for convolutional neural networks", localization evaluation),
    ``sum(ReLU(map) * mask) / sum(ReLU(map))``: unlike the pointing game it counts the whole map,
    not one pixel. The paper's mask is the object's bounding box; any mask works here (a shape's own
    pixels, say). A map with no positive value gives 0 (it puts no energy on the object), not NaN.

    Returns:
        Tensor[B] in [0, 1], in the maps' dtype.
    """
    check_maps(maps)
    masks = check_masks(masks, maps.shape)
    positive = maps.clamp(min=0)  # (B, H, W)
    inside = (positive * masks).sum(dim=(1, 2))  # (B,)
    total = positive.sum(dim=(1, 2))  # (B,)
    share = inside / total.clamp(min=torch.finfo(maps.dtype).tiny)  # (B,)
    return torch.where(total > 0, share, torch.zeros_like(total))


def _curve(model: nn.Module, images, target, maps: Tensor, steps: int, baseline, insertion: bool) -> Tensor:
    """Deletion (``insertion=False``) or insertion curves, Tensor[B, steps + 1] (:func:`deletion_curve`)."""
    steps = int(check_number(steps, "steps", low=1, integer=True))
    if callable(target) and not isinstance(target, Tensor):
        raise TypeError(
            "target: the curves score a class's softmax probability; expected a class index, not a callable"
        )
    batch = as_batch(images)
    check_maps(maps)
    B, C, H, W = batch.shape  # batch, channels, height, width
    if tuple(maps.shape) != (B, H, W):
        raise ValueError(f"maps: expected one map per image, Tensor[{B}, {H}, {W}], got {tuple(maps.shape)}")
    classes = class_indices(target, B)  # (B,)
    counts = torch.arange(steps + 1) * (H * W) // steps  # (S+1,) pixels removed or revealed at each step
    curves = []
    with eval_mode(model), torch.no_grad():
        for index in range(B):
            order = torch.argsort(maps[index].flatten(), descending=True, stable=True)  # (H*W,)
            rank = torch.empty_like(order)
            rank[order] = torch.arange(H * W, device=order.device)  # (H*W,) each pixel's place in the order
            chosen = (rank[None, :].cpu() < counts[:, None]).view(steps + 1, H, W)  # (S+1, H, W)
            # Deletion sets the chosen pixels to the baseline; insertion sets all the others.
            copies = occlude(batch[index], ~chosen if insertion else chosen, baseline)  # (S+1, C, H, W)
            probabilities = run_model(model, copies, False).softmax(dim=1)  # (S+1, K)
            curves.append(target_scores(probabilities, int(classes[index]), steps + 1))  # (S+1,)
    return torch.stack(curves) if curves else batch.new_zeros(0, steps + 1)  # (B, S+1)


def deletion_curve(model: nn.Module, images, target, maps: Tensor, steps: int = 16, baseline=0.0) -> Tensor:
    """The deletion curve (Petsiuk et al. 2018, "RISE", Sec. 4.1): the class probability as pixels go.

    The map's most important pixels are removed first (set to ``baseline`` in every channel), in
    the map's order: highest value first, ties by lower row-major index (a stable sort). At step k
    the first ``floor(k * H * W / steps)`` pixels are removed, so the curve starts at the original
    image (fraction 0) and ends at the baseline image (fraction 1). A good map makes the
    probability fall fast: a *low* :func:`auc`. The steps + 1 copies of an image go through the
    model in one batch, in eval mode, without gradients.

    Args:
        model: a classifier, Tensor[B, C, H, W] -> logits Tensor[B, K].
        images: Tensor[B, C, H, W].
        target: a class index, or one per image; the curve is its softmax probability.
        maps: Tensor[B, H, W], one map per image.
        steps: the number of steps from fraction 0 to 1.
        baseline: a removed pixel's value (a number, or a tensor broadcastable to Tensor[C, H, W]).
            RISE uses 0 (black) for deletion and a blurred image for insertion.

    Returns:
        Tensor[B, steps + 1]: the probability at fractions 0, 1/steps, ..., 1 of the pixels removed.
    """
    return _curve(model, images, target, maps, steps, baseline, insertion=False)


def insertion_curve(model: nn.Module, images, target, maps: Tensor, steps: int = 16, baseline=0.0) -> Tensor:
    """The insertion curve (Petsiuk et al. 2018, Sec. 4.1): the class probability as pixels come back.

    From the ``baseline`` image, the map's most important pixels are revealed first (same order
    and counts as :func:`deletion_curve`): the curve starts at the baseline image's probability and
    ends at the original's. A good map makes it rise fast: a *high* :func:`auc`.

    Returns:
        Tensor[B, steps + 1]: the probability at fractions 0, 1/steps, ..., 1 of the pixels revealed.
    """
    return _curve(model, images, target, maps, steps, baseline, insertion=True)


def auc(curve: Tensor) -> Tensor:
    """The area under each curve over [0, 1], by the trapezoidal rule (the RISE paper's score).

    Args:
        curve: Tensor[B, S + 1], values at the evenly spaced fractions 0, 1/S, ..., 1.

    Returns:
        Tensor[B].
    """
    check_tensor(curve, "curve")
    if curve.dim() != 2 or curve.shape[1] < 2:
        raise ValueError(f"curve: expected a Tensor[B, S + 1], S >= 1, got shape {tuple(curve.shape)}")
    if not curve.is_floating_point():
        raise TypeError(f"curve: expected a floating-point tensor, got dtype {curve.dtype}")
    return torch.trapezoid(curve, dx=1.0 / (curve.shape[1] - 1), dim=1)  # (B,)


def randomized_copies(model: nn.Module, layers: Sequence[str], seed: int = 0) -> list[tuple[str, nn.Module]]:
    """Cascading model randomization (Adebayo et al. 2018, "Sanity checks for saliency maps", Sec. 3).

    Copy k has ``layers[0]`` ... ``layers[k]`` re-initialized, from the top of the network down
    (``["fc", "features.conv4", ..., "features.conv1"]``): if a method's maps hardly change while
    the weights they should explain are destroyed, the method does not explain the model.

    Each layer is re-initialized by its own ``reset_parameters()`` (PyTorch's default
    initialization) after ``torch.manual_seed(seed + j)`` for ``layers[j]``, inside
    ``torch.random.fork_rng``: the global random state is left as it was, the copies are the same on
    every call, and layer j is the same in every copy that resets it (the cascade adds one layer at
    a time). Batch norm layers keep their trained scale, shift and running statistics, as in the
    paper, which randomizes the weights of conv and linear layers; asking for one is an error.

    Args:
        model: the trained network; it is never modified (each copy is a deep copy).
        layers: the names of layers to re-initialize (``layer_names``), top first.
        seed: the seed of ``layers[0]``; ``layers[j]`` uses ``seed + j``.

    Returns:
        A list of ``(layers[k], copy k)``, one per layer, in the given order.
    """
    seed = int(check_number(seed, "seed", integer=True))
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise ValueError(f"layers: expected a non-empty list of layer names, got {layers!r}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers: expected each name once, got {list(layers)}")
    for name in layers:
        module = get_layer(model, name)
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d | nn.SyncBatchNorm):
            raise ValueError(f"layers: expected a conv or linear layer (batch norm is kept), got {name!r}")
        if not callable(getattr(module, "reset_parameters", None)):
            kind = type(module).__name__
            raise TypeError(f"layers: expected a layer with reset_parameters(), got {name!r} ({kind})")
    cuda = sorted({param.device.index or 0 for param in model.parameters() if param.device.type == "cuda"})
    randomized, copies = copy.deepcopy(model), []
    with torch.random.fork_rng(devices=cuda), torch.no_grad():
        for offset, name in enumerate(layers):
            torch.manual_seed(seed + offset)
            get_layer(randomized, name).reset_parameters()
            copies.append((name, copy.deepcopy(randomized)))
    return copies


def average_ranks(values: Tensor) -> Tensor:
    """The 1-based rank of each value in its row, ties sharing their average rank: Tensor[B, N] -> same.

    A value with ``l`` values below it and ``r`` values at most it holds ranks ``l + 1 ... r``,
    whose average is ``(l + 1 + r) / 2`` (scipy's ``rankdata(method="average")``).
    """
    ordered = values.sort(dim=1).values  # (B, N)
    below = torch.searchsorted(ordered, values, right=False)  # (B, N)
    at_most = torch.searchsorted(ordered, values, right=True)  # (B, N)
    return (below + 1 + at_most).to(torch.float64) / 2


def rank_correlation(maps_a: Tensor, maps_b: Tensor) -> Tensor:
    """Spearman's rank correlation of two maps of each image, over the H * W pixels.

    The similarity measure of Adebayo et al. 2018 (Sec. 3): Pearson's correlation of the pixels'
    ranks, ties given their average rank, equal to ``scipy.stats.spearmanr``. A constant map has no
    order to agree with: the correlation is 0 (scipy returns NaN).

    Returns:
        Tensor[B] float64 in [-1, 1].
    """
    check_maps(maps_a, "maps_a")
    check_maps(maps_b, "maps_b")
    if maps_a.shape != maps_b.shape:
        expected = tuple(maps_a.shape)
        raise ValueError(f"maps_b: expected the shape of maps_a, {expected}, got {tuple(maps_b.shape)}")
    ranks_a = average_ranks(maps_a.flatten(1))  # (B, H*W)
    ranks_b = average_ranks(maps_b.flatten(1))  # (B, H*W)
    centred_a = ranks_a - ranks_a.mean(dim=1, keepdim=True)  # (B, H*W)
    centred_b = ranks_b - ranks_b.mean(dim=1, keepdim=True)  # (B, H*W)
    norms = centred_a.norm(dim=1) * centred_b.norm(dim=1)  # (B,)
    correlation = (centred_a * centred_b).sum(dim=1) / norms.clamp(min=torch.finfo(norms.dtype).tiny)
    return torch.where(norms > 0, correlation.clamp(-1.0, 1.0), torch.zeros_like(norms))


def random_maps(shape: Sequence[int], seed: int = 0) -> Tensor:
    """Uniform random maps in [0, 1), Tensor[B, H, W], the baseline that every method must beat.

    Drawn from a private ``torch.Generator`` seeded with ``seed``: the global random state is
    untouched and the same seed gives the same maps.
    """
    seed = int(check_number(seed, "seed", integer=True))
    if isinstance(shape, str | Tensor) or not isinstance(shape, Sequence) or len(shape) != 3:
        raise ValueError(f"shape: expected (B, H, W), got {shape!r}")
    for size in shape:
        check_number(size, "shape", low=0, integer=True)
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(tuple(shape), generator=generator)  # (B, H, W)
