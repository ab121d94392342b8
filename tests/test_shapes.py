import hashlib
import math

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.draw import disk, polygon

from course_lib.data import CLASSES, NUM_CLASSES, ShapeCrops, ShapeScenes, describe
from course_lib.data._canvas import Canvas, masks_to_boxes
from course_lib.data._draw import resize_bilinear, signed_distance

# sha256 of ShapeScenes(1)[0] / ShapeCrops(1)[0] (image, boxes, labels, masks). They change only
# when the generator changes on purpose; then update them and say so in the commit message.
SCENE_0_SHA256 = "9c3791559f198e5a7c21f85fbd2951124d748ffe66b5f30937718c1030caa512"
CROP_0_SHA256 = "e7656f661e3e830c021928484ea3b8099218fabc3705656be4424636eaa31f8b"


def scene_digest(scene) -> str:
    digest = hashlib.sha256()
    for array in (scene.image, scene.boxes, scene.labels, scene.masks):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


# --- drawing -----------------------------------------------------------------------------------


def shape(kind, cx=16.3, cy=15.8, radius=10.0, angle=0.0, ratio=0.5):
    return {"kind": kind, "cx": cx, "cy": cy, "radius": radius,
            "cos": math.cos(angle), "sin": math.sin(angle), "ratio": ratio}


def test_signed_distance_by_hand():
    xs, ys = np.array([0.0, 3.0, 5.0]), np.array([0.0])
    circle = signed_distance(shape("circle", cx=0.0, cy=0.0, radius=1.0), xs, ys)
    np.testing.assert_allclose(circle, [[-1.0, 2.0, 4.0]])
    ring = signed_distance(shape("ring", cx=0.0, cy=0.0, radius=4.0, ratio=0.5), xs, ys)
    np.testing.assert_allclose(ring, [[2.0, -1.0, 1.0]])  # hole of radius 2
    square = signed_distance(shape("square", cx=0.0, cy=0.0, radius=math.sqrt(2)), xs, ys)
    np.testing.assert_allclose(square, [[-1.0, 2.0, 4.0]])  # side 2, axis-aligned


def polygon_vertices(kind, cx, cy, radius, angle, ratio):
    """Vertices from sin/cos, independent of the generator's square-root constants."""
    if kind == "star":
        angles = [-math.pi / 2 + k * math.pi / 5 for k in range(10)]
        radii = [radius if k % 2 == 0 else ratio * radius for k in range(10)]
    else:
        count = {"triangle": 3, "square": 4}[kind]
        start = -math.pi / 2 if kind == "triangle" else -3 * math.pi / 4
        angles = [start + 2 * math.pi * k / count for k in range(count)]
        radii = [radius] * count
    pairs = zip(angles, radii, strict=True)
    return [(cx + r * math.cos(a + angle), cy + r * math.sin(a + angle)) for a, r in pairs]


@pytest.mark.parametrize("kind", ["triangle", "square", "star"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_polygon_masks_match_skimage_draw_polygon(kind, seed):
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(20, 30, size=2)
    radius, angle, ratio = rng.uniform(5, 18), rng.uniform(0, 2 * math.pi), rng.uniform(0.42, 0.55)
    xs = ys = np.arange(50) + 0.5
    ours = signed_distance(shape(kind, cx, cy, radius, angle, ratio), xs, ys) <= 0
    vertices = np.array(polygon_vertices(kind, cx, cy, radius, angle, ratio))
    reference = np.zeros((50, 50), bool)
    # skimage puts pixel centres on integers; ours are at +0.5.
    reference[polygon(vertices[:, 1] - 0.5, vertices[:, 0] - 0.5, shape=(50, 50))] = True
    assert ours.sum() > 20
    assert (ours != reference).sum() <= 2  # pixel centres lying on an edge may go either way


@pytest.mark.parametrize("seed", [0, 1])
def test_circle_and_ring_match_skimage_draw_disk(seed):
    rng = np.random.default_rng(seed)
    cx, cy, radius = *rng.uniform(20, 30, size=2), rng.uniform(4, 15)
    xs = ys = np.arange(50) + 0.5
    reference = np.zeros((50, 50), bool)
    reference[disk((cy - 0.5, cx - 0.5), radius, shape=(50, 50))] = True
    ours = signed_distance(shape("circle", cx, cy, radius), xs, ys) <= 0
    assert (ours != reference).sum() <= 1
    hole = np.zeros((50, 50), bool)
    hole[disk((cy - 0.5, cx - 0.5), 0.5 * radius, shape=(50, 50))] = True
    ring = signed_distance(shape("ring", cx, cy, radius, ratio=0.5), xs, ys) <= 0
    assert (ring != (reference & ~hole)).sum() <= 2


def test_resize_bilinear_matches_torch_interpolate():
    image = np.random.default_rng(0).random((9, 13, 3)).astype(np.float32)
    ours = resize_bilinear(image, 20, 7)
    reference = torch.nn.functional.interpolate(
        torch.from_numpy(image).permute(2, 0, 1)[None], size=(20, 7), mode="bilinear", align_corners=False
    )[0].permute(1, 2, 0)
    np.testing.assert_allclose(ours, reference.numpy(), atol=1e-6)


def test_masks_to_boxes_is_torchvision_plus_one_pixel():
    masks = np.zeros((3, 10, 12), np.uint8)
    masks[0, 2:5, 3:9] = 1
    masks[1, 9, 11] = 1
    masks[2, [0, 7], [4, 1]] = 1
    ours = masks_to_boxes(masks)
    np.testing.assert_array_equal(ours[0], [3, 2, 9, 5])  # by hand: x2 = last column + 1
    reference = torchvision.ops.masks_to_boxes(torch.from_numpy(masks))  # x2 = last column
    np.testing.assert_array_equal(ours, reference.numpy() + [0, 0, 1, 1])
    assert masks_to_boxes(np.zeros((0, 4, 4), np.uint8)).shape == (0, 4)


# --- occlusion ---------------------------------------------------------------------------------


def test_canvas_refuses_a_shape_that_would_hide_too_much():
    rng = np.random.default_rng(0)
    canvas = Canvas(np.full((32, 32, 3), 0.5, np.float32), "plain")
    assert canvas.add(rng, shape("circle", 16, 16, 8), 1)
    assert not canvas.add(rng, shape("square", 16, 16, 12), 2)  # would hide all of it
    assert canvas.add(rng, shape("square", 24, 16, 6), 2)  # hides well under 60%
    scene = canvas.finish(rng)
    assert scene.labels.tolist() == [1, 2]
    full_circle = signed_distance(shape("circle", 16, 16, 8), np.arange(32) + 0.5, np.arange(32) + 0.5) <= 0
    square = scene.masks[1].astype(bool)
    np.testing.assert_array_equal(scene.masks[0].astype(bool), full_circle & ~square)  # visible part
    assert scene.masks[0].sum() >= 0.4 * full_circle.sum()
    # The circle spans columns 8..23, but the square (x from 19.76 to 28.24, y from 11.76 to
    # 20.24) hides all of column 23 (rows 13..18 there); column 22 keeps rows 11 and 20.
    assert scene.boxes[0].tolist() == [8, 8, 23, 24]
    assert scene.boxes[1].tolist() == [20, 12, 28, 20]  # the square is on top: its whole box


def test_canvas_unlabelled_distractors_are_not_returned():
    rng = np.random.default_rng(0)
    canvas = Canvas(np.zeros((32, 32, 3), np.float32), "plain")
    assert canvas.add(rng, shape("star", -1, -1, 6), 4, None)  # cut by the border: allowed
    assert not canvas.add(rng, shape("star", -1, -1, 6), 4)  # a labelled one must stay 40% visible
    scene = canvas.finish(rng)
    assert len(scene.labels) == 0 and scene.masks.shape == (0, 32, 32) and scene.boxes.shape == (0, 4)
    assert scene.image.max() > 0  # but it was painted


# --- ShapeScenes -------------------------------------------------------------------------------


def test_classes():
    assert CLASSES == ("background", "circle", "square", "triangle", "star", "ring")
    assert NUM_CLASSES == 5


def check_scene_item(image, target, size):
    assert image.shape == (3, size, size) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1
    assert torch.equal(image, (image * 255).round() / 255)  # exactly k / 255: PNG round trip is exact
    boxes, labels, masks = target["boxes"], target["labels"], target["masks"]
    count = len(labels)
    assert 1 <= count <= 6
    assert boxes.shape == (count, 4) and boxes.dtype == torch.float32
    assert labels.dtype == torch.int64 and ((labels >= 1) & (labels <= NUM_CLASSES)).all()
    assert masks.shape == (count, size, size) and masks.dtype == torch.uint8
    assert ((masks == 0) | (masks == 1)).all()
    assert masks.sum(0).max() <= 1  # visible parts never overlap
    assert (masks.sum((1, 2)) > 0).all()
    reference = torchvision.ops.masks_to_boxes(masks) + torch.tensor([0.0, 0.0, 1.0, 1.0])
    torch.testing.assert_close(boxes, reference, rtol=0, atol=0)
    torch.testing.assert_close(target["area"], masks.sum((1, 2)).float())
    sides = boxes[:, 2:] - boxes[:, :2]
    assert (sides >= 1).all() and (sides <= size / 2 + 2).all()


def test_scene_items_follow_the_contract():
    dataset = ShapeScenes(15, image_size=128, seed=5)
    for index in range(15):
        image, target = dataset[index]
        check_scene_item(image, target, 128)
        assert target["image_id"] == index


@settings(max_examples=15)
@given(seed=st.integers(0, 2**32), index=st.integers(0, 10**6), size=st.integers(32, 96))
def test_scene_contract_holds_for_any_seed_index_and_size(seed, index, size):
    image, target = ShapeScenes(index + 1, image_size=size, seed=seed)[index]
    check_scene_item(image, target, size)


def test_scenes_are_deterministic():
    digests = [scene_digest(ShapeScenes(5, seed=7).scene(i)) for i in range(5)]
    assert digests == [scene_digest(ShapeScenes(5, seed=7).scene(i)) for i in range(5)]
    assert len(set(digests)) == 5
    image, target = ShapeScenes(3)[2]
    image_again, target_again = ShapeScenes(9)[2]  # the length does not change an image
    assert torch.equal(image, image_again) and torch.equal(target["masks"], target_again["masks"])


def test_regression_hash_of_the_first_images():
    assert scene_digest(ShapeScenes(1).scene(0)) == SCENE_0_SHA256
    assert scene_digest(ShapeCrops(1).scene(0)) == CROP_0_SHA256


def test_seeds_and_sizes_give_different_images():
    base = scene_digest(ShapeScenes(1, seed=0).scene(0))
    assert scene_digest(ShapeScenes(1, seed=1).scene(0)) != base
    assert scene_digest(ShapeScenes(2, seed=0).scene(1)) != base
    assert ShapeScenes(1, image_size=64)[0][0].shape == (3, 64, 64)


def test_splits():
    assert ShapeScenes.SPLITS == {"train": (0, 2000), "val": (1, 200), "test": (2, 200)}
    seeds = [ShapeScenes.split(name).seed for name in ("train", "val", "test")]
    assert len(set(seeds)) == 3
    val = ShapeScenes.split("val")
    assert (len(val), val.image_size, val.seed) == (200, 128, 1)
    assert ShapeScenes.split("test", image_size=64).image_size == 64
    first = {name: scene_digest(ShapeScenes.split(name).scene(0)) for name in ("train", "val", "test")}
    assert len(set(first.values())) == 3
    assert repr(val) == "ShapeScenes(num_images=200, image_size=128, seed=1)"


def test_objects_cover_the_promised_range_and_every_background():
    summary = describe(ShapeScenes(150, seed=3), n=150)
    assert summary["objects_per_image"]["min"] == 1 and summary["objects_per_image"]["max"] == 6
    assert min(summary["class_counts"].values()) > 50  # all five classes, roughly balanced
    assert set(summary["background_counts"]) == {"plain", "gradient", "noise", "texture"}
    percentiles = summary["box_size_percentiles"]
    assert percentiles[5] < 8 and percentiles[95] > 40  # from a few pixels to near half the image
    assert summary["size_ranges"]["small"] > 0 and summary["size_ranges"]["medium"] > 0


def test_objects_contrast_with_a_plain_background():
    dataset = ShapeScenes(60, seed=4)
    checked = 0
    for index in range(60):
        scene = dataset.scene(index)
        if scene.background != "plain":
            continue
        image = scene.image.astype(np.float32) / 255
        background = np.median(image[scene.masks.sum(0) == 0], axis=0)
        for mask in scene.masks.astype(bool):
            colour = np.median(image[mask], axis=0)
            assert np.linalg.norm(colour - background) > 0.2
            checked += 1
    assert checked > 10


def test_empty_dataset_and_indexing():
    assert len(ShapeScenes(0)) == 0 and list(ShapeScenes(0)) == []
    dataset = ShapeScenes(3)
    assert torch.equal(dataset[-1][0], dataset[2][0])
    assert torch.equal(dataset[np.int64(1)][0], dataset[1][0])
    for index in (3, -4, 100):
        with pytest.raises(IndexError, match=r"expected an int in \[-3, 3\)"):
            dataset[index]
    with pytest.raises(TypeError):
        dataset[1.0]


@pytest.mark.parametrize("dataset_class", [ShapeScenes, ShapeCrops])
def test_bad_arguments(dataset_class):
    with pytest.raises(ValueError, match="num_images: expected a value in"):
        dataset_class(-1)
    with pytest.raises(ValueError, match=r"image_size: expected a value in \[32, inf\], got 16"):
        dataset_class(5, image_size=16)
    with pytest.raises(ValueError, match="seed: expected a value in"):
        dataset_class(5, seed=-1)
    with pytest.raises(TypeError, match="num_images: expected an int"):
        dataset_class(5.0)
    with pytest.raises(ValueError, match="split: expected one of 'train', 'val', 'test', got 'training'"):
        dataset_class.split("training")


def test_dataloader_batches_scenes():
    def collate(batch):
        return tuple(zip(*batch, strict=True))

    loader = torch.utils.data.DataLoader(ShapeScenes(4), batch_size=2, collate_fn=collate)
    images, targets = next(iter(loader))
    assert len(images) == 2 and targets[1]["image_id"] == 1


# --- ShapeCrops --------------------------------------------------------------------------------


def test_crop_items_follow_the_contract():
    dataset = ShapeCrops(20, seed=3)
    for index in range(20):
        image, target = dataset[index]
        assert image.shape == (3, 64, 64) and image.dtype == torch.float32
        assert torch.equal(image, (image * 255).round() / 255)
        label, mask = target["label"], target["mask"]
        assert label.shape == () and label.dtype == torch.int64
        assert int(label) == index % NUM_CLASSES + 1  # balanced by construction
        assert mask.shape == (64, 64) and mask.dtype == torch.uint8
        assert ((mask == 0) | (mask == 1)).all() and mask.any()
        box = masks_to_boxes(mask.numpy()[None])[0]
        assert box[2] - box[0] >= 0.35 * 64 or box[3] - box[1] >= 0.35 * 64  # a good part of the crop
        rows, cols = np.nonzero(mask.numpy())
        assert abs(rows.mean() - 32) < 16 and abs(cols.mean() - 32) < 16  # centred-ish


def test_crops_are_deterministic_balanced_and_split():
    dataset = ShapeCrops(3, seed=11)
    assert scene_digest(dataset.scene(2)) == scene_digest(ShapeCrops(5, seed=11).scene(2))
    assert scene_digest(ShapeCrops(1, seed=0).scene(0)) != scene_digest(ShapeScenes(1, seed=0).scene(0))
    assert ShapeCrops.SPLITS == {"train": (10, 5000), "val": (11, 500), "test": (12, 500)}
    train = ShapeCrops.split("train")
    assert (len(train), train.image_size, train.seed) == (5000, 64, 10)
    summary = describe(ShapeCrops(50, seed=1), n=50)
    assert set(summary["class_counts"].values()) == {10}
    assert summary["objects_per_image"] == {"mean": 1.0, "min": 1, "max": 1}


# --- describe ----------------------------------------------------------------------------------


def test_describe_by_hand_on_a_list_dataset():
    masks = torch.zeros(2, 40, 40, dtype=torch.uint8)
    masks[0, 0:10, 0:40] = 1
    dataset = [
        (torch.zeros(3, 40, 40), {"boxes": torch.tensor([[0.0, 0, 40, 10], [0, 0, 4, 4]]),
                                   "labels": torch.tensor([1, 3])}),
        (torch.zeros(3, 40, 40), {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}),
        (torch.zeros(3, 40, 40), {"label": torch.tensor(2), "mask": masks[0]}),
    ]
    summary = describe(dataset)
    assert summary["num_images"] == 3
    assert summary["objects_per_image"] == {"mean": 1.0, "min": 0, "max": 2}
    assert summary["class_counts"] == {"circle": 1, "square": 1, "triangle": 1, "star": 0, "ring": 0}
    assert summary["box_size_percentiles"][50] == pytest.approx(math.sqrt(400))
    assert summary["size_ranges"] == {"small": 3, "medium": 0, "large": 0}
    assert summary["background_counts"] == {}
    assert describe(dataset, n=1, categories={1: "a", 3: "b"})["class_counts"] == {"a": 1, "b": 1}


def test_describe_matches_a_manual_count():
    dataset = ShapeScenes(12, seed=9)
    labels = torch.cat([dataset[i][1]["labels"] for i in range(10)])
    summary = describe(dataset, n=10)
    assert summary["num_images"] == 10
    assert sum(summary["background_counts"].values()) == 10
    for label, name in enumerate(CLASSES[1:], start=1):
        assert summary["class_counts"][name] == int((labels == label).sum())


def test_describe_edge_cases():
    empty = describe(ShapeScenes(0))
    assert empty["num_images"] == 0 and empty["box_size_percentiles"] == {}
    assert empty["objects_per_image"] == {"mean": 0.0, "min": 0, "max": 0}
    assert describe(ShapeScenes(2), n=50)["num_images"] == 2
    with pytest.raises(ValueError, match="n: expected a value in"):
        describe(ShapeScenes(2), n=-1)
    with pytest.raises(ValueError, match="target: expected keys 'boxes' and 'labels'"):
        describe([(torch.zeros(3, 4, 4), {"box": 1})])


@settings(max_examples=10)
@given(seed=st.integers(0, 2**32), index=st.integers(0, 10**6), size=st.integers(32, 96))
def test_crop_contract_holds_for_any_seed_index_and_size(seed, index, size):
    image, target = ShapeCrops(index + 1, image_size=size, seed=seed)[index]
    assert image.shape == (3, size, size) and torch.equal(image, (image * 255).round() / 255)
    assert int(target["label"]) == index % NUM_CLASSES + 1
    # Smallest: a triangle of circumradius size / 4 (area 1.3 * size**2 / 16), 25% hidden.
    assert target["mask"].shape == (size, size) and target["mask"].sum() >= 0.05 * size * size
