"""The model zoo: loading with sha256 checks, verification on a subset, torchvision's weights offline."""

import json
import shutil

import pytest
import torch

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
        # A few MB: the detectors carry their own copy of the 4.9 MB backbone; the largest, detr, adds
        # 1.6 M transformer parameters (11.4 MB in float32).
        assert path.suffix == ".safetensors" and path.stat().st_size < 12e6
        assert zoo.sha256_of(path) == record["sha256"]
        assert record["metrics"] and record["quick_metrics"] and record["train_minutes"] > 0


def test_load_returns_the_model_in_eval_mode_with_the_recorded_weights():
    model = zoo.load("shapes_backbone")
    assert not model.training
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, len(model.classes))


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
    """``zoo verify --quick``: each model of the zoo re-measured on the first items of its held-out split.

    A model with a recipe but no shipped checkpoint fails here: the zoo lists only what it ships.
    """
    assert name in zoo.available(), f"{name} has a recipe but no record in zoo.json: train and register it"
    assert (zoo.CHECKPOINT_DIR / zoo.entry(name)["checkpoint"]).exists(), f"{name}: checkpoint file missing"
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


def test_train_restores_the_callers_thread_count_also_after_an_error(monkeypatch):
    class Failing:
        @staticmethod
        def train(checkpoint, progress):
            assert torch.get_num_threads() == 1  # trained on the recorded count
            raise RuntimeError("interrupted")

    monkeypatch.setattr(zoo, "recipe", lambda name: Failing)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(RuntimeError, match="interrupted"):
            zoo.train("digits_cnn", progress=False, threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)
