"""R-CNN: warping, training labels (Sec. 2.3, Appendix C), detections and stage timings."""

import time

import pytest
import torch

from course_lib.boxes import BoxCoder
from course_lib.models.rcnn import RCNN, training_targets


def fixed_proposer(image):
    return torch.tensor([[0.0, 0, 20, 20], [8, 8, 40, 30], [30, 30, 60, 60]])


def test_warp_cuts_each_box_with_context_into_a_square():
    model = RCNN(proposer=fixed_proposer, warp_size=16, context=0)
    image = torch.zeros(3, 32, 32)
    image[:, 8:16, 8:16] = 1.0  # a white square
    crops = model.warp(image, torch.tensor([[8.0, 8, 16, 16], [0, 0, 32, 32]]))
    assert crops.shape == (2, 3, 16, 16)
    # the box is exactly the square: white inside, the outermost samples blend with the black border
    assert torch.allclose(crops[0][:, 1:-1, 1:-1], torch.ones(3, 14, 14)) and crops[0].min() >= 0.5
    assert 0.05 < crops[1].mean() < 0.08  # the whole image: 64 of 1024 pixels are white
    grown = RCNN(warp_size=16, context=4).warp(image, torch.tensor([[8.0, 8, 16, 16]]))
    assert grown[0, 0, 0, 0] == 0 and grown[0, 0, 8, 8] == 1  # context: black border, white middle


def test_training_targets_follow_the_papers_rules_by_hand():
    proposals = torch.tensor([[0.0, 0, 10, 10], [1, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]])
    target = {"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([2])}
    boxes, svm_labels, deltas, classes = training_targets(proposals, target, num_classes=3)
    assert len(boxes) == 5  # the ground truth is appended
    # class 2: IoU 1, 0.9, 0, 1/3, gt -> ignored, ignored, negative, ignored, positive
    assert svm_labels[:, 1].tolist() == [0, 0, -1, 0, 1]
    # classes 1 and 3 have no ground truth here: every region is one of their negatives
    assert svm_labels[:, 0].tolist() == [-1] * 5 and svm_labels[:, 2].tolist() == [-1] * 5
    assert classes.tolist() == [2, 2, 0, 0, 2]  # IoU >= 0.6 regresses
    expected = BoxCoder((1.0, 1.0, 1.0, 1.0)).encode(target["boxes"], proposals[1:2])
    torch.testing.assert_close(deltas[1:2], expected)


def test_training_targets_of_an_image_without_objects_are_all_negative():
    boxes, svm_labels, _, classes = training_targets(
        torch.tensor([[0.0, 0, 5, 5]]),
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
        3,
    )
    assert len(boxes) == 1 and torch.all(svm_labels == -1) and torch.all(classes == 0)


def test_eval_returns_detections_and_the_time_of_each_stage():
    torch.manual_seed(0)
    def slow_proposer(image):
        time.sleep(0.05)
        return fixed_proposer(image)

    model = RCNN(proposer=slow_proposer, warp_size=32).eval()
    with torch.no_grad():
        detections = model([torch.rand(3, 64, 64)])
    assert set(detections[0]) == {"boxes", "scores", "labels"}
    assert set(model.last_timings) == {"proposals", "warp", "features", "classify", "nms"}
    assert model.last_timings["proposals"] >= 0.05  # the proposer's time is booked where it belongs


def test_training_mode_returns_svm_and_box_losses():
    torch.manual_seed(0)
    model = RCNN(proposer=fixed_proposer, warp_size=32).train()
    target = {"boxes": torch.tensor([[1.0, 0, 19, 20]]), "labels": torch.tensor([1])}
    losses = model([torch.rand(3, 64, 64)], [target])
    assert set(losses) == {"loss_svm", "loss_box_reg"}
    assert all(torch.isfinite(value) for value in losses.values())
    sum(losses.values()).backward()
    assert model.svm.weight.grad.abs().sum() > 0  # the SVMs learn from the loss


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one dict per image in training mode"):
        RCNN(proposer=fixed_proposer).train()([torch.rand(3, 32, 32)])
