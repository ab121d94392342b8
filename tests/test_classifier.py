"""The visualization chapters' classifiers: named layers, GAP embedding, the digits split."""

import pytest
import torch

from course_lib.data import CLASSES
from course_lib.models.backbone import ShapesBackbone
from course_lib.models.classifier import digits_cnn, shapes_classifier
from course_lib.recipes.backbone import output_indices
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


def test_output_k_of_the_shapes_classifier_is_class_k_of_the_dataset():
    # Regression (the label-convention bug): a ShapeCrops label is 1..5 and index 0 of CLASSES is
    # background; the classifier's output index must be that same number.
    model = shapes_classifier().eval()
    assert model.classes == CLASSES and model.num_classes == len(CLASSES)
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, len(CLASSES))
    assert digits_cnn().classes == tuple("0123456789")


def test_the_shipped_classifier_predicts_the_dataset_label():
    from course_lib import zoo
    from course_lib.recipes.backbone import crops

    model = zoo.load("shapes_classifier")
    images, labels = crops("test", 100)
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    assert (predicted == labels).float().mean() >= 0.98  # labels as they come, no offset
    assert (predicted != 0).all()  # never "background"


def test_output_indices_map_labels_by_class_name():
    model = shapes_classifier()
    labels = torch.tensor([1, 5, 3])
    assert torch.equal(output_indices(model, labels), labels)
    shapes_only = ShapesBackbone(classes=CLASSES[1:])  # outputs without background: label k is output k - 1
    assert torch.equal(output_indices(shapes_only, labels), labels - 1)
    with pytest.raises(ValueError, match=r"labels: expected classes among .*, got \['background'\]"):
        output_indices(shapes_only, torch.tensor([0, 1]))
