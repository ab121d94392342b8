"""The model zoo: loading with sha256 checks, verification on a subset, torchvision's weights offline."""

import json
import shutil

import pytest
import torch
import torchvision

from course_lib import zoo


def test_available_lists_the_shipped_models_in_course_order():
    names = zoo.available()
    assert names[0] == "shapes_backbone"
    assert names == [name for name in zoo.RECIPES if name in names]


def test_every_record_names_its_recipe_checkpoint_hash_and_metrics():
    for name in zoo.available():
        record = zoo.entry(name)
        assert record["recipe"]["module"] == zoo.RECIPES[name][0]
        path = zoo.CHECKPOINT_DIR / record["checkpoint"]
        assert path.suffix == ".safetensors" and path.stat().st_size < 8e6  # a few MB at most
        assert zoo.sha256_of(path) == record["sha256"]
        assert record["metrics"] and record["quick_metrics"] and record["train_minutes"] > 0


def test_load_returns_the_model_in_eval_mode_with_the_recorded_weights():
    model = zoo.load("shapes_backbone")
    assert not model.training
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 5)


def test_an_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown model 'yolo9000': expected one of 'shapes_backbone'"):
        zoo.load("yolo9000")


def test_a_checkpoint_whose_sha256_does_not_match_is_refused(tmp_path, monkeypatch):
    record = zoo.entry("shapes_backbone")
    shutil.copy(zoo.CHECKPOINT_DIR / record["checkpoint"], tmp_path / record["checkpoint"])
    with open(tmp_path / record["checkpoint"], "r+b") as handle:  # flip one byte of a weight
        handle.seek(-3, 2)
        byte = handle.read(1)
        handle.seek(-3, 2)
        handle.write(bytes([byte[0] ^ 1]))
    (tmp_path / "zoo.json").write_text(json.dumps({"shapes_backbone": record}))
    monkeypatch.setattr(zoo, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setattr(zoo, "REGISTRY", tmp_path / "zoo.json")
    with pytest.raises(ValueError, match=r"has sha256 [0-9a-f]{64}, expected " + record["sha256"]):
        zoo.load("shapes_backbone")


@pytest.mark.parametrize("name", list(zoo.RECIPES))
def test_verify_on_the_quick_subset_meets_the_record(name):
    """``zoo verify --quick``: each shipped model re-measured on the first items of its held-out split."""
    if name not in zoo.available():
        pytest.skip(f"{name} is not shipped yet")
    rows = zoo.verify([name], quick=True)
    assert rows and all(row["ok"] for row in rows), rows


def test_verify_fails_when_a_model_falls_below_its_record(monkeypatch):
    record = zoo.entry("shapes_backbone")
    raised = {**record, "quick_metrics": {"accuracy": 1.01}}
    monkeypatch.setattr(zoo, "_registry", lambda: {"shapes_backbone": raised})
    rows = zoo.verify(["shapes_backbone"], quick=True)
    assert rows[0]["ok"] is False
    assert zoo.main(["verify", "--quick", "shapes_backbone"]) == 1


def test_the_command_line_lists_and_rejects_unknown_commands(capsys):
    assert zoo.main(["list"]) == 0
    assert "shapes_backbone" in capsys.readouterr().out
    assert zoo.main(["fly"]) == 2


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
