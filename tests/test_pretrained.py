"""course_lib.pretrained: torchvision's weights read from the local torch cache only, never downloaded."""

import pytest
import torch
import torchvision

from course_lib import zoo


def test_load_torchvision_reads_a_state_dict_from_the_local_cache(tmp_path):
    weights = torchvision.models.MobileNet_V3_Small_Weights.DEFAULT
    torch.manual_seed(0)
    saved = torchvision.models.mobilenet_v3_small(weights=None)
    torch.save(saved.state_dict(), tmp_path / weights.url.rsplit("/", 1)[1])
    model = zoo.load_torchvision("mobilenet_v3_small", cache_dir=tmp_path)
    assert not model.training
    for (name, a), (_, b) in zip(saved.state_dict().items(), model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_load_torchvision_builds_a_detector_without_fetching_its_backbone(tmp_path):
    weights = torchvision.models.detection.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.DEFAULT
    saved = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None
    )
    torch.save(saved.state_dict(), tmp_path / weights.url.rsplit("/", 1)[1])
    model = zoo.load_torchvision("fasterrcnn_mobilenet_v3_large_320_fpn", cache_dir=tmp_path)
    assert model.roi_heads.box_predictor.cls_score.out_features == 91


def test_load_torchvision_never_downloads_and_says_how_to_get_the_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads at run time") as error:
        zoo.load_torchvision("resnet18", cache_dir=tmp_path)
    assert "get_weight('ResNet18_Weights.IMAGENET1K_V1')" in str(error.value)
    with pytest.raises(ValueError, match="unknown torchvision model 'resnet7'"):
        zoo.load_torchvision("resnet7", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown weights 'NOPE'"):
        zoo.load_torchvision("resnet18", weights="NOPE", cache_dir=tmp_path)
