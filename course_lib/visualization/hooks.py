"""Record what a layer computes, and the gradient that flows back into it, with forward hooks.

Every visualization method of the course looks inside a network through this one context
manager (as pytorch-grad-cam's ``ActivationsAndGradients`` and Captum's layer methods do)::

    with record(model, ["features.4", "features.7"], gradients=True) as recorded:
        score = model(images)[:, target].sum()
        score.backward()
    recorded.activations["features.4"]   # Tensor[B, C, H, W], the layer's output
    recorded.gradients["features.4"]     # d score / d output, same shape

The hooks are removed when the ``with`` block ends, also when it ends with an exception, so a
failed experiment never leaves a model that keeps recording. :func:`relu_rule` swaps the backward
rule of every ReLU for deconvnet's or guided backprop's in the same way. :func:`eval_mode` does the same for
the modules' train/eval flags: a method looks at a model in eval mode and gives it back as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from torch import Tensor, nn

from course_lib._checks import check_choice

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


# The backward signal through a ReLU, by method (Springenberg et al. 2015, Fig. 1): ``forward_input``
# is what entered the ReLU on the way forward, ``grad_output`` what comes back from above.
RELU_RULES = ("backprop", "deconvnet", "guided")


def relu_backward(forward_input: Tensor, grad_output: Tensor, rule: str = "backprop") -> Tensor:
    """What a ReLU passes back to the layer below it, under each method's rule.

    * ``"backprop"``, the gradient: keep the signal where the forward input was positive;
    * ``"deconvnet"`` (Zeiler & Fergus 2014): keep the signal where *it* is positive, a ReLU on
      the way back, whatever the forward pass did;
    * ``"guided"`` (guided backprop, Springenberg et al. 2015): both masks at once.

    Only ``"backprop"`` is a derivative; the other two are rules made up to give sharper pictures.
    """
    rule = check_choice(rule, RELU_RULES, "rule")
    if forward_input.shape != grad_output.shape:
        raise ValueError(
            f"grad_output: expected the shape of forward_input, {tuple(forward_input.shape)}, "
            f"got {tuple(grad_output.shape)}"
        )
    forward_mask = forward_input > 0
    if rule == "backprop":
        return grad_output * forward_mask
    if rule == "deconvnet":
        return grad_output.clamp(min=0)
    return grad_output.clamp(min=0) * forward_mask


@contextmanager
def relu_rule(model: nn.Module, rule: str) -> Iterator[None]:
    """Back-propagate through every ``nn.ReLU`` of ``model`` with :func:`relu_backward`'s ``rule``.

    Only ReLU *modules* are changed (as in Captum): a ``torch.relu`` called inside a ``forward``
    keeps its gradient. In-place ReLUs are switched to out-of-place while the block runs (a backward
    hook cannot see an in-place op's input). Hooks and ``inplace`` flags are restored when the block
    ends, also after an exception.
    """
    rule = check_choice(rule, RELU_RULES, "rule")
    relus = [module for module in model.modules() if isinstance(module, nn.ReLU)]
    inplace = [relu.inplace for relu in relus]
    handles = []

    def hook(module: nn.Module, grad_input: tuple, grad_output: tuple) -> tuple:
        # grad_input[0] is the gradient, grad_output[0] * (input > 0); the sign of the forward input
        # is the sign of the output where the output is not 0.
        if rule == "deconvnet":
            return (grad_output[0].clamp(min=0),)
        return (grad_input[0].clamp(min=0),)

    try:
        for relu in relus:
            relu.inplace = False
            if rule != "backprop":
                handles.append(relu.register_full_backward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for relu, flag in zip(relus, inplace, strict=True):
            relu.inplace = flag
