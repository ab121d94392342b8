"""Class visualization: the ascent raises the class score, the model then predicts the class."""

import pytest
import torch
from torch import nn

from course_lib import zoo
from course_lib.visualization.class_viz import ascent_step, class_visualization, initial_image
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
