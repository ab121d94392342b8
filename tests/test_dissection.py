"""GAN dissection: thresholds against numpy, the IoU of Eq. 1 by hand and by brute force, and interventions
that change exactly the chosen units and always give the generator back."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from course_lib.models.gan import Generator
from course_lib.visualization.dissection import (
    ablate,
    concept_share,
    insert,
    masks_from_labels,
    mean_when_active,
    top_units,
    unit_activations,
    unit_concept_iou,
    unit_thresholds,
)
from course_lib.visualization.hooks import has_hooks, record


def small_generator():
    torch.manual_seed(0)
    return Generator(z_dim=4, width=2).eval()


# --- thresholds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("quantile", [0.01, 0.2, 0.5, 0.0, 1.0])
def test_thresholds_equal_numpys_quantile(quantile):
    activations = torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(1))
    expected = [np.quantile(activations[:, unit].numpy().ravel(), 1 - quantile) for unit in range(4)]
    np.testing.assert_allclose(unit_thresholds(activations, quantile).numpy(), expected, rtol=1e-6)


def test_top_one_percent_of_100_distinct_values_leaves_exactly_one_above():
    activations = torch.randperm(100, generator=torch.Generator().manual_seed(0)).float().reshape(4, 1, 5, 5)
    threshold = unit_thresholds(activations)  # default quantile 0.01
    assert int((activations > threshold).sum()) == 1
    assert threshold.item() == pytest.approx(98.01)  # between the order statistics 98 and 99


def test_thresholds_of_empty_inputs():
    assert unit_thresholds(torch.zeros(5, 0, 2, 2)).shape == (0,)
    assert torch.isinf(unit_thresholds(torch.zeros(0, 3, 2, 2))).all()  # no sample: never active


def test_thresholds_reject_bad_arguments():
    with pytest.raises(ValueError, match=r"quantile: expected a value in \[0, 1\], got 1.5"):
        unit_thresholds(torch.zeros(1, 1, 2, 2), 1.5)
    with pytest.raises(ValueError, match=r"activations: expected a Tensor\[B, C, H, W\], got shape \(2, 2\)"):
        unit_thresholds(torch.zeros(2, 2))


# --- IoU of Eq. 1 -------------------------------------------------------------------------------


def test_iou_of_two_units_and_two_concepts_by_hand():
    activations = torch.tensor([[[[5.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]])  # (1, 2, 2, 2)
    masks = torch.tensor([[[[1, 1], [0, 0]], [[0, 0], [0, 0]]]], dtype=torch.bool)  # concept 1 is empty
    iou = unit_concept_iou(activations, masks, thresholds=torch.tensor([1.0, 1.0]))
    # unit 0 is on at one pixel, concept 0 covers two of them: 1 / 2; with the empty concept: 0 / 1.
    # unit 1 is never on: 0 / 2 with concept 0, and 0 / 0 with the empty concept, which is 0, not NaN.
    torch.testing.assert_close(iou, torch.tensor([[0.5, 0.0], [0.0, 0.0]]))


def test_iou_is_a_ratio_of_totals_over_samples_not_a_mean_of_ratios():
    activations = torch.zeros(2, 1, 2, 2)
    activations[0, 0, 0, 0] = 1.0  # sample 0: on at one pixel, the concept's only pixel: IoU 1
    masks = torch.zeros(2, 1, 2, 2, dtype=torch.bool)
    masks[0, 0, 0, 0] = True
    masks[1, 0, 0, :] = True  # sample 1: off, concept on 2 pixels: IoU 0
    masks[1, 0, 1, 0] = True  # ... 3 pixels
    iou = unit_concept_iou(activations, masks, torch.tensor([0.5]))
    assert iou.item() == pytest.approx(1 / 4)  # (1 + 0) / (1 + 3), not (1 + 0) / 2


def test_iou_upsamples_the_units_map_bilinearly_before_thresholding():
    # A 2 x 2 map [[0, 4], [0, 4]] upsampled to 4 x 4 (half-pixel centres) has columns 0, 1, 3, 4.
    activations = torch.tensor([[0.0, 4.0], [0.0, 4.0]])[None, None]
    right_half = torch.zeros(1, 2, 4, 4, dtype=torch.bool)
    right_half[0, 0, :, 2:] = True  # concept 0: columns 2 and 3, exactly where the map exceeds 2
    right_half[0, 1, :, 1:] = True  # concept 1: columns 1, 2 and 3
    iou = unit_concept_iou(activations, right_half, torch.tensor([2.0]))
    torch.testing.assert_close(iou, torch.tensor([[1.0, 2 / 3]]))


def brute_force_iou(activations, masks, thresholds, size):
    """Eq. 1 unit by unit, concept by concept, sample by sample, in numpy."""
    B, C = activations.shape[:2]
    K = masks.shape[1]
    upsampled = F.interpolate(activations, size=size, mode="bilinear", align_corners=False).numpy()
    masks = F.interpolate(masks.float(), size=size, mode="nearest").numpy() > 0
    iou = np.zeros((C, K))
    for unit in range(C):
        for concept in range(K):
            inter = union = 0
            for sample in range(B):
                on = upsampled[sample, unit] > thresholds[unit].item()
                inter += np.logical_and(on, masks[sample, concept]).sum()
                union += np.logical_or(on, masks[sample, concept]).sum()
            iou[unit, concept] = inter / union if union else 0.0
    return iou


@pytest.mark.parametrize("size", [None, (6, 6), 12])
def test_iou_equals_a_brute_force_computation(size):
    generator = torch.Generator().manual_seed(3)
    activations = torch.randn(5, 3, 4, 4, generator=generator).relu()
    labels = torch.randint(0, 4, (5, 12, 12), generator=generator)
    masks = masks_from_labels(labels, 4)
    thresholds = unit_thresholds(activations, 0.2)
    iou = unit_concept_iou(activations, masks, thresholds, size=size, batch_size=2)
    pair = (size, size) if isinstance(size, int) else size or (12, 12)  # None: the masks' size
    expected = brute_force_iou(activations, masks, thresholds, pair)
    np.testing.assert_allclose(iou.numpy(), expected, rtol=1e-6)


def test_iou_of_empty_inputs_and_bad_arguments():
    iou = unit_concept_iou(torch.zeros(0, 3, 2, 2), torch.zeros(0, 2, 4, 4), torch.zeros(3))
    torch.testing.assert_close(iou, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="concept_masks: expected 2 samples as activations, got 1"):
        unit_concept_iou(torch.zeros(2, 3, 2, 2), torch.zeros(1, 2, 4, 4), torch.zeros(3))
    with pytest.raises(ValueError, match=r"thresholds: expected a Tensor\[3\], got shape \(2,\)"):
        unit_concept_iou(torch.zeros(2, 3, 2, 2), torch.zeros(2, 2, 4, 4), torch.zeros(2))


def test_masks_from_labels_by_hand():
    labels = torch.tensor([[[0, 2], [2, 1]]])
    masks = masks_from_labels(labels, 3)
    assert masks.dtype == torch.bool and masks.shape == (1, 3, 2, 2)
    assert masks[0, 2].tolist() == [[False, True], [True, False]]
    with pytest.raises(ValueError, match="labels: expected an int"):
        masks_from_labels(labels.float(), 3)


def test_top_units_by_decreasing_iou_ties_to_the_lower_unit():
    iou = torch.tensor([[0.1, 0.3], [0.5, 0.3], [0.2, 0.3], [0.5, 0.0]])
    units, values = top_units(iou, 0, k=3)
    assert units.tolist() == [1, 3, 2] and values.tolist() == pytest.approx([0.5, 0.5, 0.2])
    assert top_units(iou, "circle", k=10)[0].tolist() == [0, 1, 2, 3]  # CLASSES[1], all ties
    with pytest.raises(ValueError, match="concept: expected a value in"):
        top_units(iou, 2)
    with pytest.raises(ValueError, match="concept: expected one of"):
        top_units(iou, "hexagon")


def test_mean_when_active_by_hand():
    activations = torch.tensor([[[[1.0, 3.0], [5.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]])
    means = mean_when_active(activations, torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(means, torch.tensor([4.0, 0.0]))  # (3 + 5) / 2; never above: 0


# --- activations and interventions -------------------------------------------------------------


def test_unit_activations_equal_a_manual_forward_and_keep_the_training_mode():
    generator = small_generator().train()
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    activations = unit_activations(generator, "layer2", z, batch_size=2)
    assert generator.training and not has_hooks(generator)
    generator.eval()
    with torch.no_grad():
        expected = generator.layer2(generator.layer1(z[:, :, None, None]))
    torch.testing.assert_close(activations, expected)
    assert activations.shape == (5, 8, 8, 8)  # 4 * width units, 8 x 8
    assert unit_activations(generator, "layer2", torch.zeros(0, 4)).shape == (0, 0, 0, 0)
    with pytest.raises(ValueError, match="layer: unknown name 'layer9'"):
        unit_activations(generator, "layer9", z)


def layer_and_image(generator, z, layer="layer2"):
    with torch.no_grad(), record(generator, layer) as recorded:
        images = generator(z)
    return recorded.activations[layer].clone(), images


def test_ablate_zeroes_exactly_the_chosen_units_and_restores_the_generator():
    generator = small_generator()
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    before, images = layer_and_image(generator, z)
    weights = [p.clone() for p in generator.parameters()]
    with ablate(generator, "layer2", [1, 3]):
        ablated, ablated_images = layer_and_image(generator, z)
    others = [unit for unit in range(8) if unit not in (1, 3)]
    assert (ablated[:, [1, 3]] == 0).all() and (before[:, [1, 3]] != 0).any()
    torch.testing.assert_close(ablated[:, others], before[:, others])
    assert not torch.equal(ablated_images, images)  # the change reaches the image
    assert not has_hooks(generator)
    torch.testing.assert_close(layer_and_image(generator, z)[1], images)
    assert all(torch.equal(a, b) for a, b in zip(weights, generator.parameters(), strict=True))


def test_insert_sets_the_chosen_units_inside_the_region_only():
    generator = small_generator()
    z = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    before, images = layer_and_image(generator, z)
    where = torch.zeros(8, 8, dtype=torch.bool)
    where[2:5, 3:6] = True
    with insert(generator, "layer2", [0, 2], where, torch.tensor([7.0, 9.0])):
        inserted, _ = layer_and_image(generator, z)
    assert (inserted[:, 0][:, where] == 7).all() and (inserted[:, 2][:, where] == 9).all()
    torch.testing.assert_close(inserted[:, [0, 2]][:, :, ~where], before[:, [0, 2]][:, :, ~where])
    others = [unit for unit in range(8) if unit not in (0, 2)]
    torch.testing.assert_close(inserted[:, others], before[:, others])
    assert not has_hooks(generator)
    torch.testing.assert_close(layer_and_image(generator, z)[1], images)


def test_insert_with_a_soft_mask_blends_the_map_and_the_value():
    generator = small_generator()
    z = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    before, _ = layer_and_image(generator, z)
    with insert(generator, "layer2", [1], torch.full((2, 8, 8), 0.5), 3.0):
        inserted, _ = layer_and_image(generator, z)
    torch.testing.assert_close(inserted[:, 1], (before[:, 1] + 3.0) / 2)


def test_hooks_are_removed_after_an_exception_and_after_a_bad_unit():
    generator = small_generator()
    with pytest.raises(RuntimeError, match="boom"), ablate(generator, "layer2", [0]):
        raise RuntimeError("boom")
    assert not has_hooks(generator)
    with pytest.raises(ValueError, match="units: expected indices below 8 in 'layer2', got"):
        with ablate(generator, "layer2", [8]):
            generator(torch.zeros(1, 4))
    assert not has_hooks(generator)
    with pytest.raises(ValueError, match=r"where: expected \(8, 8\) or \(1, 8, 8\)"):
        with insert(generator, "layer2", [0], torch.ones(4, 4, dtype=torch.bool), 1.0):
            generator(torch.zeros(1, 4))
    assert not has_hooks(generator)


def test_interventions_reject_bad_arguments_before_adding_a_hook():
    generator = small_generator()
    with pytest.raises(TypeError, match="units: expected a sequence of ints"):
        with ablate(generator, "layer2", [0.5]):
            pass
    with pytest.raises(ValueError, match=r"value: expected a number or a Tensor\[2\]"):
        with insert(generator, "layer2", [0, 1], torch.ones(8, 8), torch.ones(3)):
            pass
    with pytest.raises(ValueError, match="layer: unknown name"):
        with ablate(generator, "nope", [0]):
            pass
    assert not has_hooks(generator)


# --- concept share ------------------------------------------------------------------------------


class LabelsFromRedChannel(nn.Module):
    """A stand-in segmenter: the class of a pixel is 10 x its red value."""

    def forward(self, images):
        labels = (images[:, 0] * 10).round().long()  # (B, H, W)
        return F.one_hot(labels, 6).permute(0, 3, 1, 2).float()  # (B, 6, H, W)


def test_concept_share_by_hand():
    images = torch.zeros(2, 3, 2, 2)
    images[0, 0] = torch.tensor([[0.1, 0.1], [0.0, 0.2]])  # classes [[1, 1], [0, 2]]
    images[1, 0] = 0.1  # all class 1
    shares = concept_share(LabelsFromRedChannel(), images, "circle")  # CLASSES[1]
    torch.testing.assert_close(shares, torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(concept_share(LabelsFromRedChannel(), images, 2), torch.tensor([0.25, 0.0]))
    assert concept_share(LabelsFromRedChannel(), torch.zeros(0, 3, 2, 2), 1).shape == (0,)
    with pytest.raises(ValueError, match="concept: expected one of"):
        concept_share(LabelsFromRedChannel(), images, "hexagon")
