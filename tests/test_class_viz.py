"""Class visualization: the ascent raises the class score, the model then predicts the class."""

import pytest
import torch
from torch import nn

from course_lib import zoo
from course_lib.visualization.class_viz import (
    REGULARIZED,
    ascent_step,
    class_visualization,
    clip_small_norm,
    initial_image,
)
from course_lib.visualization.hooks import has_hooks


@pytest.fixture(scope="module")
def classifier():
    return zoo.load("shapes_classifier")


@pytest.mark.parametrize("init", ["zeros", "grey", "noise"])
def test_the_target_score_rises_well_above_its_start_and_the_class_is_predicted(classifier, init):
    for target in (1, 4):  # circle and star: the output index is the dataset label
        result = class_visualization(classifier, target, steps=60, init=init, jitter=1, blur_every=10)
        assert result["final_score"] > result["start_score"] + 5
        assert result["predicted"] == target and result["probability"] > 0.9
        assert result["image"].min() >= 0 and result["image"].max() <= 1
        assert len(result["scores"]) == 60


def test_the_regularized_ascent_from_noise_reaches_the_class_and_keeps_the_clipped_pixels_grey(classifier):
    result = class_visualization(classifier, 4, steps=40, init="noise", **REGULARIZED)  # star
    assert result["predicted"] == 4 and result["probability"] > 0.9
    grey = (result["image"] == 0.5).all(dim=0).float().mean()  # the last operation was the clipping
    assert grey >= 0.29


def test_clip_small_norm_by_hand():
    image = torch.full((3, 2, 2), 0.5)
    image[:, 0, 0] = torch.tensor([0.5, 0.5, 0.9])  # norm 0.4
    image[:, 0, 1] = torch.tensor([0.3, 0.5, 0.5])  # norm 0.2
    image[:, 1, 0] = torch.tensor([0.6, 0.5, 0.5])  # norm 0.1; pixel (1, 1) is grey, norm 0
    expected = image.clone()
    expected[:, 1, 0] = 0.5  # below the median (0.15) of the norms 0.4, 0.2, 0.1, 0
    torch.testing.assert_close(clip_small_norm(image, 50.0), expected)
    torch.testing.assert_close(clip_small_norm(image, 0.0), image)
    assert (clip_small_norm(image, 100.0) == 0.5).all(dim=0).sum() == 3  # all pixels but the strongest
    with pytest.raises(ValueError, match="percentile"):
        clip_small_norm(image, 150.0)


def test_one_ascent_step_by_hand_on_a_linear_model():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 2, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.arange(24.0).view(2, 12) / 24)
    image = torch.full((3, 2, 2), 0.5)
    image[0, 0, 0] = 0.7
    new, score = ascent_step(model, image, target=1, l2_weight=1.0, lr=0.1)
    gradient = model[1].weight[1].view(3, 2, 2) - 2 * (image - 0.5)  # dS/dI - lambda * 2 (I - 0.5)
    torch.testing.assert_close(new, (image + 0.1 * gradient).clamp(0, 1))
    assert score == pytest.approx(float(model(image[None])[0, 1].detach()))


def test_the_model_mode_is_restored_and_no_hook_is_left(classifier):
    classifier.train()
    class_visualization(classifier, 1, steps=2)
    assert classifier.training and not has_hooks(classifier)
    classifier.eval()


def test_the_start_images():
    assert initial_image("zeros", (4, 5)).sum() == 0
    assert torch.all(initial_image("grey", (4, 5)) == 0.5)
    assert torch.equal(initial_image("noise", (4, 5), seed=1), initial_image("noise", (4, 5), seed=1))


def test_bad_input_is_refused(classifier):
    with pytest.raises(ValueError, match=r"target: expected a class index in 0..5, got 6"):
        class_visualization(classifier, 6, steps=1)
    with pytest.raises(ValueError, match="init: expected one of 'zeros', 'grey', 'noise'"):
        class_visualization(classifier, 0, init="random")
    with pytest.raises(ValueError, match="l2_weight"):
        class_visualization(classifier, 0, l2_weight=-1.0)
    with pytest.raises(ValueError, match="clip_percentile"):
        class_visualization(classifier, 0, clip_percentile=101.0)
