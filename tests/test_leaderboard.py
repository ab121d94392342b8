"""Tests of course_lib.leaderboard: every detector on the same scenes, cached, timed, on a COCO folder."""

from __future__ import annotations

import pytest
import torch

from course_lib import leaderboard, zoo
from course_lib.data.coco import CocoDetection
from course_lib.metrics import evaluate_detections
from course_lib.models.proposals import SelectiveSearchProposer
from course_lib.recipes import leaderboard_adapters
from course_lib.recipes.detection import scenes

FAST = ("yolo_v1", "centernet")
LIMIT = 3


def _targets(count: int) -> list[dict]:
    return [target for _, target in scenes("test", count)]


def _assert_same_detections(first: list[dict], second: list[dict]) -> None:
    assert len(first) == len(second)
    for one, other in zip(first, second, strict=True):
        assert one.keys() == other.keys()
        for key in one:
            assert torch.equal(one[key], other[key]), key


def test_detectors_are_the_lecture_in_order():
    names = [info.name for info in leaderboard.DETECTORS]
    assert names == ["hog_svm", "rcnn", "fast_rcnn", "faster_rcnn", "yolo_v1", "ssd", "retinanet", "detr",
                     "centernet"]
    years = [info.year for info in leaderboard.DETECTORS]
    assert years == [2005, 2014, 2015, 2015, 2016, 2016, 2017, 2020, 2019]  # DETR before CenterNet, as taught
    assert all(info.title and info.idea for info in leaderboard.DETECTORS)
    available = leaderboard.available()
    assert available[0] == "hog_svm"
    assert available == [name for name in names if name == "hog_svm" or name in zoo.available()]


@pytest.mark.parametrize("call", [leaderboard.load_detector, leaderboard.run, leaderboard.pr_curve])
def test_unknown_name_lists_the_known_ones(call):
    with pytest.raises(ValueError, match="expected one of 'hog_svm', 'rcnn'.*'centernet', got 'yolo'"):
        call("yolo")


def test_unknown_name_in_leaderboard_raises_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="got 'resnet'"):
        leaderboard.leaderboard(["yolo_v1", "resnet"], limit=LIMIT, cache_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_detr_is_accepted_by_name():
    if "detr" in zoo.available():
        assert "detr" in leaderboard.available()
        assert leaderboard.load_detector("detr").parameters > 0
    else:
        assert "detr" not in leaderboard.available()
        with pytest.raises(ValueError, match="detr: expected a detector in the zoo.*available: 'hog_svm'"):
            leaderboard.load_detector("detr")


def test_leaderboard_metrics_equal_evaluate_detections_on_the_same_detections(tmp_path):
    rows = leaderboard.leaderboard(FAST, limit=LIMIT, timing_images=1, cache_dir=tmp_path)
    assert [row["name"] for row in rows] == list(FAST)
    for row in rows:
        detector = leaderboard.load_detector(row["name"])
        direct = detector([image for image, _ in scenes("test", LIMIT)])
        expected = evaluate_detections(direct, _targets(LIMIT))
        assert {metric: row[metric] for metric in leaderboard.METRICS} == {
            metric: expected[metric] for metric in leaderboard.METRICS
        }
        assert row["ms_per_image"] > 0
        assert row["parameters_m"] == sum(p.numel() for p in detector.model.parameters()) / 1e6
        assert row["train_minutes"] == zoo.entry(row["name"])["train_minutes"]
        assert row["year"] == {"yolo_v1": 2016, "centernet": 2019}[row["name"]]
    table = leaderboard.format_table(rows).splitlines()
    assert len(table) == 1 + len(rows) and len({len(line) for line in table}) == 1  # aligned
    assert table[1].startswith("YOLO v1") and table[2].startswith("CenterNet")


def test_format_table_marks_missing_values():
    row = {"name": "x", "title": "X", "year": 2000, **dict.fromkeys(leaderboard.METRICS, -1.0),
           "ms_per_image": None, "parameters_m": 1.0, "train_minutes": 2.0}
    line = leaderboard.format_table([row]).splitlines()[1]
    assert line.split() == ["X", "2000", *["-"] * len(leaderboard.METRICS), "-", "1.000", "2.00"]
    assert leaderboard.format_table([]).split()[0] == "detector"


def test_cache_returns_the_same_detections_and_is_keyed(tmp_path, monkeypatch):
    first = leaderboard.run("faster_rcnn", limit=LIMIT, cache_dir=tmp_path)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1 and zoo.entry("faster_rcnn")["sha256"][:16] in files[0].name

    def refuse(name):
        raise AssertionError("the detector was loaded although the detections are cached")

    monkeypatch.setattr(leaderboard, "load_detector", refuse)
    _assert_same_detections(leaderboard.run("faster_rcnn", limit=LIMIT, cache_dir=tmp_path), first)
    with pytest.raises(AssertionError, match="loaded although"):  # another count is another key
        leaderboard.run("faster_rcnn", limit=LIMIT + 1, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="loaded although"):  # another split too
        leaderboard.run("faster_rcnn", split="val", limit=LIMIT, cache_dir=tmp_path)
    monkeypatch.undo()
    longer = leaderboard.run("faster_rcnn", limit=LIMIT + 1, cache_dir=tmp_path)
    assert len(longer) == LIMIT + 1 and len(list(tmp_path.iterdir())) == 2
    _assert_same_detections(longer[:LIMIT], first)  # batch of 8: the same scenes give the same boxes


def test_cache_key_follows_what_decides_the_detections(monkeypatch):
    before = {name: leaderboard_adapters.detector_key(name) for name in ("centernet", "rcnn", "hog_svm")}
    assert before["rcnn"].endswith(SelectiveSearchProposer().key())  # selective search's code and settings
    monkeypatch.setattr(zoo, "entry", lambda name: {"sha256": "0" * 64})
    assert leaderboard_adapters.detector_key("centernet") != before["centernet"]
    settings = {**leaderboard_adapters.HOG_SETTINGS, "num_images": 50}
    monkeypatch.setattr(leaderboard_adapters, "HOG_SETTINGS", settings)
    assert leaderboard_adapters.detector_key("hog_svm") != before["hog_svm"]


def test_limit_zero_gives_empty_results(tmp_path):
    assert leaderboard.run("yolo_v1", limit=0, cache_dir=tmp_path) == []
    assert leaderboard.leaderboard(FAST, limit=0, cache_dir=tmp_path) == []
    assert leaderboard.leaderboard([], limit=LIMIT, cache_dir=tmp_path) == []
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"limit: expected a value in \[0, inf\], got -1"):
        leaderboard.run("yolo_v1", limit=-1, cache_dir=tmp_path)


def test_seconds_per_image_times_each_image_and_refuses_none():
    detector = leaderboard.load_detector("yolo_v1")
    images = [image for image, _ in scenes("test", 2)]
    assert 0 < leaderboard.seconds_per_image(detector, images, repeats=1) < 60
    with pytest.raises(ValueError, match="expected at least one image to time, got 0"):
        leaderboard.seconds_per_image(detector, [])
    assert detector([]) == []


def test_pr_curve_is_the_mean_of_the_class_curves_and_its_mean_is_ap50(tmp_path):
    recall, precision = leaderboard.pr_curve("centernet", limit=LIMIT, cache_dir=tmp_path)
    assert recall.shape == precision.shape == (101,)
    assert recall[0] == 0 and recall[-1] == 1
    assert (precision[:-1] >= precision[1:] - 1e-12).all()  # each class's envelope is monotone
    detections = leaderboard.run("centernet", limit=LIMIT, cache_dir=tmp_path)
    stats = evaluate_detections(detections, _targets(LIMIT))
    assert precision.mean() == pytest.approx(stats["AP50"], abs=1e-12)


def test_image_folder_round_trip_and_evaluation_equals_the_scenes(tmp_path):
    root, ann_file = leaderboard.write_image_folder(tmp_path, indices=range(LIMIT))
    dataset = CocoDetection(root, ann_file)
    assert len(dataset) == LIMIT and len(list(root.glob("*.png"))) == LIMIT
    for (image, target), (scene_image, scene_target) in zip(dataset, scenes("test", LIMIT), strict=True):
        assert torch.equal(image, scene_image)  # 8-bit scenes survive PNG exactly
        assert torch.equal(target["boxes"], scene_target["boxes"])
        assert torch.equal(target["labels"], scene_target["labels"])
    detector = leaderboard.load_detector("faster_rcnn")
    on_folder = leaderboard.evaluate_on(detector, dataset)
    detections = leaderboard.run("faster_rcnn", limit=LIMIT, cache_dir=tmp_path)
    direct = evaluate_detections(detections, _targets(LIMIT))
    assert on_folder == direct


def test_empty_scene_lists_give_empty_results(tmp_path):
    recall, precision = leaderboard.pr_curve("yolo_v1", limit=0, cache_dir=tmp_path)
    assert recall.shape == precision.shape == (0,)
    root, ann_file = leaderboard.write_image_folder(tmp_path, indices=[])
    stats = leaderboard.evaluate_on(leaderboard.load_detector("yolo_v1"), CocoDetection(root, ann_file))
    assert set(stats.values()) == {-1.0}  # COCO's "nothing to count", not NaN


def test_image_folder_keeps_scene_indices_as_image_ids(tmp_path):
    root, ann_file = leaderboard.write_image_folder(tmp_path, indices=[5, 2])
    dataset = CocoDetection(root, ann_file)
    assert [dataset[k][1]["image_id"] for k in range(2)] == [5, 2]
    assert (root / "000005.png").exists()
    assert torch.equal(dataset[1][1]["boxes"], scenes("test", 6)[2][1]["boxes"])


def test_fast_rcnn_pipeline_with_selective_search_equals_the_cached_run(tmp_path):
    detector = leaderboard.load_detector("fast_rcnn")
    assert detector.uses_proposals
    live = detector([scenes("test", 1)[0][0]])  # selective search on the image, inside the call
    _assert_same_detections(live, leaderboard.run("fast_rcnn", limit=1, cache_dir=tmp_path))


def test_hog_svm_is_trained_on_the_spot_and_counts_its_svm_weights():
    detector = leaderboard.load_detector("hog_svm")
    assert set(detector.model) == {1, 2, 3, 4, 5}
    weights = next(iter(detector.model.values())).svm.coef_.size
    assert detector.parameters == 5 * (weights + 1)
    assert 0 < detector.train_minutes < 10
    (output,) = detector([scenes("test", 1)[0][0]])
    assert output["boxes"].shape[1] == 4 and set(output["labels"].tolist()) <= {1, 2, 3, 4, 5}
    with pytest.raises(ValueError, match="proposals: expected None for hog_svm"):
        detector([scenes("test", 1)[0][0]], proposals=[torch.zeros(0, 4)])


def test_rcnn_counts_its_cnn_svms_and_regressors():
    detector = leaderboard.load_detector("rcnn")
    model = detector.model
    assert detector.uses_proposals
    parts = (model.backbone, model.svm, model.regressor)
    assert detector.parameters == sum(p.numel() for part in parts for p in part.parameters())
    assert model.svm.weight.shape == (5, 1024) and model.regressor.weight.shape == (20, 1024)
