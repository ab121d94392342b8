"""The one-stage detectors: post-processing against torchvision, torchvision's I/O, losses, bad input."""

import pytest
import torch
from torch import nn
from torchvision.ops import batched_nms, clip_boxes_to_image

from course_lib import references
from course_lib.data import ShapeScenes
from course_lib.models.one_stage import OneStageDetector
from course_lib.recipes import retinanet, ssd, yolo_v1

LOSSES = {
    "yolo_v1": {"loss_xy", "loss_wh", "loss_obj", "loss_noobj", "loss_class"},
    "ssd": {"loss_classifier", "loss_box_reg"},
    "retinanet": {"loss_classifier", "loss_box_reg"},
}
RECIPES = {"yolo_v1": yolo_v1, "ssd": ssd, "retinanet": retinanet}
BOX_LOSSES = {
    "yolo_v1": ("loss_xy", "loss_wh", "loss_obj", "loss_class"),
    "ssd": ("loss_box_reg",),
    "retinanet": ("loss_box_reg",),
}


def detector(num_classes=3, **kwargs):
    return OneStageDetector(nn.Identity(), num_classes, **kwargs)  # the backbone is not used here


# --- select_detections ----------------------------------------------------------------------------


def test_select_detections_by_hand():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [30, 30, 40, 40]])
    scores = torch.tensor([[0.9, 0.05, 0.5], [0.8, 0.7, 0.2], [0.05, 0.05, 0.6]])  # (N, K = 3)
    result = detector(score_thresh=0.5, nms_thresh=0.5).select_detections(boxes, scores, (64, 64))
    # kept: (0, class 1) 0.9, (1, class 1) 0.8 suppressed by it, (1, class 2) 0.7, (2, class 3) 0.6;
    # 0.5 is not above the threshold
    torch.testing.assert_close(result["scores"], torch.tensor([0.9, 0.7, 0.6]))
    assert result["labels"].tolist() == [1, 2, 3] and result["labels"].dtype == torch.int64
    torch.testing.assert_close(result["boxes"], boxes[[0, 1, 2]])


def test_select_detections_clips_drops_small_boxes_and_caps_the_count():
    boxes = torch.tensor([[-5.0, -5, 10, 10], [60, 20, 90, 30], [63.5, 0, 80, 10], [20, 20, 30, 30]])
    scores = torch.tensor([[0.9], [0.8], [0.7], [0.6]])
    model = detector(num_classes=1, score_thresh=0.1, min_size=1.0)
    result = model.select_detections(boxes, scores, (50, 64))
    # the third box is 0.5 px wide once clipped: dropped
    torch.testing.assert_close(
        result["boxes"], torch.tensor([[0.0, 0, 10, 10], [60, 20, 64, 30], [20, 20, 30, 30]])
    )
    model.detections_per_img = 2
    assert model.select_detections(boxes, scores, (50, 64))["scores"].tolist() == pytest.approx([0.9, 0.8])


def test_top_k_keeps_only_the_best_candidates_before_nms():
    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]])
    scores = torch.tensor([[0.3, 0.9], [0.8, 0.2], [0.7, 0.6]])
    result = detector(num_classes=2, topk_candidates=2, score_thresh=0.0).select_detections(
        boxes, scores, (64, 64)
    )
    torch.testing.assert_close(result["scores"], torch.tensor([0.9, 0.8]))
    assert result["labels"].tolist() == [2, 1]


@pytest.mark.parametrize("empty", ["no candidates", "none above the threshold"])
def test_select_detections_of_nothing_is_typed_and_empty(empty):
    count = 0 if empty == "no candidates" else 5
    result = detector(score_thresh=0.5).select_detections(
        torch.zeros(count, 4), torch.zeros(count, 3), (32, 32)
    )
    assert (
        result["boxes"].shape == (0, 4) and result["scores"].shape == (0,) and result["labels"].shape == (0,)
    )
    assert result["boxes"].dtype == torch.float32 and result["labels"].dtype == torch.int64


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_select_detections_equals_torchvision_batched_nms_on_the_kept_candidates(seed):
    generator = torch.Generator().manual_seed(seed)
    boxes = references.random_boxes(
        300, generator, corner_range=70, min_side=0.5, side_range=30
    )  # some outside
    scores = torch.rand(300, 4, generator=generator)
    model = detector(
        num_classes=4,
        score_thresh=0.3,
        nms_thresh=0.4,
        topk_candidates=500,
        detections_per_img=60,
        min_size=2.0,
    )
    result = model.select_detections(boxes, scores, (64, 80))
    flat = scores.reshape(-1)
    keep = torch.nonzero(flat > 0.3)[:, 0]
    keep = keep[flat[keep].topk(500).indices]
    chosen, chosen_scores, labels = clip_boxes_to_image(boxes[keep // 4], (64, 80)), flat[keep], keep % 4 + 1
    sides = chosen[:, 2:] - chosen[:, :2]
    wide = (sides >= 2.0).all(dim=1)
    chosen, chosen_scores, labels = chosen[wide], chosen_scores[wide], labels[wide]
    kept = batched_nms(chosen, chosen_scores, labels, 0.4)[:60]
    assert len(kept) == 60  # the cap bites
    torch.testing.assert_close(result["boxes"], chosen[kept])
    torch.testing.assert_close(result["scores"], chosen_scores[kept])
    assert torch.equal(result["labels"], labels[kept])


# --- the three detectors: torchvision's I/O convention ---------------------------------------------


@pytest.fixture(scope="module")
def scenes():
    dataset = ShapeScenes(2, image_size=64, seed=5)
    return [
        (image, {"boxes": t["boxes"], "labels": t["labels"]}) for image, t in (dataset[i] for i in range(2))
    ]


@pytest.fixture(scope="module", params=list(RECIPES))
def named_model(request):
    torch.manual_seed(0)
    return request.param, RECIPES[request.param].build()


def test_training_mode_returns_the_losses_and_they_backpropagate(named_model, scenes):
    name, model = named_model
    model.train()
    model.zero_grad()
    losses = model([image for image, _ in scenes], [target for _, target in scenes])
    assert set(losses) == LOSSES[name]
    assert all(value.shape == () and torch.isfinite(value) for value in losses.values())
    sum(losses.values()).backward()
    assert model.backbone.stem[0][0].weight.grad is not None
    assert model.training and not model.backbone.stem[0][1].training  # batch norm frozen


def test_an_image_without_objects_is_valid_training_input(named_model, scenes):
    name, model = named_model
    model.train()
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    losses = model([scenes[0][0]], [empty])
    assert all(losses[key] == 0 for key in BOX_LOSSES[name])
    assert all(torch.isfinite(value) for value in losses.values())
    if name == "ssd":  # hard negative mining keeps 3 negatives per positive: none here (as torchvision)
        assert losses["loss_classifier"] == 0
    else:  # the background terms still count
        assert sum(losses.values()) > 0
    sum(losses.values()).backward()


def test_eval_mode_returns_one_dict_per_image_best_first(named_model, scenes):
    name, model = named_model
    model.eval()
    model.score_thresh, model.detections_per_img = 0.0, 7
    try:
        with torch.no_grad():
            detections = model([image for image, _ in scenes])
    finally:
        model.score_thresh, model.detections_per_img = RECIPES[name].INFERENCE["score_thresh"], 100
    assert len(detections) == 2
    for result in detections:
        assert set(result) == {"boxes", "scores", "labels"}
        D = len(result["scores"])
        assert 0 < D <= 7 and result["boxes"].shape == (D, 4) and result["boxes"].dtype == torch.float32
        assert torch.equal(result["scores"], result["scores"].sort(descending=True).values)
        assert result["labels"].dtype == torch.int64
        assert result["labels"].min() >= 1 and result["labels"].max() <= 5


def test_images_of_different_sizes_in_one_batch(named_model):
    name, model = named_model
    model.eval()
    model.score_thresh = 0.0
    try:
        with torch.no_grad():
            detections = model([torch.rand(3, 40, 64), torch.rand(3, 64, 24)])
    finally:
        model.score_thresh = RECIPES[name].INFERENCE["score_thresh"]
    assert len(detections[0]["boxes"]) > 0 and len(detections[1]["boxes"]) > 0
    assert detections[0]["boxes"][:, 3].max() <= 40 and detections[0]["boxes"][:, 2].max() <= 64
    assert detections[1]["boxes"][:, 2].max() <= 24 and detections[1]["boxes"][:, 3].max() <= 64


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m, img, t: m.eval()(img[0]), TypeError, "expected a list of Tensor"),
        (lambda m, img, t: m.eval()([img[0][:1]]), ValueError, r"expected a Tensor\[3, H, W\]"),
        (lambda m, img, t: m.eval()([img[0] * 255]), ValueError, r"values in \[0, 1\]"),
        (lambda m, img, t: m.train()(img), ValueError, "one dict per image in training mode"),
        (
            lambda m, img, t: m.train()(img, [{**t, "labels": t["labels"] + 10}]),
            ValueError,
            r"classes in 1..5",
        ),
        (lambda m, img, t: m.train()(img, [{**t, "labels": t["labels"] * 0}]), ValueError, "0 is background"),
        (lambda m, img, t: m.train()(img, [{"boxes": t["boxes"]}]), ValueError, "'labels'"),
    ],
)
def test_bad_input_gets_a_clear_error(named_model, scenes, call, error, message):
    _, model = named_model
    image, target = scenes[0]
    with pytest.raises(error, match=message):
        call(model, [image], target)


def test_select_detections_refuses_scores_with_the_wrong_number_of_classes():
    detector = OneStageDetector(None, num_classes=3)
    with pytest.raises(ValueError, match="one column per class"):
        detector.select_detections(torch.tensor([[0.0, 0, 4, 4]]), torch.rand(1, 4), (8, 8))
