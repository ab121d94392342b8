"""Tests for course_lib.data.noisy: deterministic, scored, jittered copies of ground-truth boxes."""

import pytest
import torch
import torchvision.ops

from course_lib.data.noisy import noisy_detections

OBJECTS = torch.tensor([[10.0, 12, 50, 60], [60, 20, 110, 70], [30, 70, 90, 120], [95, 90, 125, 126],
                        [40, 40, 75, 85]])


def test_noisy_detections_are_deterministic_scored_copies():
    boxes, scores = noisy_detections(OBJECTS, boxes_per_object=4, seed=3)
    again_boxes, again_scores = noisy_detections(OBJECTS, boxes_per_object=4, seed=3)
    assert torch.equal(boxes, again_boxes) and torch.equal(scores, again_scores)
    assert boxes.shape == (20, 4) and scores.shape == (20,)
    assert ((scores > 0) & (scores < 1)).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    first_copies = boxes.view(5, 4, 4)[:, 0]
    assert (torchvision.ops.box_iou(first_copies, OBJECTS).diag() > 0.7).all()
    assert not torch.equal(noisy_detections(OBJECTS, 4, seed=4)[0], boxes)


def test_noisy_detections_without_jitter_are_the_objects():
    boxes, _ = noisy_detections(OBJECTS, boxes_per_object=2, jitter=0.0)
    torch.testing.assert_close(boxes, OBJECTS.repeat_interleave(2, dim=0))


def test_noisy_detections_of_no_object_is_empty():
    boxes, scores = noisy_detections(torch.zeros(0, 4))
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_noisy_detections_rejects_bad_input():
    with pytest.raises(ValueError, match=r"boxes_per_object: expected a value in \[1, inf\]"):
        noisy_detections(OBJECTS, boxes_per_object=0)
    with pytest.raises(ValueError, match="jitter"):
        noisy_detections(OBJECTS, jitter=-1.0)


def test_noisy_detections_is_where_the_notebooks_import_it():
    from course_lib.data import noisy_detections as from_data
    from course_lib.widgets import noisy_detections as from_widgets

    assert from_widgets is from_data is noisy_detections
