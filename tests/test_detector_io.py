"""Detector input checks: clear errors for bad images and targets, padding into one batch."""

import pytest
import torch

from course_lib.models.detector_io import batch_images, check_images, check_targets


def target(boxes, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def test_good_images_and_targets_pass():
    images = check_images([torch.rand(3, 16, 20), torch.rand(3, 8, 8)])
    assert len(images) == 2
    targets = check_targets([target([[0, 0, 4, 4]], [1]), target([], [])], 2, num_classes=5)
    assert len(targets[1]["boxes"]) == 0  # an image without objects is valid


@pytest.mark.parametrize(
    ("images", "error", "message"),
    [
        (torch.rand(2, 3, 8, 8), TypeError, "expected a list of Tensor"),
        ([], ValueError, "at least one image"),
        (
            [torch.rand(1, 8, 8)],
            ValueError,
            r"images\[0\]: expected a Tensor\[3, H, W\], got shape \(1, 8, 8\)",
        ),
        ([torch.rand(3, 8)], ValueError, r"expected a Tensor\[3, H, W\]"),
        ([torch.randint(0, 255, (3, 8, 8), dtype=torch.uint8)], TypeError, "expected a float tensor"),
        ([torch.rand(3, 8, 8) * 255], ValueError, r"expected values in \[0, 1\]"),
        (["image"], TypeError, "expected a torch.Tensor"),
    ],
)
def test_bad_images_are_refused(images, error, message):
    with pytest.raises(error, match=message):
        check_images(images)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (None, "one dict per image in training mode"),
        ([], "expected a list of 1 dicts"),
        ([{"boxes": torch.zeros(1, 4)}], "with 'boxes' and 'labels'"),
        ([{"boxes": torch.zeros(1, 5), "labels": torch.ones(1, dtype=torch.int64)}], r"Tensor\[N, 4\]"),
        ([target([[0, 0, 4, 4]], [0])], r"classes in 1..5 \(0 is background\), got \[0\]"),
        ([target([[0, 0, 4, 4]], [6])], r"classes in 1..5"),
        ([{"boxes": torch.zeros(1, 4), "labels": torch.ones(1)}], "expected an int64 Tensor"),
        ([target([[4, 0, 0, 4]], [1])], "x2 >= x1"),
    ],
)
def test_bad_targets_are_refused(targets, message):
    with pytest.raises(ValueError, match=message):
        check_targets(targets, 1, num_classes=5)


def test_batch_images_pads_to_a_multiple_and_keeps_each_size():
    images = [torch.rand(3, 10, 13), torch.rand(3, 16, 5)]
    batch, sizes = batch_images(images, size_divisible=8)
    assert batch.shape == (2, 3, 16, 16) and sizes == [(10, 13), (16, 5)]
    assert torch.equal(batch[0, :, :10, :13], images[0]) and batch[0, :, 10:].abs().sum() == 0
