"""Explorer for the explanation methods: every method of the chapter on the same image and target.

:func:`explanation_view` is the pure part: one image's map by
:func:`~course_lib.visualization.explain.attribute` and
:func:`~course_lib.visualization.explain.channel_map` (the two steps of ``explain``, kept apart
so that the signed methods' per-channel attribution is shown too, by
:func:`~course_lib.visualization.explain.signed_image`, without a second run).
:class:`ExplanationExplorer` wraps it: the image, the map over the image, and the signed view.

A map is computed once per (image, method, layer, target) and kept: occlusion runs a forward pass
per window position (~0.3 s on a 64x64 crop), and the opacity slider only redraws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from torch import Tensor, nn

from course_lib._checks import check_choice, check_tensor
from course_lib.data import CLASSES
from course_lib.plotting import draw_boxes, show_image
from course_lib.visualization.explain import (
    LAYER_METHODS,
    METHODS,
    OPTIONS,
    SIGNED_METHODS,
    attribute,
    channel_map,
    signed_image,
)
from course_lib.visualization.hooks import eval_mode, get_layer, layer_names
from course_lib.visualization.targets import Target, class_indices, detection_score
from course_lib.widgets.base import WIDE_LABEL, Explorer, plural

CMAP = "jet"
MAX_DETECTIONS = 10  # a detector's target dropdown offers its best detections on the image
# With a detector the target is a callable (one detection): SmoothGrad, occlusion and CAM take classes.
DETECTOR_METHODS = ("saliency", "deconvnet", "guided backprop", "grad-cam", "guided grad-cam", "hires-cam")
NO_DETECTION = -1  # the target dropdown's value on an image without detections


def explanation_view(model: nn.Module, image: Tensor, method: str, target: Target, layer: str | None = None,
                     as_list: bool = False, **options: Any) -> dict[str, Any]:
    """What the explorer draws for one image: ``explain(method, ...)``'s map, its range, the signed view.

    Args:
        model: a classifier, or a detector with ``as_list``.
        image: Tensor[C, H, W].
        method, target, layer, **options: as in :func:`~course_lib.visualization.explain.explain`,
            for a batch of one (``target`` a class index or a callable on the model's output).
        as_list: pass the image as a list of one (a detector) instead of a Tensor[1, C, H, W].

    Returns:
        dict with ``map`` (Tensor[H, W], equal to ``explain(...)[0]``), ``low`` and ``high`` (its
        range, floats) and ``signed`` (Tensor[H, W, C] in [0, 1] for the signed methods, else None).
    """
    images = [image] if as_list else image[None]
    attribution = attribute(method, model, images, target, layer, **options)[0]  # (C, H, W) or (H, W)
    heatmap = channel_map(attribution[None])[0]  # (H, W)
    signed = signed_image(attribution) if method in SIGNED_METHODS else None  # (H, W, C)
    return {"map": heatmap.detach(), "low": float(heatmap.min()), "high": float(heatmap.max()),
            "signed": signed}


class ExplanationExplorer(Explorer):
    """Which pixels make a score high, by each method of the chapter, for one image and one target.

    Panels: the image; the map over it (jet, from the map's minimum to its maximum, given in the
    title) at the chosen opacity; for deconvnet, guided backprop and Guided Grad-CAM, their signed
    per-channel signal as an RGB image (grey is 0), for the other methods the map alone.

    Controls: ``index`` (the image), ``method``, ``layer`` (Grad-CAM's; disabled for the methods that
    do not use it), ``target`` and ``opacity``. With a classifier the target is a class, by default
    the image's label if ``targets`` is given, else the model's prediction (it goes back to that
    default when the image changes). With a detector (``images`` a list) it is one of the image's
    first ``MAX_DETECTIONS`` detections (:func:`~course_lib.visualization.targets.detection_score`),
    and only the gradient methods are offered (:data:`DETECTOR_METHODS`).

    Args:
        model: a classifier returning logits Tensor[B, K], or a detector (a list of images in, a
            list of dicts with ``boxes``, ``scores``, ``labels`` out).
        images: Tensor[N, C, H, W] for a classifier; a list of Tensor[3, H, W] for a detector.
        targets: one class index per image (a classifier's labels), or None.
        layers: the layer names offered for Grad-CAM; default every ``nn.ReLU`` of ``model``.
        method: the method shown first.
        class_names: the name of each class; default ``model.classes``, else (a detector) ``CLASSES``.
        options: method -> its keyword options (``{"occlusion": {"window": 16, "stride": 8}}``).
    """

    def __init__(self, model: nn.Module, images: Tensor | Sequence[Tensor], targets: Any = None,
                 layers: Sequence[str] | None = None, method: str = "grad-cam",
                 class_names: Sequence[str] | None = None, options: dict[str, dict] | None = None) -> None:
        self.model, self.detector = model, isinstance(images, list | tuple)
        self.methods = DETECTOR_METHODS if self.detector else METHODS
        check_choice(method, self.methods, "method")
        self.options = dict(options or {})
        for name, values in self.options.items():  # checked now, not when a student picks the method
            check_choice(name, self.methods, "options")
            unknown = sorted(set(values) - set(OPTIONS[name]))
            if unknown:
                raise ValueError(f"options: method {name!r} takes options "
                                 f"{', '.join(map(repr, OPTIONS[name])) or 'none'}, got {unknown}")
        self.layers = layer_names(model, (nn.ReLU,)) if layers is None else list(layers)
        if not self.layers:
            raise ValueError("layers: expected at least one layer name, got none")
        for name in self.layers:
            get_layer(model, name)  # an unknown name lists the valid ones
        self.images = self._check_images(images)
        self.class_names = list(class_names or getattr(model, "classes", None) or CLASSES)
        if self.detector:
            self._find_detections(targets)
        else:
            self._classify(targets)
        self.cache: dict[tuple, dict[str, Any]] = {}
        self._index: int | None = None  # the image of the last result (its target resets on a change)
        self._target_index = 0  # the image whose targets the target dropdown lists
        controls = {
            "index": widgets.IntSlider(value=0, min=0, max=len(self.images) - 1, description="image",
                                       continuous_update=False, style=WIDE_LABEL),
            "method": widgets.Dropdown(options=self.methods, value=method, description="method"),
            "layer": widgets.Dropdown(options=self.layers, value=self.layers[-1], description="layer"),
            "target": widgets.Dropdown(options=self._target_options(0), value=self.default_target(0),
                                       description="detection" if self.detector else "class"),
            "opacity": widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="opacity",
                                           continuous_update=True, style=WIDE_LABEL),
        }
        caption = ("<div style='font-size: 0.9em'>Map colours (jet): blue at the map's minimum, red at "
                   "its maximum, both in the title; maps are not normalized, so values compare across "
                   "images, not across methods. Signed view: grey is 0, a colour channel brighter than "
                   "grey a positive signal, darker a negative one. The layer is used by Grad-CAM and "
                   "Guided Grad-CAM only.</div>")
        super().__init__(controls, num_axes=3, figsize=(9.0, 3.7), dpi=100, caption=caption,
                         margins={"left": 0.01, "right": 0.99, "bottom": 0.02, "top": 0.84, "wspace": 0.06})

    def _check_images(self, images: Any) -> list[Tensor]:
        if self.detector:
            images = list(images)
            for index, image in enumerate(images):
                check_tensor(image, f"images[{index}]")
                if image.dim() != 3 or image.shape[0] != 3:
                    raise ValueError(f"images[{index}]: expected a Tensor[3, H, W], "
                                     f"got shape {tuple(image.shape)}")
        else:
            check_tensor(images, "images")
            if images.dim() != 4:
                raise ValueError(f"images: expected a Tensor[N, C, H, W], got shape {tuple(images.shape)}")
            images = list(images)
        if not images:
            raise ValueError("images: expected at least one image, got none")
        return images

    def _classify(self, targets: Any) -> None:
        """The model's probabilities for every image, one forward pass; the default class of each."""
        with eval_mode(self.model), torch.no_grad():
            logits = self.model(torch.stack(self.images))  # (N, K)
        if logits.dim() != 2 or logits.shape[1] != len(self.class_names):
            raise ValueError(f"class_names: expected one name per model output, {tuple(logits.shape)[1:]}, "
                             f"got {len(self.class_names)}")
        self.probabilities = logits.softmax(dim=1)  # (N, K)
        self.predicted = self.probabilities.argmax(dim=1)  # (N,)
        self.labels = None if targets is None else class_indices(targets, len(self.images), logits.shape[1])
        self.defaults = (self.predicted if self.labels is None else self.labels).tolist()

    def _find_detections(self, targets: Any) -> None:
        """Each image's best ``MAX_DETECTIONS`` detections, one detector run per image."""
        if targets is not None:
            raise ValueError("targets: a detector's target is one of its detections (the dropdown); "
                             "expected None")
        self.detections = []
        with eval_mode(self.model), torch.no_grad():
            for image in self.images:
                output = self.model([image])[0]
                best = output["scores"].argsort(descending=True, stable=True)[:MAX_DETECTIONS]  # (n,)
                self.detections.append({key: output[key][best].detach()
                                        for key in ("boxes", "scores", "labels")})
        self.defaults = [0 if len(found["scores"]) else NO_DETECTION for found in self.detections]

    def _name(self, label: int) -> str:
        return self.class_names[label] if 0 <= label < len(self.class_names) else str(label)

    def _target_options(self, index: int) -> list[tuple[str, int]]:
        if not self.detector:
            return [(name, k) for k, name in enumerate(self.class_names)]
        found = self.detections[index]
        options = [(f"{k}: {self._name(int(label))} {float(score):.2f}", k)
                   for k, (label, score) in enumerate(zip(found["labels"], found["scores"], strict=True))]
        return options or [("no detection", NO_DETECTION)]

    def default_target(self, index: int) -> int:
        """The target shown on choosing image ``index``: its label, the prediction or its best detection."""
        return self.defaults[index]

    def explanation(self, index: int, method: str, layer: str, target: int) -> dict[str, Any]:
        """The view of image ``index``, computed once per (image, method, layer used, target)."""
        key = (index, method, layer if method in LAYER_METHODS else None, target)
        if key not in self.cache:
            image = self.images[index]
            if self.detector and target == NO_DETECTION:
                zeros = image.new_zeros(image.shape[-2:])
                signed = signed_image(image.new_zeros(image.shape)) if method in SIGNED_METHODS else None
                self.cache[key] = {"map": zeros, "low": 0.0, "high": 0.0, "signed": signed}
            else:
                if self.detector:  # the chosen detection, found again on every forward pass
                    chosen = slice(target, target + 1)
                    found = self.detections[index]
                    target = detection_score(found["boxes"][chosen], found["labels"][chosen])
                self.cache[key] = explanation_view(self.model, image, method, target, layer,
                                                   as_list=self.detector, **self.options.get(method, {}))
        return self.cache[key]

    def compute(self, index: int, method: str, layer: str, target: int, opacity: float) -> dict[str, Any]:
        if index != self._index:  # a new image: its own default target, not the last image's
            target = self.default_target(index)
        self._index = index
        view = self.explanation(index, method, layer, target)
        if self.detector:
            found = self.detections[index]
            has_box = target != NO_DETECTION
            box = found["boxes"][target] if has_box else None
            name = self._name(int(found["labels"][target])) if has_box else "no detection"
            score = float(found["scores"][target]) if has_box else float("nan")
        else:
            box, name, score = None, self._name(target), float(self.probabilities[index, target])
        return {**view, "index": index, "method": method, "layer": layer, "target": target,
                "opacity": opacity, "name": name, "score": score, "box": box}

    def sync_controls(self, result: dict[str, Any]) -> bool:
        self.controls["layer"].disabled = result["method"] not in LAYER_METHODS
        control = self.controls["target"]
        with control.hold_sync():
            if self.detector and result["index"] != self._target_index:
                control.options = self._target_options(result["index"])
                self._target_index = result["index"]
            control.value = result["target"]
        return False  # the result was computed with these values already

    def background_key(self, result: dict[str, Any]) -> Any:
        return result["index"]  # the image under each panel

    def draw_background(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image = self.images[result["index"]].detach().clamp(0, 1)  # shown as it is, clipped to [0, 1]
        for panel in ax:
            show_image(panel, image)

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, overlay_ax, signed_ax = ax
        H, W = result["map"].shape  # height, width
        heatmap = result["map"].float().numpy()
        scale = {"cmap": CMAP, "vmin": result["low"], "vmax": max(result["high"], result["low"] + 1e-12),
                 "extent": (0, W, H, 0), "interpolation": "nearest"}
        overlay_ax.imshow(heatmap, alpha=result["opacity"], **scale)
        if result["signed"] is not None:
            signed_ax.imshow(result["signed"].numpy(), extent=(0, W, H, 0), interpolation="nearest")
            signed_ax.set_title("signed signal (grey = 0)", fontsize=11)
        else:
            signed_ax.imshow(heatmap, **scale)
            signed_ax.set_title("the map alone", fontsize=11)
        if result["box"] is not None:
            for panel in (image_ax, overlay_ax):
                draw_boxes(panel, result["box"][None], color="white", linewidth=1.5)
        image_ax.set_title(self._image_title(result), fontsize=11)
        where = f" at {result['layer']}" if result["method"] in LAYER_METHODS else ""
        overlay_ax.set_title(f"{result['method']}{where}: {result['name']}\n"
                             f"map {result['low']:.3g} to {result['high']:.3g}", fontsize=11)

    def _image_title(self, result: dict[str, Any]) -> str:
        index = result["index"]
        if self.detector:
            return f"image {index}\n{plural(len(self.detections[index]['scores']), 'detection')} offered"
        predicted = f"predicted {self._name(int(self.predicted[index]))}"
        if self.labels is None:
            return f"image {index}\n{predicted}"
        return f"image {index}\nlabel {self._name(int(self.labels[index]))} · {predicted}"

    def summary(self, result: dict[str, Any]) -> str:
        if self.detector:
            target = "no detection on this image"
            if result["target"] != NO_DETECTION:
                target = f"detection {result['target']}: {result['name']} (score {result['score']:.2f})"
        else:
            target = f"class {result['name']} · p({result['name']}) = {result['score']:.2f}"
        return f"{result['method']} · {target} · map max {result['high']:.3g}"
