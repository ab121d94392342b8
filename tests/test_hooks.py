"""Hooks: recorded activations and gradients equal a manual forward pass; hooks never outlive the block."""

import pytest
import torch
from torch import nn

from course_lib.visualization.hooks import eval_mode, get_layer, has_hooks, layer_names, record


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)
    )


def test_layer_names_lists_the_layers_in_order():
    assert layer_names(small_net()) == ["0", "1", "2", "4"]


def test_recorded_activations_and_gradients_equal_a_manual_computation():
    model = small_net()
    images = torch.rand(2, 3, 6, 6)
    with record(model, ["1", "2"], gradients=True) as recorded:
        model(images)[:, 1].sum().backward()
    hidden = model[1](model[0](images))
    torch.testing.assert_close(recorded.activations["1"], hidden)
    out = model[2](hidden).detach().requires_grad_(True)
    model[4](model[3](out))[:, 1].sum().backward()
    torch.testing.assert_close(recorded.gradients["2"], out.grad)
    assert recorded.gradients["1"].shape == hidden.shape


def test_hooks_are_removed_after_the_block_and_after_an_exception():
    model = small_net()
    with record(model, "0"):
        assert has_hooks(model)
        model(torch.rand(1, 3, 6, 6))
    assert not has_hooks(model)
    with pytest.raises(RuntimeError, match="boom"), record(model, ["0", "2"], gradients=True):
        model(torch.rand(1, 3, 6, 6))
        raise RuntimeError("boom")
    assert not has_hooks(model)
    with pytest.raises(RuntimeError):  # an error inside the model itself (wrong channels)
        with record(model, "0"):
            model(torch.rand(1, 5, 6, 6))
    assert not has_hooks(model)


def test_an_unknown_layer_lists_the_valid_ones_and_adds_no_hook():
    model = small_net()
    with pytest.raises(ValueError, match=r"unknown name 'conv9'; expected one of '0', '1', '2', '4'"):
        with record(model, ["0", "conv9"]):
            pass
    assert not has_hooks(model)
    with pytest.raises(TypeError, match="expected a str name"):
        get_layer(model, 3)
    with pytest.raises(ValueError, match="at least one layer"):
        with record(model, []):
            pass


def test_without_gradients_nothing_is_kept_on_backward():
    model = small_net()
    with record(model, "2") as recorded:
        model(torch.rand(1, 3, 6, 6)).sum().backward()
    assert recorded.gradients == {} and "2" in recorded.activations


def test_eval_mode_switches_every_module_and_restores_each_one():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.ReLU())
    model.train()
    model[1].eval()  # a frozen batch norm inside a model being trained
    modes = [module.training for module in model.modules()]
    with eval_mode(model):
        assert not any(module.training for module in model.modules())
        images = torch.rand(2, 3, 6, 6)
        assert torch.equal(model(images), model(images))  # dropout off: the same output twice
    assert [module.training for module in model.modules()] == modes


def test_eval_mode_restores_the_modes_after_an_exception():
    model = small_net()
    model.train()
    model[2].eval()
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        raise RuntimeError("boom")
    assert model.training and model[0].training and not model[2].training
