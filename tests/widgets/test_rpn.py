"""Tests for course_lib.widgets.rpn: rank_proposals, proposal_view and ProposalExplorer."""

import contextlib
import io
import re

import pytest
import torch
import torchvision.ops
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.widgets.rpn import ProposalExplorer, proposal_view, rank_proposals

STATUS = re.compile(r"(\d+) proposals? (after NMS at \d\.\d\d|without NMS) "
                    r"\((\d+) kept of (\d+) candidates\) "
                    r"· recall@0\.5 (\d+)/(\d+) = (\d\.\d\d)")
GT = torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 40]])
# Candidates by decreasing score: a near copy of object 0 (IoU 0.81), a duplicate of it (IoU with the
# first 0.9), a miss, then object 1 exactly.
HAND_BOXES = torch.tensor([[0.0, 0, 9, 9], [0, 0, 9, 10], [50, 50, 60, 60], [20, 20, 40, 40]])
HAND_SCORES = torch.tensor([0.9, 0.8, 0.7, 0.6])


def _candidates(seed, num=200):
    generator = torch.Generator().manual_seed(seed)
    corner = torch.rand(num, 2, generator=generator) * 100
    boxes = torch.cat([corner, corner + 4 + torch.rand(num, 2, generator=generator) * 40], dim=1)
    return boxes, torch.rand(num, generator=generator)


GT_RANDOM = torch.tensor([[10.0, 10, 40, 50], [60, 20, 100, 60], [30, 70, 50, 90], [5, 90, 20, 110]])


# --- hand-computed ----------------------------------------------------------------------------
def test_proposal_view_hand_computed():
    no_nms = proposal_view(GT, HAND_BOXES, HAND_SCORES, num_proposals=3, nms_threshold=1.0)
    assert no_nms["num_kept"] == 4 and no_nms["num_proposals"] == 3
    assert no_nms["found"].tolist() == [True, False] and no_nms["recall"] == 0.5
    assert no_nms["best_iou"][0].item() == pytest.approx(0.9)  # box 1 covers 90 of object 0's 100 pixels
    assert no_nms["best_index"][0].item() == 1
    # NMS at 0.5 removes the duplicate (IoU 0.9 with the first): now 3 proposals reach object 1.
    nms = proposal_view(GT, HAND_BOXES, HAND_SCORES, num_proposals=3, nms_threshold=0.5)
    assert nms["num_kept"] == 3 and nms["proposals"].tolist() == HAND_BOXES[[0, 2, 3]].tolist()
    assert nms["found"].tolist() == [True, True] and nms["recall"] == 1.0 and nms["num_found"] == 2
    assert nms["recall_curve"].tolist() == [0.5, 0.5, 1.0]


def test_reference_is_cut_at_the_same_count():
    reference = torch.tensor([[50.0, 50, 60, 60], [20, 20, 40, 40], [0, 0, 10, 10]])
    view = proposal_view(GT, HAND_BOXES, HAND_SCORES, 2, 0.5, reference=reference)
    assert view["reference_count"] == 2 and view["reference_recall"] == 0.5
    assert view["reference_curve"].tolist() == [0.0, 0.5, 1.0]
    longer = proposal_view(GT, HAND_BOXES, HAND_SCORES, 10, 0.5, reference=reference)
    assert longer["reference_count"] == 3 and longer["reference_recall"] == 1.0  # only 3 to give


# --- oracles and invariants -------------------------------------------------------------------
@settings(max_examples=20)
@given(seed=st.integers(0, 2**31 - 1), threshold=st.sampled_from([0.3, 0.5, 0.7, 0.9, 1.0]))
def test_recall_grows_with_the_count_and_matches_brute_force(seed, threshold):
    boxes, scores = _candidates(seed)
    kept = torchvision.ops.nms(boxes, scores, threshold)
    assert torch.equal(rank_proposals(boxes, scores, threshold), kept)
    previous = -1.0
    for count in (0, 1, 2, 5, 10, 20, 50, 100, 200, 300):
        view = proposal_view(GT_RANDOM, boxes, scores, count, threshold)
        proposals = boxes[kept[:count]]
        assert torch.equal(view["proposals"], proposals)
        ious = torchvision.ops.box_iou(GT_RANDOM, proposals)  # (G, n)
        found = [bool(len(row)) and row.max().item() >= 0.5 for row in ious]
        assert view["found"].tolist() == found
        assert view["recall"] == pytest.approx(sum(found) / len(found))
        if count:
            assert view["recall_curve"][min(count, len(kept)) - 1].item() == pytest.approx(view["recall"])
        assert view["recall"] >= previous
        previous = view["recall"]
    assert (view["recall_curve"].diff() >= 0).all()


def test_threshold_one_keeps_the_candidate_order():
    boxes, scores = _candidates(1)
    order = scores.argsort(descending=True)
    sorted_boxes, sorted_scores = boxes[order], scores[order]
    assert torch.equal(rank_proposals(sorted_boxes, sorted_scores, 1.0), torch.arange(len(boxes)))
    view = proposal_view(GT_RANDOM, sorted_boxes, sorted_scores, 50, 1.0)
    assert torch.equal(view["proposals"], sorted_boxes[:50]) and view["num_kept"] == len(boxes)
    assert torch.equal(rank_proposals(boxes, scores, 1.0), torchvision.ops.nms(boxes, scores, 1.0))
    tied = torch.zeros(len(boxes))  # ties go by lower index, as nms
    assert torch.equal(rank_proposals(boxes, tied, 1.0), torch.arange(len(boxes)))


def test_empty_inputs():
    nothing = proposal_view(GT, torch.zeros(0, 4), torch.zeros(0), 300, 0.7, reference=torch.zeros(0, 4))
    assert nothing["num_proposals"] == nothing["num_found"] == 0 and nothing["recall"] == 0.0
    assert nothing["best_index"].tolist() == [-1, -1] and nothing["reference_recall"] == 0.0
    no_gt = proposal_view(torch.zeros(0, 4), HAND_BOXES, HAND_SCORES, 3, 0.7)
    assert no_gt["recall"] == 0.0 and no_gt["num_gt"] == 0 and no_gt["recall_curve"].shape == (0,)
    zero = proposal_view(GT, HAND_BOXES, HAND_SCORES, 0, 0.7)
    assert zero["proposals"].shape == (0, 4) and zero["recall"] == 0.0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"candidate_scores": HAND_SCORES[:2]}, ValueError, r"candidate_scores: expected a Tensor\[4\]"),
        ({"candidate_boxes": HAND_BOXES[:, :3]}, ValueError, r"candidate_boxes: expected a Tensor\[N, 4\]"),
        ({"gt_boxes": GT[0]}, ValueError, r"gt_boxes: expected a Tensor\[N, 4\], got shape \(4,\)"),
        ({"nms_threshold": 1.5}, ValueError, r"nms_threshold: expected a value in \[0.0, 1.0\], got 1.5"),
        ({"num_proposals": -1}, ValueError, r"num_proposals: expected a value in \[0, inf\]"),
        ({"num_proposals": 2.5}, TypeError, "num_proposals: expected an int"),
        ({"reference": torch.zeros(3)}, ValueError, r"reference: expected a Tensor\[N, 4\]"),
    ],
)
def test_proposal_view_rejects_bad_input(kwargs, error, match):
    arguments = {"gt_boxes": GT, "candidate_boxes": HAND_BOXES, "candidate_scores": HAND_SCORES,
                 "num_proposals": 3, "nms_threshold": 0.7, **kwargs}
    with pytest.raises(error, match=match):
        proposal_view(**arguments)


# --- ProposalExplorer -------------------------------------------------------------------------
def _status(explorer):
    match = STATUS.search(explorer.status.value)
    assert match, explorer.status.value
    return match.groups()


def test_explorer_controls_and_status():
    boxes, scores = _candidates(0, num=600)
    reference, _ = _candidates(5, num=400)
    explorer = ProposalExplorer(torch.rand(3, 128, 128), GT_RANDOM, boxes, scores, reference=reference)
    count, threshold = explorer.controls["num_proposals"], explorer.controls["nms_threshold"]
    assert count.options == (1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 600) and count.value == 300
    assert (threshold.min, threshold.max, threshold.value) == (0.3, 1.0, 0.7)
    kept = torchvision.ops.nms(boxes, scores, 0.7)
    expected = proposal_view(GT_RANDOM, boxes, scores, 300, 0.7, reference=reference)
    assert _status(explorer)[:4] == (str(min(300, len(kept))), "after NMS at 0.70", str(len(kept)), "600")
    assert f"selective search at 300: {expected['reference_recall']:.2f}" in explorer.status.value
    threshold.value = 1.0
    assert _status(explorer)[:4] == ("300", "without NMS", "600", "600")
    recalls = []
    for value in count.options:
        count.value = value
        recalls.append(explorer.result["recall"])
        assert int(_status(explorer)[5]) == 4 and float(_status(explorer)[6]) == pytest.approx(
            explorer.result["recall"], abs=0.005)
    assert recalls == sorted(recalls)
    threshold.value = 0.3
    assert explorer.result["num_kept"] == len(torchvision.ops.nms(boxes, scores, 0.3))
    assert set(explorer._kept) == {0.7, 1.0, 0.3}  # NMS ran once per threshold
    assert explorer.png.startswith(b"\x89PNG") and len(explorer.axes[1].lines) == 3  # two curves, marker


def test_explorer_without_reference_or_candidates():
    explorer = ProposalExplorer(torch.rand(3, 32, 32), GT, torch.zeros(0, 4), torch.zeros(0))
    assert explorer.controls["num_proposals"].options == (0,)
    assert _status(explorer)[0] == "0" and "selective search" not in explorer.status.value
    explorer.controls["nms_threshold"].value = 0.5
    assert explorer.result["recall"] == 0.0


def test_explorer_is_print_free():
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        explorer = ProposalExplorer(torch.rand(3, 32, 32), GT, HAND_BOXES, HAND_SCORES)
        explorer.controls["nms_threshold"].value = 0.5
    assert stdout.getvalue() == ""


@pytest.mark.parametrize(
    "arguments, match",
    [
        ((torch.rand(32, 32), GT, HAND_BOXES, HAND_SCORES), r"image: expected a Tensor\[3, H, W\]"),
        ((torch.rand(3, 32, 32), GT, HAND_BOXES, HAND_SCORES[:1]), r"candidate_scores: expected a Tensor\["),
        ((torch.rand(3, 32, 32), GT[:, :2], HAND_BOXES, HAND_SCORES), r"gt_boxes: expected a Tensor\[N, 4\]"),
    ],
)
def test_explorer_rejects_bad_input(arguments, match):
    with pytest.raises(ValueError, match=match):
        ProposalExplorer(*arguments)
