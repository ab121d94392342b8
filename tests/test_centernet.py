"""CenterNet: the radius rule, the Gaussian targets, the penalty-reduced focal loss and the peaks.

Each piece against a direct transcription: CornerNet's ``gaussian_radius`` as its authors wrote it
(scalar numpy), Eq. 1 of the paper as a loop over pixels, peaks as "no neighbour is larger" checked
pixel by pixel; and the detector's training and evaluation I/O.
"""

import math

import numpy as np
import pytest
import torch

from course_lib.models.centernet import (
    CenterNet,
    centernet_focal_loss,
    centernet_targets,
    draw_gaussian,
    gaussian_radius,
    heatmap_peaks,
)


def cornernet_radius(height, width, min_overlap=0.7):
    """The function of CornerNet's and CenterNet's code (``utils/image.py``), scalar by scalar."""
    a1, b1 = 1, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2, b2 = 4, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + np.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + np.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def test_gaussian_radius_equals_the_authors_function():
    generator = np.random.default_rng(0)
    heights, widths = generator.uniform(0.5, 40, 200), generator.uniform(0.5, 40, 200)
    expected = [cornernet_radius(h, w) for h, w in zip(heights, widths, strict=True)]
    ours = gaussian_radius(torch.tensor(heights), torch.tensor(widths))
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-5)
    assert gaussian_radius(torch.zeros(0), torch.zeros(0)).shape == (0,)


def test_draw_gaussian_by_hand_and_cut_at_the_border():
    heatmap = torch.zeros(5, 6)
    draw_gaussian(heatmap, (0, 1), 1)  # sigma = 0.5
    assert heatmap[1, 0] == 1
    torch.testing.assert_close(heatmap[1, 1], torch.tensor(math.exp(-1 / (2 * 0.25))))
    torch.testing.assert_close(heatmap[0, 1], torch.tensor(math.exp(-2 / (2 * 0.25))))
    assert heatmap[:, 2:].sum() == 0 and heatmap[3:].sum() == 0
    draw_gaussian(heatmap, (0, 1), 0)  # a second splat keeps the maximum
    assert heatmap[1, 0] == 1 and heatmap[1, 1] > 0


def test_targets_put_each_centre_its_size_and_offset_in_its_cell():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 28.0], [0.0, 0.0, 6.0, 6.0], [50.0, 50.0, 58.0, 60.0]])
    labels = torch.tensor([2, 1, 2])
    targets = centernet_targets(boxes, labels, (16, 16), 4, 5)
    assert targets["heatmap"].shape == (5, 16, 16) and targets["centres"].sum() == 3
    # box 0: centre (20, 24) px = (5, 6) cells exactly
    assert targets["heatmap"][1, 6, 5] == 1 and targets["centres"][6, 5]
    torch.testing.assert_close(targets["size"][:, 6, 5], torch.tensor([20.0, 8.0]))
    torch.testing.assert_close(targets["offset"][:, 6, 5], torch.tensor([0.0, 0.0]))
    # box 2: centre (54, 55) px = (13.5, 13.75) cells
    torch.testing.assert_close(targets["offset"][:, 13, 13], torch.tensor([0.5, 0.75]))
    assert targets["heatmap"][0].max() == 1 and targets["heatmap"][2:].sum() == 0
    empty = centernet_targets(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), (8, 8), 4, 5)
    assert empty["heatmap"].sum() == 0 and not empty["centres"].any()


def test_two_centres_in_one_cell_the_smaller_object_keeps_it():
    boxes = torch.tensor([[0.0, 0.0, 40.0, 40.0], [17.0, 17.0, 23.0, 23.0]])  # both centres at (20, 20)
    targets = centernet_targets(boxes, torch.tensor([1, 2]), (16, 16), 4, 5)
    torch.testing.assert_close(targets["size"][:, 5, 5], torch.tensor([6.0, 6.0]))
    assert targets["heatmap"][0, 5, 5] == 1 and targets["heatmap"][1, 5, 5] == 1


def test_focal_loss_equals_equation_1_written_as_a_loop():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, 4, generator=generator) * 3
    heatmap = torch.rand(2, 3, 5, 4, generator=generator) * 0.9
    heatmap[0, 1, 2, 3] = heatmap[1, 0, 0, 0] = heatmap[1, 2, 4, 1] = 1.0
    total = 0.0
    for p_logit, y in zip(logits.flatten().tolist(), heatmap.flatten().tolist(), strict=True):
        p = 1 / (1 + math.exp(-p_logit))
        if y == 1:
            total += -((1 - p) ** 2) * math.log(p)
        else:
            total += -((1 - y) ** 4) * p**2 * math.log(1 - p)
    torch.testing.assert_close(
        centernet_focal_loss(logits, heatmap), torch.tensor(total / 3), rtol=1e-5, atol=1e-6
    )


def test_focal_loss_stays_finite_at_extreme_logits():
    logits = torch.tensor([[[[200.0, -200.0]]]])
    heatmap = torch.tensor([[[[1.0, 0.0]]]])
    loss = centernet_focal_loss(logits, heatmap)
    assert torch.isfinite(loss) and loss < 1e-6


def test_peaks_are_the_pixels_no_neighbour_exceeds():
    generator = torch.Generator().manual_seed(1)
    scores = torch.rand(3, 7, 9, generator=generator)
    values, classes, ys, xs = heatmap_peaks(scores, k=1000)
    expected = set()
    for k in range(3):
        for y in range(7):
            for x in range(9):
                window = scores[k, max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
                if scores[k, y, x] == window.max():
                    expected.add((k, y, x))
    found = {(int(k), int(y), int(x)) for k, y, x, v in zip(classes, ys, xs, values, strict=True) if v > 0}
    assert found == expected
    assert torch.all(values[:-1] >= values[1:])
    top = heatmap_peaks(scores, k=2)
    assert len(top[0]) == 2 and top[0][0] == scores.max()


def test_a_plateau_keeps_every_tied_pixel_and_orders_ties_by_index():
    scores = torch.zeros(1, 3, 3)
    scores[0, 1, 1] = scores[0, 1, 2] = 0.5
    values, classes, ys, xs = heatmap_peaks(scores, k=2)
    assert values.tolist() == [0.5, 0.5] and list(zip(ys.tolist(), xs.tolist(), strict=True)) == [
        (1, 1),
        (1, 2),
    ]


def test_training_and_evaluation_io():
    torch.manual_seed(0)
    model = CenterNet(width=16)
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 64)]
    targets = [
        {"boxes": torch.tensor([[4.0, 4.0, 20.0, 30.0]]), "labels": torch.tensor([3])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    model.train()
    losses = model(images, targets)
    assert set(losses) == {"loss_heatmap", "loss_size", "loss_offset"}
    sum(losses.values()).backward()
    assert all(torch.isfinite(value) for value in losses.values())
    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2
    for detection in detections:
        assert detection["boxes"].shape[1] == 4 and len(detection["boxes"]) <= model.max_detections
        assert (detection["labels"] >= 1).all() and (detection["labels"] <= 5).all()
        assert (detection["boxes"][:, 2:] <= 64).all() and (detection["boxes"] >= 0).all()
    with pytest.raises(TypeError, match="list of Tensor"):
        model(torch.rand(2, 3, 64, 64))
