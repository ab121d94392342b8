"""Tests of course_lib.metrics.coco and .cocoeval: COCO AP and AR equal to pycocotools, per-class AP."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.metrics import (
    coco_evaluate,
    evaluate_detections,
    per_class_ap,
    pr_curves,
    to_coco,
)
from course_lib.metrics.cocoeval import STAT_NAMES, evaluate
from course_lib.references import pycocotools_eval

CATEGORIES = [1, 3, 4, 8, 11, 12]  # 8: gt but no detections, 11: detections but no gt, 12: neither
SIZES = [6.0, 20.0, 50.0, 80.0, 130.0, 200.0]  # small, medium and large objects


reference = pycocotools_eval  # pycocotools on copies of the json, silenced


def make_dataset(seed: int, num_images: int = 30) -> tuple[dict, list[dict]]:
    """A seeded COCO gt dict and results list with every case COCO's rules care about."""
    rng = np.random.default_rng(seed)
    image_ids = [int(i) for i in rng.permutation(np.arange(5, 5 + 7 * num_images, 7))]
    annotations, detections = [], []
    for n, image_id in enumerate(image_ids):
        gts = []
        for _ in range(0 if n % 5 == 0 else int(rng.integers(1, 8))):  # every 5th image: no gt
            w, h = rng.choice(SIZES) * rng.uniform(0.7, 1.3, 2)
            x, y = rng.uniform(0, 400, 2)
            gts.append({"id": len(annotations) + len(gts) + 1, "image_id": image_id,
                        "category_id": int(rng.choice([1, 3, 4, 8])),
                        "bbox": [round(x, 1), round(y, 1), round(w, 1), round(h, 1)],
                        "area": float(w * h * rng.uniform(0.6, 1.0)), "iscrowd": int(rng.random() < 0.12)})
        annotations += gts
        num_dets = 0 if n % 7 == 3 else (130 if n == 1 else int(rng.integers(1, 30)))
        for _ in range(num_dets):
            if gts and rng.random() < 0.6:  # a noisy copy of a gt box, mostly of its class
                gt = gts[int(rng.integers(len(gts)))]
                box = np.array(gt["bbox"]) + rng.normal(0, 0.12, 4) * np.array(gt["bbox"])[[2, 3, 2, 3]]
                category = gt["category_id"] if rng.random() < 0.85 else int(rng.choice([1, 3, 4, 11]))
            else:
                box = np.concatenate([rng.uniform(0, 400, 2), rng.choice(SIZES) * rng.uniform(0.5, 1.5, 2)])
                category = int(rng.choice([1, 3, 4, 11]))
            box = np.round(np.abs(box), 1)
            score = 0.5 if rng.random() < 0.2 else round(float(rng.random()), 2)  # many equal scores
            if category == 8:
                category = 1
            detections.append(
                {"image_id": image_id, "category_id": category, "bbox": box.tolist(), "score": score}
            )
    categories = [{"id": c, "name": f"class {c}"} for c in CATEGORIES]
    images = [{"id": i} for i in image_ids]
    return {"images": images, "annotations": annotations, "categories": categories}, detections


def assert_stats_equal(ours: dict, stats: np.ndarray, atol: float = 1e-6) -> None:
    assert list(ours) == list(STAT_NAMES)
    np.testing.assert_allclose(list(ours.values()), stats, atol=atol, rtol=0)


# ---------------------------------------------------------------------------------------------
# coco_evaluate


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_evaluate_equals_pycocotools(seed):
    coco_gt, coco_dt = make_dataset(seed)
    # The generated set must hold every case it claims to, or the test proves less than it says.
    gt_images = {a["image_id"] for a in coco_gt["annotations"]}
    dt_images = [d["image_id"] for d in coco_dt]
    assert len(gt_images) < len(coco_gt["images"]) and len(set(dt_images)) < len(coco_gt["images"])
    assert max(dt_images.count(i) for i in set(dt_images)) > 100
    assert any(a["iscrowd"] for a in coco_gt["annotations"])
    areas = np.array([a["area"] for a in coco_gt["annotations"]])
    assert (areas < 32**2).any() and ((areas > 32**2) & (areas < 96**2)).any() and (areas > 96**2).any()
    scores = [d["score"] for d in coco_dt]
    assert len(set(scores)) < len(scores)
    assert 8 in {a["category_id"] for a in coco_gt["annotations"]} - {d["category_id"] for d in coco_dt}
    assert 11 in {d["category_id"] for d in coco_dt} - {a["category_id"] for a in coco_gt["annotations"]}

    ours = coco_evaluate(coco_gt, coco_dt)
    ref = reference(coco_gt, coco_dt)
    assert_stats_equal(ours, ref.stats)
    assert all(0 < value <= 1 for value in ours.values())


def test_precision_and_recall_tables_equal_pycocotools():
    coco_gt, coco_dt = make_dataset(3)
    ours, ref = evaluate(coco_gt, coco_dt), reference(coco_gt, coco_dt)
    np.testing.assert_array_equal(ours.precision, ref.eval["precision"])
    np.testing.assert_array_equal(ours.recall, ref.eval["recall"])
    assert ours.category_ids == CATEGORIES


@st.composite
def tie_heavy_dataset(draw):
    """Few images, integer boxes on a coarse grid (equal IoUs), quantized scores, crowds."""
    images = [{"id": i} for i in range(draw(st.integers(1, 4)))]
    box = st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(1, 6), st.integers(1, 6))
    scale = draw(st.sampled_from([1.0, 5.0, 13.0]))
    annotations = [
        {"id": n + 1, "image_id": image, "category_id": category, "bbox": [v * scale for v in b],
         "area": b[2] * b[3] * scale**2, "iscrowd": int(crowd)}
        for n, (image, category, b, crowd) in enumerate(draw(st.lists(st.tuples(
            st.integers(0, len(images) - 1), st.integers(1, 2), box, st.booleans()), max_size=10)))
    ]
    detections = [
        {"image_id": image, "category_id": category, "bbox": [v * scale for v in b], "score": score / 4}
        for image, category, b, score in draw(st.lists(st.tuples(
            st.integers(0, len(images) - 1), st.integers(1, 2), box, st.integers(0, 4)),
            min_size=1, max_size=25))
    ]
    return {"images": images, "annotations": annotations, "categories": [{"id": 1}, {"id": 2}]}, detections


@settings(max_examples=40)
@given(tie_heavy_dataset())
def test_ties_and_crowds_match_pycocotools_exactly(dataset):
    coco_gt, coco_dt = dataset
    ours, ref = evaluate(coco_gt, coco_dt), reference(coco_gt, coco_dt)
    np.testing.assert_array_equal(ours.precision, ref.eval["precision"])
    np.testing.assert_array_equal(ours.recall, ref.eval["recall"])
    assert_stats_equal(coco_evaluate(coco_gt, coco_dt), ref.stats, atol=1e-12)


def hand_dataset() -> tuple[dict, list[dict]]:
    """Two 10x10 objects; a perfect hit, a duplicate of it, and a hit with IoU 0.6 on the other."""
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100.0, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [20, 20, 10, 10], "area": 100.0, "iscrowd": 0},
    ]
    detections = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.8},
        {"image_id": 1, "category_id": 1, "bbox": [20, 20, 10, 6], "score": 0.7},  # IoU 60 / 100
    ]
    return {"images": [{"id": 1}], "annotations": annotations, "categories": [{"id": 1}]}, detections


def test_coco_evaluate_hand_computed():
    ours = coco_evaluate(*hand_dataset())
    # IoU <= 0.6 (3 thresholds): TP, FP, TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    # 101-point AP: 51 recall points (0..0.5) read 1, the 50 others read the envelope 2/3.
    ap_low = (51 + 50 * 2 / 3) / 101
    ap_high = 51 / 101  # IoU >= 0.65: TP, FP, FP -> recall stops at 1/2
    assert ours["AP50"] == pytest.approx(ap_low, abs=1e-12)
    assert ours["AP75"] == pytest.approx(ap_high, abs=1e-12)
    assert ours["AP"] == pytest.approx((3 * ap_low + 7 * ap_high) / 10, abs=1e-12)
    assert ours["AR1"] == pytest.approx(0.5) and ours["AR100"] == pytest.approx((3 * 1 + 7 * 0.5) / 10)
    assert ours["APs"] == ours["AP"] and ours["APm"] == ours["APl"] == ours["ARm"] == -1.0
    assert_stats_equal(ours, reference(*hand_dataset()).stats, atol=1e-12)


def test_crowd_region_absorbs_detections_without_false_positives():
    coco_gt, _ = hand_dataset()
    coco_gt["annotations"] = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 1e4, "iscrowd": 1},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [200, 200, 10, 10], "area": 100.0, "iscrowd": 0},
    ]
    inside = [{"image_id": 1, "category_id": 1, "bbox": [10 * k, 5, 8, 8], "score": s}
              for k, s in enumerate([0.95, 0.8, 0.7])]
    coco_dt = inside + [{"image_id": 1, "category_id": 1, "bbox": [200, 200, 10, 10], "score": 0.9}]
    ours = coco_evaluate(coco_gt, coco_dt)
    assert ours["AP"] == pytest.approx(1.0)  # the three detections in the crowd are ignored
    assert_stats_equal(ours, reference(coco_gt, coco_dt).stats)
    coco_gt["annotations"][0]["iscrowd"] = 0  # now they are false positives (one is a miss)
    not_crowd = coco_evaluate(coco_gt, coco_dt)
    assert not_crowd["AP"] < 0.5
    assert_stats_equal(not_crowd, reference(coco_gt, coco_dt).stats)


def test_counted_ground_truth_is_preferred_over_a_better_crowd_match():
    coco_gt, _ = hand_dataset()
    coco_gt["annotations"] = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 1e4, "iscrowd": 1},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 10, 10, 10], "area": 100.0, "iscrowd": 0},
    ]
    # IoU 0.64 with the object, 1.0 with the crowd region (union = the detection's area).
    coco_dt = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 8, 8], "score": 0.9}]
    ours = coco_evaluate(coco_gt, coco_dt)
    assert ours["AP50"] == pytest.approx(1.0) and ours["AP75"] == 0.0
    assert_stats_equal(ours, reference(coco_gt, coco_dt).stats)


def test_equal_iou_goes_to_the_later_ground_truth():
    coco_gt, _ = hand_dataset()
    coco_gt["annotations"] = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100.0, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [2, 0, 10, 10], "area": 100.0, "iscrowd": 0},
    ]
    coco_dt = [
        {"image_id": 1, "category_id": 1, "bbox": [1, 0, 10, 10], "score": 0.9},  # IoU 9/11 with both
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 9, 10], "score": 0.8},  # IoU 0.9 and 0.58
    ]
    # The first detection takes the second box, so the first box is left for the other one.
    ours = coco_evaluate(coco_gt, coco_dt)
    assert ours["AP75"] == pytest.approx(1.0)
    assert_stats_equal(ours, reference(coco_gt, coco_dt).stats)


def test_only_the_best_100_detections_per_image_count():
    coco_gt, _ = hand_dataset()
    decoys = [{"image_id": 1, "category_id": 1, "bbox": [50, 50, 5, 5], "score": 0.9} for _ in range(100)]
    hit = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}
    assert coco_evaluate(coco_gt, decoys + [hit])["AR100"] == 0.0  # the hit ranks 101st
    assert coco_evaluate(coco_gt, decoys[1:] + [hit])["AR100"] == 0.5
    assert_stats_equal(coco_evaluate(coco_gt, decoys + [hit]), reference(coco_gt, decoys + [hit]).stats)


def test_empty_detection_list_scores_zero_where_ground_truth_exists():
    coco_gt, coco_dt = make_dataset(4)
    ours = coco_evaluate(coco_gt, [])
    assert all(value == 0.0 for value in ours.values())
    # pycocotools cannot load []; a lone detection of an unknown category is dropped, same thing.
    assert_stats_equal(ours, reference(coco_gt, [dict(coco_dt[0], category_id=999)]).stats)
    coco_gt["annotations"] = [a for a in coco_gt["annotations"] if a["area"] < 32**2]
    only_small = coco_evaluate(coco_gt, [])
    assert only_small["APs"] == 0.0 and only_small["APm"] == only_small["ARl"] == -1.0


def test_no_ground_truth_gives_minus_one():
    coco_gt, coco_dt = make_dataset(5)
    coco_gt["annotations"] = []
    ours = coco_evaluate(coco_gt, coco_dt)
    assert all(value == -1.0 for value in ours.values())
    assert_stats_equal(ours, reference(coco_gt, coco_dt).stats)


def test_invariants_image_order_extra_images_and_unknown_categories():
    coco_gt, coco_dt = make_dataset(6, num_images=12)
    base = coco_evaluate(coco_gt, coco_dt)
    shuffled = dict(coco_gt, images=coco_gt["images"][::-1])
    more = dict(coco_gt, images=coco_gt["images"] + [{"id": 10**6}])  # an image with nothing in it
    unknown = coco_dt + [dict(coco_dt[0], category_id=999, score=1.0)]
    for gt, dt in [(shuffled, coco_dt), (more, coco_dt), (coco_gt, unknown)]:
        assert coco_evaluate(gt, dt) == base


def test_missing_area_and_iscrowd_default_to_box_area_and_zero():
    coco_gt, coco_dt = make_dataset(7, num_images=10)
    filled = copy.deepcopy(coco_gt)
    for annotation in filled["annotations"]:
        annotation["area"], annotation["iscrowd"] = annotation["bbox"][2] * annotation["bbox"][3], 0
    bare = copy.deepcopy(coco_gt)
    for annotation in bare["annotations"]:
        del annotation["area"], annotation["iscrowd"], annotation["id"]
    assert_stats_equal(coco_evaluate(bare, coco_dt), reference(filled, coco_dt).stats)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda gt, dt: ([], dt), TypeError, "expected a COCO dict"),
        (lambda gt, dt: ({"images": []}, dt), ValueError, "expected a list under 'categories'"),
        (lambda gt, dt: (gt, dt[0]), TypeError, "expected a list of detection dicts"),
        (lambda gt, dt: (gt, [{k: v for k, v in dt[0].items() if k != "score"}]), ValueError, "key 'score'"),
        (lambda gt, dt: (gt, [dict(dt[0], image_id=-3)]), ValueError, "image_id listed in coco_gt"),
        (lambda gt, dt: (gt, [dict(dt[0], score=float("nan"))]), ValueError, "finite"),
        (lambda gt, dt: (gt, [dict(dt[0], bbox=[1, 2, 3])]), ValueError, r"\[x, y, w, h\]"),
        (lambda gt, dt: (gt, [dict(dt[0], bbox=[1, 2, -3, 4])]), ValueError, "width and height >= 0"),
        (lambda gt, dt: (gt, [1, 2]), TypeError, "expected a dict, got int"),
    ],
)
def test_coco_evaluate_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        coco_evaluate(*change(*hand_dataset()))


@pytest.mark.parametrize(("ids", "match"), [([0, 1], "nonzero ids"), ([4, 4], "id 4 more than once")])
def test_annotation_ids_must_be_unique_and_nonzero(ids, match):
    coco_gt, coco_dt = hand_dataset()
    for annotation, annotation_id in zip(coco_gt["annotations"], ids, strict=True):
        annotation["id"] = annotation_id
    with pytest.raises(ValueError, match=match):
        coco_evaluate(coco_gt, coco_dt)


# ---------------------------------------------------------------------------------------------
# evaluate_detections and to_coco


def random_torchvision_lists(seed: int, num_images: int = 12) -> tuple[list[dict], list[dict]]:
    generator = torch.Generator().manual_seed(seed)
    predictions, targets = [], []
    for _ in range(num_images):
        num_gt, num_pred = (int(n) for n in torch.randint(0, 6, (2,), generator=generator))
        num_pred *= 4
        gt = torch.rand(num_gt, 2, generator=generator) * 200
        gt = torch.cat([gt, gt + 5 + torch.rand(num_gt, 2, generator=generator) * 120], dim=1)
        pick = torch.randint(0, max(num_gt, 1), (num_pred,), generator=generator)
        pred = torch.rand(num_pred, 4, generator=generator) * 200
        pred = torch.cat([pred[:, :2], pred[:, :2] + 5 + pred[:, 2:] * 0.6], dim=1)
        if num_gt:
            near = gt[pick] + torch.randn(num_pred, 4, generator=generator) * 4
            pred = torch.where(torch.rand(num_pred, 1, generator=generator) < 0.6, near, pred)
            pred[:, 2:] = torch.maximum(pred[:, 2:], pred[:, :2] + 1)
        labels = torch.randint(1, 4, (num_gt,), generator=generator)
        pred_labels = labels[pick] if num_gt else torch.randint(1, 4, (num_pred,), generator=generator)
        crowd = (torch.rand(num_gt, generator=generator) < 0.1).long()
        targets.append({"boxes": gt, "labels": labels, "iscrowd": crowd})
        scores = torch.rand(num_pred, generator=generator)
        predictions.append({"boxes": pred, "scores": scores, "labels": pred_labels})
    return predictions, targets


@pytest.mark.parametrize("seed", [0, 1])
def test_evaluate_detections_equals_pycocotools_on_converted_json(seed):
    predictions, targets = random_torchvision_lists(seed)
    coco_gt, coco_dt = to_coco(predictions, targets)
    ours = evaluate_detections(predictions, targets)
    assert_stats_equal(ours, reference(coco_gt, coco_dt).stats)
    assert 0 < ours["AP"] < 1


def test_to_coco_hand_computed():
    predictions = [{"boxes": torch.tensor([[1.0, 2.0, 4.0, 6.0]]), "scores": torch.tensor([0.5]),
                    "labels": torch.tensor([2])}]
    targets = [{"boxes": torch.tensor([[0.0, 0.0, 10.0, 5.0]]), "labels": torch.tensor([1])}]
    coco_gt, coco_dt = to_coco(predictions, targets, categories=["background", "circle", "square"])
    assert coco_gt["images"] == [{"id": 0}]
    assert coco_gt["annotations"] == [
        {"id": 1, "image_id": 0, "category_id": 1, "bbox": [0.0, 0.0, 10.0, 5.0], "area": 50.0, "iscrowd": 0}
    ]
    assert [c["name"] for c in coco_gt["categories"]] == ["background", "circle", "square"]
    assert coco_dt == [{"image_id": 0, "category_id": 2, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}]
    assert [c["id"] for c in to_coco(predictions, targets)[0]["categories"]] == [1, 2]
    assert json.loads(json.dumps([coco_gt, coco_dt])) == [coco_gt, coco_dt]  # plain json types
    with pytest.raises(TypeError, match="categories: expected None, a list of names"):
        to_coco(predictions, targets, categories="circle")


def test_evaluate_detections_perfect_and_empty_predictions():
    _, targets = random_torchvision_lists(2)
    perfect = [dict(t, scores=torch.ones(len(t["boxes"]))) for t in targets]
    result = evaluate_detections(perfect, targets)
    assert result["AP"] == pytest.approx(1.0) and result["AR100"] == pytest.approx(1.0)
    nothing = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0).long()}
    empty = [nothing] * len(targets)
    assert evaluate_detections(empty, targets)["AP"] == 0.0
    assert all(v == -1.0 for v in evaluate_detections([], []).values())


def test_evaluate_detections_bad_input():
    predictions, targets = random_torchvision_lists(3, num_images=2)
    with pytest.raises(ValueError, match="one prediction per target"):
        evaluate_detections(predictions, targets[:1])
    with pytest.raises(ValueError, match="'bbox'"):
        evaluate_detections(predictions, targets, iou_type="segm")
    with pytest.raises(ValueError, match="expected a key 'labels'"):
        evaluate_detections(predictions, [{"boxes": t["boxes"]} for t in targets])
    with pytest.raises(ValueError, match="integer Tensor"):
        evaluate_detections(predictions, [dict(t, labels=t["labels"].float()) for t in targets])
    flipped = [dict(p, boxes=p["boxes"][:, [2, 3, 0, 1]]) for p in predictions]
    with pytest.raises(ValueError, match="x2 >= x1"):
        evaluate_detections(flipped, targets)
    with pytest.raises(ValueError, match="labels: expected ids listed in categories"):
        to_coco(predictions, targets, categories=["background"])



@pytest.mark.parametrize("iou_threshold", [0.5, 0.75])
def test_per_class_ap_equals_pycocotools_precision(iou_threshold):
    coco_gt, coco_dt = make_dataset(8)
    ref = reference(coco_gt, coco_dt)
    t = int(np.flatnonzero(ref.params.iouThrs == iou_threshold)[0])
    ours = per_class_ap(coco_gt, coco_dt, iou_threshold)
    assert list(ours) == CATEGORIES
    for k, category in enumerate(CATEGORIES):
        column = ref.eval["precision"][t, :, k, 0, 2]
        expected = column.mean() if (column > -1).any() else -1.0
        assert ours[category] == pytest.approx(expected, abs=1e-12)
    assert ours[11] == ours[12] == -1.0 and ours[8] == 0.0
    if iou_threshold == 0.5:
        assert np.mean([v for v in ours.values() if v > -1]) == pytest.approx(ref.stats[1], abs=1e-12)


def test_per_class_ap_at_a_non_standard_threshold_equals_pycocotools():
    coco_gt, coco_dt = make_dataset(9, num_images=10)
    ref = reference(coco_gt, coco_dt, iou_thresholds=[0.3])
    ours = per_class_ap(coco_gt, coco_dt, iou_threshold=0.3)
    expected = [c.mean() if c[0] > -1 else -1.0 for c in ref.eval["precision"][0, :, :, 0, 2].T]
    np.testing.assert_allclose(list(ours.values()), expected, atol=1e-12)
    with pytest.raises(ValueError, match=r"iou_threshold: expected a value in \[0.0, 1.0\]"):
        per_class_ap(coco_gt, coco_dt, iou_threshold=1.5)


def test_pr_curves_are_pycocotools_curves():
    coco_gt, coco_dt = make_dataset(10, num_images=15)
    ref = reference(coco_gt, coco_dt)
    curves = pr_curves(coco_gt, coco_dt)
    assert list(curves) == [1, 3, 4, 8]  # categories with counted ground truth only
    for category, (recall_points, precision) in curves.items():
        k = CATEGORIES.index(category)
        np.testing.assert_array_equal(recall_points, np.linspace(0, 1, 101))
        np.testing.assert_array_equal(precision, ref.eval["precision"][0, :, k, 0, 2])
        assert (np.diff(precision) <= 0).all()  # the envelope never rises with recall
