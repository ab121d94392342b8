"""Tests of the CenterNet peak checker: it passes correct solutions and catches typical mistakes.

The wrong answers are written the way students write them (not through the checker's ``_variant``),
so these tests also check that the checker recognizes real code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.exercises.base import run_exercise
from course_lib.exercises.centernet import HEATMAP_PEAKS, check_heatmap_peaks, reference_heatmap_peaks
from course_lib.models.centernet import heatmap_peaks
from exercises.checks import assert_catches, assert_every_known_mistake_is_caught, assert_passes


def student_peaks(heatmap, threshold, kernel=3, stride=1, padding=1, per_class=True, nms=True,
                  strictly_above=True, use_threshold=True, by_score=True):
    """The exercise's max pooling, with the switches a student gets wrong."""
    source = heatmap.amax(dim=0, keepdim=True) if not per_class else heatmap  # (K or 1, h, w)
    pooled = F.max_pool2d(source[None], kernel, stride=stride, padding=padding)[0]
    if pooled.shape[-2:] != heatmap.shape[-2:]:  # the "fix" of a shape mismatch: cut or resize
        if stride > 1:
            pooled = F.interpolate(pooled[None], size=heatmap.shape[-2:], mode="nearest")[0]
        elif padding == 0:
            pooled = F.pad(pooled, (1, 1, 1, 1), value=2.0)  # the border is never a peak
        pooled = pooled[..., : heatmap.shape[1], : heatmap.shape[2]]
    keep = pooled == heatmap if nms else torch.ones_like(heatmap, dtype=torch.bool)
    if use_threshold:
        keep &= heatmap > threshold if strictly_above else heatmap >= threshold
    classes, ys, xs = keep.nonzero(as_tuple=True)
    rows = torch.stack([classes, ys, xs], dim=1)
    if by_score:
        rows = rows[torch.argsort(heatmap[classes, ys, xs], descending=True, stable=True)]
    return rows


def loop_peaks(heatmap, threshold):
    """Pixel by pixel: no neighbour larger, score above the threshold; sorted by (-score, class, y, x)."""
    K, h, w = heatmap.shape
    found = []
    for k in range(K):
        for y in range(h):
            for x in range(w):
                score = float(heatmap[k, y, x])
                neighbours = heatmap[k, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
                if score > threshold and score >= float(neighbours.max()):
                    found.append((-score, k, y, x))
    return torch.tensor([row[1:] for row in sorted(found)], dtype=torch.int64).reshape(-1, 3)


def numpy_peaks(heatmap, threshold):
    """scipy-free numpy: the 3 x 3 maximum from the nine shifted copies of a -inf padded map."""
    scores = heatmap.numpy()
    K, h, w = scores.shape
    padded = np.pad(scores, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    maximum = np.max([padded[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], axis=0)
    classes, ys, xs = np.nonzero((maximum == scores) & (scores > threshold))
    order = np.argsort(-scores[classes, ys, xs], kind="stable")
    return np.stack([classes, ys, xs], axis=1)[order].tolist()  # a list of lists, [] when empty


@pytest.mark.parametrize("solution", [student_peaks, loop_peaks, numpy_peaks, reference_heatmap_peaks],
                         ids=["max_pool2d", "loops", "numpy lists", "reference"])
def test_checker_passes_a_correct_solution(solution, capsys):
    assert_passes(check_heatmap_peaks, solution, capsys)


MISTAKES = [
    (lambda h, t: student_peaks(h, t, nms=False), "the pooling is CenterNet's NMS"),
    (lambda h, t: student_peaks(h, t, padding=0), "the peaks on the border are lost"),
    (lambda h, t: student_peaks(h, t, kernel=2), "a 2 x 2 window is not centred"),
    (lambda h, t: student_peaks(h, t, stride=3), "stride 3 cuts the map into blocks"),
    (lambda h, t: student_peaks(h, t, per_class=False), "pool each class's map on its own"),
    (lambda h, t: student_peaks(h, t, strictly_above=False), "strictly above the threshold"),
    (lambda h, t: student_peaks(h, t, use_threshold=False), "keep only the peaks whose score is above"),
    (lambda h, t: student_peaks(h, t, by_score=False), "order the peaks by decreasing score"),
]


@pytest.mark.parametrize("wrong, hint", MISTAKES)
def test_checker_catches_a_typical_mistake_with_its_hint(wrong, hint, capsys):
    assert_catches(check_heatmap_peaks, wrong, hint, capsys)


def test_a_strict_maximum_drops_the_plateau_and_gets_its_hint(capsys):
    def strict(heatmap, threshold):  # larger than every neighbour: a plateau has no peak
        rows = loop_peaks(heatmap, threshold).tolist()
        K, h, w = heatmap.shape
        def alone(k, y, x):
            patch = heatmap[k, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
            return int((patch == heatmap[k, y, x]).sum()) == 1
        return torch.tensor([row for row in rows if alone(*row)], dtype=torch.int64).reshape(-1, 3)

    assert_catches(check_heatmap_peaks, strict, "two equal neighbours are both kept", capsys)


def test_every_known_mistake_is_caught_by_some_case_with_its_own_hint():
    assert_every_known_mistake_is_caught(HEATMAP_PEAKS)


def test_the_first_failure_of_each_known_mistake_shows_its_own_hint():
    # The report shows the first failing case only: no other mistake may explain that one first.
    for mistake in HEATMAP_PEAKS.mistakes:
        result = run_exercise(HEATMAP_PEAKS, mistake.wrong, verbose=False)
        assert mistake.hint in result.failures[0], mistake.hint


def test_reference_by_hand():
    heatmap = torch.full((2, 3, 4), 0.1)
    heatmap[0, 0, 0], heatmap[0, 0, 1], heatmap[1, 2, 3], heatmap[0, 2, 2] = 0.6, 0.6, 0.9, 0.4
    # The plateau (0, 0, 0)-(0, 0, 1) keeps both pixels; (0, 2, 2) is below 0.5.
    assert reference_heatmap_peaks(heatmap, 0.5).tolist() == [[1, 2, 3], [0, 0, 0], [0, 0, 1]]
    assert reference_heatmap_peaks(heatmap, 0.9).shape == (0, 3)  # strictly above
    assert reference_heatmap_peaks(heatmap, 0.5).dtype == torch.int64


@pytest.mark.parametrize("seed", range(5))
def test_reference_agrees_with_loops_and_numpy_on_random_heatmaps(seed):
    generator = torch.Generator().manual_seed(seed)
    heatmap = torch.rand(3, 7, 9, generator=generator)
    heatmap = (heatmap * 4).round() / 4  # values in {0, 0.25, ..., 1}: many ties and plateaus
    for threshold in (0.0, 0.3, 0.75):
        expected = reference_heatmap_peaks(heatmap, threshold)
        assert torch.equal(loop_peaks(heatmap, threshold), expected)
        assert numpy_peaks(heatmap, threshold) == expected.tolist()
        scores = heatmap_peaks(heatmap, k=heatmap.numel())[0]
        assert len(expected) == int((scores > threshold).sum())


def test_cases_cover_plateaus_borders_classes_the_threshold_and_the_empty_answer():
    answers = [reference_heatmap_peaks(*case.args) for case in HEATMAP_PEAKS.cases]
    assert any(len(rows) == 0 for rows in answers)
    assert any(case.args[0].shape[0] == 1 for case in HEATMAP_PEAKS.cases)
    assert any(case.args[0].shape[1] != case.args[0].shape[2] for case in HEATMAP_PEAKS.cases)  # y vs x
    border = [rows for rows, case in zip(answers, HEATMAP_PEAKS.cases, strict=True)
              if ((rows[:, 1] == 0) | (rows[:, 1] == case.args[0].shape[1] - 1)).any()]
    assert border
    assert any(bool((case.args[0] == case.args[1]).any()) for case in HEATMAP_PEAKS.cases)  # at the threshold


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda h, t: student_peaks(h, t).float(), "expected integer rows (class, y, x), got dtype "
         "torch.float32"),
        (lambda h, t: student_peaks(h, t)[:, 1:], "expected a Tensor[P, 3] of rows (class, y, x)"),
        (lambda h, t: student_peaks(h, t).flatten(), "got shape"),
        (lambda h, t: "peaks", "expected an int64 Tensor[P, 3] of rows (class, y, x), got str"),
    ],
    ids=["floats", "two columns", "flat", "not a tensor"],
)
def test_wrong_shapes_are_explained(wrong, message, capsys):
    result = check_heatmap_peaks(wrong)
    out = capsys.readouterr().out
    assert not result and message in out, out


def test_an_empty_list_is_an_answer_without_peaks():
    assert check_heatmap_peaks(numpy_peaks, verbose=False)  # returns [] on the empty case


def test_a_shape_mismatch_is_reported_with_the_pooling_hint(capsys):
    def unpadded(heatmap, threshold):  # no padding and no fix: the comparison fails to broadcast
        pooled = F.max_pool2d(heatmap[None], 3, stride=1)[0]
        return torch.stack((pooled == heatmap).nonzero(as_tuple=True), dim=1)

    result = check_heatmap_peaks(unpadded)
    out = capsys.readouterr().out
    assert not result and "raised RuntimeError" in out and "padding=1)[0] has the heatmap's shape" in out


def test_stub_reports_not_implemented_without_raising(capsys):
    def heatmap_peaks_stub(heatmap, threshold):
        raise NotImplementedError  # your code

    result = check_heatmap_peaks(heatmap_peaks_stub)
    out = capsys.readouterr().out
    assert not result and "not attempted yet" in out and "Hint:" in out and "Traceback" not in out
