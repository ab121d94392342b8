"""A new user's hand-written COCO files: torchvision's argument order, and a clear error for each slip.

Every error names the file and the annotation (or image, category) id; a box running past its image
is clipped with one warning per file load.
"""

import json
import math
import re
import warnings

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from course_lib.data import CocoDetection, load_coco_json


def write_coco(folder, annotations, name="user.json", **changes):
    """A 20x30 photo ``street.png`` (id 7), categories dog (18) and cat (90), and ``annotations``."""
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "street.png")
    coco = {
        "images": [{"id": 7, "file_name": "street.png", "height": 20, "width": 30}],
        "annotations": annotations,
        "categories": [{"id": 18, "name": "dog"}, {"id": 90, "name": "cat"}],
    }
    coco.update(changes)
    (folder / name).write_text(json.dumps(coco))  # json writes NaN and Infinity as Python reads them
    return folder / name


def annotation(annotation_id=4, bbox=(2, 3, 10, 5), **changes):
    bbox = list(bbox) if isinstance(bbox, tuple) else bbox  # anything else as it is, to test the checks
    return {"id": annotation_id, "image_id": 7, "category_id": 18, "bbox": bbox, **changes}


def test_takes_torchvisions_argument_order(tmp_path):
    path = write_coco(tmp_path, [annotation(1), annotation(2, bbox=(20, 10, 4, 4), category_id=90)])
    ours = CocoDetection(tmp_path, path)
    assert CocoDetection(root=tmp_path, annFile=path).coco == ours.coco
    theirs = torchvision.datasets.CocoDetection(tmp_path, str(path))  # the same call, the oracle
    image, target = ours[0]
    their_image, their_annotations = theirs[0]
    assert torch.equal(image, torch.from_numpy(np.array(their_image)).permute(2, 0, 1).float() / 255)
    boxes = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in their_annotations)]
    assert target["boxes"].tolist() == boxes == [[2, 3, 12, 8], [20, 10, 24, 14]]
    assert target["labels"].tolist() == [a["category_id"] for a in their_annotations] == [18, 90]


def test_the_old_order_says_the_order_is_torchvisions(tmp_path):
    path = write_coco(tmp_path, [annotation()])
    expected = re.escape("expected torchvision's order (root, annFile)")
    with pytest.raises(ValueError, match=f"{expected}.*root='{re.escape(str(path))}'.*swap them"):
        CocoDetection(path, tmp_path)
    with pytest.raises(ValueError, match=expected):
        CocoDetection(path, path)  # a json file is never the image folder


def test_negative_width_is_an_error_not_an_inverted_box(tmp_path):
    path = write_coco(tmp_path, [annotation(4, bbox=(0, 0, -5, 3))])
    message = r"user.json: annotation id 4: expected a bbox \[x, y, w, h\] with w > 0 and h > 0, "
    message += r"got \[0, 0, -5, 3\]"
    with pytest.raises(ValueError, match=message):
        CocoDetection(tmp_path, path)


@pytest.mark.parametrize("bbox", [(0, 0, 0, 3), (1, 1, 4, 0), (1, 1, 4, -0.5)])
def test_degenerate_boxes_are_errors(tmp_path, bbox):
    path = write_coco(tmp_path, [annotation(1), annotation(9, bbox=bbox)])
    with pytest.raises(ValueError, match=r"user.json: annotation id 9: expected .* w > 0 and h > 0"):
        load_coco_json(path)


def test_unknown_category_is_an_error_not_label_7(tmp_path):
    path = write_coco(tmp_path, [annotation(1), annotation(5, category_id=7)])
    message = r"user.json: annotation id 5: expected category_id among the file's categories \[18, 90\], "
    message += "got 7$"
    with pytest.raises(ValueError, match=message):
        CocoDetection(tmp_path, path)


def test_unknown_image_is_an_error(tmp_path):
    path = write_coco(tmp_path, [annotation(3, image_id=8)])
    message = r"user.json: annotation id 3: expected image_id among the file's images \[7\], got 8"
    with pytest.raises(ValueError, match=message):
        CocoDetection(tmp_path, path)


def test_boxes_past_the_image_are_clipped_with_one_warning_per_file(tmp_path):
    inside, left, bottom_right = (2, 3, 10, 5), (-2, 1, 6, 4), (25, 15, 10, 10.5)
    path = write_coco(tmp_path, [annotation(1, inside), annotation(2, left), annotation(3, bottom_right)])
    with pytest.warns(UserWarning) as record:
        dataset = CocoDetection(tmp_path, path)
    assert len(record) == 1
    message = str(record[0].message)
    assert str(path) in message and "clipped 2 box(es)" in message
    assert "annotation id 2 bbox [-2, 1, 6, 4]" in message
    assert "annotation id 3 bbox [25, 15, 10, 10.5]" in message
    assert "annotation id 1" not in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reading the images warns no more
        target = dataset[0][1]
    # Clipped by hand to the 30x20 image; the file's own record is left as it was.
    assert target["boxes"].tolist() == [[2, 3, 12, 8], [0, 1, 4, 5], [25, 15, 30, 20]]
    assert dataset.coco["annotations"][1]["bbox"] == [-2, 1, 6, 4]


def test_a_file_inside_its_images_loads_without_warning(tmp_path):
    path = write_coco(tmp_path, [annotation(1, (0, 0, 30, 20)), annotation(2, (29.5, 19.5, 0.5, 0.5))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert CocoDetection(tmp_path, path)[0][1]["boxes"].tolist() == [[0, 0, 30, 20], [29.5, 19.5, 30, 20]]


@pytest.mark.parametrize("bbox", [(30, 0, 2, 2), (0, 20, 2, 2), (-4, 0, 4, 2), (0, -3, 1, 1)])
def test_a_box_wholly_outside_its_image_is_an_error(tmp_path, bbox):
    path = write_coco(tmp_path, [annotation(6, bbox=bbox)])
    message = r"user.json: annotation id 6: expected a bbox overlapping its image of height 20 and width 30"
    with pytest.raises(ValueError, match=message):
        CocoDetection(tmp_path, path)


def test_malformed_json_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "typo.json"
    path.write_text('{\n  "images": [],\n  "annotations": [,],\n  "categories": []\n}')
    message = r"typo.json: expected valid JSON, got Expecting value at line 3, column 19"
    with pytest.raises(ValueError, match=message) as caught:
        CocoDetection(tmp_path, path)
    assert type(caught.value) is ValueError  # not the bare JSONDecodeError
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)


def test_missing_keys(tmp_path):
    with pytest.raises(ValueError, match=r"user.json: expected a dict with keys .* got no 'categories'"):
        load_coco_json(_without(tmp_path, "categories"))
    (tmp_path / "results.json").write_text(json.dumps([annotation()]))  # a detections file, not a dataset
    with pytest.raises(ValueError, match=r"results.json: expected a dict with keys 'images', .* got a list"):
        load_coco_json(tmp_path / "results.json")
    with pytest.raises(ValueError, match=r"user.json: expected 'annotations' to be a list, got dict"):
        load_coco_json(write_coco(tmp_path, {}))
    image = {"id": 7, "file_name": "street.png", "height": 20}
    with pytest.raises(ValueError, match=r"user.json: images\[0\]: expected a dict .* got no 'width'"):
        load_coco_json(write_coco(tmp_path, [], images=[image]))


def _without(folder, key):
    path = write_coco(folder, [annotation()])
    coco = json.loads(path.read_text())
    del coco[key]
    path.write_text(json.dumps(coco))
    return path


@pytest.mark.parametrize("key", ["bbox", "image_id", "category_id"])
def test_an_annotation_without_a_required_key_is_named(tmp_path, key):
    incomplete = annotation(11)
    del incomplete[key]
    path = write_coco(tmp_path, [annotation(1), incomplete])
    with pytest.raises(ValueError, match=f"user.json: annotation id 11: expected a dict .* got no '{key}'"):
        CocoDetection(tmp_path, path)
    del incomplete["id"]  # without its id, its place in the list names it
    with pytest.raises(ValueError, match=r"user.json: annotations\[1\]: .* got no 'id', "):
        load_coco_json(write_coco(tmp_path, [annotation(1), incomplete]))


BBOX = r"expected a bbox \[x, y, w, h\] of 4 finite numbers, got "


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bbox": [1, 2, math.nan, 3]}, BBOX + r"\[1, 2, nan, 3\]"),
        ({"bbox": [1, 2, 3, math.inf]}, BBOX + r"\[1, 2, 3, inf\]"),
        ({"bbox": [1, 2, 3]}, BBOX + r"\[1, 2, 3\]"),
        ({"bbox": ["1", 2, 3, 4]}, BBOX + r"\['1', 2, 3, 4\]"),
        ({"bbox": [1, 2, True, 4]}, BBOX + r"\[1, 2, True, 4\]"),
        ({"bbox": {"x": 1}}, BBOX + r"\{'x': 1\}"),
        ({"area": math.nan}, r"expected a finite area >= 0, got nan"),
        ({"area": -1.0}, r"expected a finite area >= 0, got -1.0"),
        ({"iscrowd": 2}, r"expected iscrowd 0 or 1, got 2"),
        ({"category_id": "18"}, r"expected category_id among the file's categories \[18, 90\], got '18'"),
    ],
)
def test_bad_annotation_values_are_named(tmp_path, changes, message):
    path = write_coco(tmp_path, [annotation(1), annotation(12, **changes)])
    with pytest.raises(ValueError, match=f"user.json: annotation id 12: {message}"):
        load_coco_json(path)


def test_ids(tmp_path):
    with pytest.raises(ValueError, match=r"user.json: annotation id 1: expected unique ids, got 1 twice"):
        load_coco_json(write_coco(tmp_path, [annotation(1), annotation(1)]))
    message = r"user.json: annotation id 0: expected an int id >= 1 \(pycocotools' COCOeval reads 0 as "
    with pytest.raises(ValueError, match=message + r"unmatched\), got 0"):
        load_coco_json(write_coco(tmp_path, [annotation(0)]))
    with pytest.raises(ValueError, match=r"user.json: category id -1: expected an int id >= 0, got -1"):
        load_coco_json(write_coco(tmp_path, [], categories=[{"id": -1, "name": "dog"}]))
    with pytest.raises(ValueError, match=r"user.json: category id 18: expected unique ids, got 18 twice"):
        load_coco_json(write_coco(tmp_path, [], categories=[{"id": 18, "name": "dog"}] * 2))
    images = [{"id": 7, "file_name": "street.png", "height": 20, "width": 0}]
    with pytest.raises(ValueError, match=r"user.json: image id 7: expected an int width >= 1, got 0"):
        load_coco_json(write_coco(tmp_path, [], images=images))
    images = [{"id": 7, "file_name": "a.png", "height": 20, "width": 30}] * 2
    with pytest.raises(ValueError, match=r"user.json: image id 7: expected unique ids, got 7 twice"):
        load_coco_json(write_coco(tmp_path, [], images=images))


def test_an_empty_file_is_an_empty_dataset(tmp_path):
    dataset = CocoDetection(tmp_path, write_coco(tmp_path, [], images=[]))
    assert len(dataset) == 0 and dataset.categories == {18: "dog", 90: "cat"}


def test_category_0_may_be_listed_but_is_no_label(tmp_path):
    # Some tools list a supercategory with id 0 that no annotation uses: that file is fine.
    categories = [{"id": 0, "name": "animals"}, {"id": 18, "name": "dog"}, {"id": 90, "name": "cat"}]
    dataset = CocoDetection(tmp_path, write_coco(tmp_path, [annotation(1)], categories=categories))
    assert dataset[0][1]["labels"].tolist() == [18]
    message = r"user.json: annotation id 2: expected category_id among the file's categories other than 0 "
    message += r"\(torchvision's background\) \[18, 90\], got 0"
    with pytest.raises(ValueError, match=message):
        load_coco_json(write_coco(tmp_path, [annotation(2, category_id=0)], categories=categories))


def test_many_ids_are_shortened_in_messages(tmp_path):
    categories = [{"id": k, "name": f"class {k}"} for k in range(1, 81)]
    message = r"user.json: annotation id 4: expected category_id among the file's categories "
    message += r"\[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\] \.\.\., got 91"
    with pytest.raises(ValueError, match=message):
        load_coco_json(write_coco(tmp_path, [annotation(category_id=91)], categories=categories))
