"""What the recipes share: flips of images with their boxes, the classification loss, augmentation."""

import pytest
import torch

from course_lib.recipes.backbone import augment, classification_losses
from course_lib.recipes.detection import hflip


def test_hflip_mirrors_the_image_its_boxes_and_its_proposals():
    image = torch.zeros(3, 10, 20)
    image[:, 2:5, 1:4] = 1.0  # an object at x in [1, 4)
    target = {"boxes": torch.tensor([[1.0, 2, 4, 5]]), "labels": torch.tensor([3])}
    whole = torch.tensor([[0.0, 0, 20, 10]])
    flipped, flipped_target, flipped_proposals = hflip(image, target, whole)
    assert torch.equal(flipped_target["boxes"], torch.tensor([[16.0, 2, 19, 5]]))
    x1, y1, x2, y2 = flipped_target["boxes"][0].int().tolist()
    assert flipped[:, y1:y2, x1:x2].min() == 1 and flipped.sum() == image.sum()  # moved with its box
    assert torch.equal(flipped_proposals, whole)
    assert torch.equal(flipped_target["labels"], target["labels"])
    assert target["boxes"][0, 0] == 1  # the input is untouched


def test_augment_only_flips_and_turns():
    torch.manual_seed(0)
    images = torch.rand(6, 3, 8, 8)
    augmented = augment(images)
    for original, changed in zip(images, augmented, strict=True):
        variants = [torch.rot90(im, k, dims=(1, 2)) for im in (original, original.flip(-1)) for k in range(4)]
        assert any(torch.equal(changed, variant) for variant in variants)


@pytest.mark.parametrize("with_background", [True, False])
def test_classification_loss_finds_each_label_by_the_models_class_names(with_background):
    from course_lib.data import CLASSES

    class Fixed(torch.nn.Module):  # always scores "circle" (label 1) highest
        classes = CLASSES if with_background else CLASSES[1:]

        def forward(self, images):
            scores = torch.zeros(len(images), len(self.classes))
            scores[:, self.classes.index("circle")] = 10.0
            return scores

    batch = [(torch.rand(3, 8, 8), torch.tensor(1))]
    assert classification_losses(Fixed(), batch)["classification"] < 1e-3
    wrong = [(torch.rand(3, 8, 8), torch.tensor(2))]
    assert classification_losses(Fixed(), wrong)["classification"] > 5


def test_dihedral_moves_boxes_with_the_pixels_for_all_eight_symmetries():
    from course_lib.data import ShapeScenes
    from course_lib.data._canvas import masks_to_boxes
    from course_lib.recipes.detection import dihedral

    image, target = ShapeScenes(1, image_size=48, seed=4)[0]
    masks = target["masks"]
    for flip in (False, True):
        for turns in range(4):
            moved_image, moved = dihedral(image, target, None, turns, flip)
            moved_masks = masks.flip(-1) if flip else masks
            moved_masks = torch.rot90(moved_masks, turns, dims=(1, 2))
            expected = torch.from_numpy(masks_to_boxes(moved_masks.numpy()))
            torch.testing.assert_close(moved["boxes"], expected)
            assert moved_image.shape == image.shape
            assert torch.equal(
                moved_image, torch.rot90(image.flip(-1) if flip else image, turns, dims=(1, 2))
            )


def test_cached_data_comes_back_as_fresh_copies():
    # Regression: lru_cache handed every caller the same tensors, so one caller's in-place change
    # reached the next caller.
    from course_lib.recipes.backbone import crops
    from course_lib.recipes.detection import scenes
    from course_lib.recipes.digits_cnn import digits_split

    images, labels = crops("test", 3)
    images.zero_()
    labels.zero_()
    again, again_labels = crops("test", 3)
    assert again.abs().sum() > 0 and (again_labels > 0).all()
    first = scenes("test", 2)
    first[0][0].zero_()
    first[0][1]["boxes"].zero_()
    second = scenes("test", 2)
    assert second[0][0].abs().sum() > 0 and second[0][1]["boxes"].abs().sum() > 0
    digits, _ = digits_split("test")
    digits.zero_()
    assert digits_split("test")[0].abs().sum() > 0
