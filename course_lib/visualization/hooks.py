"""Record what a layer computes, and the gradient that flows back into it, with forward hooks.

Every visualization method of the course looks inside a network through this one context
manager (as pytorch-grad-cam's ``ActivationsAndGradients`` and Captum's layer methods do)::

    with record(model, ["features.4", "features.7"], gradients=True) as recorded:
        score = model(images)[:, target].sum()
        score.backward()
    recorded.activations["features.4"]   # Tensor[B, C, H, W], the layer's output
    recorded.gradients["features.4"]     # d score / d output, same shape

The hooks are removed when the ``with`` block ends, also when it ends with an exception, so a
failed experiment never leaves a model that keeps recording. :func:`eval_mode` does the same for
the modules' train/eval flags: a method looks at a model in eval mode and gives it back as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from torch import Tensor, nn

# Layers a student may want to look at; containers (Sequential, the model itself) are left out.
VISIBLE_LAYERS = (
    nn.Conv2d,
    nn.Linear,
    nn.ReLU,
    nn.BatchNorm2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
)


def layer_names(model: nn.Module, kinds: tuple[type, ...] = VISIBLE_LAYERS) -> list[str]:
    """The names of ``model``'s layers of the given kinds, in the order ``named_modules`` visits them."""
    return [name for name, module in model.named_modules() if name and isinstance(module, kinds)]


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The sub-module called ``name`` (``"stage3.1.0"``); an unknown name lists the valid ones."""
    if not isinstance(name, str):
        raise TypeError(f"layer: expected a str name, got {type(name).__name__} {name!r}")
    modules = dict(model.named_modules())
    if not name or name not in modules:
        valid = ", ".join(repr(valid) for valid in layer_names(model))
        raise ValueError(f"layer: unknown name {name!r}; expected one of {valid}")
    return modules[name]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every module of ``model`` in eval mode for a ``with`` block, then give each its own mode back.

    Batch norm then uses its running statistics (and leaves them alone) and dropout is off, so what
    a method records does not depend on the rest of the batch. Each module's flag is restored, also
    after an exception, so a mixed state (a frozen batch norm in a model being trained) survives;
    ``model.train(was_training)`` would set every module to the model's own flag.
    """
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@dataclass
class Recorded:
    """What :func:`record` saw: ``activations[name]`` and, when asked, ``gradients[name]``."""

    activations: dict[str, Tensor] = field(default_factory=dict)
    gradients: dict[str, Tensor] = field(default_factory=dict)


@contextmanager
def record(model: nn.Module, layers: str | Sequence[str], gradients: bool = False) -> Iterator[Recorded]:
    """Record the outputs (and optionally the output gradients) of named layers during a ``with`` block.

    Args:
        model: the network; it is not modified except for the hooks, which are always removed.
        layers: a layer name or a list of them (see :func:`layer_names`).
        gradients: also keep the gradient of whatever is back-propagated with respect to each
            layer's output (Grad-CAM needs it).

    Yields:
        A :class:`Recorded`, filled as the model runs. The activations keep their graph, so a
        method may differentiate through them; ``.detach()`` them to keep only the values.
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("layers: expected at least one layer name, got an empty list")
    modules = {name: get_layer(model, name) for name in names}  # raises before any hook is added
    recorded = Recorded()
    handles = []

    def forward_hook(name: str):
        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            recorded.activations[name] = output
            if gradients and isinstance(output, Tensor) and output.requires_grad:
                output.register_hook(lambda grad: recorded.gradients.__setitem__(name, grad))

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(forward_hook(name)))
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


def has_hooks(model: nn.Module) -> bool:
    """True if any module of ``model`` still holds a forward, pre-forward or backward hook."""
    return any(
        module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
        for module in model.modules()
    )
