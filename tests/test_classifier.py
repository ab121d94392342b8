"""The visualization chapters' classifiers: named layers, GAP embedding, the digits split."""

import pytest
import torch

from course_lib.models.classifier import digits_cnn, shapes_classifier
from course_lib.recipes.digits_cnn import digits_split
from course_lib.visualization import layer_names


def test_shapes_classifier_has_named_layers_and_a_gap_embedding():
    model = shapes_classifier().eval()
    names = layer_names(model)
    assert names[:4] == ["features.conv1", "features.bn1", "features.relu1", "features.pool1"]
    assert names[-1] == "fc"
    images = torch.rand(2, 3, 64, 64)
    embedding = model.embed(images)
    assert embedding.shape == (2, 128)
    # fc applied to the embedding is the output: the only layer after GAP is one linear layer
    torch.testing.assert_close(model(images), model.fc(embedding))
    torch.testing.assert_close(embedding, model.features(images).mean(dim=(2, 3)))


def test_digits_cnn_takes_one_channel_8x8_images():
    model = digits_cnn().eval()
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(ValueError, match=r"expected a Tensor\[B, 1, H, W\], got shape \(3, 8, 8\)"):
        model(torch.rand(3, 8, 8))


def test_the_digits_split_is_disjoint_stratified_and_scaled():
    train_images, train_labels = digits_split("train")
    test_images, test_labels = digits_split("test")
    assert len(train_images) + len(test_images) == 1797 and len(test_images) == 360
    assert train_images.min() >= 0 and train_images.max() <= 1
    assert torch.bincount(test_labels).min() >= 35  # every digit is in the test split, about 36 each
    flat_train = {tuple(image.flatten().tolist()) for image in train_images}
    overlap = sum(tuple(image.flatten().tolist()) in flat_train for image in test_images)
    assert overlap <= 2  # the data has a few exact duplicates; the split itself is disjoint by index
    with pytest.raises(ValueError, match="split: expected one of 'train', 'test'"):
        digits_split("val")
