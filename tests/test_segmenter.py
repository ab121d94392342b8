"""The segmenter: shapes, its data (64 px scenes, label maps), a short overfit, the recipe's metrics."""

import dataclasses

import pytest
import torch
from torch.nn import functional as F

from course_lib.data import CLASSES, ShapeScenes
from course_lib.models.backbone import ShapesBackbone
from course_lib.models.segmenter import ShapesSegmenter
from course_lib.recipes import shapes_segmenter


def small_segmenter():
    torch.manual_seed(0)
    return ShapesSegmenter(ShapesBackbone(width=8), decoder_channels=16)


def test_logits_have_one_channel_per_class_at_the_input_size():
    model = small_segmenter().eval()
    images = torch.rand(2, 3, 64, 64)
    assert model(images).shape == (2, len(CLASSES), 64, 64)
    assert model(torch.rand(1, 3, 32, 48)).shape == (1, len(CLASSES), 32, 48)
    predictions = model.predict(images)
    assert predictions.shape == (2, 64, 64) and predictions.dtype == torch.int64
    assert model.classes == CLASSES


def test_bad_images_are_rejected():
    with pytest.raises(ValueError, match=r"images: expected a Tensor\[B, 3, H, W\], got shape \(3, 64, 64\)"):
        small_segmenter()(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match="decoder_channels: expected a value in"):
        ShapesSegmenter(decoder_channels=0)


def test_label_map_by_hand_and_halved_by_nearest_neighbour():
    masks = torch.zeros(2, 4, 4, dtype=torch.uint8)
    masks[0, :2, :2] = 1
    masks[1, 2:, 1:3] = 1
    labels = torch.tensor([3, 5])
    full = shapes_segmenter.label_map(masks, labels)
    assert full.tolist() == [[3, 3, 0, 0], [3, 3, 0, 0], [0, 5, 5, 0], [0, 5, 5, 0]]
    assert shapes_segmenter.label_map(masks, labels, size=2).tolist() == [[3, 0], [0, 5]]  # pixels (2i, 2j)
    assert shapes_segmenter.label_map(masks[:0], labels[:0]).tolist() == [[0] * 4] * 4


def test_segmentation_scenes_are_the_scenes_halved():
    images, labels = shapes_segmenter.segmentation_scenes("val", limit=2)
    assert images.shape == (2, 3, 64, 64) and labels.shape == (2, 64, 64) and labels.dtype == torch.int64
    image, target = ShapeScenes.split("val")[1]
    torch.testing.assert_close(images[1], F.avg_pool2d(image[None], 2)[0])
    assert labels[1].tolist() == shapes_segmenter.label_map(target["masks"], target["labels"], 64).tolist()
    assert set(labels.unique().tolist()) <= set(range(len(CLASSES))) and (labels == 0).any()
    images[0] = 0  # a fresh copy: the cache is untouched
    assert shapes_segmenter.segmentation_scenes("val", limit=2)[0][0].abs().sum() > 0


def test_augment_moves_the_labels_with_the_pixels():
    images = torch.rand(6, 3, 8, 8)
    labels = (images[:, 0] * 6).long()  # a label map that is a function of the pixels
    torch.manual_seed(0)
    moved_images, moved_labels = shapes_segmenter.augment(images, labels)
    assert torch.equal(moved_labels, (moved_images[:, 0] * 6).long())
    assert not torch.equal(moved_images, images)


def test_confusion_matrix_and_metrics_by_hand(monkeypatch):
    truth = torch.tensor([[[0, 0], [1, 2]]])
    prediction = torch.tensor([[[0, 1], [1, 2]]])
    counts = shapes_segmenter.confusion_matrix(prediction, truth, num_classes=3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]

    class Fixed(torch.nn.Module):
        def forward(self, images):
            return F.one_hot(prediction, len(CLASSES)).permute(0, 3, 1, 2).float()

    monkeypatch.setattr(
        shapes_segmenter, "segmentation_scenes", lambda split, limit=None: (torch.zeros(1, 3, 2, 2), truth)
    )
    metrics = shapes_segmenter.evaluate(Fixed())
    assert metrics["pixel_accuracy"] == pytest.approx(3 / 4)
    # IoU: background 1 / 2, class 1 1 / 2, class 2 1 / 1; absent classes are left out.
    assert metrics["mean_iou"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)


def test_a_short_seeded_run_overfits_four_scenes():
    images, labels = shapes_segmenter.segmentation_scenes("train", limit=4)
    model = small_segmenter()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        correct = model.predict(images) == labels  # (4, 64, 64)
    assert losses[-1] < 0.1 * losses[0]
    # Background is ~96% of the pixels: beat "all background" and label most shape pixels right
    # (measured 0.985 and 0.68).
    assert (labels == 0).float().mean() < 0.965 < correct.float().mean()
    assert correct[labels > 0].float().mean() > 0.5


def test_recipe_trains_through_fit_from_the_backbone(monkeypatch):
    images, labels = shapes_segmenter.segmentation_scenes("train", limit=4)
    monkeypatch.setattr(shapes_segmenter, "segmentation_scenes", lambda split, limit=None: (images, labels))
    config = dataclasses.replace(shapes_segmenter.CONFIG, batch_size=2, max_steps=2)
    model, history = shapes_segmenter.train(None, config, progress=False)
    assert len(history) == 2 and not model.training
    assert set(history[0]) >= {"step", "lr", "loss", "segmentation"}
