"""Saliency, SmoothGrad, deconvnet and guided backprop against Captum, and the ReLU rules by hand.

Each method is compared with Captum's on seeded random networks and inputs (max pooling, in-place
ReLUs, a batch of several images with one class each) and on the zoo's shapes classifier. The model
must come back as it was: modes, hooks, ``inplace`` flags, no ``.grad`` left on its parameters, also
after an error inside the method.
"""

import pytest
import torch
from captum.attr import Deconvolution, GuidedBackprop, NoiseTunnel, Saliency
from torch import nn

from course_lib import zoo
from course_lib.visualization.hooks import has_hooks, relu_backward, relu_rule
from course_lib.visualization.saliency import deconvnet, guided_backprop, input_gradient, saliency
from tests.crops import shape_crops


def random_net(seed: int, inplace: bool = True) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(inplace=inplace),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.ReLU(inplace=inplace),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )
    net[1].running_mean.uniform_(-0.2, 0.2)
    net[1].running_var.uniform_(0.5, 2.0)
    return net.eval()



pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks:UserWarning")

CAPTUM = {"backprop": Saliency, "deconvnet": Deconvolution, "guided": GuidedBackprop}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rule", ["backprop", "deconvnet", "guided"])
def test_each_rule_equals_captum_on_random_networks(seed, rule):
    net = random_net(seed)
    images = torch.rand(3, 3, 12, 10, generator=torch.Generator().manual_seed(seed))
    classes = torch.tensor([0, 3, 1])
    ours = input_gradient(net, images, classes, rule=rule)
    kwargs = {"abs": False} if rule == "backprop" else {}
    reference = CAPTUM[rule](net).attribute(images.clone().requires_grad_(), target=classes, **kwargs)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


def test_the_public_functions_equal_captum_on_the_shapes_classifier():
    model = zoo.load("shapes_classifier")
    images, labels = shape_crops()
    inputs = images.clone().requires_grad_()
    torch.testing.assert_close(
        saliency(model, images, labels), Saliency(model).attribute(inputs, target=labels).amax(1)
    )
    torch.testing.assert_close(
        deconvnet(model, images, labels), Deconvolution(model).attribute(inputs, target=labels)
    )
    torch.testing.assert_close(
        guided_backprop(model, images, labels), GuidedBackprop(model).attribute(inputs, target=labels)
    )


@pytest.mark.parametrize("samples", [1, 3])
def test_smoothgrad_equals_captum_noise_tunnel_with_the_same_seed(samples):
    net = random_net(1)
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    ours = saliency(net, images, 2, samples=samples, noise=0.2, seed=7)
    torch.manual_seed(7)
    reference = NoiseTunnel(Saliency(net)).attribute(
        images.clone().requires_grad_(), target=2, nt_type="smoothgrad", nt_samples=samples, stdevs=0.2
    )
    torch.testing.assert_close(ours, reference.amax(1), rtol=0, atol=1e-6)


def test_smoothgrad_with_zero_noise_is_the_plain_saliency():
    net = random_net(2)
    images = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(saliency(net, images, 1, samples=4, noise=0.0), saliency(net, images, 1))


def test_the_gradient_is_the_gradient_of_each_images_own_score():
    net = random_net(3, inplace=False)
    images = torch.rand(3, 3, 8, 8)
    gradient = input_gradient(net, images, 1)
    for index in range(3):
        image = images[index : index + 1].clone().requires_grad_()
        net(image)[0, 1].backward()
        torch.testing.assert_close(gradient[index], image.grad[0])


def test_the_lecture_example_of_the_three_backward_rules():
    # Springenberg et al. 2015, Fig. 1: the forward input and the signal coming back.
    forward = torch.tensor([[1.0, -1.0, 5.0], [2.0, -5.0, -7.0], [-3.0, 2.0, 4.0]])
    back = torch.tensor([[-2.0, 3.0, -1.0], [6.0, -3.0, 1.0], [2.0, -1.0, 3.0]])
    torch.testing.assert_close(
        relu_backward(forward, back), torch.tensor([[-2.0, 0, -1], [6, 0, 0], [0, -1, 3]])
    )
    torch.testing.assert_close(
        relu_backward(forward, back, "deconvnet"), torch.tensor([[0.0, 3, 0], [6, 0, 1], [2, 0, 3]])
    )
    torch.testing.assert_close(
        relu_backward(forward, back, "guided"), torch.tensor([[0.0, 0, 0], [6, 0, 0], [0, 0, 3]])
    )


@pytest.mark.parametrize("rule", ["backprop", "deconvnet", "guided"])
def test_the_hooks_apply_exactly_relu_backward(rule):
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(0)).requires_grad_()
    signal = torch.randn(2, 5, generator=torch.Generator().manual_seed(1))
    relu = nn.Sequential(nn.ReLU())
    with relu_rule(relu, rule):
        (gradient,) = torch.autograd.grad(relu(x), x, signal)
    torch.testing.assert_close(gradient, relu_backward(x.detach(), signal, rule))


def test_the_model_is_restored_after_each_method_and_after_an_error():
    net = random_net(0).train()
    net[1].eval()  # a mixed state must survive
    modes = [module.training for module in net.modules()]

    def failing(outputs):
        raise RuntimeError("boom")

    for method in (saliency, deconvnet, guided_backprop):
        method(net, torch.rand(2, 3, 8, 8), 1)
        with pytest.raises(RuntimeError, match="boom"):
            method(net, torch.rand(2, 3, 8, 8), failing)
        assert [module.training for module in net.modules()] == modes
        assert not has_hooks(net) and not any(module._backward_hooks for module in net.modules())
        assert net[2].inplace and net[5].inplace
        assert all(parameter.grad is None for parameter in net.parameters())


def test_empty_batch_and_bad_input():
    net = random_net(0)
    assert saliency(net, torch.zeros(0, 3, 8, 8), 1).shape == (0, 8, 8)
    assert guided_backprop(net, torch.zeros(0, 3, 8, 8), 1).shape == (0, 3, 8, 8)
    with pytest.raises(ValueError, match="Tensor\\[B, C, H, W\\]"):
        saliency(net, torch.rand(3, 8, 8), 1)
    with pytest.raises(ValueError, match="class indices in \\[0, 3\\]"):
        saliency(net, torch.rand(1, 3, 8, 8), 4)
    with pytest.raises(TypeError, match="class index"):
        saliency(net, torch.rand(1, 3, 8, 8), 1.5)
    with pytest.raises(TypeError, match="callable"):
        saliency(net, torch.rand(1, 3, 8, 8), lambda out: out[:, 0], samples=2)
    with pytest.raises(ValueError, match="rule"):
        input_gradient(net, torch.rand(1, 3, 8, 8), 1, rule="guided backprop")
