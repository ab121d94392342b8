"""One small training loop for every model of the course.

:func:`fit` walks a dataset in a seeded order, one optimizer step per mini-batch, with a tqdm bar
showing the running loss. Every ``checkpoint_every`` steps (and at the end) it writes the model,
the optimizer and the step count to one safetensors file; called again with the same file it
resumes where that checkpoint stopped and reaches the same weights as an uninterrupted run,
because the batch order and the random numbers of step ``s`` depend only on ``(seed, s)``.

A model plugs in through ``compute_losses(model, batch) -> dict[str, Tensor]``: a detector in
training mode already returns its loss dict (torchvision's convention); a classifier returns
``{"classification": cross_entropy(...)}``. The losses are summed for the backward pass.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from course_lib._checks import check_choice, check_number

OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe's hyper-parameters; stored in the zoo next to the checkpoint.

    The learning rate rises linearly over ``warmup_steps``, then follows a half cosine to 0 at the
    last step. ``max_steps`` stops early (for the notebooks' short live runs); the schedule is still
    that of the full run.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    seed: int = 0
    grad_clip: float | None = 10.0
    max_steps: int | None = None

    def __post_init__(self) -> None:
        check_number(self.epochs, "epochs", low=1, integer=True)
        check_number(self.batch_size, "batch_size", low=1, integer=True)
        check_number(self.lr, "lr", low=0)
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_number(self.warmup_steps, "warmup_steps", low=0, integer=True)
        check_number(self.seed, "seed", low=0, integer=True)
        if self.max_steps is not None:
            check_number(self.max_steps, "max_steps", low=0, integer=True)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW over the parameters that require gradients."""
    params = [param for param in model.parameters() if param.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def learning_rate(step: int, total_steps: int, config: TrainConfig) -> float:
    """Linear warm-up, then a half cosine from ``config.lr`` down to 0 at ``total_steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def batch_order(num_items: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The mini-batches of one epoch: a permutation seeded by ``(seed, epoch)``, last batch kept."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(num_items, generator=generator).tolist()
    return [order[start : start + batch_size] for start in range(0, num_items, batch_size)]


def fit(
    model: nn.Module,
    dataset: Sequence,
    compute_losses: Callable[[nn.Module, list], dict[str, Tensor]],
    config: TrainConfig,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 200,
    progress: bool = True,
    on_train: Callable[[nn.Module], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` on ``dataset``; return the loss history, one dict per step.

    Args:
        model: put in training mode for the run (then ``on_train(model)``, e.g. to freeze batch
            norm) and left in eval mode at the end.
        dataset: anything with ``len`` and ``[index]``; a batch is the list of its items.
        compute_losses: ``(model, batch) -> {name: scalar loss}``; the sum is minimized.
        config: the recipe's hyper-parameters.
        checkpoint: a ``.safetensors`` path. If it exists, training resumes from it; it is written
            every ``checkpoint_every`` steps and at the end.
        checkpoint_every: steps between checkpoints.
        progress: show a tqdm bar with the running loss.
        on_train: called after ``model.train()``.

    Returns:
        ``[{"step": s, "lr": ..., "loss": ..., <each loss>: ...}, ...]`` for the steps run in this call
        and the resumed ones before them.
    """
    if len(dataset) == 0:
        raise ValueError("dataset: expected at least one item, got an empty dataset")
    check_number(checkpoint_every, "checkpoint_every", low=1, integer=True)
    steps_per_epoch = math.ceil(len(dataset) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    last_step = total_steps if config.max_steps is None else min(total_steps, config.max_steps)
    optimizer = make_optimizer(model, config)
    history: list[dict[str, float]] = []
    step = 0
    if checkpoint is not None and Path(checkpoint).exists():
        step, history = load_training_state(checkpoint, model, optimizer)

    model.train()
    if on_train is not None:
        on_train(model)
    bar = tqdm(total=last_step, initial=step, disable=not progress, desc="training", leave=True)
    running = None
    while step < last_step:
        epoch, position = divmod(step, steps_per_epoch)
        batch_indices = batch_order(len(dataset), config.batch_size, config.seed, epoch)[position]
        torch.manual_seed(config.seed * 1_000_003 + step)  # the step's augmentation and sampling
        losses = compute_losses(model, [dataset[index] for index in batch_indices])
        total = sum(losses.values())
        if not torch.isfinite(total):
            loss = float(total.detach())
            raise FloatingPointError(f"step {step}: the loss is {loss}; losses {_floats(losses)}")
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, total_steps, config)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        record = {
            "step": step,
            "lr": optimizer.param_groups[0]["lr"],
            "loss": float(total.detach()),
            **_floats(losses),
        }
        history.append(record)
        running = record["loss"] if running is None else 0.95 * running + 0.05 * record["loss"]
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{running:.3f}")
        if checkpoint is not None and (step % checkpoint_every == 0 or step == last_step):
            save_training_state(checkpoint, model, optimizer, step, history, config)
    bar.close()
    model.eval()
    return history


def _floats(losses: dict[str, Tensor]) -> dict[str, float]:
    return {name: float(value.detach()) for name, value in losses.items()}


def save_training_state(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    history: list[dict],
    config: TrainConfig,
) -> None:
    """Write the weights, the optimizer's buffers, the step and the history to one safetensors file."""
    tensors = {f"model.{name}": value.detach().contiguous() for name, value in model.state_dict().items()}
    scalars: dict[str, dict] = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            if isinstance(value, Tensor) and value.dim() > 0:
                tensors[f"optimizer.{index}.{key}"] = value.contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = float(value)
    metadata = {
        "step": str(step),
        "history": json.dumps(history),
        "config": json.dumps(asdict(config)),
        "optimizer_scalars": json.dumps(scalars),
    }
    temporary = Path(f"{path}.partial")
    save_file(tensors, str(temporary), metadata=metadata)
    os.replace(temporary, path)  # a run stopped mid-write leaves the previous checkpoint intact


def load_training_state(
    path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[int, list[dict]]:
    """Restore what :func:`save_training_state` wrote; return ``(step, history)``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    model.load_state_dict({name[6:]: value for name, value in tensors.items() if name.startswith("model.")})
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, scalars in json.loads(metadata["optimizer_scalars"]).items():
        for key, value in scalars.items():
            state.setdefault(int(index), {})[key] = torch.tensor(value)
    optimizer_state = optimizer.state_dict()
    optimizer_state["state"] = state
    optimizer.load_state_dict(optimizer_state)
    return int(metadata["step"]), json.loads(metadata["history"])


def save_weights(path: str | os.PathLike, model: nn.Module, metadata: dict[str, str] | None = None) -> None:
    """Write the model's weights (no optimizer) as a shipped checkpoint."""
    tensors = {name: value.detach().contiguous() for name, value in model.state_dict().items()}
    save_file(tensors, str(path), metadata=metadata or {})
