"""Boxes from maps (the CAM paper's localization): hand-computed boxes, connected components against
scipy.ndimage.label with 8-connectivity, the tie and degenerate-map rules, the shapes' masks."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from course_lib.data import ShapeCrops
from course_lib.visualization.localization import (
    connected_components,
    localization_hits,
    map_box,
    map_boxes,
    mask_box,
    mask_boxes,
)

EIGHT = np.ones((3, 3), dtype=int)  # scipy's structure for 8-connectivity


def reference_map_box(map: torch.Tensor, fraction: float) -> list[float]:
    """The same rule through scipy: label, size and peak per component, then find_objects."""
    values = map.numpy()
    if values.max() <= 0:
        return [0.0, 0.0, values.shape[1], values.shape[0]]
    labels, count = ndimage.label(values >= fraction * values.max(), structure=EIGHT)
    sizes = ndimage.sum_labels(np.ones_like(values), labels, index=range(1, count + 1))
    peaks = ndimage.maximum(values, labels, index=range(1, count + 1))
    best = max(range(count), key=lambda k: (sizes[k], peaks[k]))
    rows, cols = ndimage.find_objects(labels)[best]
    return [cols.start, rows.start, cols.stop, rows.stop]


# connected_components


def test_connected_components_by_hand_diagonals_touch():
    binary = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 1]])
    labels, count = connected_components(binary)
    assert count == 3  # with 4-connectivity the diagonal pair would be apart: 4 components
    assert labels.tolist() == [[1, 0, 0, 2], [0, 1, 0, 0], [0, 0, 0, 3]]


@pytest.mark.parametrize("density", [0.0, 0.2, 0.45, 0.7, 1.0])
def test_connected_components_equal_scipy_label(density):
    generator = torch.Generator().manual_seed(int(density * 100))
    for shape in [(1, 1), (1, 9), (7, 1), (12, 15), (20, 20)]:
        binary = torch.rand(shape, generator=generator) < density
        labels, count = connected_components(binary)
        expected, expected_count = ndimage.label(binary.numpy(), structure=EIGHT)
        assert count == expected_count
        np.testing.assert_array_equal(labels.numpy(), expected)
        assert labels.dtype == torch.int64


def test_connected_components_edge_cases_and_bad_input():
    labels, count = connected_components(torch.zeros(0, 5, dtype=torch.bool))
    assert count == 0 and labels.shape == (0, 5)
    labels, count = connected_components(torch.zeros(3, 3))
    assert count == 0 and not labels.any()
    single = torch.zeros(3, 3, dtype=torch.uint8)
    single[1, 1] = 1
    labels, count = connected_components(single)
    assert count == 1 and labels.tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match=r"Tensor\[H, W\]"):
        connected_components(torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="binary mask"):
        connected_components(torch.full((3, 3), 0.5))


# map_box


def test_map_box_by_hand_uses_pixel_edges_and_the_largest_component():
    map = torch.zeros(10, 12)
    map[2:5, 3:8] = 1.0  # columns 3..7, rows 2..4: 15 pixels
    map[8, 0] = 2.0  # the maximum, alone
    torch.testing.assert_close(map_box(map), torch.tensor([3.0, 2.0, 8.0, 5.0]))
    torch.testing.assert_close(map_box(map, fraction=0.9), torch.tensor([0.0, 8.0, 1.0, 9.0]))  # the peak
    torch.testing.assert_close(map_box(map, fraction=0.0), torch.tensor([0.0, 0.0, 12.0, 10.0]))  # all >= 0


def test_map_box_ties_go_to_the_component_with_the_highest_value_then_the_first():
    map = torch.zeros(6, 6)
    map[0, 0:2] = 1.0  # two pixels, first in scan order
    map[4, 3:5] = torch.tensor([1.0, 3.0])  # two pixels, holding the maximum
    torch.testing.assert_close(map_box(map), torch.tensor([3.0, 4.0, 5.0, 5.0]))
    map[4, 4] = 1.0  # now all equal: the first in scan order
    torch.testing.assert_close(map_box(map), torch.tensor([0.0, 0.0, 2.0, 1.0]))


def test_map_box_without_a_positive_value_is_the_whole_image():
    for map in (torch.zeros(4, 7), -torch.rand(4, 7)):
        torch.testing.assert_close(map_box(map), torch.tensor([0.0, 0.0, 7.0, 4.0]))


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_map_boxes_equal_a_scipy_reference_on_random_maps(fraction):
    generator = torch.Generator().manual_seed(int(fraction * 10))
    maps = torch.randn(12, 16, 16, generator=generator)
    maps[0] = torch.randint(0, 3, (16, 16), generator=generator).float()  # ties
    maps[1] = -maps[1].abs()  # no positive value
    maps[2] = torch.nn.functional.avg_pool2d(maps[2][None], 5, 1, 2)[0]  # smooth blobs, like a CAM
    boxes = map_boxes(maps, fraction)
    assert boxes.shape == (12, 4) and boxes.dtype == torch.float32
    for map, box in zip(maps, boxes, strict=True):
        assert box.tolist() == reference_map_box(map, fraction)


def test_map_box_bad_input():
    assert map_boxes(torch.zeros(0, 4, 4)).shape == (0, 4)
    with pytest.raises(ValueError, match="fraction"):
        map_box(torch.rand(3, 3), fraction=1.5)
    with pytest.raises(ValueError, match=r"Tensor\[H, W\]"):
        map_box(torch.rand(1, 3, 3))
    with pytest.raises(TypeError, match="floating-point"):
        map_box(torch.ones(3, 3, dtype=torch.int64))


# mask_box, localization_hits


def test_mask_box_by_hand_and_on_the_shapes():
    mask = torch.zeros(5, 6, dtype=torch.uint8)
    mask[1:3, 2] = 1
    mask[4, 4] = 1
    torch.testing.assert_close(mask_box(mask), torch.tensor([2.0, 1.0, 5.0, 5.0]))
    dataset = ShapeCrops.split("test")
    masks = torch.stack([dataset[index][1]["mask"] for index in range(3)])  # (3, 64, 64)
    for mask, box in zip(masks, mask_boxes(masks), strict=True):
        rows, cols = np.nonzero(mask.numpy())
        assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
        assert connected_components(mask)[1] == 1  # one shape: the mask as a map gives its own box
        assert map_box(mask.float(), fraction=0.5).tolist() == box.tolist()


def test_mask_box_edge_cases_and_bad_input():
    assert mask_boxes(torch.zeros(0, 4, 4)).shape == (0, 4)
    with pytest.raises(ValueError, match="empty mask"):
        mask_box(torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"empty masks\[1\]"):
        mask_boxes(torch.stack([torch.ones(4, 4), torch.zeros(4, 4)]))
    with pytest.raises(ValueError, match="binary mask"):
        mask_box(torch.full((4, 4), 3))


def test_localization_hits_by_hand():
    masks = torch.zeros(3, 10, 10, dtype=torch.bool)
    masks[:, 2:6, 2:6] = True  # a 4 x 4 object
    maps = torch.zeros(3, 10, 10)
    maps[0, 2:6, 2:6] = 1.0  # the same box: IoU 1
    maps[1, 2:6, 2:4] = 1.0  # half of it: IoU 0.5, a hit at 0.5
    maps[2, 7:9, 7:9] = 1.0  # elsewhere
    assert localization_hits(maps, masks).tolist() == [True, True, False]
    assert localization_hits(maps, masks, iou_threshold=0.6).tolist() == [True, False, False]
    assert localization_hits(torch.zeros(0, 4, 4), torch.zeros(0, 4, 4)).shape == (0,)
    with pytest.raises(ValueError, match="iou_threshold"):
        localization_hits(maps, masks, iou_threshold=2)
