"""Explorers for looking inside a classifier: activation masks, strongest patches, class visualization.

Three thin wrappers around :mod:`course_lib.visualization` (Zeiler & Fergus 2014, "Visualizing and
Understanding Convolutional Networks"; Girshick et al. 2014, Sec. 3.1; Simonyan et al. 2014, Sec. 2):

* :class:`ActivationExplorer`: one channel's map on one image, thresholded into a mask
  (:func:`~course_lib.visualization.activations.activation_mask`).
* :class:`PatchExplorer`: the image patches where one channel fires most
  (:func:`~course_lib.visualization.activations.top_activations` and ``crop_patches``).
* :class:`ClassVisualizationExplorer`: gradient ascent on a class score
  (:func:`~course_lib.visualization.class_viz.class_visualization`).

A forward pass per slider move would make the sliders lag, so the first two record each layer once
(all its channels, :func:`~course_lib.visualization.activations.layer_activations`) and compute the
channel's view from that cache with the functions that ``activation_mask`` and ``top_activations``
use themselves (``mask_from_map``, ``top_from_maps``); the third caches each finished ascent by its
settings.
"""

from __future__ import annotations

import math
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from torch import Tensor, nn

from course_lib._checks import check_tensor
from course_lib.plotting import show_image
from course_lib.visualization.activations import crop_patches, layer_activations, mask_from_map, top_from_maps
from course_lib.visualization.class_viz import INITS, class_visualization
from course_lib.visualization.hooks import eval_mode, get_layer, layer_names
from course_lib.visualization.receptive_field import RF, receptive_field
from course_lib.widgets.base import WIDE_LABEL, Explorer

MASK_DIM = 0.3  # brightness kept outside the mask
PATCH_GAP = 2  # pixels between patches in the grid


def _layers(model: nn.Module, layers: list[str] | None) -> list[str]:
    """The layer names offered: the given ones (checked) or every ReLU of ``model``."""
    names = layer_names(model, (nn.ReLU,)) if layers is None else list(layers)
    if not names:
        raise ValueError("layers: expected at least one layer name, got none")
    for name in names:
        get_layer(model, name)  # unknown names list the valid ones
    return names


def patch_grid(patches: Tensor, gap: int = PATCH_GAP) -> Tensor:
    """Tile ``Tensor[k, C, s, s]`` patches row by row into one image ``Tensor[C, H, W]`` on white."""
    k, C, s, _ = patches.shape
    cols = max(math.ceil(math.sqrt(k)), 1)
    rows = max(math.ceil(k / cols), 1)
    grid = patches.new_ones(C, rows * (s + gap) - gap, cols * (s + gap) - gap)
    for index in range(k):
        top, left = (index // cols) * (s + gap), (index % cols) * (s + gap)
        grid[:, top : top + s, left : left + s] = patches[index]
    return grid


def _layer_controls(layers: list[str]) -> dict[str, widgets.ValueWidget]:
    """The layer dropdown (the deepest layer first shown) and the channel slider (range set on sync)."""
    return {
        "layer": widgets.Dropdown(options=layers, value=layers[-1],
                                  description="layer"),
        "channel": widgets.IntSlider(value=0, min=0, max=1, description="channel", continuous_update=True),
    }


def _sync_channel(control: widgets.IntSlider, num_channels: int) -> bool:
    """Set the channel slider's maximum to ``num_channels - 1``; True if its value had to move."""
    before = control.value
    control.max = num_channels - 1  # ipywidgets clamps the value when the maximum drops
    return control.value != before


class ActivationExplorer(Explorer):
    """Where does one channel fire on one image? Its map, thresholded and overlaid as a mask.

    Left: the image, dimmed outside the mask (pixels whose upsampled, per-image normalized value
    is at least ``threshold``). Right: the raw activation map at the layer's own resolution.
    Each layer is recorded once for the image (all channels), so channel and threshold moves only
    threshold and upsample a cached map, as
    :func:`~course_lib.visualization.activations.activation_mask` does.

    Args:
        model: a classifier (run in eval mode; each module's mode is restored).
        image (Tensor[C, H, W]): the image, as the model expects it.
        layers: the layer names offered; default every ReLU of ``model``.
    """

    def __init__(self, model: nn.Module, image: Tensor, layers: list[str] | None = None) -> None:
        check_tensor(image, "image")
        if image.dim() != 3:
            raise ValueError(f"image: expected a Tensor[C, H, W], got shape {tuple(image.shape)}")
        self.model, self.image, self.layers = model, image, _layers(model, layers)
        self.maps: dict[str, Tensor] = {}  # layer -> Tensor[C, h, w] for this image
        controls = _layer_controls(self.layers)
        controls["threshold"] = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05,
                                                    description="threshold", continuous_update=True,
                                                    style=WIDE_LABEL)
        super().__init__(controls, num_axes=2, figsize=(7.0, 3.6), dpi=100)

    def layer_maps(self, layer: str) -> Tensor:
        """All channels of ``layer`` for the image, Tensor[C, h, w] (one forward pass per layer)."""
        if layer not in self.maps:
            self.maps[layer] = layer_activations(self.model, self.image[None], layer)[0]
        return self.maps[layer]

    def compute(self, layer: str, channel: int, threshold: float) -> dict[str, Any]:
        maps = self.layer_maps(layer)  # (C, h, w)
        channel = min(channel, len(maps) - 1)  # a layer with fewer channels: the slider follows next
        view = mask_from_map(maps[channel], tuple(self.image.shape[-2:]), threshold)
        coverage = float(view["mask"].float().mean())
        return {**view, "layer": layer, "channel": channel, "num_channels": len(maps),
                "threshold": threshold, "coverage": coverage}

    def sync_controls(self, result: dict[str, Any]) -> bool:
        return _sync_channel(self.controls["channel"], result["num_channels"])

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, map_ax = ax
        keep = result["mask"].to(self.image.dtype)  # (H, W)
        show_image(image_ax, self.image * (MASK_DIM + (1 - MASK_DIM) * keep))
        image_ax.set_title(f"mask at {result['threshold']:.2f} of the peak", fontsize=10)
        activation = result["activation"]
        h, w = activation.shape
        high = max(float(activation.max()), 1e-6)
        map_ax.imshow(activation.numpy(), extent=(0, w, h, 0), cmap="viridis", vmin=0, vmax=high,
                      interpolation="nearest")
        map_ax.set_axis_off()
        map_ax.set_title(f"channel {result['channel']}: {h}x{w} map, peak {high:.2f}", fontsize=10)

    def summary(self, result: dict[str, Any]) -> str:
        return (f"{result['layer']} · channel {result['channel']} of {result['num_channels']} · "
                f"threshold {result['threshold']:.2f} · mask covers {result['coverage']:.0%} of the image")


class PatchExplorer(Explorer):
    """The image patches one channel responds to most: each unit's receptive field, cropped.

    For the chosen layer and channel, every image contributes its strongest unit; the
    ``num_patches`` strongest images are shown, each cropped to that unit's whole receptive field
    (zeros where it reaches past the border), strongest first, row by row. The images are run once
    per layer and all channels kept, so moving the channel or the count does not rerun the model;
    the ranking is :func:`~course_lib.visualization.activations.top_activations`'.

    Args:
        model: a classifier (run in eval mode; each module's mode is restored).
        images (Tensor[N, C, H, W]): the images searched, at least one.
        layers: the layer names offered; default every ReLU of ``model``.
    """

    def __init__(self, model: nn.Module, images: Tensor, layers: list[str] | None = None) -> None:
        check_tensor(images, "images")
        if images.dim() != 4 or len(images) == 0:
            raise ValueError(f"images: expected a Tensor[N, C, H, W] with N >= 1, got shape "
                             f"{tuple(images.shape)}")
        self.model, self.images, self.layers = model, images, _layers(model, layers)
        self.maps: dict[str, Tensor] = {}  # layer -> Tensor[N, C, h, w]
        self.fields: dict[str, RF] = {}
        controls = _layer_controls(self.layers)
        controls["num_patches"] = widgets.IntSlider(value=9, min=1, max=16, description="patches",
                                                    continuous_update=True, style=WIDE_LABEL)
        super().__init__(controls, num_axes=1, figsize=(4.2, 4.4), dpi=100)

    def layer_maps(self, layer: str) -> tuple[Tensor, RF]:
        """All channels of ``layer`` for every image, Tensor[N, C, h, w], and its receptive field."""
        if layer not in self.maps:
            self.fields[layer] = receptive_field(self.model, layer)  # unsupported layers fail first
            self.maps[layer] = layer_activations(self.model, self.images, layer)
        return self.maps[layer], self.fields[layer]

    def compute(self, layer: str, channel: int, num_patches: int) -> dict[str, Any]:
        maps, rf = self.layer_maps(layer)  # (N, C, h, w)
        channel = min(channel, maps.shape[1] - 1)
        top = top_from_maps(maps[:, channel], rf, num_patches)
        patches = crop_patches(self.images[top["indices"]], top["fields"], size=rf.size)  # (k, C, s, s)
        return {**top, "grid": patch_grid(patches), "layer": layer, "channel": channel,
                "num_channels": maps.shape[1], "rf": rf}

    def sync_controls(self, result: dict[str, Any]) -> bool:
        return _sync_channel(self.controls["channel"], result["num_channels"])

    def draw(self, result: dict[str, Any], ax: Axes) -> None:
        show_image(ax, result["grid"])
        size = result["rf"].size
        ax.set_title(f"top {len(result['indices'])} patches ({size}x{size} px fields)", fontsize=10)

    def summary(self, result: dict[str, Any]) -> str:
        values, indices = result["values"], result["indices"]
        return (f"{result['layer']} · channel {result['channel']} of {result['num_channels']} · "
                f"top {len(indices)} of {len(self.images)} images · strongest {float(values[0]):.2f} "
                f"(image {int(indices[0])}), weakest shown {float(values[-1]):.2f}")


class ClassVisualizationExplorer(Explorer):
    """The image gradient ascent makes for a class, and how its score climbed.

    Controls: the class, λ (the L2 weight, log scale), the number of steps and the start image.
    Each ascent (about a second per 100 steps on a laptop core) is cached by its settings, so going
    back to one already seen is immediate.

    Args:
        model: a classifier returning logits ``Tensor[B, K]``.
        class_names: the name of each output, in output order (``len(class_names) == K``);
            by default the model's own ``classes``. The explorer opens on the first class that is
            not ``"background"``.
        image_size: ``(H, W)`` of the optimized image.
    """

    def __init__(self, model: nn.Module, class_names: list[str] | tuple[str, ...] | None = None,
                 image_size: tuple[int, int] = (64, 64)) -> None:
        if class_names is None:
            class_names = getattr(model, "classes", None)
            if class_names is None:
                raise ValueError("class_names: expected the name of each output; the model has no `classes`")
        names = list(class_names)
        if not names or not all(isinstance(name, str) for name in names):
            raise ValueError(f"class_names: expected a non-empty list of str, got {class_names!r}")
        channels = getattr(model, "in_channels", 3)
        with torch.no_grad(), eval_mode(model):
            num_outputs = model(torch.zeros(1, channels, *image_size)).shape[1]
        if len(names) != num_outputs:
            raise ValueError(f"class_names: expected {num_outputs} names (one per model output), "
                             f"got {len(names)}")
        self.model, self.class_names, self.image_size = model, names, image_size
        self.cache: dict[tuple, dict[str, Any]] = {}
        controls = {
            "target": widgets.Dropdown(options=[(name, i) for i, name in enumerate(names)],
                                       value=int(names[0] == "background" and len(names) > 1),
                                       description="class"),
            "l2_weight": widgets.FloatLogSlider(value=0.01, base=10, min=-4, max=-1, step=0.25,
                                                description="λ (L2)", readout_format=".1e",
                                                continuous_update=False, style=WIDE_LABEL),
            "steps": widgets.IntSlider(value=50, min=10, max=200, step=10, description="steps",
                                       continuous_update=False),
            "init": widgets.Dropdown(options=list(INITS), value="grey", description="init"),
        }
        super().__init__(controls, num_axes=2, figsize=(7.0, 3.4), dpi=100)

    def compute(self, target: int, l2_weight: float, steps: int, init: str) -> dict[str, Any]:
        key = (target, float(l2_weight), steps, init)
        if key not in self.cache:
            self.cache[key] = class_visualization(self.model, target, steps=steps, l2_weight=float(l2_weight),
                                                  init=init, image_size=self.image_size)
        return {**self.cache[key], "target": target, "l2_weight": float(l2_weight), "steps": steps,
                "init": init}

    def draw(self, result: dict[str, Any], ax: tuple[Axes, ...]) -> None:
        image_ax, curve_ax = ax
        show_image(image_ax, result["image"])
        image_ax.set_title(f"{self.class_names[result['target']]}, from {result['init']}", fontsize=10)
        scores = result["scores"]
        curve_ax.plot(range(1, len(scores) + 1), scores, color="C0")
        curve_ax.set_xlim(0, max(len(scores), 1) + 1)
        curve_ax.autoscale_view(scalex=False)
        curve_ax.set_title("class score S_c per step", fontsize=10)  # no xlabel: it would need a margin

    def summary(self, result: dict[str, Any]) -> str:
        name = self.class_names[result["target"]]
        predicted = self.class_names[result["predicted"]]
        return (f"{name} · λ {result['l2_weight']:.1e} · {result['steps']} steps from {result['init']}: "
                f"score {result['start_score']:.2f} → {result['final_score']:.2f}, "
                f"p({name}) = {result['probability']:.2f}, predicted {predicted}")
