"""The training loop: schedule, seeded order, loss falls, resuming equals an uninterrupted run."""

import math

import pytest
import torch
from torch import nn

from course_lib.train import TrainConfig, batch_order, fit, learning_rate, save_weights


def regression_data(n=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, generator=generator)
    outputs = inputs @ torch.tensor([1.0, -2.0, 0.5]) + 0.1
    return list(zip(inputs, outputs, strict=True))


def mse_losses(model, batch):
    inputs = torch.stack([x for x, _ in batch])
    outputs = torch.stack([y for _, y in batch])
    return {"mse": ((model(inputs).squeeze(1) - outputs) ** 2).mean()}


def fresh_model():
    torch.manual_seed(0)
    return nn.Linear(3, 1)


CONFIG = TrainConfig(epochs=5, batch_size=8, lr=0.05, warmup_steps=4, seed=3)


def test_learning_rate_warms_up_then_follows_a_half_cosine():
    config = TrainConfig(lr=1.0, warmup_steps=4)
    assert [learning_rate(step, 104, config) for step in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert learning_rate(4, 104, config) == pytest.approx(1.0)
    assert learning_rate(54, 104, config) == pytest.approx(0.5)  # half way down the cosine
    assert learning_rate(104, 104, config) == pytest.approx(0.0, abs=1e-12)


def test_batch_order_is_a_seeded_permutation_that_changes_each_epoch():
    first = batch_order(10, 4, seed=1, epoch=0)
    assert [len(batch) for batch in first] == [4, 4, 2]
    assert sorted(sum(first, [])) == list(range(10))
    assert first == batch_order(10, 4, seed=1, epoch=0)
    assert first != batch_order(10, 4, seed=1, epoch=1)
    assert first != batch_order(10, 4, seed=2, epoch=0)


def test_fit_makes_the_loss_fall_and_leaves_the_model_in_eval_mode():
    model = fresh_model()
    history = fit(model, regression_data(), mse_losses, CONFIG, progress=False)
    assert len(history) == 5 * math.ceil(64 / 8)
    assert history[-1]["loss"] < 0.1 * history[0]["loss"]
    assert set(history[0]) == {"step", "lr", "loss", "mse"}
    assert not model.training


def test_two_runs_with_the_same_seed_give_the_same_weights():
    weights = []
    for _ in range(2):
        model = fresh_model()
        fit(model, regression_data(), mse_losses, CONFIG, progress=False)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_a_resumed_run_reaches_the_weights_of_an_uninterrupted_one(tmp_path):
    data = regression_data()
    whole = fresh_model()
    whole_history = fit(whole, data, mse_losses, CONFIG, progress=False)

    checkpoint = tmp_path / "state.safetensors"
    interrupted = fresh_model()
    stopped = TrainConfig(**{**CONFIG.__dict__, "max_steps": 13})  # stops mid-epoch
    fit(interrupted, data, mse_losses, stopped, checkpoint=checkpoint, checkpoint_every=5, progress=False)
    assert checkpoint.exists()
    resumed = fresh_model()  # a new process would start from fresh weights and read the file
    resumed_history = fit(resumed, data, mse_losses, CONFIG, checkpoint=checkpoint, progress=False)
    assert [row["loss"] for row in resumed_history] == pytest.approx([row["loss"] for row in whole_history])
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)


def test_adamw_state_survives_a_resume(tmp_path):
    config = TrainConfig(epochs=2, batch_size=16, lr=0.01, optimizer="adamw", warmup_steps=0)
    whole = fresh_model()
    fit(whole, regression_data(), mse_losses, config, progress=False)
    checkpoint = tmp_path / "adam.safetensors"
    part = fresh_model()
    fit(
        part,
        regression_data(),
        mse_losses,
        TrainConfig(**{**config.__dict__, "max_steps": 3}),
        checkpoint=checkpoint,
        progress=False,
    )
    resumed = fresh_model()
    fit(resumed, regression_data(), mse_losses, config, checkpoint=checkpoint, progress=False)
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)


def test_save_weights_writes_a_loadable_safetensors_file(tmp_path):
    from safetensors.torch import load_file

    model = fresh_model()
    save_weights(tmp_path / "w.safetensors", model, {"name": "linear"})
    loaded = load_file(str(tmp_path / "w.safetensors"))
    assert torch.equal(loaded["weight"], model.weight.detach())


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="empty dataset"):
        fit(fresh_model(), [], mse_losses, CONFIG, progress=False)
    with pytest.raises(ValueError, match="optimizer: expected one of 'sgd', 'adamw'"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(TypeError, match="batch_size: expected an int"):
        TrainConfig(batch_size=2.5)


def test_a_non_finite_loss_stops_training_with_a_clear_error():
    def nan_losses(model, batch):
        return {"mse": mse_losses(model, batch)["mse"] * float("nan")}

    with pytest.raises(FloatingPointError, match="step 0: the loss is nan"):
        fit(fresh_model(), regression_data(), nan_losses, CONFIG, progress=False)
