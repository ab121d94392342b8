import contextlib
import io
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from course_lib.data import (
    CLASSES,
    CocoDetection,
    ShapeCrops,
    ShapeScenes,
    describe,
    load_coco_json,
    save_coco_json,
    to_coco_json,
)

# pycocotools' annToMask under numpy 2 (course_lib's own decoding silences it locally).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def quiet(function, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Four ShapeScenes images exported to PNG + json, and the dataset they came from."""
    folder = tmp_path_factory.mktemp("coco")
    dataset = ShapeScenes(4, image_size=64, seed=3)
    coco = to_coco_json(dataset, image_dir=folder / "images")
    save_coco_json(coco, folder / "annotations" / "instances.json")
    return dataset, coco, folder


def test_round_trip_is_exact(exported):
    dataset, coco, folder = exported
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no box of the export is clipped
        loaded = CocoDetection(folder / "images", folder / "annotations" / "instances.json")
    assert len(loaded) == len(dataset) == len(coco["images"])
    for index in range(len(dataset)):
        image, target = dataset[index]
        image_back, target_back = loaded[index]
        assert image_back.dtype == torch.float32 and image_back.shape == image.shape
        assert torch.equal(image_back, image)  # PNG is 8-bit and the images are multiples of 1/255
        assert target_back["boxes"].dtype == torch.float32 and target_back["labels"].dtype == torch.int64
        assert torch.equal(target_back["boxes"], target["boxes"])
        assert torch.equal(target_back["labels"], target["labels"])
        assert torch.equal(target_back["masks"], target["masks"])
        assert torch.equal(target_back["area"], target["area"])
        assert target_back["image_id"] == target["image_id"] == index
        assert torch.equal(target_back["iscrowd"], torch.zeros(len(target["labels"]), dtype=torch.int64))
    assert loaded.categories == {label: name for label, name in enumerate(CLASSES) if label > 0}


def test_pycocotools_reads_the_export(exported):
    dataset, coco, folder = exported
    ground_truth = quiet(COCO, str(folder / "annotations" / "instances.json"))
    assert sorted(ground_truth.getImgIds()) == [0, 1, 2, 3]
    assert [c["name"] for c in ground_truth.loadCats(ground_truth.getCatIds())] == list(CLASSES[1:])
    for image_id in range(4):
        target = dataset[image_id][1]
        annotations = ground_truth.loadAnns(ground_truth.getAnnIds(imgIds=image_id))
        assert len(annotations) == len(target["labels"])
        for k, annotation in enumerate(annotations):
            np.testing.assert_array_equal(ground_truth.annToMask(annotation), target["masks"][k].numpy())
    # Detections equal to the ground truth score a perfect AP, for boxes and for masks.
    detections = [dict(a, score=1.0) for a in coco["annotations"]]
    for iou_type in ("bbox", "segm"):
        evaluation = COCOeval(ground_truth, quiet(ground_truth.loadRes, detections), iou_type)
        quiet(evaluation.evaluate)
        quiet(evaluation.accumulate)
        quiet(evaluation.summarize)
        assert evaluation.stats[0] == pytest.approx(1.0)  # AP@[.5:.95]


def test_coco_fields_by_hand():
    masks = torch.zeros(2, 8, 10, dtype=torch.uint8)
    masks[0, 2:7, 1:5] = 1  # 20 pixels, box [1, 2, 5, 7]
    masks[0, 2, 1] = 0  # 19 pixels, same box
    masks[1, 0:2, 8:10] = 1
    target = {"boxes": torch.tensor([[1.0, 2, 5, 7], [8, 0, 10, 2]]), "labels": torch.tensor([3, 1]),
              "image_id": 42}
    with_masks = to_coco_json([(torch.zeros(3, 8, 10), dict(target, masks=masks))])
    assert with_masks["images"] == [{"id": 42, "file_name": "000042.png", "height": 8, "width": 10}]
    first = with_masks["annotations"][0]
    assert (first["id"], first["image_id"], first["category_id"], first["iscrowd"]) == (1, 42, 3, 0)
    assert first["bbox"] == [1.0, 2.0, 4.0, 5.0]  # xyxy -> xywh
    assert first["area"] == 19.0  # mask pixels
    assert with_masks["annotations"][1]["id"] == 2  # ids start at 1
    without = to_coco_json([(torch.zeros(3, 8, 10), target)])
    assert without["annotations"][0]["area"] == 20.0  # box area
    assert "segmentation" not in without["annotations"][0]
    no_rle = to_coco_json([(torch.zeros(3, 8, 10), dict(target, masks=masks))], include_masks=False)
    assert "segmentation" not in no_rle["annotations"][0] and no_rle["annotations"][0]["area"] == 19.0


def test_empty_dataset_and_image_without_objects(tmp_path):
    empty = to_coco_json([])
    assert empty["images"] == [] and empty["annotations"] == [] and len(empty["categories"]) == 5
    target = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    coco = to_coco_json([(torch.full((3, 6, 5), 0.5), target)], image_dir=tmp_path)
    save_coco_json(coco, tmp_path / "a.json")
    image, loaded = CocoDetection(tmp_path, tmp_path / "a.json")[0]
    assert torch.equal(image, torch.full((3, 6, 5), 128 / 255))
    assert loaded["boxes"].shape == (0, 4) and loaded["boxes"].dtype == torch.float32
    assert loaded["labels"].shape == (0,) and loaded["labels"].dtype == torch.int64
    assert "masks" not in loaded


def test_a_users_own_coco_file_with_polygons_and_sparse_ids(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "street.png")
    coco = {
        "images": [{"id": 7, "file_name": "street.png", "height": 20, "width": 30}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 90, "bbox": [2, 3, 10, 5], "area": 50.0,
             "iscrowd": 0, "segmentation": [[2, 3, 12, 3, 12, 8, 2, 8]]},
            # Uncompressed RLE, column-major: 410 = 20 columns * 20 rows + 10 rows of zeros first.
            {"id": 2, "image_id": 7, "category_id": 18, "bbox": [20, 10, 4, 4], "area": 16.0,
             "iscrowd": 1, "segmentation": {"size": [20, 30], "counts": [410, 4, 16, 4, 16, 4, 16, 4, 126]}},
        ],
        "categories": [{"id": 18, "name": "dog"}, {"id": 90, "name": "toothbrush"}],
    }
    (tmp_path / "user.json").write_text(json.dumps(coco))
    dataset = CocoDetection(tmp_path, tmp_path / "user.json")
    image, target = dataset[0]
    assert torch.equal(image, torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)
    assert target["boxes"].tolist() == [[2, 3, 12, 8], [20, 10, 24, 14]]
    assert target["labels"].tolist() == [90, 18] and target["iscrowd"].tolist() == [0, 1]
    assert target["image_id"] == 7 and dataset.categories == {18: "dog", 90: "toothbrush"}
    reference = quiet(COCO, str(tmp_path / "user.json"))  # the oracle for mask decoding
    for k, annotation in enumerate(reference.loadAnns([1, 2])):
        np.testing.assert_array_equal(target["masks"][k].numpy(), reference.annToMask(annotation))
    assert target["masks"][1].sum() == 16 and target["masks"][1][10:14, 20:24].all()  # by hand
    summary = describe(dataset)
    assert summary["class_counts"] == {"dog": 1, "toothbrush": 1}


def test_describe_is_the_same_after_the_round_trip(exported):
    dataset, _, folder = exported
    loaded = CocoDetection(folder / "images", folder / "annotations" / "instances.json")
    before, after = describe(dataset), describe(loaded)
    assert before.pop("background_counts") and not after.pop("background_counts")
    assert before == after


def test_subsets_and_crops_need_unique_ids_and_boxes():
    subset = torch.utils.data.Subset(ShapeScenes(6, image_size=32), [4, 1])
    coco = to_coco_json(subset)
    assert [image["id"] for image in coco["images"]] == [4, 1]
    with pytest.raises(ValueError, match="expected unique image ids, got 4 twice"):
        to_coco_json(torch.utils.data.Subset(ShapeScenes(6, image_size=32), [4, 4]))
    with pytest.raises(KeyError):
        to_coco_json(ShapeCrops(1))  # classification items have no boxes


def test_bad_input(tmp_path):
    good = {"boxes": torch.tensor([[0.0, 0, 2, 2]]), "labels": torch.tensor([1])}
    with pytest.raises(ValueError, match=r"expected labels in 1..5, got 0"):
        to_coco_json([(torch.zeros(3, 4, 4), dict(good, labels=torch.tensor([0])))])
    with pytest.raises(ValueError, match=r"expected labels in 1..5, got 6"):
        to_coco_json([(torch.zeros(3, 4, 4), dict(good, labels=torch.tensor([6])))])
    with pytest.raises(ValueError, match=r"expected a Tensor\[3, H, W\], got shape \(4, 4\)"):
        to_coco_json([(torch.zeros(4, 4), good)])
    with pytest.raises(TypeError, match="image: expected a torch.Tensor"):
        to_coco_json([(np.zeros((3, 4, 4)), good)])
    with pytest.raises(ValueError, match="expected xyxy boxes with x2 >= x1"):
        to_coco_json([(torch.zeros(3, 4, 4), dict(good, boxes=torch.tensor([[2.0, 0, 1, 2]])))])
    (tmp_path / "bad.json").write_text(json.dumps({"images": []}))
    # Zero-width boxes are refused by the writer too, so it never writes a file the reader refuses.
    with pytest.raises(ValueError, match=r"image 0: expected x2 > x1 and y2 > y1, got box \[1.0, 0.0, 1.0"):
        to_coco_json([(torch.zeros(3, 4, 4), dict(good, boxes=torch.tensor([[1.0, 0, 1, 2]])))])
    with pytest.raises(ValueError, match="bad.json: expected a dict .*got no 'annotations', 'categories'"):
        load_coco_json(tmp_path / "bad.json")
    coco = to_coco_json([(torch.zeros(3, 4, 4), good)], image_dir=tmp_path)
    coco["images"][0]["width"] = 5
    save_coco_json(coco, tmp_path / "wrong_size.json")
    with pytest.raises(ValueError, match="expected 4x5 pixels as in the json, got 4x4"):
        CocoDetection(tmp_path, tmp_path / "wrong_size.json")[0]
    with pytest.raises(FileNotFoundError):
        CocoDetection(tmp_path / "elsewhere", tmp_path / "wrong_size.json")[0]
    with pytest.raises(IndexError):
        CocoDetection(tmp_path, tmp_path / "wrong_size.json")[1]
