"""Tests for course_lib.widgets.boxes: the IoU and AP explorers and their pure functions."""

import base64
import contextlib
import io
import re

import numpy as np
import pytest
import torch
import torchvision.ops
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.widgets.boxes import APExplorer, IoUExplorer, ap_view, iou_view


def _random_boxes(num_boxes, seed, size=100.0):
    generator = torch.Generator().manual_seed(seed)
    corners = torch.rand(num_boxes, 2, generator=generator) * size
    sizes = torch.rand(num_boxes, 2, generator=generator) * size / 2 + 1
    return torch.cat([corners, corners + sizes], dim=1)


def _shown_png(explorer):
    (output,) = explorer.output.outputs
    assert output["output_type"] == "display_data"
    return base64.b64decode(output["data"]["image/png"])


# --- iou_view ---------------------------------------------------------------------------------
def test_iou_view_hand_computed():
    view = iou_view((0, 0, 10, 10), (5, 5, 15, 15))
    assert view["intersection_box"] == [5, 5, 10, 10]
    assert view["enclosing_box"] == [0, 0, 15, 15]
    assert (view["intersection_area"], view["union_area"], view["enclosing_area"]) == (25, 175, 225)
    assert view["iou"] == pytest.approx(25 / 175)
    assert view["giou"] == pytest.approx(25 / 175 - (225 - 175) / 225)


def test_iou_view_disjoint_identical_and_nested_boxes():
    disjoint = iou_view((0, 0, 10, 10), (20, 0, 30, 10))
    assert disjoint["iou"] == 0 and disjoint["intersection_box"] is None
    assert disjoint["giou"] == pytest.approx(-100 / 300)
    touching = iou_view((0, 0, 10, 10), (10, 0, 20, 10))  # share an edge: no area in common
    assert touching["intersection_box"] is None and touching["giou"] == 0
    same = iou_view(torch.tensor([1.0, 2, 3, 4]), [1, 2, 3, 4])
    assert same["iou"] == same["giou"] == 1 and same["intersection_box"] == [1, 2, 3, 4]
    nested = iou_view((0, 0, 10, 10), (2, 2, 7, 7))
    assert nested["iou"] == nested["giou"] == pytest.approx(25 / 100)


@settings(max_examples=40)
@given(st.integers(0, 2**31 - 1))
def test_iou_view_matches_torchvision_and_is_symmetric(seed):
    box_a, box_b = _random_boxes(2, seed)
    view = iou_view(box_a, box_b)
    assert view["iou"] == pytest.approx(float(torchvision.ops.box_iou(box_a[None], box_b[None])), abs=1e-6)
    assert view["giou"] == pytest.approx(
        float(torchvision.ops.generalized_box_iou(box_a[None], box_b[None])), abs=1e-6
    )
    swapped = iou_view(box_b, box_a)
    assert swapped["iou"] == pytest.approx(view["iou"]) and swapped["union_area"] == pytest.approx(
        view["union_area"]
    )
    assert -1 <= view["giou"] <= view["iou"] <= 1


@pytest.mark.parametrize(
    "box, match",
    [
        ((0, 0, 10), r"box_a: expected 4 numbers \(x1, y1, x2, y2\), got shape \(3,\)"),
        ((10, 0, 0, 10), r"box_a: expected x2 > x1 and y2 > y1, got \[10.0, 0.0, 0.0, 10.0\]"),
        ((0, 0, 0, 10), "expected x2 > x1"),
        ((0, 0, float("nan"), 10), "expected finite coordinates"),
    ],
)
def test_iou_view_rejects_bad_boxes(box, match):
    with pytest.raises(ValueError, match=match):
        iou_view(box, (0, 0, 5, 5))


# --- IoUExplorer ------------------------------------------------------------------------------
STATUS_IOU = re.compile(r"IoU = (-?\d\.\d{3}), GIoU = (-?\d\.\d{3})")


def _status_numbers(explorer):
    match = STATUS_IOU.search(explorer.status.value)
    assert match, explorer.status.value
    return float(match.group(1)), float(match.group(2))


def test_iou_explorer_sliders_move_box_b():
    explorer = IoUExplorer(box_a=(20, 20, 70, 70), image_size=128)
    for name, value in {"x": 20, "y": 20, "w": 50, "h": 50}.items():
        explorer.controls[name].value = value
    assert explorer.result["box_b"] == [20, 20, 70, 70]
    assert _status_numbers(explorer) == (1.0, 1.0)
    explorer.controls["x"].value = 45  # half of box B slides off A
    assert explorer.result["iou"] == pytest.approx(25 * 50 / (2 * 2500 - 25 * 50))
    assert _status_numbers(explorer)[0] == pytest.approx(1 / 3, abs=1e-3)
    ax = explorer.axes[0]
    assert len(ax.patches) == 4  # enclosing box, intersection, A, B
    assert ax.get_xlim() == (0, 128) and ax.get_ylim() == (128, 0)


def test_iou_explorer_at_the_slider_extremes():
    explorer = IoUExplorer()
    controls = explorer.controls
    controls["x"].value, controls["y"].value, controls["w"].value, controls["h"].value = 0, 0, 1, 1  # tiny
    assert explorer.result["iou"] == 0 and explorer.result["intersection_box"] is None
    assert len(explorer.axes[0].patches) == 3  # no intersection to fill
    controls["w"].value, controls["h"].value = 128, 128  # B covers the whole canvas, A inside it
    assert explorer.result["iou"] == pytest.approx(2500 / 128**2)
    assert explorer.result["giou"] == pytest.approx(explorer.result["iou"])
    controls["x"].value, controls["y"].value = 128, 128  # B entirely off the canvas
    assert explorer.result["iou"] == 0 and explorer.result["giou"] < 0
    assert _shown_png(explorer).startswith(b"\x89PNG")


def test_iou_explorer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="expected x2 > x1"):
        IoUExplorer(box_a=(70, 20, 20, 70))
    with pytest.raises(TypeError, match="image_size: expected an int"):
        IoUExplorer(image_size=12.5)


# --- ap_view ----------------------------------------------------------------------------------
GT = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
PREDS = torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [21, 21, 30, 30]])
SCORES = torch.tensor([0.9, 0.8, 0.7])


def test_ap_view_hand_computed():
    view = ap_view(PREDS, SCORES, GT, 0.5)
    assert view["is_true_positive"].tolist() == [True, False, True]
    np.testing.assert_allclose(view["precision"], [1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(view["recall"], [0.5, 0.5, 1.0])
    np.testing.assert_allclose(view["envelope"], [1, 2 / 3, 2 / 3])
    # 101 recall points: 0..0.50 read precision 1, 0.51..1.00 read 2/3.
    assert view["ap"] == pytest.approx((51 * 1 + 50 * 2 / 3) / 101)
    assert view["ap_all_points"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert (view["num_true_positives"], view["num_predictions"], view["num_gt"]) == (2, 3, 2)


def test_ap_view_strict_threshold_turns_true_positives_into_false_ones():
    iou_third_box = 81 / 100  # [21, 21, 30, 30] inside [20, 20, 30, 30]
    assert ap_view(PREDS, SCORES, GT, iou_third_box)["is_true_positive"].tolist() == [True, False, True]
    strict = ap_view(PREDS, SCORES, GT, 0.85)
    assert strict["is_true_positive"].tolist() == [True, False, False]
    assert strict["ap"] < ap_view(PREDS, SCORES, GT, 0.5)["ap"]


def _pycocotools_ap(pred_boxes, pred_scores, gt_boxes, iou_threshold):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(boxes):
        return torchvision.ops.box_convert(boxes, "xyxy", "xywh").tolist()

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {
            "images": [{"id": 1}], "categories": [{"id": 1}],
            "annotations": [
                {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": box, "area": box[2] * box[3],
                 "iscrowd": 0}
                for i, box in enumerate(xywh(gt_boxes))
            ],
        }
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes([{"image_id": 1, "category_id": 1, "bbox": box, "score": float(score)}
                                   for box, score in zip(xywh(pred_boxes), pred_scores, strict=True)])
        evaluation = COCOeval(coco_gt, coco_dt, "bbox")
        evaluation.params.iouThrs = np.array([iou_threshold])
        evaluation.params.areaRng, evaluation.params.areaRngLbl = [[0, 1e10]], ["all"]
        evaluation.params.maxDets = [100]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][0, :, 0, 0, 0]  # (101,) recall points
    return float(np.mean(np.maximum(precision, 0)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("iou_threshold", [0.3, 0.5, 0.75])
def test_ap_view_matches_pycocotools(seed, iou_threshold):
    gt_boxes = _random_boxes(5, seed)
    jitter = torch.randn(15, 4, generator=torch.Generator().manual_seed(seed)) * 4
    pred_boxes = gt_boxes.repeat(3, 1) + jitter
    pred_boxes[:, 2:] = torch.maximum(pred_boxes[:, 2:], pred_boxes[:, :2] + 1)
    pred_scores = torch.rand(15, generator=torch.Generator().manual_seed(seed + 100))
    view = ap_view(pred_boxes, pred_scores, gt_boxes, iou_threshold)
    expected = _pycocotools_ap(pred_boxes, pred_scores, gt_boxes, iou_threshold)
    assert view["ap"] == pytest.approx(expected, abs=1e-9)


def test_ap_view_without_predictions_or_ground_truth():
    empty = ap_view(torch.zeros(0, 4), torch.zeros(0), GT, 0.5)
    assert empty["ap"] == 0.0 and empty["precision"].shape == (0,) and empty["is_true_positive"].shape == (0,)
    no_gt = ap_view(PREDS, SCORES, torch.zeros(0, 4), 0.5)
    assert no_gt["ap"] == 0.0 and no_gt["num_true_positives"] == 0
    assert not torch.isnan(no_gt["precision"]).any()


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((PREDS, SCORES[:2], GT, 0.5), ValueError, r"pred_scores: expected a Tensor\[3\]"),
        ((PREDS[:, :3], SCORES, GT, 0.5), ValueError, r"pred_boxes: expected a Tensor\[N, 4\]"),
        ((PREDS, SCORES, GT, 1.5), ValueError, r"iou_threshold: expected a value in \[0.0, 1.0\]"),
        ((PREDS, SCORES, [[0, 0, 1, 1]], 0.5), TypeError, "gt_boxes: expected a torch.Tensor"),
    ],
)
def test_ap_view_rejects_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        ap_view(*args)


# --- APExplorer -------------------------------------------------------------------------------
STATUS_AP = re.compile(r"AP@IoU=(\d\.\d\d) = (\d\.\d{3}) \(TP (\d+) of (\d+)")


def test_ap_explorer_threshold_slider_changes_tp_and_ap():
    explorer = APExplorer(PREDS, SCORES, GT, image=torch.rand(3, 64, 64))
    expected_ap = f"{(51 + 100 / 3) / 101:.3f}"
    assert STATUS_AP.search(explorer.status.value).groups() == ("0.50", expected_ap, "2", "3")
    explorer.controls["iou_threshold"].value = 0.95  # the slider's maximum
    assert STATUS_AP.search(explorer.status.value).group(3) == "1"
    image_ax, curve_ax = explorer.axes
    assert len(image_ax.patches) == 5 and len(image_ax.images) == 1  # 2 ground truth + 3 detections
    assert len(curve_ax.lines) == 2  # precision and its envelope
    explorer.controls["iou_threshold"].value = 0.05
    assert STATUS_AP.search(explorer.status.value).groups()[0] == "0.05"
    assert explorer.result["iou_threshold"] == 0.05


def test_ap_explorer_with_zero_detections():
    explorer = APExplorer(torch.zeros(0, 4), torch.zeros(0), GT)
    assert STATUS_AP.search(explorer.status.value).groups() == ("0.50", "0.000", "0", "0")
    explorer.controls["iou_threshold"].value = 0.95
    assert explorer.result["ap"] == 0.0
    assert _shown_png(explorer).startswith(b"\x89PNG")
