"""torchvision's pretrained weights, from the local torch cache only (never downloaded here)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch
import torchvision
from torch import nn


def torchvision_weights_path(name: str, weights: str = "DEFAULT", cache_dir: str | os.PathLike | None = None):
    """``(weights_enum, path)``: where torch.hub would keep ``name``'s weights file."""
    try:
        weights_enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError) as error:
        valid = ", ".join(sorted(torchvision.models.list_models()))
        raise ValueError(f"unknown torchvision model {name!r}: expected one of {valid}") from error
    try:
        chosen = weights_enum[weights] if weights != "DEFAULT" else weights_enum.DEFAULT
    except KeyError as error:
        valid = ", ".join(member.name for member in weights_enum)
        raise ValueError(
            f"{name}: unknown weights {weights!r}, expected 'DEFAULT' or one of {valid}"
        ) from error
    folder = Path(cache_dir) if cache_dir is not None else Path(torch.hub.get_dir()) / "checkpoints"
    return chosen, folder / os.path.basename(chosen.url)


def load_torchvision(
    name: str, weights: str = "DEFAULT", cache_dir: str | os.PathLike | None = None
) -> nn.Module:
    """A torchvision model (``"resnet18"``, ``"fasterrcnn_resnet50_fpn"``, ...) with its pretrained weights.

    The weights are read from the torch hub cache (``$TORCH_HOME/hub/checkpoints``, or
    ``cache_dir``) and never downloaded: when the file is missing, the error says how to get it
    once, on a machine with internet. Detection models are built without downloading a separate
    backbone (``weights_backbone=None``); the state dict holds the whole model.

    Returns:
        The model in eval mode.
    """
    chosen, path = torchvision_weights_path(name, weights, cache_dir)
    if not path.exists():
        raise FileNotFoundError(
            f"{name}: torchvision's weights {chosen} are not in the local cache ({path}). The course never "
            "downloads at run time. With internet, run once:\n"
            "    python -c \"import torchvision; "
            f"torchvision.models.get_weight('{chosen}').get_state_dict(progress=True)\"\n"
            f"or download {chosen.url} to {path}."
        )
    kwargs = {"weights": None}
    if "weights_backbone" in inspect.signature(torchvision.models.get_model_builder(name)).parameters:
        kwargs["weights_backbone"] = None
    categories = chosen.meta.get("categories")
    if categories is not None:
        kwargs["num_classes"] = len(categories)
    model = torchvision.models.get_model(name, **kwargs)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
