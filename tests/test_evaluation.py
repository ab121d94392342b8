"""Scores for explanation maps: hand-computed cases, scipy and slow-loop oracles, the shapes classifier,
cascading randomization that leaves the model and the global random state alone."""

import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage, stats
from torch import nn

from course_lib import zoo
from course_lib.data import ShapeCrops
from course_lib.visualization.evaluation import (
    auc,
    deletion_curve,
    energy_in_mask,
    insertion_curve,
    pointing_game,
    random_maps,
    randomized_copies,
    rank_correlation,
)
from course_lib.visualization.hooks import layer_names

LAYERS = ["fc", "features.conv4", "features.conv3", "features.conv2", "features.conv1"]


@pytest.fixture(scope="module")
def shapes():
    dataset = ShapeCrops.split("test")
    crops = [dataset[0], dataset[1]]
    images = torch.stack([image for image, _ in crops])  # (2, 3, 64, 64)
    masks = torch.stack([target["mask"] for _, target in crops])  # (2, 64, 64) uint8
    labels = torch.stack([target["label"] for _, target in crops])  # (2,)
    return zoo.load("shapes_classifier"), images, masks, labels


def sum_model() -> nn.Module:
    """Logits ``[sum of the pixels, 0]`` for a 1 x 2 x 2 image: the probability of class 0 is sigmoid(sum)."""
    linear = nn.Linear(4, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 1, 1, 1], [0, 0, 0, 0]]))
        linear.bias.zero_()
    return nn.Sequential(nn.Flatten(), linear)


# pointing_game


def test_pointing_game_by_hand_with_tolerance_ties_and_constant_maps():
    maps = torch.zeros(4, 5, 5)
    maps[:, 1, 2] = 1.0  # the maximum, at (row 1, column 2)
    masks = torch.zeros(4, 5, 5, dtype=torch.uint8)
    masks[0, 1, 2] = 1  # on the maximum
    masks[1:, 3, 4] = 1  # sqrt(2^2 + 2^2) = 2.83 pixels away
    maps[2] = 0.0  # a constant map points nowhere, even onto a mask that covers it
    masks[2] = 1
    maps[3, 3, 4] = 1.0  # a tie: (1, 2) comes first in row-major order, so it is the maximum
    assert pointing_game(maps, masks).tolist() == [True, False, False, False]
    assert pointing_game(maps, masks, tolerance=2.8).tolist() == [True, False, False, False]
    assert pointing_game(maps, masks, tolerance=2.83).tolist() == [True, True, False, True]


def test_pointing_game_equals_a_distance_transform_on_random_maps():
    generator = torch.Generator().manual_seed(0)
    maps = torch.randint(0, 5, (20, 9, 11), generator=generator).float()  # many ties
    masks = torch.rand(20, 9, 11, generator=generator) < 0.1
    masks[0] = False  # an empty mask: always a miss
    for tolerance in (0, 1, 2.5):
        expected = []
        for map, mask in zip(maps, masks, strict=True):
            distance = ndimage.distance_transform_edt(~mask.numpy())  # to the nearest mask pixel
            peak = int(map.flatten().argmax())
            expected.append(bool(mask.any()) and bool(distance.flat[peak] <= tolerance))
        assert pointing_game(maps, masks, tolerance).tolist() == expected
    assert not pointing_game(maps, masks, 100)[0]


def test_pointing_game_ignores_differences_below_float_rounding():
    maps = torch.zeros(2, 3, 3)
    maps[:, 0, 0] = 1.0
    maps[:, 2, 2] = 1.0 + 1e-7  # the same value up to rounding: the first in row-major order wins
    maps[1, 2, 2] = 1.001  # a real difference
    masks = torch.zeros(2, 3, 3, dtype=torch.bool)
    masks[:, 2, 2] = True
    assert pointing_game(maps, masks).tolist() == [False, True]


def test_pointing_game_edge_cases_and_bad_input():
    assert pointing_game(torch.zeros(0, 4, 4), torch.zeros(0, 4, 4)).shape == (0,)
    with pytest.raises(ValueError, match=r"expected shape \(1, 4, 4\)"):
        pointing_game(torch.rand(1, 4, 4), torch.zeros(1, 4, 5))
    with pytest.raises(ValueError, match="binary mask"):
        pointing_game(torch.rand(1, 4, 4), torch.full((1, 4, 4), 2))
    with pytest.raises(ValueError, match=r"Tensor\[B, H, W\]"):
        pointing_game(torch.rand(4, 4), torch.zeros(4, 4))
    with pytest.raises(TypeError, match="floating-point"):
        pointing_game(torch.ones(1, 4, 4, dtype=torch.int64), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="finite"):
        pointing_game(torch.full((1, 4, 4), float("nan")), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(torch.rand(1, 4, 4), torch.zeros(1, 4, 4), tolerance=-1)


# energy_in_mask


def test_energy_in_mask_by_hand_ignores_negative_values_and_never_gives_nan():
    maps = torch.tensor([[[3.0, 1.0], [-5.0, 0.0]], [[-1.0, -2.0], [0.0, 0.0]], [[0.0, 2.0], [2.0, 0.0]]])
    masks = torch.tensor([[[1, 0], [1, 1]], [[1, 1], [1, 1]], [[0, 0], [0, 0]]], dtype=torch.bool)
    torch.testing.assert_close(energy_in_mask(maps, masks), torch.tensor([0.75, 0.0, 0.0]))
    assert energy_in_mask(torch.zeros(0, 3, 3), torch.zeros(0, 3, 3)).shape == (0,)


def test_energy_in_mask_equals_numpy_on_random_maps():
    generator = torch.Generator().manual_seed(1)
    maps = torch.randn(10, 8, 8, generator=generator, dtype=torch.float64)
    masks = (torch.rand(10, 8, 8, generator=generator) < 0.3).float()
    positive = np.clip(maps.numpy(), 0, None)
    expected = (positive * masks.numpy()).sum(axis=(1, 2)) / positive.sum(axis=(1, 2))
    np.testing.assert_allclose(energy_in_mask(maps, masks).numpy(), expected)


# deletion_curve, insertion_curve, auc


def test_curves_by_hand_follow_the_map_order_with_ties_by_lower_index():
    image = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])[None]  # (1, 1, 2, 2), pixel sum 10
    maps = torch.tensor([[[0.0, 5.0], [5.0, 1.0]]])  # order: index 1, then 2 (tie), then 3, then 0
    deletion = deletion_curve(sum_model(), image, 0, maps, steps=4)
    torch.testing.assert_close(deletion, torch.sigmoid(torch.tensor([[10.0, 8.0, 5.0, 1.0, 0.0]])))
    insertion = insertion_curve(sum_model(), image, 0, maps, steps=4, baseline=1.0)
    torch.testing.assert_close(insertion, torch.sigmoid(torch.tensor([[4.0, 5.0, 7.0, 10.0, 10.0]])))
    two_steps = deletion_curve(sum_model(), image, 0, maps, steps=3)  # floor(k * 4 / 3) = 0, 1, 2, 4 pixels
    torch.testing.assert_close(two_steps, torch.sigmoid(torch.tensor([[10.0, 8.0, 5.0, 0.0]])))


def slow_curve(model, image, label, map, steps, baseline, insertion):
    """One forward pass per step, pixels picked one by one from a Python sort."""
    H, W = map.shape
    order = sorted(range(H * W), key=lambda index: (-float(map.flatten()[index]), index))
    probabilities = []
    for step in range(steps + 1):
        chosen = torch.zeros(H * W, dtype=torch.bool)
        chosen[order[: step * H * W // steps]] = True
        hidden = ~chosen if insertion else chosen
        copy = torch.where(hidden.view(H, W), torch.tensor(baseline), image)
        with torch.no_grad():
            probabilities.append(model(copy[None]).softmax(dim=1)[0, label])
    return torch.stack(probabilities)


def test_curves_equal_a_slow_loop_on_the_shapes_classifier(shapes):
    model, images, masks, labels = shapes
    model.train()  # the curves look at it in eval mode and give it back as it was
    maps = random_maps((2, 64, 64), seed=3)
    maps[:, 10:20] = 0.5  # a band of ties
    deletion = deletion_curve(model, images, labels, maps, steps=8, baseline=0.1)
    insertion = insertion_curve(model, images, labels, maps, steps=8, baseline=0.1)
    assert model.training
    model.eval()
    for index in range(2):
        for curve, insert in ((deletion, False), (insertion, True)):
            expected = slow_curve(model, images[index], labels[index], maps[index], 8, 0.1, insert)
            torch.testing.assert_close(curve[index], expected, atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        original = model(images).softmax(dim=1)[[0, 1], labels]
        black = model(torch.full_like(images, 0.1)).softmax(dim=1)[[0, 1], labels]
    torch.testing.assert_close(deletion[:, 0], original)  # nothing removed yet
    torch.testing.assert_close(deletion[:, -1], black)  # every pixel removed
    torch.testing.assert_close(insertion[:, 0], black)
    torch.testing.assert_close(insertion[:, -1], original)
    one_by_one = [deletion_curve(model, images[[i]], labels[[i]], maps[[i]], 8, 0.1) for i in range(2)]
    torch.testing.assert_close(torch.cat(one_by_one), deletion)  # a batch of one equals one of the batch


def test_the_object_mask_as_a_map_deletes_faster_than_its_inverse(shapes):
    model, images, masks, labels = shapes
    on_object = auc(deletion_curve(model, images, labels, masks.float(), steps=8))
    off_object = auc(deletion_curve(model, images, labels, 1.0 - masks.float(), steps=8))
    assert (on_object < off_object).all()


def test_auc_by_hand_and_bad_input():
    curves = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.5, 0.0]])
    torch.testing.assert_close(auc(curves), torch.tensor([0.5, 1.0, 0.5]))
    torch.testing.assert_close(auc(torch.tensor([[0.0, 1.0]])), torch.tensor([0.5]))
    assert auc(torch.zeros(0, 5)).shape == (0,)
    with pytest.raises(ValueError, match="S >= 1"):
        auc(torch.zeros(2, 1))
    with pytest.raises(TypeError, match="floating-point"):
        auc(torch.zeros(2, 3, dtype=torch.int64))


def test_curves_empty_batch_and_bad_input():
    model, image, maps = sum_model(), torch.rand(1, 1, 2, 2), torch.rand(1, 2, 2)
    assert deletion_curve(model, torch.zeros(0, 1, 2, 2), 0, torch.zeros(0, 2, 2), steps=4).shape == (0, 5)
    with pytest.raises(ValueError, match=r"one map per image, Tensor\[1, 2, 2\]"):
        deletion_curve(model, image, 0, torch.rand(1, 3, 2))
    with pytest.raises(ValueError, match=r"class indices in \[0, 1\]"):
        insertion_curve(model, image, 2, maps)
    with pytest.raises(TypeError, match="not a callable"):
        deletion_curve(model, image, lambda out: out[:, 0], maps)
    with pytest.raises(ValueError, match="steps"):
        deletion_curve(model, image, 0, maps, steps=0)


# randomized_copies


def test_randomized_copies_cascade_and_leave_the_model_and_the_rng_alone(shapes):
    model = shapes[0]
    before = {name: value.clone() for name, value in model.state_dict().items()}
    rng = torch.get_rng_state()
    copies = randomized_copies(model, LAYERS, seed=5)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
    assert [name for name, _ in copies] == LAYERS
    for k, (_, copy) in enumerate(copies):
        for name, value in copy.state_dict().items():
            randomized = any(name.startswith(layer + ".") for layer in LAYERS[: k + 1])
            assert torch.equal(value, before[name]) != randomized, (k, name)  # bn statistics stay too
        for j in range(k + 1):  # layer j is drawn from the same seed in every copy that resets it
            first = copies[j][1].get_submodule(LAYERS[j]).weight
            assert torch.equal(copy.get_submodule(LAYERS[j]).weight, first)
    again = randomized_copies(model, LAYERS[:2], seed=5)
    assert torch.equal(again[1][1].fc.weight, copies[1][1].fc.weight)
    other = randomized_copies(model, LAYERS[:1], seed=6)
    assert not torch.equal(other[0][1].fc.weight, copies[0][1].fc.weight)


def test_randomized_copies_bad_input(shapes):
    model = shapes[0]
    with pytest.raises(ValueError, match="unknown name"):
        randomized_copies(model, ["fc", "conv9"])
    with pytest.raises(ValueError, match="each name once"):
        randomized_copies(model, ["fc", "fc"])
    with pytest.raises(ValueError, match="non-empty list"):
        randomized_copies(model, [])
    with pytest.raises(ValueError, match="non-empty list"):
        randomized_copies(model, "fc")
    with pytest.raises(ValueError, match="batch norm is kept"):
        randomized_copies(model, ["features.bn1"])
    with pytest.raises(TypeError, match="reset_parameters"):
        randomized_copies(model, ["features.relu1"])
    assert "features.bn1" in layer_names(model)


# rank_correlation


def test_rank_correlation_by_hand_with_ties_and_constant_maps():
    maps_a = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [2.0, 3.0]], [[7.0, 7.0], [7.0, 7.0]]])
    maps_b = torch.tensor([[[4.0, 3.0], [2.0, 1.0]], [[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]])
    # Row 2: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): covariance 4.5 / sqrt(4.5 * 5) = 0.9487.
    expected = torch.tensor([-1.0, 4.5 / (4.5 * 5) ** 0.5, 0.0], dtype=torch.float64)
    torch.testing.assert_close(rank_correlation(maps_a, maps_b), expected)
    torch.testing.assert_close(rank_correlation(maps_b, maps_b), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("levels", [3, 10, None])
def test_rank_correlation_equals_scipy_on_random_maps(levels):
    generator = torch.Generator().manual_seed(levels or 0)
    if levels is None:
        maps_a, maps_b = torch.randn(6, 7, 9, generator=generator), torch.randn(6, 7, 9, generator=generator)
    else:  # few values: many ties
        maps_a = torch.randint(0, levels, (6, 7, 9), generator=generator).float()
        maps_b = torch.randint(0, levels, (6, 7, 9), generator=generator).float()
    maps_b[0] = maps_a[0]
    maps_b[1] = -maps_a[1]
    maps_b[2] = 0.0  # constant: scipy returns NaN, we return 0
    result = rank_correlation(maps_a, maps_b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs = zip(maps_a.flatten(1), maps_b.flatten(1), strict=True)
        expected = [stats.spearmanr(a, b).statistic for a, b in pairs]
    assert np.isnan(expected[2]) and result[2] == 0.0
    expected[2] = 0.0
    np.testing.assert_allclose(result.numpy(), expected, atol=1e-12)


def test_rank_correlation_edge_cases_and_bad_input():
    assert rank_correlation(torch.zeros(0, 3, 3), torch.zeros(0, 3, 3)).shape == (0,)
    assert rank_correlation(torch.rand(1, 1, 1), torch.rand(1, 1, 1)).tolist() == [0.0]  # one pixel: constant
    with pytest.raises(ValueError, match="shape of maps_a"):
        rank_correlation(torch.rand(2, 3, 3), torch.rand(2, 3, 4))


# random_maps


def test_random_maps_are_seeded_uniform_and_leave_the_rng_alone():
    rng = torch.get_rng_state()
    maps = random_maps((3, 16, 16), seed=7)
    assert torch.equal(torch.get_rng_state(), rng)
    assert maps.shape == (3, 16, 16) and maps.dtype == torch.float32
    assert 0 <= maps.min() and maps.max() < 1 and abs(float(maps.mean()) - 0.5) < 0.05
    assert torch.equal(maps, random_maps([3, 16, 16], seed=7))
    assert not torch.equal(maps, random_maps((3, 16, 16), seed=8))
    assert random_maps((0, 4, 4)).shape == (0, 4, 4)
    with pytest.raises(ValueError, match=r"expected \(B, H, W\)"):
        random_maps((4, 4))
    with pytest.raises(ValueError, match="shape"):
        random_maps((1, -1, 4))
