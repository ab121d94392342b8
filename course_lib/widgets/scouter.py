"""Explorer for SCOUTER (Li et al., ICCV 2021): each class's slot attention is its explanation.

In SCOUTER the score of class ``i`` is ``lambda * sum_c U_ic`` with ``U = A F' / N``: the evidence
that slot ``i``'s attention map ``A_i`` covers (:mod:`course_lib.models.scouter`). The map *is*
the explanation, with no gradient and no second pass. With SCOUTER+ (``lambda = +1``) a slot lights
up what speaks for its class; with SCOUTER- (``lambda = -1``) the true class is the one whose slot
finds the least, and the other slots light up what speaks against theirs.

:func:`slot_view` is the pure part (one slot's map upsampled to the image, the softmax of the
scores, the prediction); :func:`scouter_view` draws it as a figure; :class:`ScouterExplorer` wraps it
with an image, a slot, a model (SCOUTER+ / SCOUTER-) and an opacity. Each model's ``explain`` runs
once per image and is kept: the slot, the model toggle (after the first visit) and the opacity only
redraw.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from course_lib._checks import check_choice, check_number, check_tensor
from course_lib.data import CLASSES
from course_lib.models.scouter import Scouter
from course_lib.plotting import show_image
from course_lib.recipes.backbone import output_indices
from course_lib.visualization.hooks import eval_mode
from course_lib.widgets.base import MIN_DPI, WIDE_LABEL, Explorer

CMAP = "jet"  # attention in (0, 1), shown on a fixed 0-to-1 scale: maps compare across slots and models
TITLE_SIZE = 12  # points, at 100 dpi: readable on a projector
CHOSEN, OTHER = "tab:orange", "0.7"  # bar colours: the chosen slot, the other classes
FIGSIZE = (9.0, 4.2)
MARGINS = {"left": 0.02, "right": 0.98, "bottom": 0.16, "top": 0.85, "wspace": 0.3}


def variant_name(model: Scouter) -> str:
    """``"SCOUTER+"`` for ``lambda_ = +1`` (evidence for a class), ``"SCOUTER-"`` for -1 (against)."""
    return "SCOUTER+" if model.lambda_ > 0 else "SCOUTER-"


def slot_index(slot: int | str, classes: tuple[str, ...]) -> int:
    """The output index of ``slot``, given as an index in ``[0, n)`` or as one of the class names."""
    if isinstance(slot, str):
        return list(classes).index(check_choice(slot, classes, "slot"))
    return int(check_number(slot, "slot", 0, len(classes) - 1, integer=True))


def check_scouter(model: Any, name: str = "model") -> Scouter:
    """``model`` if it is a :class:`~course_lib.models.scouter.Scouter`, else a ``TypeError``."""
    if not isinstance(model, Scouter):
        raise TypeError(f"{name}: expected a course_lib.models.scouter.Scouter, got {type(model).__name__}")
    return model


def check_images(images: Any, name: str = "images", batch: bool = True) -> Tensor:
    """A float ``Tensor[N, 3, H, W]`` (``batch``) or ``Tensor[3, H, W]``, else a clear error."""
    check_tensor(images, name)
    expected = "Tensor[N, 3, H, W]" if batch else "Tensor[3, H, W]"
    if images.dim() != 3 + batch or images.shape[-3] != 3 or not images.is_floating_point():
        raise ValueError(f"{name}: expected a float {expected}, got shape {tuple(images.shape)}, "
                         f"{images.dtype}")
    if batch and len(images) == 0:
        raise ValueError(f"{name}: expected at least one image, got none")
    return images


def explain_one(model: Scouter, image: Tensor) -> tuple[Tensor, Tensor]:
    """``model.explain`` of one image in eval mode without gradients: ``(Tensor[n], Tensor[n, h, w])``."""
    with eval_mode(model), torch.no_grad():
        logits, attention = model.explain(image[None])  # (1, n), (1, n, h, w)
    return logits[0].cpu(), attention[0].cpu()


def slot_view(logits: Tensor, attention: Tensor, slot: int, image_size: tuple[int, int]) -> dict[str, Any]:
    """What the figure shows of one slot: its map upsampled to the image, and every class's probability.

    Args:
        logits: Tensor[n], the xClassifier's scores (``lambda * sum_c U_ic``).
        attention: Tensor[n, h, w], each slot's sigmoid attention, in (0, 1).
        slot: the chosen output index, in ``[0, n)``.
        image_size: ``(H, W)`` of the image.

    Returns:
        dict: ``slot``; ``map`` (Tensor[h, w], the slot's attention); ``upsampled`` (Tensor[H, W],
        bilinear, clipped to [0, 1]); ``probabilities`` (Tensor[n], softmax of ``logits``);
        ``predicted`` (the argmax); ``score`` (the slot's logit) and ``probability``.
    """
    n = len(logits)  # classes (slots)
    check_number(slot, "slot", 0, n - 1, integer=True)
    H, W = image_size  # the image's height, width
    attention_map = attention[slot].float()  # (h, w)
    upsampled = F.interpolate(attention_map[None, None], size=(H, W), mode="bilinear",
                              align_corners=False)[0, 0].clamp(0, 1)  # (H, W)
    probabilities = logits.float().softmax(dim=0)  # (n,)
    return {"slot": slot, "map": attention_map, "upsampled": upsampled, "probabilities": probabilities,
            "predicted": int(probabilities.argmax()), "score": float(logits[slot]),
            "probability": float(probabilities[slot])}


def _draw_background(ax: tuple[Axes, Axes], image: Tensor, classes: tuple[str, ...]) -> None:
    """What stays while the image does: the image, and the bar chart's axes, ticks and labels."""
    image_ax, bar_ax = ax
    show_image(image_ax, image.detach().cpu().clamp(0, 1))
    bar_ax.set_xlim(-0.6, len(classes) - 0.4)
    bar_ax.set_ylim(0, 1.15)  # room above a bar of 1.0 for the "predicted" mark
    bar_ax.set_xticks(range(len(classes)), classes, fontsize=11)
    bar_ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    bar_ax.set_xlabel("class (one slot each)", fontsize=11)
    bar_ax.set_ylabel("probability (softmax)", fontsize=11)


def _draw_slot(ax: tuple[Axes, Axes], view: dict[str, Any], classes: tuple[str, ...], variant: str,
               opacity: float) -> None:
    """The slot's map over the image, the bars (the slot's highlighted, the prediction marked), titles."""
    image_ax, bar_ax = ax
    H, W = view["upsampled"].shape  # the image's height, width
    image_ax.imshow(view["upsampled"].numpy(), cmap=CMAP, vmin=0, vmax=1, alpha=opacity,
                    extent=(0, W, H, 0), interpolation="nearest")
    slot, predicted = view["slot"], view["predicted"]
    probabilities = view["probabilities"].tolist()
    colors = [CHOSEN if k == slot else OTHER for k in range(len(classes))]
    bar_ax.bar(range(len(classes)), probabilities, color=colors, edgecolor="black", linewidth=0.8)
    bar_ax.text(predicted, probabilities[predicted] + 0.02, "predicted", ha="center", va="bottom",
                fontsize=11)
    image_ax.set_title(f"{classes[slot]} slot · {variant}\nscore {view['score']:+.3f} · "
                       f"p = {view['probability']:.2f}", fontsize=TITLE_SIZE)
    bar_ax.set_title(f"class probabilities · predicted {classes[predicted]}", fontsize=TITLE_SIZE)


def scouter_view(model: Scouter, image: Tensor, slot: int | str, opacity: float = 0.6) -> Figure:
    """One SCOUTER explanation as a figure: a slot's attention over the image, and the class scores.

    Left: the image with the slot's attention map (``h x w``, upsampled bilinearly to the image) in
    ``jet`` from 0 to 1 at ``opacity``, titled with the class, SCOUTER+ or SCOUTER- (from
    ``model.lambda_``) and the slot's score (its logit) and probability. Right: the softmax of the
    ``n`` scores, the chosen slot's bar highlighted, the predicted class marked.

    Args:
        model: a :class:`~course_lib.models.scouter.Scouter`; it runs once, in eval mode.
        image: Tensor[3, H, W] in [0, 1].
        slot: an output index in ``[0, n)`` or a class name of ``model.classes``.
        opacity: of the map, in [0, 1].

    Returns:
        A matplotlib ``Figure`` at 100 dpi, not registered with pyplot (nothing to close; Jupyter
        shows it once when it is the cell's last value).
    """
    check_scouter(model)
    check_images(image, "image", batch=False)
    index = slot_index(slot, model.classes)
    check_number(opacity, "opacity", 0.0, 1.0)
    logits, attention = explain_one(model, image)  # (n,), (n, h, w)
    view = slot_view(logits, attention, index, tuple(image.shape[-2:]))
    figure = Figure(figsize=FIGSIZE, dpi=MIN_DPI)
    FigureCanvasAgg(figure)
    ax = tuple(figure.subplots(1, 2))
    figure.subplots_adjust(**MARGINS)
    _draw_background(ax, image, model.classes)
    _draw_slot(ax, view, model.classes, variant_name(model), opacity)
    return figure


def check_models(models: Any) -> dict[str, Scouter]:
    """A non-empty dict name -> Scouter whose models share their classes, else a clear error."""
    if not isinstance(models, dict):
        raise TypeError(f"models: expected a dict name -> Scouter, got {type(models).__name__}")
    if not models:
        raise ValueError("models: expected at least one Scouter (a dict name -> Scouter), got an empty dict")
    for name, model in models.items():
        if not isinstance(name, str):
            raise TypeError(f"models: expected str names, got {type(name).__name__} {name!r}")
        check_scouter(model, f"models[{name!r}]")
    first = next(iter(models.values())).classes
    for name, model in models.items():
        if model.classes != first:
            raise ValueError(f"models[{name!r}]: expected the classes {first}, got {model.classes}")
    return dict(models)


class ScouterExplorer(Explorer):
    """Pick an image, a class slot and a model (SCOUTER+ / SCOUTER-): see what that slot attends to.

    Panels (as :func:`scouter_view`): the slot's attention over the image, and the class
    probabilities with the slot's bar highlighted and the prediction marked. Controls: ``index``
    (the image), ``slot`` (a class; on a new image it goes back to the image's label if ``labels``
    is given, else to the current model's prediction), ``model`` (the dict's names) and
    ``opacity``. Each model's ``explain`` runs once per image (``cache``, by ``(model, index)``).

    Args:
        models: name -> Scouter, e.g. ``{"SCOUTER+": zoo.load("scouter_pos"), "SCOUTER-": ...}``;
            they must share their ``classes``. The first is shown first.
        images: Tensor[N, 3, H, W] in [0, 1].
        labels: Tensor[N] of ``ShapeCrops`` labels (``CLASSES`` indices, as the data gives them), or
            None; each must name one of the models' classes.
    """

    def __init__(self, models: dict[str, Scouter], images: Tensor, labels: Tensor | None = None) -> None:
        self.models = check_models(models)
        self.images = check_images(images)
        self.classes = next(iter(self.models.values())).classes
        self.labels = None if labels is None else self._check_labels(labels)  # output indices, (N,)
        self.cache: dict[tuple[str, int], tuple[Tensor, Tensor]] = {}
        self._index: int | None = None  # the image of the last result: a new one resets the slot
        first = next(iter(self.models))
        controls = {
            "index": widgets.IntSlider(value=0, min=0, max=len(self.images) - 1, description="image",
                                       continuous_update=False, style=WIDE_LABEL),
            "slot": widgets.Dropdown(options=[(name, k) for k, name in enumerate(self.classes)],
                                     value=self.default_slot(0, first), description="class slot",
                                     style=WIDE_LABEL),
            "model": widgets.ToggleButtons(options=list(self.models), value=first, description="model"),
            "opacity": widgets.FloatSlider(value=0.6, min=0.0, max=1.0, step=0.05, description="opacity",
                                           continuous_update=True, style=WIDE_LABEL),
        }
        caption = ("<div style='font-size: 0.9em'>The slot's attention (jet, 0 = blue to 1 = red, the "
                   "same scale for every slot and model). SCOUTER+: a class scores by the evidence its "
                   "slot covers. SCOUTER-: the true class is the one whose slot finds least; the others "
                   "show what speaks against them.</div>")
        super().__init__(controls, num_axes=2, figsize=FIGSIZE, dpi=MIN_DPI, caption=caption, palette=True,
                         margins=MARGINS)

    def _check_labels(self, labels: Any) -> Tensor:
        check_tensor(labels, "labels")
        N = len(self.images)
        if labels.shape != (N,) or labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(f"labels: expected an int Tensor[{N}], got {tuple(labels.shape)}, "
                             f"{labels.dtype}")
        if N and (labels.min() < 0 or labels.max() >= len(CLASSES)):
            raise ValueError(f"labels: expected CLASSES indices in [0, {len(CLASSES) - 1}], "
                             f"got {labels.tolist()}")
        return output_indices(next(iter(self.models.values())), labels.cpu().long())  # by class name

    def explanation(self, model: str, index: int) -> tuple[Tensor, Tensor]:
        """``(logits Tensor[n], attention Tensor[n, h, w])`` of image ``index`` by ``model``; run once."""
        key = (model, index)
        if key not in self.cache:
            self.cache[key] = explain_one(self.models[model], self.images[index])
        return self.cache[key]

    def default_slot(self, index: int, model: str) -> int:
        """The slot shown on choosing image ``index``: its label, else ``model``'s prediction."""
        if self.labels is not None:
            return int(self.labels[index])
        return int(self.explanation(model, index)[0].argmax())

    def compute(self, index: int, slot: int, model: str, opacity: float) -> dict[str, Any]:
        if index != self._index:  # a new image: its own default slot, not the last image's
            slot = self.default_slot(index, model)
        self._index = index
        logits, attention = self.explanation(model, index)
        view = slot_view(logits, attention, slot, tuple(self.images.shape[-2:]))
        return {**view, "index": index, "model": model, "opacity": opacity,
                "variant": variant_name(self.models[model])}

    def sync_controls(self, result: dict[str, Any]) -> bool:
        self.controls["slot"].value = result["slot"]
        return False  # the result was computed with this slot already

    def background_key(self, result: dict[str, Any]) -> Any:
        return result["index"]  # the image, and the bar chart's axes

    def draw_background(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        _draw_background(ax, self.images[result["index"]], self.classes)

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        _draw_slot(ax, result, self.classes, result["variant"], result["opacity"])

    def summary(self, result: dict[str, Any]) -> str:
        label = "" if self.labels is None else f" · label {self.classes[int(self.labels[result['index']])]}"
        model, variant = result["model"], result["variant"]
        model = model if model == variant else f"{model} ({variant})"
        return (f"image {result['index']}{label} · {model}: "
                f"{self.classes[result['slot']]} slot scores {result['score']:+.3f}, "
                f"p = {result['probability']:.2f} · predicted {self.classes[result['predicted']]}")
