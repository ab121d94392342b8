"""Faster R-CNN and Fast R-CNN: torchvision's I/O convention, losses, empty images, bad input."""

import pytest
import torch

from course_lib.data import ShapeScenes
from course_lib.models.fast_rcnn import FastRCNN
from course_lib.models.faster_rcnn import FasterRCNN

LOSSES = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}


@pytest.fixture(scope="module")
def scenes():
    dataset = ShapeScenes(3, image_size=64, seed=5)
    return [dataset[i] for i in range(3)]


def boxes_and_labels(target):
    return {"boxes": target["boxes"], "labels": target["labels"]}


def test_training_mode_returns_the_four_losses_and_they_backpropagate(scenes):
    torch.manual_seed(0)
    model = FasterRCNN().train()
    losses = model([image for image, _ in scenes], [boxes_and_labels(t) for _, t in scenes])
    assert set(losses) == LOSSES
    assert all(torch.isfinite(value) for value in losses.values())
    sum(losses.values()).backward()
    assert model.rpn.head.objectness.weight.grad is not None
    assert model.backbone.stem[0][0].weight.grad is not None


def test_train_keeps_batch_norm_frozen():
    model = FasterRCNN().train()
    assert model.training and not model.backbone.stem[0][1].training


def test_an_image_without_objects_is_valid_training_input(scenes):
    torch.manual_seed(0)
    model = FasterRCNN().train()
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    losses = model([scenes[0][0]], [empty])
    assert losses["loss_rpn_box_reg"] == 0 and losses["loss_box_reg"] == 0
    assert torch.isfinite(losses["loss_objectness"]) and torch.isfinite(losses["loss_classifier"])


def test_eval_mode_returns_one_dict_per_image(scenes):
    torch.manual_seed(0)
    model = FasterRCNN().eval()
    with torch.no_grad():
        detections = model([image for image, _ in scenes[:2]])
    assert len(detections) == 2
    for result in detections:
        assert set(result) == {"boxes", "scores", "labels"}
        assert result["boxes"].shape[1] == 4 and result["labels"].dtype == torch.int64
        assert len(result["boxes"]) <= 100


def test_images_of_different_sizes_are_padded_and_boxes_stay_inside_each(scenes):
    torch.manual_seed(0)
    model = FasterRCNN().eval()
    model.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        detections = model([torch.rand(3, 40, 64), torch.rand(3, 64, 24)])
    assert detections[0]["boxes"][:, 3].max() <= 40 and detections[1]["boxes"][:, 2].max() <= 24


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m, img, t: m(img[0]), TypeError, "expected a list of Tensor"),
        (lambda m, img, t: m([]), ValueError, "at least one image"),
        (lambda m, img, t: m([img[0] * 255]), ValueError, r"values in \[0, 1\]"),
        (lambda m, img, t: m.train()(img), ValueError, "one dict per image in training mode"),
        (lambda m, img, t: m.train()(img, []), ValueError, "expected a list of 1 dicts"),
        (
            lambda m, img, t: m.train()(img, [{**t, "labels": t["labels"] + 10}]),
            ValueError,
            r"classes in 1..5",
        ),
        (
            lambda m, img, t: m.train()(img, [{**t, "boxes": t["boxes"][:, :3]}]),
            ValueError,
            r"Tensor\[N, 4\]",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(scenes, call, error, message):
    image, target = scenes[0]
    with pytest.raises(error, match=message):
        call(FasterRCNN().eval(), [image], boxes_and_labels(target))


def test_fast_rcnn_uses_given_proposals_and_checks_their_count(scenes):
    torch.manual_seed(0)
    model = FastRCNN().train()
    proposals = [torch.tensor([[0.0, 0, 20, 20], [10, 10, 40, 40]]) for _ in scenes]
    losses = model([i for i, _ in scenes], [boxes_and_labels(t) for _, t in scenes], proposals=proposals)
    assert set(losses) == {"loss_classifier", "loss_box_reg"}
    model.eval()
    with torch.no_grad():
        detections = model([scenes[0][0]], proposals=proposals[:1])
    assert len(detections) == 1
    with pytest.raises(ValueError, match=r"one Tensor\[N, 4\] per image \(1\), got 3"):
        model([scenes[0][0]], proposals=proposals)
    assert model.roi_heads.pooler == "pool"


def test_fast_rcnn_without_proposals_calls_its_proposer(scenes):
    calls = []

    def proposer(image):
        calls.append(image.shape)
        return torch.tensor([[0.0, 0, 30, 30]])

    model = FastRCNN(proposer=proposer).eval()
    with torch.no_grad():
        model([scenes[0][0], scenes[1][0]])
    assert calls == [(3, 64, 64), (3, 64, 64)]
