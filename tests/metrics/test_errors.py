"""Tests of course_lib.metrics.errors: each detection's error category, and the counts over a dataset."""

from __future__ import annotations

import pytest
import torch

from course_lib.boxes import box_iou
from course_lib.metrics import (
    error_breakdown,
    error_categories,
    f1_threshold,
    match_detections,
    missed_objects,
    to_coco,
)
from course_lib.references import pycocotools_eval

GT = [0.0, 0.0, 10.0, 10.0]  # one object of class 1, area 100


def prediction(boxes, labels, scores=None):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    scores = torch.linspace(0.9, 0.5, len(boxes)) if scores is None else torch.tensor(scores)
    return {"boxes": boxes, "labels": torch.tensor(labels, dtype=torch.int64), "scores": scores}


def target(boxes, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64)}


def breakdown(pred, tgt, **kwargs):
    return error_breakdown([pred], [tgt], **kwargs)


# ---------------------------------------------------------------------------------------------
# One hand-built case per category


def test_correct():
    pred, tgt = prediction([[1, 0, 10, 10]], [1]), target([GT], [1])  # IoU 0.9
    assert error_categories(pred, tgt) == ["correct"]
    assert breakdown(pred, tgt) == {"correct": 1, "duplicate": 0, "localization": 0, "wrong class": 0,
                                    "background": 0, "missed": 0, "detections": 1, "ground truths": 1}


def test_duplicate_is_the_lower_scored_of_two_hits_whatever_the_input_order():
    pred = prediction([GT, GT], [1, 1], scores=[0.6, 0.8])
    assert error_categories(pred, target([GT], [1])) == ["duplicate", "correct"]
    counts = breakdown(pred, target([GT], [1]))
    assert (counts["correct"], counts["duplicate"], counts["missed"]) == (1, 1, 0)


def test_localization():
    pred, tgt = prediction([[0, 0, 10, 4]], [1]), target([GT], [1])  # IoU 40 / 100 = 0.4
    assert error_categories(pred, tgt) == ["localization"]
    counts = breakdown(pred, tgt)
    assert (counts["localization"], counts["missed"], counts["correct"]) == (1, 1, 0)


def test_wrong_class():
    pred, tgt = prediction([GT, [0, 0, 10, 2]], [2, 2]), target([GT], [1])  # IoU 1 and 0.2, class 2
    assert error_categories(pred, tgt) == ["wrong class", "wrong class"]
    assert breakdown(pred, tgt)["missed"] == 1


def test_background():
    # far away; overlapping its class with IoU 5 / 100 = 0.05 < 0.1; a zero-area box (IoU 0, not NaN)
    pred = prediction([[20, 20, 30, 30], [0, 0, 10, 0.5], [5, 5, 5, 5]], [1, 1, 1])
    assert error_categories(pred, target([GT], [1])) == ["background"] * 3
    assert error_categories(pred, target([GT], [1]), background_iou=0.05) == ["background", "localization",
                                                                            "background"]


def test_missed_counts_the_ground_truths_no_detection_matched():
    tgt = target([GT, [20, 20, 30, 30], [40, 40, 50, 50]], [1, 1, 2])
    counts = breakdown(prediction([GT], [1]), tgt)
    assert (counts["correct"], counts["missed"], counts["ground truths"]) == (1, 2, 3)


# ---------------------------------------------------------------------------------------------
# Precedence, order and ties


def test_own_class_comes_first_localization_before_wrong_class():
    # IoU 30 / 100 = 0.3 with the class-1 object, 30 / 50 = 0.6 with the class-2 object
    pred, tgt = prediction([[0, 0, 10, 3]], [1]), target([GT, [0, 0, 10, 5]], [1, 2])
    iou = box_iou(pred["boxes"], tgt["boxes"])
    torch.testing.assert_close(iou, torch.tensor([[0.3, 0.6]]))
    assert error_categories(pred, tgt) == ["localization"]


def test_duplicate_comes_before_localization():
    # the second box has IoU 1 with a taken object of its class and 0.3 with a free one
    tgt = target([GT, [0, 0, 10, 30]], [1, 1])
    assert error_categories(prediction([GT, GT], [1, 1]), tgt) == ["correct", "duplicate"]


def test_equal_scores_keep_the_input_order():
    pred = prediction([[1, 0, 10, 10], GT], [1, 1], scores=[0.7, 0.7])
    assert error_categories(pred, target([GT], [1])) == ["correct", "duplicate"]
    swapped = prediction([GT, [1, 0, 10, 10]], [1, 1], scores=[0.7, 0.7])
    assert error_categories(swapped, target([GT], [1])) == ["correct", "duplicate"]


def test_a_detection_between_two_objects_takes_the_later_one_as_coco():
    # IoU 75 / 125 = 0.6 with both objects: COCO takes the later one, so the next box finds A free
    tgt = target([GT, [5, 0, 15, 10]], [1, 1])
    pred = prediction([[2.5, 0, 12.5, 10], GT], [1, 1])
    assert error_categories(pred, tgt) == ["correct", "correct"]


def test_matching_is_per_class():
    # a class-2 detection does not use up the class-1 object
    pred = prediction([GT, GT], [2, 1])
    assert error_categories(pred, target([GT], [1])) == ["wrong class", "correct"]


def test_score_threshold_leaves_low_scores_unjudged():
    pred = prediction([GT, GT], [1, 1], scores=[0.3, 0.8])
    assert error_categories(pred, target([GT], [1]), score_threshold=0.5) == [None, "correct"]
    counts = breakdown(pred, target([GT], [1]), score_threshold=0.5)
    assert (counts["detections"], counts["correct"], counts["duplicate"]) == (1, 1, 0)
    assert breakdown(pred, target([GT], [1]), score_threshold=0.9)["missed"] == 1


def test_iou_threshold_moves_a_hit_to_localization():
    pred, tgt = prediction([[0, 0, 10, 6]], [1]), target([GT], [1])  # IoU 0.6
    assert error_categories(pred, tgt) == ["correct"]
    assert error_categories(pred, tgt, iou_threshold=0.75) == ["localization"]


def test_integer_boxes_give_the_same_categories_as_float_boxes():
    pred = prediction([[0, 0, 10, 4], GT, GT, [20, 20, 30, 30], [0, 0, 9, 10]], [1, 1, 1, 3, 3])
    tgt = target([GT, [0, 0, 10, 5]], [1, 2])
    integer_pred = dict(pred, boxes=pred["boxes"].to(torch.int64))
    integer_tgt = dict(tgt, boxes=tgt["boxes"].to(torch.int32))
    expected = ["localization", "correct", "duplicate", "background", "wrong class"]
    assert error_categories(pred, tgt) == error_categories(integer_pred, integer_tgt) == expected


# ---------------------------------------------------------------------------------------------
# Empty inputs


ZEROS = {"correct": 0, "duplicate": 0, "localization": 0, "wrong class": 0, "background": 0, "missed": 0,
         "detections": 0, "ground truths": 0}


def test_empty_inputs():
    assert error_breakdown([], []) == ZEROS
    no_dets, no_gts = prediction([], []), target([], [])
    assert error_categories(no_dets, no_gts) == []
    assert error_categories(no_dets, target([GT], [1])) == []
    assert error_breakdown([no_dets], [no_gts]) == ZEROS
    two_objects = target([GT, GT], [1, 2])
    assert error_breakdown([no_dets], [two_objects]) == dict(ZEROS, missed=2, **{"ground truths": 2})
    assert error_categories(prediction([GT, GT], [1, 2]), no_gts) == ["background", "background"]


def test_zero_background_iou_needs_an_object_of_the_class_for_localization():
    pred = prediction([[20, 20, 30, 30], [20, 20, 30, 30]], [1, 2])  # disjoint from the object
    assert error_categories(pred, target([GT], [1]), background_iou=0.0) == ["localization", "wrong class"]
    assert error_categories(pred, target([], []), background_iou=0.0) == ["background", "background"]


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_input():
    pred, tgt = prediction([GT], [1]), target([GT], [1])
    with pytest.raises(TypeError, match="expected lists of dicts, got dict"):
        error_breakdown(pred, [tgt])
    with pytest.raises(ValueError, match="one prediction per target, got 1 and 2"):
        error_breakdown([pred], [tgt, tgt])
    with pytest.raises(TypeError, match=r"targets\[0\]: expected a dict, got list"):
        error_breakdown([pred], [[GT]])
    with pytest.raises(ValueError, match=r"predictions\[0\]: expected a key 'scores'"):
        error_breakdown([{"boxes": pred["boxes"], "labels": pred["labels"]}], [tgt])
    with pytest.raises(ValueError, match=r"prediction\['labels'\]: expected an integer Tensor\[1\]"):
        error_categories(dict(pred, labels=torch.tensor([1.0])), tgt)
    with pytest.raises(ValueError, match=r"target\['labels'\]: expected an integer Tensor\[1\].*\(2,\)"):
        error_categories(pred, dict(tgt, labels=torch.tensor([1, 2])))
    with pytest.raises(ValueError, match=r"prediction\['scores'\]: expected a Tensor\[1\], got shape \(2,\)"):
        error_categories(dict(pred, scores=torch.tensor([0.5, 0.4])), tgt)
    with pytest.raises(ValueError, match=r"target\['boxes'\]: expected xyxy boxes with x2 >= x1"):
        error_categories(pred, target([[10, 0, 0, 10]], [1]))
    with pytest.raises(ValueError, match=r"prediction\['boxes'\]: expected a Tensor\[N, 4\]"):
        error_categories(dict(pred, boxes=torch.zeros(1, 5)), tgt)
    with pytest.raises(ValueError, match=r"iou_threshold: expected a value in \[0.0, 1.0\], got 1.5"):
        error_categories(pred, tgt, iou_threshold=1.5)
    with pytest.raises(ValueError, match=r"background_iou: expected a value in \[0.0, 0.5\], got 0.6"):
        error_breakdown([pred], [tgt], background_iou=0.6)
    with pytest.raises(TypeError, match="score_threshold: expected a number, got str"):
        error_breakdown([pred], [tgt], score_threshold="0.5")


# ---------------------------------------------------------------------------------------------
# Oracle: COCO's greedy matching computed two other ways, and the IoU rules checked by brute force


def random_scenes(seed: int, num_images: int = 300):
    """Seeded scenes on an integer grid (exact in xywh for pycocotools), labels 1..3, tied scores."""
    generator = torch.Generator().manual_seed(seed)
    predictions, targets = [], []
    for _ in range(num_images):
        num_gt = int(torch.randint(0, 6, (), generator=generator))
        corners = torch.randint(0, 80, (num_gt, 2), generator=generator)
        gts = torch.cat([corners, corners + torch.randint(4, 40, (num_gt, 2), generator=generator)], 1)
        num_dets = int(torch.randint(0, 12, (), generator=generator))
        corners = torch.randint(0, 80, (num_dets, 2), generator=generator)
        dets = torch.cat([corners, corners + torch.randint(4, 40, (num_dets, 2), generator=generator)], 1)
        if num_gt:  # most detections are jittered copies of objects, so every category occurs
            near = torch.rand(num_dets, generator=generator) < 0.7
            owner = torch.randint(0, num_gt, (num_dets,), generator=generator)
            jitter = torch.randint(-4, 5, (num_dets, 4), generator=generator)
            copies = gts[owner] + jitter
            copies[:, 2:] = torch.maximum(copies[:, 2:], copies[:, :2])
            dets = torch.where(near[:, None], copies, dets)
        predictions.append({"boxes": dets.double(),
                            "scores": torch.randint(0, 10, (num_dets,), generator=generator) / 10,  # ties
                            "labels": torch.randint(1, 4, (num_dets,), generator=generator)})
        targets.append({"boxes": gts.double(), "labels": torch.randint(1, 4, (num_gt,), generator=generator)})
    return predictions, targets


def reference_categories(pred, tgt, iou_threshold, background_iou):
    """The rules of the module docstring, one by one, with match_detections deciding "correct"."""
    correct = torch.zeros(len(pred["boxes"]), dtype=torch.bool)
    for label in set(pred["labels"].tolist()):
        dets, gts = pred["labels"] == label, tgt["labels"] == label
        correct[dets] = match_detections(pred["boxes"][dets], pred["scores"][dets], tgt["boxes"][gts],
                                         iou_threshold)
    iou = box_iou(pred["boxes"], tgt["boxes"])  # (N, M) float64
    same = pred["labels"][:, None] == tgt["labels"][None, :]  # (N, M)
    categories = []
    for i in range(len(iou)):
        own, other = iou[i][same[i]], iou[i][~same[i]]
        if correct[i]:
            categories.append("correct")
        elif (own >= iou_threshold).any():
            categories.append("duplicate")
        elif (own >= background_iou).any():
            categories.append("localization")
        elif (other >= background_iou).any():
            categories.append("wrong class")
        else:
            categories.append("background")
    return categories


@pytest.mark.parametrize("iou_threshold", [0.5, 0.75])
def test_categories_equal_the_rules_checked_one_by_one(iou_threshold):
    predictions, targets = random_scenes(seed=0)
    seen = set()
    for pred, tgt in zip(predictions, targets, strict=True):
        categories = error_categories(pred, tgt, iou_threshold=iou_threshold)
        assert categories == reference_categories(pred, tgt, iou_threshold, 0.1)
        seen.update(categories)
    assert seen == {"correct", "duplicate", "localization", "wrong class", "background"}


def test_correct_equals_pycocotools_true_positives_at_iou_05():
    predictions, targets = random_scenes(seed=1)
    evaluation = pycocotools_eval(*to_coco(predictions, targets), iou_thresholds=[0.5])
    # area range "all", up to 100 detections per image and class (our scenes have at most 11)
    groups = [e for e in evaluation.evalImgs if e is not None and e["aRng"] == evaluation.params.areaRng[0]]
    true_positives = sum(int((group["dtMatches"][0] > 0).sum()) for group in groups)
    counts = error_breakdown(predictions, targets)
    assert counts["correct"] == true_positives > 100
    assert counts["detections"] == sum(len(group["dtIds"]) for group in groups)
    assert counts["ground truths"] == sum(len(group["gtIds"]) for group in groups)
    assert counts["correct"] + counts["missed"] == counts["ground truths"]


def test_counts_add_up_and_equal_the_categories_of_each_image():
    predictions, targets = random_scenes(seed=2)
    counts = error_breakdown(predictions, targets, score_threshold=0.3)
    categories = [c for p, t in zip(predictions, targets, strict=True)
                  for c in error_categories(p, t, score_threshold=0.3)]
    for name in ("correct", "duplicate", "localization", "wrong class", "background"):
        assert counts[name] == categories.count(name)
    assert counts["detections"] == sum(counts[n] for n in ("correct", "duplicate", "localization",
                                                           "wrong class", "background"))
    assert counts["detections"] == len(categories) - categories.count(None)
    num_gt = sum(len(t["boxes"]) for t in targets)
    assert counts["correct"] + counts["missed"] == counts["ground truths"] == num_gt
    # a score threshold is the same as dropping the low-scored detections first
    kept = [{key: value[p["scores"] >= 0.3] for key, value in p.items()} for p in predictions]
    assert error_breakdown(kept, targets) == counts


def test_permuting_detections_with_distinct_scores_permutes_the_categories():
    predictions, targets = random_scenes(seed=3, num_images=50)
    generator = torch.Generator().manual_seed(3)
    for pred, tgt in zip(predictions, targets, strict=True):
        pred = dict(pred, scores=torch.rand(len(pred["scores"]), generator=generator, dtype=torch.float64))
        order = torch.randperm(len(pred["scores"]), generator=generator)
        shuffled = {key: value[order] for key, value in pred.items()}
        expected = error_categories(pred, tgt)
        assert error_categories(shuffled, tgt) == [expected[i] for i in order.tolist()]


# ---------------------------------------------------------------------------------------------
# f1_threshold: the score cut chosen on validation scenes


def _brute_force_f1(predictions, targets):
    """F1 at every distinct score, by counting with error_breakdown."""
    best = (float("inf"), 0.0)
    scores = sorted({float(s) for p in predictions for s in p["scores"]}, reverse=True)
    for threshold in scores:
        counts = error_breakdown(predictions, targets, score_threshold=threshold)
        f1 = 2 * counts["correct"] / (counts["detections"] + counts["ground truths"])
        if f1 > best[1] + 1e-12:
            best = (threshold, f1)
    return best


def test_f1_threshold_by_hand():
    # Scores 0.9 (hit), 0.8 (background), 0.3 (hit of the second object): F1 0.5 at 0.9,
    # 0.4 at 0.8, 2 * 2 / (3 + 2) = 0.8 at 0.3.
    pred = prediction([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], [1, 1, 1], [0.9, 0.8, 0.3])
    tgt = target([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 1])
    threshold, f1 = f1_threshold([pred], [tgt])
    assert threshold == pytest.approx(0.3) and f1 == pytest.approx(0.8)


def test_f1_threshold_never_splits_a_tie():
    # Two detections at 0.5: one hit, one miss; a cut between them is not a threshold.
    pred = prediction([[0, 0, 10, 10], [50, 50, 60, 60]], [1, 1], [0.5, 0.5])
    threshold, f1 = f1_threshold([pred], [target([GT], [1])])
    assert threshold == 0.5 and f1 == pytest.approx(2 / 3)


def test_f1_threshold_equals_brute_force_on_random_scenes():
    generator = torch.Generator().manual_seed(3)
    predictions, targets = [], []
    for _ in range(40):
        corners = torch.randint(0, 40, (6, 2), generator=generator).float()
        sizes = torch.randint(4, 20, (6, 2), generator=generator).float()
        boxes = torch.cat([corners, corners + sizes], dim=1)
        targets.append({"boxes": boxes[:3], "labels": torch.randint(1, 3, (3,), generator=generator)})
        jitter = torch.randint(-3, 4, (6, 4), generator=generator).float()
        det = torch.cat([boxes[:3], boxes]) + torch.cat([jitter[:3], jitter])
        det[:, 2:] = torch.maximum(det[:, 2:], det[:, :2] + 1)
        predictions.append({"boxes": det, "labels": torch.randint(1, 3, (9,), generator=generator),
                            "scores": torch.randint(0, 10, (9,), generator=generator).float() / 10})
    threshold, f1 = f1_threshold(predictions, targets)
    expected = _brute_force_f1(predictions, targets)
    assert threshold == pytest.approx(expected[0]) and f1 == pytest.approx(expected[1])


def test_f1_threshold_of_nothing_keeps_nothing():
    assert f1_threshold([], []) == (float("inf"), 0.0)
    assert f1_threshold([prediction([], [])], [target([GT], [1])]) == (float("inf"), 0.0)
    with pytest.raises(ValueError, match="one prediction per target"):
        f1_threshold([prediction([GT], [1])], [])


def test_missed_objects_marks_the_objects_no_correct_detection_took():
    # Two class-1 objects; the detection overlaps the second more (IoU 0.9 vs 0.6): it takes that one.
    tgt = {"boxes": torch.tensor([[0.0, 0, 10, 10], [2, 0, 12, 10]]), "labels": torch.tensor([1, 1])}
    pred = prediction([[3.0, 0, 12, 10]], [1], [0.9])
    assert missed_objects(pred, tgt).tolist() == [True, False]
    assert missed_objects(pred, tgt, score_threshold=0.95).tolist() == [True, True]
    assert int(missed_objects(pred, tgt).sum()) == breakdown(pred, tgt)["missed"]
    assert missed_objects(prediction([], []), target([], [])).shape == (0,)
