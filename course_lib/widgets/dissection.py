"""Explorer for GAN dissection (Bau et al., ICLR 2019, Sec. 2.2): switch units off or on, see what is drawn.

:func:`generate_and_segment` is the pure part: one sample drawn by the generator (as it is, with
some units ablated, or with them inserted in a region) and the segmenter's label map of it.
:func:`intervention_view` draws a sample before and after one intervention, with both label maps.
:class:`DissectionExplorer` wraps them: pick a sample, a concept, how many of its top units (by the
IoU of Eq. 1) and what to do with them, and read the change of the concept's share of the image,
the paper's causal effect for one sample. Its "random units" checkbox is the control the paper
compares with: as many units, but not the concept's best ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib._checks import check_choice, check_number, check_tensor
from course_lib.data import CLASSES
from course_lib.plotting import class_color, show_image
from course_lib.visualization.dissection import ablate, insert, top_units, unit_activations
from course_lib.visualization.hooks import eval_mode
from course_lib.widgets.base import WIDE_LABEL, Explorer, plural

MODES = ("ablate", "insert", "none")
BACKGROUND_COLOR = (0.15, 0.15, 0.15)  # label 0; the shapes keep their course colours (class_color)
TITLE_SIZE = 12  # points, at 100 dpi: readable on a projector
MAX_UNITS = 20  # the explorer's "top units" slider goes up to this many
DONE = {"ablate": "ablated", "insert": "inserted", "none": "as drawn"}


def check_z(z: Any, z_dim: int | None, batch: bool) -> Tensor:
    """``z`` as Tensor[B, Z] (``batch``) or Tensor[1, Z] (or from Tensor[Z]); non-empty, ``z_dim`` wide."""
    check_tensor(z, "z")
    if not batch and z.dim() == 1:
        z = z[None]
    shape = "Tensor[M, Z]" if batch else "Tensor[1, Z] or Tensor[Z]"
    if z.dim() != 2 or (not batch and len(z) != 1):
        raise ValueError(f"z: expected a {shape}, got shape {tuple(z.shape)}")
    if len(z) == 0:
        raise ValueError("z: expected at least one noise vector, got none")
    if z_dim is not None and z.shape[1] != z_dim:
        raise ValueError(f"z: expected vectors of the generator's z_dim {z_dim}, got shape {tuple(z.shape)}")
    return z.float()


@torch.no_grad()
def generate_and_segment(generator: nn.Module, segmenter: nn.Module, z: Tensor, layer: str | None = None,
                         units: Sequence[int] | Tensor = (), mode: str = "none", where: Tensor | None = None,
                         value: float | Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One sample ``G(z)``, drawn as it is or under an intervention, and its label map; both in eval mode.

    Args:
        generator, segmenter: the networks; the segmenter maps images to logits Tensor[1, K, H, W].
        z (Tensor[1, Z] or Tensor[Z]): one noise vector.
        layer, units: the units intervened on (``mode`` "ablate" or "insert").
        mode: "ablate" (:func:`~course_lib.visualization.dissection.ablate`), "insert"
            (:func:`~course_lib.visualization.dissection.insert`, with ``where`` and ``value``) or "none".
        where (Tensor[h, w]): the region inserted into, at the layer's resolution.
        value: the inserted value, one number or one per unit.

    Returns:
        ``(image Tensor[3, H, W] in [0, 1], labels Tensor[H, W] int64)``, the argmax class per pixel.
    """
    check_choice(mode, MODES, "mode")
    z = check_z(z, getattr(generator, "z_dim", None), batch=False)
    if mode == "insert" and (where is None or value is None):
        raise ValueError(f"where, value: expected a region and a value to insert, got {where!r}, {value!r}")
    with eval_mode(generator), eval_mode(segmenter):
        if mode == "ablate":
            with ablate(generator, layer, units):
                images = generator(z)  # (1, 3, H, W)
        elif mode == "insert":
            with insert(generator, layer, units, where, value):
                images = generator(z)
        else:
            images = generator(z)
        labels = segmenter(images).argmax(dim=1)  # (1, H, W)
    return images[0].clamp(0, 1), labels[0]


def intervention_view(generator: nn.Module, segmenter: nn.Module, z: Tensor, layer: str,
                      units: Sequence[int] | Tensor, mode: str = "ablate", where: Tensor | None = None,
                      value: float | Tensor | None = None, concept: int | str | None = None) -> Figure:
    """A sample before and after an intervention, and the segmenter's label map of each (Sec. 2.2).

    Titles give the share of the image labelled ``concept``; by default the concept whose share
    changed most. For "insert", ``where`` is outlined over the intervened image, in image pixels.

    Args:
        as :func:`generate_and_segment`; ``concept``, an index or a name of ``segmenter.classes``.

    Returns:
        A matplotlib ``Figure`` of four panels (not registered with pyplot: display it, or save it).
    """
    check_choice(mode, MODES, "mode")
    before = generate_and_segment(generator, segmenter, z)
    after = generate_and_segment(generator, segmenter, z, layer, units, mode, where, value)
    names = list(getattr(segmenter, "classes", CLASSES))
    if concept is None:  # the shape class that moved most (ties: the first)
        changes = [abs(share(after[1], k) - share(before[1], k)) for k in range(1, len(names))]
        concept = 1 + int(np.argmax(changes)) if changes else 0
    if isinstance(concept, str):
        concept = names.index(check_choice(concept, names, "concept"))
    check_number(concept, "concept", 0, len(names) - 1, integer=True)
    figure = Figure(figsize=(12.0, 3.4), dpi=100)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.01, right=0.86, bottom=0.02, top=0.84, wspace=0.08)
    axes = figure.subplots(1, 4)
    draw_panels(axes, before, after, concept, names, mode, len(torch.as_tensor(units)), where)
    colors = label_colors(len(names))
    axes[3].legend(handles=[Patch(color=colors[k], label=name) for k, name in enumerate(names)],
                   loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=11, title="label")
    return figure


def share(labels: Tensor, concept: int) -> float:
    """The share of the pixels of a label map labelled ``concept``, as ``concept_share`` measures it."""
    return float((labels == concept).float().mean())


def label_colors(num_classes: int) -> np.ndarray:
    """The colour of each label: dark grey for the background, the course's class colour for the others."""
    return np.array([BACKGROUND_COLOR, *(class_color(k) for k in range(1, num_classes))])  # (K, 3)


def outline(mask: Tensor, scale: float) -> np.ndarray:
    """The edges between cells in and out of a bool ``mask`` (Tensor[h, w]), as segments in image pixels."""
    padded = F.pad(mask.bool().int(), (1, 1, 1, 1))  # (h + 2, w + 2)
    rows, cols = torch.nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1], as_tuple=True)  # horizontal edges
    horizontal = [((c, r), (c + 1, r)) for r, c in zip(rows.tolist(), cols.tolist(), strict=True)]
    rows, cols = torch.nonzero(padded[1:-1, 1:] != padded[1:-1, :-1], as_tuple=True)  # vertical edges
    vertical = [((c, r), (c, r + 1)) for r, c in zip(rows.tolist(), cols.tolist(), strict=True)]
    return np.array(horizontal + vertical, dtype=float).reshape(-1, 2, 2) * scale  # (E, 2, 2) as (x, y)


def draw_panels(axes: Sequence[Axes], before: tuple[Tensor, Tensor], after: tuple[Tensor, Tensor],
                concept: int, names: Sequence[str], mode: str, num_units: int, where: Tensor | None) -> None:
    """The four panels: each image and its label map, titled with the concept's share of it."""
    colors = label_colors(len(names))
    what = "as drawn" if mode == "none" else f"{plural(num_units, 'unit')} {DONE[mode]}"
    for ax, (image, labels), title in zip(axes[:2], (before, after), ("as drawn", what), strict=True):
        show_image(ax, image)
        ax.set_title(f"{title}\n{names[concept]} {share(labels, concept):.1%}", fontsize=TITLE_SIZE)
    for ax, (_, labels), title in zip(axes[2:], (before, after), ("as drawn", what), strict=True):
        show_image(ax, colors[labels.numpy()].astype(np.float32))  # (H, W, 3)
        ax.set_title(f"label map, {title}\n{names[concept]} {share(labels, concept):.1%}",
                     fontsize=TITLE_SIZE)
    if mode == "insert" and where is not None:
        scale = after[0].shape[-1] / where.shape[-1]  # image pixels per layer cell
        segments = outline(where, scale)
        axes[1].add_collection(LineCollection(segments, colors="white", linewidths=2, capstyle="projecting"))


class DissectionExplorer(Explorer):
    """Ablate or insert a concept's top units and see the concept go or come (Bau et al. 2019, Sec. 2.2).

    Panels: the sample as drawn and after the intervention, and the segmenter's label map of each;
    the titles give the concept's share of the image. On the first image, a dashed outline shows
    where the chosen units fire above their thresholds (upsampled bilinearly, as in Eq. 1).

    Controls: ``index`` (the sample), ``concept``, ``num_units`` (its top units by IoU), ``mode``
    (ablate: ``r_U = 0`` everywhere; insert: ``r_U = activations_mean`` in a square of side a quarter
    of the layer's map, at ``row``, ``col``; none), and ``random_units``: as many units drawn at
    random (seeded) among the others, the units that are not the concept's top ones, as a control.
    The plain sample, its label map and its layer map are computed once per sample.

    Args:
        generator, segmenter: the networks (segmenter: images -> logits Tensor[B, K, H, W]).
        layer: the generator's layer whose units are dissected.
        iou (Tensor[C, K]): per unit and concept, from ``unit_concept_iou``.
        thresholds (Tensor[C]): ``t_u``, from ``unit_thresholds``.
        activations_mean (Tensor[C]): the value each unit is inserted with (``mean_when_active``).
        z (Tensor[M, Z]): the samples' noise vectors.
        seed: the seed of the random units.
    """

    def __init__(self, generator: nn.Module, segmenter: nn.Module, layer: str, iou: Tensor,
                 thresholds: Tensor, activations_mean: Tensor, z: Tensor, seed: int = 0) -> None:
        self.z = check_z(z, getattr(generator, "z_dim", None), batch=True)
        self.generator, self.segmenter, self.layer = generator, segmenter, layer
        self.names = list(getattr(segmenter, "classes", CLASSES))
        _, C, h, w = unit_activations(generator, layer, self.z[:1]).shape  # an unknown layer fails here
        for name, value, shape in (("iou", iou, (C, len(self.names))), ("thresholds", thresholds, (C,)),
                                   ("activations_mean", activations_mean, (C,))):
            check_tensor(value, name)
            if tuple(value.shape) != shape:
                raise ValueError(f"{name}: expected a Tensor{list(shape)} ({C} units of {layer!r}), "
                                 f"got shape {tuple(value.shape)}")
        if len(self.names) < 2:
            raise ValueError(f"segmenter.classes: expected background and a concept, got {self.names}")
        check_number(seed, "seed", integer=True)
        self.iou, self.thresholds, self.values = iou.float(), thresholds.float(), activations_mean.float()
        self.map_size, self.side = (h, w), max(1, min(h, w) // 4)  # the inserted square, in layer cells
        self.order = torch.randperm(C, generator=torch.Generator().manual_seed(seed))  # (C,)
        self.cache: dict[int, dict[str, Tensor]] = {}
        controls = {
            "index": widgets.IntSlider(value=0, min=0, max=len(self.z) - 1, description="sample",
                                       continuous_update=False, style=WIDE_LABEL),
            "concept": widgets.Dropdown(options=[(name, k) for k, name in enumerate(self.names)][1:],
                                        value=1, description="concept"),
            "num_units": widgets.IntSlider(value=min(5, C), min=1, max=min(MAX_UNITS, C),
                                           description="top units", continuous_update=False,
                                           style=WIDE_LABEL),
            "mode": widgets.ToggleButtons(options=MODES, value="ablate", description="units"),
            "row": widgets.IntSlider(value=(h - self.side) // 2, min=0, max=h - self.side, description="row",
                                     continuous_update=False, style=WIDE_LABEL),
            "col": widgets.IntSlider(value=(w - self.side) // 2, min=0, max=w - self.side,
                                     description="column", continuous_update=False, style=WIDE_LABEL),
            "random_units": widgets.Checkbox(value=False, description="random units (control)"),
        }
        key = " &nbsp; ".join(f"<span style='color: {mpl.colors.to_hex(color)}'>■</span> {name}"
                              for name, color in zip(self.names, label_colors(len(self.names)), strict=True))
        caption = (f"<div style='font-size: 0.9em'>Labels: {key}<br>Insert sets the units to their mean "
                   f"value when active inside the white {self.side} × {self.side} square of the {h} × {w} "
                   "map; the dashed outline is where the chosen units fire above their thresholds.</div>")
        super().__init__(controls, num_axes=4, figsize=(11.0, 3.4), dpi=100, caption=caption, palette=True,
                         margins={"left": 0.01, "right": 0.99, "bottom": 0.02, "top": 0.84, "wspace": 0.06})

    def plain_sample(self, index: int) -> dict[str, Tensor]:
        """Sample ``index`` as drawn: its image, label map and layer map (Tensor[C, h, w]); computed once."""
        if index not in self.cache:
            image, labels = generate_and_segment(self.generator, self.segmenter, self.z[index])
            maps = unit_activations(self.generator, self.layer, self.z[index : index + 1])[0]  # (C, h, w)
            self.cache[index] = {"image": image, "labels": labels, "maps": maps}
        return self.cache[index]

    def choose_units(self, concept: int, num_units: int, random_units: bool) -> Tensor:
        """The concept's top ``num_units`` units, or as many from the seeded order of the others."""
        top = top_units(self.iou, concept, num_units)[0]  # (k,)
        if not random_units:
            return top
        others = self.order[~torch.isin(self.order, top)]  # the non-top units first, then the top ones
        return torch.cat([others, self.order[torch.isin(self.order, top)]])[:num_units]

    def compute(self, index: int, concept: int, num_units: int, mode: str, row: int, col: int,
                random_units: bool) -> dict[str, Any]:
        plain = self.plain_sample(index)
        units = self.choose_units(concept, num_units, random_units)
        where = torch.zeros(self.map_size, dtype=torch.bool)
        where[row : row + self.side, col : col + self.side] = True  # (h, w)
        before = plain["image"], plain["labels"]
        after = before if mode == "none" else generate_and_segment(
            self.generator, self.segmenter, self.z[index], self.layer, units, mode, where, self.values[units])
        upsampled = F.interpolate(plain["maps"][units][None], size=tuple(plain["image"].shape[-2:]),
                                  mode="bilinear", align_corners=False)[0]  # (k, H, W), as in Eq. 1
        firing = (upsampled > self.thresholds[units][:, None, None]).any(dim=0)  # (H, W)
        return {"index": index, "concept": concept, "mode": mode, "units": units, "random": random_units,
                "where": where, "before": before, "after": after, "firing": firing,
                "share_before": share(before[1], concept), "share_after": share(after[1], concept)}

    def sync_controls(self, result: dict[str, Any]) -> bool:
        for name in ("row", "col"):
            self.controls[name].disabled = result["mode"] != "insert"
        return False

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        draw_panels(ax, result["before"], result["after"], result["concept"], self.names, result["mode"],
                    len(result["units"]), result["where"])
        segments = outline(result["firing"], 1.0)
        if len(segments):
            ax[0].add_collection(LineCollection(segments, colors="white", linewidths=1, linestyles="--"))

    def summary(self, result: dict[str, Any]) -> str:
        which = "random" if result["random"] else "top"
        units = ", ".join(map(str, result["units"].tolist()))
        name = self.names[result["concept"]]
        action = "no intervention" if result["mode"] == "none" else DONE[result["mode"]]
        return (f"sample {result['index']}: {which} {plural(len(result['units']), 'unit')} of {self.layer} "
                f"for {name} [{units}] {action} · {name} {result['share_before']:.1%} → "
                f"{result['share_after']:.1%} of the image")
