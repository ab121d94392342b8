"""Tests of the exercise checkers: they pass correct solutions and catch typical mistakes with a hint.

The wrong answers below are written the way students write them (not through the checker's own
``_*_variant`` helpers), so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.boxes import box_convert, box_iou
from course_lib.exercises import CheckResult, check_ap, check_box_convert, check_iou, check_nms
from course_lib.exercises import base as exercises_base
from course_lib.exercises.boxes import AP, BOX_CONVERT, IOU, NMS
from course_lib.metrics import average_precision
from course_lib.nms import nms

# ----------------------------------------------------------------------------- correct solutions


def good_iou(box_a, box_b):
    width = max(0.0, min(box_a[2], box_b[2]) - max(box_a[0], box_b[0]))
    height = max(0.0, min(box_a[3], box_b[3]) - max(box_a[1], box_b[1]))
    inter = width * height
    area_a = (box_a[2] - box_a[0]) * (box_a[3] - box_a[1])
    area_b = (box_b[2] - box_b[0]) * (box_b[3] - box_b[1])
    return inter / (area_a + area_b - inter)


def row_iou(boxes, i, j):
    return good_iou(boxes[i].tolist(), boxes[j].tolist())


def good_nms(boxes, scores, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    keep = []
    while order:
        best, order = order[0], order[1:]
        keep.append(best)
        order = [i for i in order if row_iou(boxes, best, i) <= iou_threshold]
    return keep


def good_ap(precision, recall):
    precision, recall = np.asarray(precision, dtype=float), np.asarray(recall, dtype=float)
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    total = 0.0
    for level in np.linspace(0, 1, 101):
        reached = np.nonzero(recall >= level)[0]
        total += envelope[reached[0]] if len(reached) else 0.0
    return total / 101


def good_convert(box):
    x1, y1, x2, y2 = box
    return [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]


CORRECT = [
    (check_iou, good_iou),
    (check_iou, lambda a, b: box_iou(torch.tensor([a]), torch.tensor([b]))[0, 0]),  # a tensor answer
    (check_nms, good_nms),
    (check_nms, nms),
    (check_nms, lambda b, s, t: np.array(good_nms(b, s, t))),
    (check_ap, good_ap),
    (check_ap, lambda p, r: average_precision(p, r, method="coco101")),
    (check_box_convert, good_convert),
    (check_box_convert, lambda box: box_convert(torch.tensor([box]), "xyxy", "cxcywh")[0]),
]


@pytest.mark.parametrize("checker, solution", CORRECT)
def test_checker_passes_a_correct_solution(checker, solution, capsys):
    result = checker(solution)
    assert result and result.passed and result.failures == []
    assert f"All {result.num_cases} cases passed" in capsys.readouterr().out


# ----------------------------------------------------------------------------- typical wrong answers


def _iou_parts(a, b, clamp=True):
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if clamp:
        width, height = max(width, 0), max(height, 0)
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    return width * height, area_a, area_b


def iou_over_sum(a, b):
    inter, area_a, area_b = _iou_parts(a, b)
    return inter / (area_a + area_b)


def iou_over_area_a(a, b):
    inter, area_a, _ = _iou_parts(a, b)
    return inter / area_a


def iou_without_clamp(a, b):
    inter, area_a, area_b = _iou_parts(a, b, clamp=False)
    return inter / (area_a + area_b - inter)


def iou_clamp_product(a, b):
    inter, area_a, area_b = _iou_parts(a, b, clamp=False)
    inter = max(inter, 0)
    return inter / (area_a + area_b - inter)


def iou_plus_one(a, b):
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    area_a, area_b = (a[2] - a[0] + 1) * (a[3] - a[1] + 1), (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return width * height / (area_a + area_b - width * height)


def iou_xywh(a, b):
    return good_iou([a[0], a[1], a[0] + a[2], a[1] + a[3]], [b[0], b[1], b[0] + b[2], b[1] + b[3]])


IOU_MISTAKES = [
    (iou_over_sum, "counts the overlap twice"),
    (iou_over_area_a, "not by the area of box_a alone"),
    (lambda a, b: _iou_parts(a, b)[0] / min(_iou_parts(a, b)[1:]), "not by the area of the smaller box"),
    (iou_without_clamp, "clamp the intersection's width and height at 0"),
    (iou_clamp_product, "clamp the width and the height separately"),
    (iou_plus_one, "no +1"),
    (iou_xywh, "not (x, y, width, height)"),
]


def nms_never_removes(boxes, scores, iou_threshold):
    return torch.argsort(scores, descending=True, stable=True)


def _greedy(boxes, scores, iou_threshold, order, remove):
    keep = []
    while order:
        best, order = order[0], order[1:]
        keep.append(best)
        order = [i for i in order if not remove(row_iou(boxes, best, i), iou_threshold)]
    return keep


def nms_removes_at_equal_iou(boxes, scores, iou_threshold):  # the lecture's "IoU >= 50%"
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    return _greedy(boxes, scores, iou_threshold, order, lambda iou, t: iou >= t)


def nms_removes_the_wrong_side(boxes, scores, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    return _greedy(boxes, scores, iou_threshold, order, lambda iou, t: iou < t)


def nms_not_sorted(boxes, scores, iou_threshold):
    return _greedy(boxes, scores, iou_threshold, list(range(len(scores))), lambda iou, t: iou > t)


def nms_ascending(boxes, scores, iou_threshold):
    order = torch.argsort(scores, stable=True).tolist()
    return _greedy(boxes, scores, iou_threshold, order, lambda iou, t: iou > t)


def nms_removed_boxes_still_suppress(boxes, scores, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    removed = set()
    for rank, i in enumerate(order):  # i suppresses even when i itself was removed
        for j in order[rank + 1 :]:
            if row_iou(boxes, i, j) > iou_threshold:
                removed.add(j)
    return [i for i in order if i not in removed]


def nms_one_round(boxes, scores, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    if not order:
        return []
    best = order[0]
    return [best] + [i for i in order[1:] if row_iou(boxes, best, i) <= iou_threshold]


def nms_index_order(boxes, scores, iou_threshold):
    return sorted(good_nms(boxes, scores, iou_threshold))


def nms_unstable_ties(boxes, scores, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), -i))
    return _greedy(boxes, scores, iou_threshold, order, lambda iou, t: iou > t)


NMS_MISTAKES = [
    (nms_never_removes, "nothing was removed"),
    (nms_removes_at_equal_iou, "IoU exactly equal to the threshold stays"),
    (nms_removes_the_wrong_side, "not the ones below it"),
    (nms_not_sorted, "sort the boxes by decreasing score first"),
    (nms_ascending, "*decreasing* score"),
    (nms_removed_boxes_still_suppress, "already removed must not remove others"),
    (nms_one_round, "repeat steps 2-4"),
    (nms_index_order, "not sorted by index"),
    (nms_unstable_ties, "stable sort"),
]


def ap_raw_precision(precision, recall):  # 101 levels, but no envelope
    precision, recall = np.asarray(precision), np.asarray(recall)
    values = [precision[np.argmax(recall >= level)] if (recall >= level).any() else 0.0
              for level in np.linspace(0, 1, 101)]
    return float(np.mean(values))


def ap_raw_area(precision, recall):
    precision, recall = np.asarray(precision), np.asarray(recall)
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def ap_with_grid(levels):
    def ap(precision, recall):
        precision, recall = np.asarray(precision), np.asarray(recall)
        if len(precision) == 0:
            return 0.0
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        index = np.searchsorted(recall, levels, side="left")
        return float(sum(envelope[i] for i in index if i < len(envelope)) / len(levels))

    return ap


def ap_all_points(precision, recall):
    precision, recall = np.asarray(precision), np.asarray(recall)
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    return float(np.sum(np.diff(recall, prepend=0.0) * envelope))


AP_MISTAKES = [
    (ap_raw_precision, "take the precision envelope first"),
    (ap_raw_area, "area under the raw curve"),
    (ap_all_points, "all-points area"),
    (ap_with_grid(np.linspace(0, 1, 11)), "not Pascal VOC 2007's 11"),
    (ap_with_grid(np.linspace(0, 1, 100)), "not 100"),
    (ap_with_grid(np.arange(0, 1, 0.01)), "include the level 1.0"),
]


CONVERT_MISTAKES = [
    (lambda b: [(b[2] - b[0]) / 2, (b[3] - b[1]) / 2, b[2] - b[0], b[3] - b[1]], "not half the width"),
    (lambda b: [b[0], b[1], b[2] - b[0], b[3] - b[1]], "the xywh format"),
    (lambda b: [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2], b[3]], "not the corner x2, y2"),
]

WRONG = (
    [(check_iou, fn, hint) for fn, hint in IOU_MISTAKES]
    + [(check_nms, fn, hint) for fn, hint in NMS_MISTAKES]
    + [(check_ap, fn, hint) for fn, hint in AP_MISTAKES]
    + [(check_box_convert, fn, hint) for fn, hint in CONVERT_MISTAKES]
)


@pytest.mark.parametrize("checker, wrong, hint", WRONG, ids=lambda x: getattr(x, "__name__", None))
def test_checker_catches_a_typical_mistake_with_its_hint(checker, wrong, hint, capsys):
    result = checker(wrong)
    out = capsys.readouterr().out
    assert not result and not result.passed
    assert hint in out, f"expected the hint {hint!r} in:\n{out}"
    assert "expected:" in out and "got:" in out and "Hint:" in out


@pytest.mark.parametrize("exercise", [IOU, NMS, AP, BOX_CONVERT], ids=lambda e: e.name)
def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint(exercise):
    for mistake in exercise.mistakes:
        result = exercises_base.run_exercise(exercise, mistake.wrong, verbose=False)
        assert not result, f"{exercise.name}: no case catches the mistake {mistake.hint!r}"
        assert any(mistake.hint in failure for failure in result.failures), mistake.hint


# ----------------------------------------------------------------------------- the framework


def test_nms_difference_is_described(capsys):
    check_nms(nms_never_removes)
    assert "which should be removed" in capsys.readouterr().out
    check_nms(nms_index_order)
    assert "the right boxes, in another order" in capsys.readouterr().out


def test_stub_reports_not_implemented_without_raising(capsys):
    def iou(box_a, box_b):
        raise NotImplementedError  # your code

    result = check_iou(iou)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert "not implemented yet" in out and "Hint:" in out
    assert "Traceback" not in out


def test_student_exception_is_reported_as_a_message(capsys):
    result = check_nms(lambda boxes, scores, iou_threshold: boxes[0] / 0 + scores[10])
    out = capsys.readouterr().out
    assert not result
    assert "raised IndexError" in out and "case 1 of" in out


def test_wrong_return_type_is_explained(capsys):
    result = check_iou(lambda a, b: "0.5")
    assert not result
    out = capsys.readouterr().out
    assert "expected a number, got str" in out and "Hint: iou(box_a, box_b) -> float" in out


def test_a_loop_that_never_ends_is_stopped(monkeypatch, capsys):
    monkeypatch.setattr(exercises_base, "TIME_LIMIT_SECONDS", 0.2)

    def nms_forgets_to_drop(boxes, scores, iou_threshold):
        order, keep = sorted(range(len(scores)), key=lambda i: -float(scores[i])), []
        while order:
            keep.append(order[0])
            order = [i for i in order if row_iou(boxes, order[0], i) <= iou_threshold or i == order[0]]
        return keep

    result = check_nms(nms_forgets_to_drop)
    out = capsys.readouterr().out
    assert not result and "did not return within 0.2 s" in out and "never ends" in out
    assert len(result.failures) == 1  # it stops at the first case that hangs


def test_not_a_function_is_reported(capsys):
    assert not check_ap(0.5)
    assert "expected a function average_precision(precision, recall)" in capsys.readouterr().out


def test_first_failure_only_is_printed_and_the_rest_counted(capsys):
    result = check_iou(lambda a, b: 0.123)
    out = capsys.readouterr().out
    assert len(result.failures) == result.num_cases == len(IOU.cases)
    assert out.count("Hint:") == 1 and f"{result.num_cases - 1} other cases also fail" in out
    assert "Hint: IoU = intersection / union" in out  # no known mistake explains 0.123: the case's own hint


def test_verbose_false_prints_nothing(capsys):
    assert not check_iou(iou_over_sum, verbose=False)
    assert check_iou(good_iou, verbose=False)
    assert capsys.readouterr().out == ""


def test_student_cannot_change_the_cases_by_mutating_inputs(capsys):
    def nms_that_mutates(boxes, scores, iou_threshold):
        keep = good_nms(boxes, scores, iou_threshold)
        boxes.zero_()
        scores.fill_(1.0)
        return keep

    assert check_nms(nms_that_mutates)
    assert check_nms(good_nms)  # the cases are intact for the next student


def test_check_result_truthiness_and_repr():
    assert CheckResult(True, [], 3) and not CheckResult(False, ["x"], 3)
    assert repr(CheckResult(False, ["x"], 3)) == "CheckResult(passed=False, 1 failure)"
    assert repr(CheckResult(False, ["x", "y"], 3)) == "CheckResult(passed=False, 2 failures)"
    assert repr(CheckResult(True, [], 3)) == "CheckResult(passed=True, 3 cases)"
