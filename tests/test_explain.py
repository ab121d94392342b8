"""``explain``, the one verb over every explanation method, and ``signed_image``.

``explain`` only dispatches, so its oracle is each method's own function (and, end to end, Captum for
three of them), on the zoo's shapes classifier and three test crops of ShapeCrops. ``signed_image``
is checked by hand and against numpy's percentile.
"""

import numpy as np
import pytest
import torch
from captum.attr import GuidedBackprop

from course_lib import zoo
from course_lib.references import captum_grad_cam, captum_occlusion
from course_lib.visualization.cam import cam, grad_cam, guided_grad_cam, hires_cam
from course_lib.visualization.explain import (
    LAYER_METHODS,
    METHODS,
    SIGNED_METHODS,
    SMOOTHGRAD_SAMPLES,
    attribute,
    channel_map,
    explain,
    signed_image,
    supports_incremental,
)
from course_lib.visualization.fast_occlusion import fast_occlusion
from course_lib.visualization.hooks import has_hooks
from course_lib.visualization.occlusion import occlusion
from course_lib.visualization.saliency import deconvnet, guided_backprop, saliency
from tests.crops import shape_crops

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks:UserWarning")
LAYER = "features.relu4"


@pytest.fixture(scope="module")
def model():
    return zoo.load("shapes_classifier")


@pytest.fixture(scope="module")
def crops():
    return shape_crops(3)  # (3, 3, 64, 64), (3,)


# What each method's own function returns, called directly.
REFERENCES = {
    "saliency": lambda m, x, t: saliency(m, x, t),
    "smoothgrad": lambda m, x, t: saliency(m, x, t, samples=SMOOTHGRAD_SAMPLES),
    "deconvnet": lambda m, x, t: deconvnet(m, x, t),
    "guided backprop": lambda m, x, t: guided_backprop(m, x, t),
    "occlusion": lambda m, x, t: fast_occlusion(m, x, t, window=8, stride=4),  # the kernel it dispatches to
    "cam": lambda m, x, t: cam(m, x, t),
    "grad-cam": lambda m, x, t: grad_cam(m, LAYER, x, t),
    "guided grad-cam": lambda m, x, t: guided_grad_cam(m, LAYER, x, t),
    "hires-cam": lambda m, x, t: hires_cam(m, LAYER, x, t),
}


def test_methods_are_the_chapters():
    assert METHODS == ("saliency", "smoothgrad", "deconvnet", "guided backprop", "occlusion", "cam",
                       "grad-cam", "guided grad-cam", "hires-cam")
    assert set(REFERENCES) == set(METHODS)
    assert set(SIGNED_METHODS) < set(METHODS) and set(LAYER_METHODS) < set(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_explain_equals_the_methods_own_function(model, crops, method):
    images, labels = crops
    reference = REFERENCES[method](model, images, labels)
    assert torch.equal(attribute(method, model, images, labels, layer=LAYER), reference)
    maps = explain(method, model, images, labels, layer=LAYER)
    assert maps.shape == (3, 64, 64) and maps.dtype == torch.float32
    if method in SIGNED_METHODS:
        assert reference.shape == (3, 3, 64, 64)
        torch.testing.assert_close(maps, reference.abs().amax(dim=1), rtol=0, atol=0)
        assert (maps >= 0).all()
    else:
        torch.testing.assert_close(maps, reference, rtol=0, atol=0)
    assert not has_hooks(model)


def test_explain_against_captum(model, crops):
    images, labels = crops
    guided = GuidedBackprop(model).attribute(images.clone().requires_grad_(), target=labels)  # (B, C, H, W)
    torch.testing.assert_close(explain("guided backprop", model, images, labels),
                               guided.abs().amax(dim=1), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(explain("grad-cam", model, images, labels, layer=LAYER),
                               captum_grad_cam(model, LAYER, images, labels), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(explain("occlusion", model, images[:1], labels[:1], window=16, stride=8),
                               captum_occlusion(model, images[:1], labels[:1], 16, 8), rtol=1e-4, atol=1e-4)


def test_occlusion_runs_the_incremental_kernel_where_it_can_and_the_readable_one_elsewhere():
    images = torch.rand(2, 3, 8, 8)
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    assert not supports_incremental(plain)
    torch.testing.assert_close(explain("occlusion", plain, images, 1, window=4, stride=4),
                               occlusion(plain, images, 1, 4, 4), rtol=0, atol=0)


def test_options_reach_the_method(model, crops):
    images, labels = crops
    noisy = {"samples": 3, "noise": 0.1, "seed": 4}
    torch.testing.assert_close(explain("smoothgrad", model, images[:2], labels[:2], **noisy),
                               saliency(model, images[:2], labels[:2], **noisy), rtol=0, atol=0)
    coarse = explain("occlusion", model, images[:1], labels[:1], window=32, stride=32, baseline=0.5)
    readable = occlusion(model, images[:1], labels[:1], 32, 32, 0.5)
    torch.testing.assert_close(coarse, readable, rtol=0, atol=1e-5)
    assert len(coarse.unique()) <= 4  # four windows, one value each


def test_a_batch_of_one_equals_one_of_the_batch(model, crops):
    images, labels = crops
    for method in ("saliency", "guided grad-cam", "cam"):
        whole = explain(method, model, images, labels, layer=LAYER)
        alone = explain(method, model, images[1:2], int(labels[1]), layer=LAYER)
        # float32 kernels for a batch of 1 and of 3 may sum in another order: differences of a few
        # 1e-6 were seen on some CPUs; taking another crop's map would differ by the map's own scale.
        scale = float(whole[1].abs().max())
        torch.testing.assert_close(alone[0], whole[1], rtol=1e-4, atol=1e-4 * scale)


def test_layer_is_ignored_by_the_methods_without_one(model, crops):
    images, labels = crops
    for method in ("saliency", "deconvnet", "cam"):
        assert torch.equal(explain(method, model, images, labels, layer="features.relu1"),
                           explain(method, model, images, labels))
    # ...and used by Grad-CAM: another layer, another map
    assert not torch.equal(explain("grad-cam", model, images, labels, layer="features.relu2"),
                           explain("grad-cam", model, images, labels, layer=LAYER))


@pytest.mark.parametrize("method", METHODS)
def test_empty_batch_gives_empty_maps(model, crops, method):
    images, labels = crops
    maps = explain(method, model, images[:0], labels[:0], layer=LAYER)
    assert maps.shape == (0, 64, 64)
    assert explain(method, model, [], labels[:0], layer=LAYER).shape[0] == 0  # a detector's empty list


def test_bad_arguments(model, crops):
    images, labels = crops
    valid = ", ".join(repr(method) for method in METHODS)
    with pytest.raises(ValueError, match=f"method: expected one of {valid}, got 'gradcam'"):
        explain("gradcam", model, images, labels)
    for method in LAYER_METHODS:
        with pytest.raises(ValueError, match=f"layer: expected a layer name for '{method}'"):
            explain(method, model, images, labels)
    with pytest.raises(ValueError, match="layer: unknown name 'features.relu9'; expected one of"):
        explain("grad-cam", model, images, labels, layer="features.relu9")
    with pytest.raises(ValueError, match="options: method 'saliency' takes options none, got 'samples'"):
        explain("saliency", model, images, labels, samples=4)
    with pytest.raises(ValueError, match="options: method 'occlusion' takes options 'window', 'stride', "
                                         "'baseline', 'batch_size', got 'size'"):
        explain("occlusion", model, images, labels, size=4)
    with pytest.raises(ValueError, match=r"images: expected a Tensor\[B, C, H, W\], got shape \(3, 64, 64\)"):
        explain("saliency", model, images[0], labels[0])
    with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 5\]"):
        explain("cam", model, images, 6)
    assert not has_hooks(model)  # also after the errors


def test_channel_map_by_hand():
    attribution = torch.tensor([[[[1.0, -3.0]], [[-2.0, 0.5]]]])  # (1, 2, 1, 2)
    assert channel_map(attribution).tolist() == [[[2.0, 3.0]]]
    maps = torch.rand(2, 4, 5)
    assert channel_map(maps) is maps
    assert channel_map(torch.zeros(0, 3, 4, 5)).shape == (0, 4, 5)
    with pytest.raises(ValueError, match=r"attribution: expected a Tensor\[B, H, W\] or "
                                         r"Tensor\[B, C, H, W\], got shape \(4, 5\)"):
        channel_map(torch.rand(4, 5))


# --- signed_image ------------------------------------------------------------------------------------
def test_signed_image_by_hand():
    attribution = torch.tensor([[[-2.0, 0.0, 1.0, 4.0]]])  # (1, 1, 4)
    image = signed_image(attribution, percentile=100)
    assert image.shape == (1, 4, 1)
    assert image[..., 0].tolist() == [[0.25, 0.5, 0.625, 1.0]]


def test_signed_image_against_numpy_percentile():
    attribution = torch.randn(3, 16, 12, generator=torch.Generator().manual_seed(0))
    attribution[1, 3, 4] = 50.0  # an outlier: clipped, it does not grey out the rest
    image = signed_image(attribution)
    values = attribution.permute(1, 2, 0).numpy()
    reference = np.clip(0.5 + 0.5 * values / np.percentile(np.abs(values), 99), 0, 1)
    np.testing.assert_allclose(image.numpy(), reference, rtol=1e-5, atol=1e-6)
    assert image[3, 4, 1] == 1.0 and image.std() > 0.1


def test_signed_image_degenerate_signals():
    grey = signed_image(torch.zeros(3, 5, 5))
    assert torch.equal(grey, torch.full((5, 5, 3), 0.5))
    sparse = torch.zeros(3, 10, 10)
    sparse[0, 2, 3] = -0.01  # one pixel: the 99th percentile of |a| is 0, so the maximum scales it
    image = signed_image(sparse)
    assert not image.isnan().any() and image[2, 3, 0] == 0.0 and (image != 0.5).sum() == 1
    assert signed_image(torch.zeros(3, 0, 0)).shape == (0, 0, 3)


def test_signed_image_of_guided_backprop_is_an_image(model, crops):
    images, labels = crops
    image = signed_image(guided_backprop(model, images[:1], labels[:1])[0])
    assert image.shape == (64, 64, 3) and 0 <= image.min() < 0.5 < image.max() <= 1


def test_signed_image_bad_arguments():
    with pytest.raises(TypeError, match="attribution: expected a torch.Tensor, got ndarray"):
        signed_image(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match=r"attribution: expected a Tensor\[C, H, W\], got shape \(4, 4\)"):
        signed_image(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="attribution: expected finite values, got NaN or inf"):
        signed_image(torch.full((3, 2, 2), float("nan")))
    with pytest.raises(ValueError, match=r"percentile: expected a value in \(0, 100\], got 0"):
        signed_image(torch.ones(3, 2, 2), percentile=0)
    with pytest.raises(ValueError, match=r"percentile: expected a value in \[0.0, 100.0\], got 101"):
        signed_image(torch.ones(3, 2, 2), percentile=101)
