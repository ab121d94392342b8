"""CAM, Grad-CAM and Guided Grad-CAM against Captum, pytorch-grad-cam and the CAM paper's identities."""

import pytest
import torch
from captum.attr import GuidedGradCam

from course_lib import zoo
from course_lib.data import ShapeScenes
from course_lib.models.classifier import GAPClassifier
from course_lib.references import captum_grad_cam, min_max, pytorch_grad_cam
from course_lib.visualization.cam import cam, grad_cam, grad_cam_parts, guided_grad_cam, hires_cam, upsample
from course_lib.visualization.hooks import get_layer, has_hooks
from course_lib.visualization.targets import detection_score
from tests.crops import shape_crops

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def random_gap(seed: int) -> GAPClassifier:
    torch.manual_seed(seed)
    model = GAPClassifier(3, (4, 6, 5), (True, False, False), ("a", "b", "c", "d"))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return model.eval()


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("layer", ["features.relu1", "features.conv2", "features.relu3"])
def test_grad_cam_equals_captum_and_pytorch_grad_cam(seed, layer):
    model = random_gap(seed)
    images = torch.rand(3, 3, 12, 14, generator=torch.Generator().manual_seed(seed))
    classes = torch.tensor([0, 3, 2])
    ours = grad_cam(model, layer, images, classes)
    torch.testing.assert_close(ours, captum_grad_cam(model, layer, images, classes), rtol=0, atol=1e-5)
    theirs = pytorch_grad_cam(model, layer, images, classes)
    nonzero = ours.amax(dim=(1, 2)) > 0  # pytorch-grad-cam's 1e-7 guard differs on an all-zero map
    torch.testing.assert_close(min_max(ours)[nonzero], min_max(theirs)[nonzero], rtol=0, atol=1e-4)


def test_grad_cam_equals_the_references_on_the_shapes_classifier():
    model = zoo.load("shapes_classifier")
    images, labels = shape_crops()
    for layer in ("features.relu4", "features.relu2"):
        ours = grad_cam(model, layer, images, labels)
        torch.testing.assert_close(ours, captum_grad_cam(model, layer, images, labels), rtol=0, atol=1e-5)
        torch.testing.assert_close(
            min_max(ours), min_max(pytorch_grad_cam(model, layer, images, labels)), rtol=0, atol=1e-4
        )


def test_guided_grad_cam_equals_captum_with_bilinear_upsampling():
    model = random_gap(1)
    images = torch.rand(2, 3, 10, 10, generator=torch.Generator().manual_seed(2))
    ours = guided_grad_cam(model, "features.relu3", images, 1)
    method = GuidedGradCam(model, get_layer(model, "features.relu3"))
    reference = method.attribute(images.clone().requires_grad_(), target=1, interpolate_mode="bilinear")
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


def test_cam_by_hand_and_its_mean_is_the_class_score():
    model = random_gap(2)
    images = torch.rand(2, 3, 8, 8)
    features = model.features(images)  # (2, 5, 4, 4)
    by_hand = (model.fc.weight[3][None, :, None, None] * features).sum(dim=1)  # (2, 4, 4)
    torch.testing.assert_close(cam(model, images, 3), upsample(by_hand, (8, 8)))
    torch.testing.assert_close(by_hand.mean(dim=(1, 2)) + model.fc.bias[3], model(images)[:, 3])


def test_on_a_gap_network_grad_cam_is_cam_divided_by_the_map_size():
    model = zoo.load("shapes_classifier")
    images, labels = shape_crops()
    activations, weights = grad_cam_parts(model, "features.relu4", images, labels)
    h, w = activations.shape[-2:]
    torch.testing.assert_close(weights * h * w, model.fc.weight[labels].detach(), rtol=1e-5, atol=1e-6)


def test_grad_cam_reaches_a_detection_head():
    model = zoo.load("ssd")
    image, _ = ShapeScenes.split("test")[3]
    with torch.no_grad():
        detections = model([image])[0]
    target = detection_score(detections["boxes"][:1], detections["labels"][:1])
    maps = grad_cam(model, "backbone.stage8", [image], target)
    assert maps.shape == (1, 128, 128) and maps.min() >= 0 and maps.max() > 0
    nowhere = detection_score(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), detections["labels"][:1])
    assert grad_cam(model, "backbone.stage8", [image], nowhere).abs().sum() == 0


def test_hooks_are_removed_after_an_error_and_bad_input_is_named():
    model = random_gap(0)

    def failing(outputs):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        grad_cam(model, "features.relu2", torch.rand(1, 3, 8, 8), failing)
    assert not has_hooks(model)
    with pytest.raises(ValueError, match="unknown name"):
        grad_cam(model, "features.nope", torch.rand(1, 3, 8, 8), 0)
    with pytest.raises(TypeError, match="GAP classifier"):
        cam(torch.nn.Conv2d(3, 3, 1), torch.rand(1, 3, 8, 8), 0)
    with pytest.raises(TypeError, match="not a callable"):
        cam(model, torch.rand(1, 3, 8, 8), lambda out: out[:, 0])
    assert grad_cam(model, "features.relu2", torch.zeros(0, 3, 8, 8), 0).shape == (0, 8, 8)
    assert cam(model, torch.zeros(0, 3, 8, 8), 0).shape == (0, 8, 8)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("layer", ["features.relu1", "features.conv3"])
def test_hires_cam_equals_pytorch_grad_cam(seed, layer):
    model = random_gap(seed)
    images = torch.rand(3, 3, 12, 14, generator=torch.Generator().manual_seed(seed))
    classes = torch.tensor([1, 0, 3])
    ours = hires_cam(model, layer, images, classes)
    theirs = pytorch_grad_cam(model, layer, images, classes, method="HiResCAM")
    nonzero = ours.amax(dim=(1, 2)) > 0
    torch.testing.assert_close(min_max(ours)[nonzero], min_max(theirs)[nonzero], rtol=0, atol=1e-4)


def test_hires_cam_by_hand_and_equal_to_grad_cam_on_the_last_gap_layer():
    model = random_gap(4)
    images = torch.rand(2, 3, 8, 8)
    inputs = images.clone()
    features = model.features(inputs)  # (2, 5, 4, 4) the last map: features ends with relu3
    features.retain_grad()
    model.fc(features.mean(dim=(2, 3)))[:, 2].sum().backward()
    by_hand = (features.grad * features).sum(dim=1).clamp(min=0).detach()  # (2, 4, 4)
    torch.testing.assert_close(hires_cam(model, "features.relu3", images, 2), upsample(by_hand, (8, 8)))
    # the gradient of a GAP classifier is the same at every position: no difference from Grad-CAM
    torch.testing.assert_close(
        hires_cam(model, "features.relu3", images, 2), grad_cam(model, "features.relu3", images, 2)
    )
