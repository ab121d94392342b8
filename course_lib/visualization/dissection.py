"""GAN dissection (Bau et al., ICLR 2019): which units of a generator draw a concept, and do they cause it.

A generator ``G(z) = f(h(z))`` computes a feature map ``r = h(z)`` at some layer; its channels are
the *units* ``u``, each a one-channel map ``r_u``. The paper asks two questions:

1. **Dissection** (Sec. 2.1): does unit ``u`` light up where a segmenter sees concept ``c`` in the
   image? Threshold ``r_u`` at its top-1% level ``t_u``, upsample, and measure the overlap with the
   concept's mask ``s_c(x)`` as an IoU over many samples (Eq. 1).
2. **Intervention** (Sec. 2.2): does the concept go away when those units are switched off
   (*ablation*, ``r_{U,P} = 0``), and does it appear when they are switched on inside a region
   (*insertion*, ``r_{U,P} = c``)? The segmenter measures how much of the concept is drawn before
   and after: the average causal effect is the change of :func:`concept_share`.

Interventions are forward hooks on the chosen layer, put in place by a ``with`` block and removed
when it ends, also when it ends with an exception::

    with ablate(generator, "layer3", units=[4, 17]):
        images = generator(z)              # drawn without units 4 and 17 of layer3
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib._checks import check_number, check_pair, check_tensor
from course_lib.data import CLASSES
from course_lib.visualization.hooks import eval_mode, get_layer, record


@torch.no_grad()
def unit_activations(generator: nn.Module, layer: str, z: Tensor, batch_size: int = 50) -> Tensor:
    """The feature map ``r = h(z)`` that ``layer`` outputs, one channel per unit, in eval mode.

    Args:
        generator: a network of ``z`` (e.g. :class:`~course_lib.models.gan.Generator`).
        layer: the name of the sub-module whose output is read (``"layer3"``).
        z (Tensor[B, Z]): noise vectors; run ``batch_size`` at a time.
        batch_size: samples per forward pass (memory only: the result does not depend on it).

    Returns:
        Tensor[B, C, h, w], C the layer's units; Tensor[0, 0, 0, 0] for an empty ``z``.
    """
    check_tensor(z, "z")
    check_number(batch_size, "batch_size", low=1, integer=True)
    get_layer(generator, layer)  # an unknown name fails here, with the list of valid ones
    if len(z) == 0:
        return z.new_zeros(0, 0, 0, 0)
    chunks = []
    with eval_mode(generator), record(generator, layer) as recorded:
        for part in z.split(batch_size):
            generator(part)
            chunks.append(recorded.activations[layer].detach().clone())  # (b, C, h, w)
    return torch.cat(chunks)  # (B, C, h, w)


def unit_thresholds(activations: Tensor, quantile: float = 0.01) -> Tensor:
    """Per unit, the level ``t_u`` that a share ``quantile`` of its values exceeds: ``P(a_u > t_u) = q``.

    Network Dissection's top-1% threshold (Bau et al. 2017): the ``1 - quantile`` quantile of all
    values of unit ``u`` over samples and positions (at the map's resolution), with numpy's default
    (linear) interpolation. Departure: GAN dissection's Eq. 1 tunes one ``t_{u,c}`` per unit *and*
    concept (maximizing an information quality ratio); one fixed level per unit is simpler to teach.

    Args:
        activations (Tensor[B, C, h, w]): e.g. from :func:`unit_activations`.
        quantile: the share of values above the threshold, in [0, 1].

    Returns:
        Tensor[C]; ``+inf`` for every unit when there are no samples (no value is ever above it).
    """
    _check_maps(activations, "activations")
    check_number(quantile, "quantile", low=0, high=1)
    B, C, h, w = activations.shape  # batch, units, height, width
    values = activations.transpose(0, 1).reshape(C, B * h * w).float()  # (C, B*h*w)
    if values.numel() == 0:  # no unit, or no value: nothing is ever above
        return torch.full((C,), float("inf"))
    return torch.quantile(values, 1 - quantile, dim=1)  # (C,)


def masks_from_labels(labels: Tensor, num_concepts: int = len(CLASSES)) -> Tensor:
    """One mask per concept from a label map: ``s_c(x) = (labels == c)``, Tensor[B, K, H, W] bool."""
    check_tensor(labels, "labels")
    if labels.dim() != 3 or labels.is_floating_point():
        raise ValueError(f"labels: expected an int Tensor[B, H, W], got {labels.dtype} {tuple(labels.shape)}")
    check_number(num_concepts, "num_concepts", low=0, integer=True)
    concepts = torch.arange(num_concepts, device=labels.device)
    return labels[:, None] == concepts[None, :, None, None]  # (B, K, H, W)


def unit_concept_iou(
    activations: Tensor,
    concept_masks: Tensor,
    thresholds: Tensor,
    size: int | tuple[int, int] | None = None,
    batch_size: int = 16,
) -> Tensor:
    """IoU of every unit's thresholded, upsampled map with every concept's mask (Bau et al. 2019, Eq. 1).

    ``IoU_{u,c} = E_z |(r_u^up > t_u) ∧ s_c| / E_z |(r_u^up > t_u) ∨ s_c|``: the expectations are
    sums over all samples before the division (a ratio of totals, not a mean of per-image IoUs).
    ``r_u^up`` is ``r_u`` upsampled bilinearly (half-pixel centres) to ``size``. A unit never above
    its threshold, with an empty concept, has union 0 and IoU 0, not NaN.

    Args:
        activations (Tensor[B, C, h, w]): the units' maps.
        concept_masks (Tensor[B, K, H, W]): bool (or 0/1) masks ``s_c(x)``, see :func:`masks_from_labels`.
        thresholds (Tensor[C]): ``t_u``, e.g. from :func:`unit_thresholds`.
        size: where the IoU is measured; defaults to the masks' ``(H, W)``. Masks of another size
            are resized to it by nearest neighbour.
        batch_size: samples upsampled at once (memory only).

    Returns:
        Tensor[C, K] float in [0, 1].
    """
    _check_maps(activations, "activations")
    _check_maps(concept_masks, "concept_masks")
    check_tensor(thresholds, "thresholds")
    B, C, h, w = activations.shape  # batch, units, feature height and width
    K = concept_masks.shape[1]  # concepts
    if len(concept_masks) != B:
        raise ValueError(f"concept_masks: expected {B} samples as activations, got {len(concept_masks)}")
    if thresholds.shape != (C,):
        raise ValueError(f"thresholds: expected a Tensor[{C}], got shape {tuple(thresholds.shape)}")
    check_number(batch_size, "batch_size", low=1, integer=True)
    size = tuple(concept_masks.shape[-2:]) if size is None else check_pair(size, "size", low=1)
    intersection = torch.zeros(C, K, dtype=torch.float64)  # counts of pixels, summed over samples
    unit_area = torch.zeros(C, dtype=torch.float64)
    concept_area = torch.zeros(K, dtype=torch.float64)
    for start in range(0, B, batch_size):
        maps = activations[start : start + batch_size].float()  # (b, C, h, w)
        masks = concept_masks[start : start + batch_size].float()  # (b, K, H, W)
        if len(maps) == 0 or C == 0 or K == 0:
            continue
        upsampled = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)  # (b, C, *size)
        active = (upsampled > thresholds.float()[None, :, None, None]).flatten(2).double()  # (b, C, P)
        masks = F.interpolate(masks, size=size, mode="nearest").flatten(2).double()  # (b, K, P)
        intersection += torch.einsum("bup,bkp->uk", active, masks)  # (C, K)
        unit_area += active.sum(dim=(0, 2))  # (C,)
        concept_area += masks.sum(dim=(0, 2))  # (K,)
    union = unit_area[:, None] + concept_area[None, :] - intersection  # (C, K)
    iou = torch.where(union > 0, intersection / union.clamp(min=1), torch.zeros_like(union))  # (C, K)
    return iou.float()


def top_units(iou: Tensor, concept: int | str, k: int = 5) -> tuple[Tensor, Tensor]:
    """The ``k`` units whose IoU with ``concept`` is highest (ties: the lower unit first).

    Args:
        iou (Tensor[C, K]): from :func:`unit_concept_iou`.
        concept: a column of ``iou``, or its name in ``CLASSES``.
        k: how many; fewer if there are fewer units.

    Returns:
        ``(units Tensor[k] int64, ious Tensor[k])``, by decreasing IoU.
    """
    check_tensor(iou, "iou")
    if iou.dim() != 2:
        raise ValueError(f"iou: expected a Tensor[C, K], got shape {tuple(iou.shape)}")
    column = _concept_index(concept, iou.shape[1], CLASSES)
    check_number(k, "k", low=0, integer=True)
    values, units = torch.sort(iou[:, column], descending=True, stable=True)  # (C,)
    return units[:k], values[:k]


def mean_when_active(activations: Tensor, thresholds: Tensor) -> Tensor:
    """Per unit, its mean value where it is above its threshold: a value to insert it with (0 if never)."""
    _check_maps(activations, "activations")
    check_tensor(thresholds, "thresholds")
    if thresholds.shape != activations.shape[1:2]:
        raise ValueError(f"thresholds: expected a Tensor[{activations.shape[1]}], got {thresholds.shape}")
    active = activations > thresholds[None, :, None, None]  # (B, C, h, w)
    total = (activations * active).sum(dim=(0, 2, 3))  # (C,)
    count = active.sum(dim=(0, 2, 3))  # (C,)
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))  # (C,)


@contextmanager
def ablate(generator: nn.Module, layer: str, units: Sequence[int] | Tensor) -> Iterator[nn.Module]:
    """Switch ``units`` of ``layer`` off, ``r_{U,P} = 0`` everywhere, for a ``with`` block (Sec. 2.2).

    The paper's ablation: zero is where a ReLU unit rests. Yields the generator; the hook is removed
    when the block ends, also after an exception, and the weights are never touched.
    """
    with _intervention(generator, layer, units, where=None, value=0.0):
        yield generator


@contextmanager
def insert(
    generator: nn.Module,
    layer: str,
    units: Sequence[int] | Tensor,
    where: Tensor,
    value: float | Tensor,
) -> Iterator[nn.Module]:
    """Force ``units`` of ``layer`` on inside a region, ``r_{U,P} = c``, for a ``with`` block (Sec. 2.2).

    A bool mask sets ``c`` inside and leaves ``r`` outside; a soft mask ``alpha`` gives
    ``(1 - alpha) * r + alpha * c`` (the form of the paper's optimized, per-unit interventions). Yields
    the generator; the hook is removed when the block ends, also after an exception.

    Args:
        generator: the network.
        layer: the name of the sub-module whose output is changed.
        units: channel indices ``U``.
        where (Tensor[h, w] or Tensor[B, h, w]): the region ``P`` at the layer's resolution, bool or
            in [0, 1].
        value: ``c``, one number or one per unit (Tensor[len(units)]), e.g. from :func:`mean_when_active`.
    """
    check_tensor(where, "where")
    if where.dim() not in (2, 3):
        raise ValueError(f"where: expected a Tensor[h, w] or Tensor[B, h, w], got shape {tuple(where.shape)}")
    with _intervention(generator, layer, units, where=where, value=value):
        yield generator


@contextmanager
def _intervention(generator, layer, units, where, value) -> Iterator[None]:
    units = _unit_indices(units)
    module = get_layer(generator, layer)
    value = torch.as_tensor(value, dtype=torch.float32)
    if value.dim() > 1 or (value.dim() == 1 and len(value) != len(units)):
        raise ValueError(f"value: expected a number or a Tensor[{len(units)}], got {tuple(value.shape)}")

    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> Tensor:
        B, C, h, w = output.shape  # batch, units, height, width of the layer's map
        if len(units) and int(units.max()) >= C:
            raise ValueError(f"units: expected indices below {C} in {layer!r}, got {units.tolist()}")
        if where is not None and (where.shape[-2:] != (h, w) or (where.dim() == 3 and len(where) != B)):
            raise ValueError(f"where: expected {(h, w)} or {(B, h, w)} as the map, got {tuple(where.shape)}")
        alpha = torch.ones(B, 1, h, w) if where is None else where.float().expand(B, h, w)[:, None]
        changed = output.clone()
        constant = value.to(output.dtype).reshape(1, -1, 1, 1) if value.dim() else value.to(output.dtype)
        changed[:, units] = (1 - alpha) * output[:, units] + alpha * constant  # (B, |U|, h, w)
        return changed

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def concept_share(segmenter: nn.Module, images: Tensor, concept: int | str) -> Tensor:
    """Per image, the share of pixels that ``segmenter`` labels as ``concept`` (the argmax class).

    The average causal effect of an intervention (Bau et al. 2019, Sec. 2.2) is the mean change of
    this share between the images drawn with and without it.

    Args:
        segmenter: images (Tensor[B, 3, H, W]) -> class logits Tensor[B, K, H, W]; its ``classes``
            (default ``CLASSES``) name the outputs.
        images (Tensor[B, 3, H, W]): in [0, 1].
        concept: an output index or a class name.

    Returns:
        Tensor[B] float in [0, 1]; empty for no image.
    """
    _check_maps(images, "images")
    column = _concept_index(concept, None, getattr(segmenter, "classes", CLASSES))
    if len(images) == 0:
        return torch.zeros(0)
    with eval_mode(segmenter):
        labels = segmenter(images).argmax(dim=1)  # (B, H, W)
    return (labels == column).float().mean(dim=(1, 2))  # (B,)


def _check_maps(maps: Tensor, name: str) -> None:
    check_tensor(maps, name)
    if maps.dim() != 4:
        raise ValueError(f"{name}: expected a Tensor[B, C, H, W], got shape {tuple(maps.shape)}")


def _unit_indices(units) -> Tensor:
    if not isinstance(units, Tensor):
        units = list(units)
        if not all(isinstance(unit, int) and not isinstance(unit, bool) for unit in units):
            raise TypeError(f"units: expected a sequence of ints, got {units!r}")
        units = torch.tensor(units, dtype=torch.long)
    if units.dim() != 1 or units.is_floating_point() or units.dtype == torch.bool:
        raise TypeError(f"units: expected a sequence of ints, got {units.dtype} {tuple(units.shape)}")
    if len(units) and int(units.min()) < 0:
        raise ValueError(f"units: expected indices >= 0, got {units.tolist()}")
    return units.long()


def _concept_index(concept, num_concepts: int | None, names: Sequence[str]) -> int:
    if isinstance(concept, str):
        if concept not in names:
            raise ValueError(f"concept: expected one of {', '.join(map(repr, names))}, got {concept!r}")
        concept = list(names).index(concept)
    high = (len(names) if num_concepts is None else num_concepts) - 1
    return int(check_number(concept, "concept", low=0, high=high, integer=True))
