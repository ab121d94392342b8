"""Targets: which score an explanation explains, for a classifier and for a detector."""

import pytest
import torch

from course_lib.visualization.targets import as_batch, class_indices, detection_score, target_scores


def test_target_scores_by_class_by_image_and_by_callable():
    outputs = torch.arange(12.0).reshape(3, 4)
    torch.testing.assert_close(target_scores(outputs, 2, 3), torch.tensor([2.0, 6.0, 10.0]))
    torch.testing.assert_close(target_scores(outputs, [0, 3, 1], 3), torch.tensor([0.0, 7.0, 9.0]))
    torch.testing.assert_close(target_scores(outputs, torch.tensor(1), 3), torch.tensor([1.0, 5.0, 9.0]))
    torch.testing.assert_close(
        target_scores(outputs, lambda out: out.sum(1), 3), torch.tensor([6.0, 22.0, 38.0])
    )


def test_bad_targets_are_named():
    outputs = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="in \\[0, 2\\]"):
        target_scores(outputs, 3, 2)
    with pytest.raises(ValueError, match="one class per image"):
        target_scores(outputs, [0, 1, 2], 2)
    with pytest.raises(TypeError, match="integer class indices"):
        target_scores(outputs, torch.tensor([0.0, 1.0]), 2)
    with pytest.raises(TypeError, match="got bool"):
        class_indices(True, 2)
    with pytest.raises(ValueError, match="Tensor\\[2\\]"):
        target_scores(outputs, lambda out: out, 2)
    with pytest.raises(ValueError, match="callable"):
        target_scores([{"scores": torch.zeros(0)}] * 2, 1, 2)


def test_as_batch_stacks_a_list_and_checks_it():
    assert as_batch([torch.zeros(3, 4, 5)] * 2).shape == (2, 3, 4, 5)
    assert as_batch([]).shape[0] == 0
    with pytest.raises(ValueError, match="size of images\\[0\\]"):
        as_batch([torch.zeros(3, 4, 5), torch.zeros(3, 5, 5)])
    with pytest.raises(TypeError, match="float"):
        as_batch(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(TypeError, match="list of Tensor"):
        as_batch("images")


def test_detection_score_finds_the_chosen_detection_again():
    scores = torch.tensor([0.9, 0.8, 0.7], requires_grad=True)
    outputs = [
        {
            "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [21, 21, 31, 31]]),
            "labels": torch.tensor([1, 2, 3]),
            "scores": scores,
        }
    ]
    torch.testing.assert_close(detection_score(torch.tensor([[21.0, 21, 31, 31]]), [2])(outputs), scores[1:2])
    torch.testing.assert_close(detection_score(torch.tensor([[21.0, 21, 31, 31]]), [3])(outputs), scores[2:3])
    missed = detection_score(torch.tensor([[50.0, 50, 60, 60]]), [1])(outputs)
    assert missed.item() == 0 and missed.requires_grad
    empty = [
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "scores": torch.zeros(0)}
    ]
    assert detection_score(torch.tensor([[0.0, 0, 1, 1]]), [1])(empty).item() == 0
    with pytest.raises(ValueError, match="one label per box"):
        detection_score(torch.zeros(2, 4), [1])


def test_empty_inputs_give_empty_results():
    from course_lib.visualization import cam, grad_cam, occlusion, saliency

    assert class_indices([], 0).shape == (0,)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    for method in (
        saliency,
        lambda m, x, t: occlusion(m, x, t, 4, 4),
        lambda m, x, t: grad_cam(m, "0", x, t),
    ):
        assert method(model, [], []).shape[0] == 0
    from course_lib.models.classifier import GAPClassifier

    assert cam(GAPClassifier(3, (2,), (False,), ("a", "b")), [], []).shape[0] == 0
