"""Tests for course_lib.widgets.detr (the views and both explorers) and detr.matching_cost_parts."""

import pytest
import scipy.optimize
import torch

from course_lib.boxes import box_convert, generalized_box_iou
from course_lib.models.detr import DETR, WEIGHTS, matching_cost, matching_cost_parts
from course_lib.recipes.detection import scenes
from course_lib.widgets.detr import (
    CrossAttentionExplorer,
    MatchingExplorer,
    attention_view,
    matching_view,
)


def random_boxes(count, generator):
    centres = 0.2 + 0.6 * torch.rand(count, 2, generator=generator)
    sizes = 0.05 + 0.3 * torch.rand(count, 2, generator=generator)
    return torch.cat([centres, sizes], dim=1)  # (count, 4) normalized cxcywh


def random_case(seed, Q=30, M=4, K=5):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(Q, K, generator=generator) * 2
    return logits, random_boxes(Q, generator), torch.randint(0, K, (M,), generator=generator), random_boxes(
        M, generator)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DETR().eval()


@pytest.fixture(scope="module")
def data():
    return scenes("val", 4)


@pytest.fixture(scope="module")
def outputs(model, data):
    with torch.no_grad():
        encoded = model.encode([data[0][0]])
        return model.decode(encoded), encoded["size"]


# --- matching_cost_parts and the weights of matching_cost -------------------------------------
def test_matching_cost_is_its_weighted_parts_and_default_weights_are_detrs():
    logits, boxes, labels, targets = random_case(0)
    parts = matching_cost_parts(logits, boxes, labels, targets)
    assert set(parts) == {"class", "l1", "giou"} and all(p.shape == (30, 4) for p in parts.values())
    torch.testing.assert_close(parts["l1"], torch.cdist(boxes, targets, p=1))
    corners = box_convert(boxes, "cxcywh", "xyxy"), box_convert(targets, "cxcywh", "xyxy")
    torch.testing.assert_close(parts["giou"], -generalized_box_iou(*corners))
    expected = 2 * parts["class"] + 5 * parts["l1"] + 2 * parts["giou"]
    assert torch.equal(matching_cost(logits, boxes, labels, targets), matching_cost(
        logits, boxes, labels, targets, weights=WEIGHTS))
    torch.testing.assert_close(matching_cost(logits, boxes, labels, targets), expected)


# --- matching_view ----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weights", [WEIGHTS, {"class": 0.0, "l1": 10.0, "giou": 1.0},
                                     {"class": 7.5, "l1": 0.0, "giou": 0.0}])
def test_matching_view_has_scipys_least_total_cost(seed, weights):
    logits, boxes, labels, targets = random_case(seed, M=1 + seed)
    view = matching_view(logits, boxes, labels, targets, weights)
    cost = view["cost"]
    assert cost.shape == (30, 1 + seed) and view["rows"].shape == view["cols"].shape == (1 + seed,)
    rows, cols = scipy.optimize.linear_sum_assignment(cost.double().numpy())
    assert view["total"] == pytest.approx(float(cost.double()[rows, cols].sum()), abs=1e-5)
    assert sorted(view["cols"].tolist()) == list(range(1 + seed))  # every object gets one query
    assert len(set(view["rows"].tolist())) == 1 + seed
    assert sum(view["matched_terms"].values()) == pytest.approx(view["total"], abs=1e-4)
    assert view["rows"].tolist() == sorted(view["rows"].tolist())  # rows ascending, as scipy's


def test_matching_view_weights_change_the_cost_matrix_as_the_formula_says():
    logits, boxes, labels, targets = random_case(1)
    only_l1 = matching_view(logits, boxes, labels, targets, {"class": 0, "l1": 1, "giou": 0})
    torch.testing.assert_close(only_l1["cost"], torch.cdist(boxes, targets, p=1))
    only_giou = matching_view(logits, boxes, labels, targets, {"class": 0, "l1": 0, "giou": 3})
    corners = box_convert(boxes, "cxcywh", "xyxy"), box_convert(targets, "cxcywh", "xyxy")
    torch.testing.assert_close(only_giou["cost"], -3 * generalized_box_iou(*corners))
    default = matching_view(logits, boxes, labels, targets, dict(WEIGHTS))
    torch.testing.assert_close(default["cost"], matching_cost(logits, boxes, labels, targets), rtol=0, atol=0)
    # The L1-only matching gives each object one of its nearest boxes: a query 0.0 away wins.
    boxes[17] = targets[2]
    assert 17 not in only_l1["rows"].tolist()  # before
    view = matching_view(logits, boxes, labels, targets, {"class": 0, "l1": 1, "giou": 0})
    assert (17, 2) in zip(view["rows"].tolist(), view["cols"].tolist(), strict=True)
    assert float(view["cost"][17, 2]) == 0.0


def test_matching_view_shows_the_matched_queries_first_then_the_cheapest():
    logits, boxes, labels, targets = random_case(2, M=3)
    view = matching_view(logits, boxes, labels, targets, WEIGHTS, num_shown=8)
    shown = view["shown"]
    assert len(shown) == 8 and len(set(shown.tolist())) == 8
    pairs = sorted(zip(view["cols"].tolist(), view["rows"].tolist(), strict=True))
    assert shown[:3].tolist() == [query for _, query in pairs]  # in object order
    cheapest = view["cost"].min(dim=1).values
    others = [q for q in range(30) if q not in view["rows"].tolist()]
    expected = sorted(others, key=lambda q: (float(cheapest[q]), q))[:5]
    assert shown[3:].tolist() == expected
    assert len(matching_view(logits, boxes, labels, targets, WEIGHTS, num_shown=1)["shown"]) == 3  # matched
    assert len(matching_view(logits, boxes, labels, targets, WEIGHTS, num_shown=100)["shown"]) == 30


def test_matching_view_of_an_image_without_objects_is_empty():
    logits, boxes, _, _ = random_case(3)
    view = matching_view(logits, boxes, torch.zeros(0, dtype=torch.int64), torch.zeros(0, 4), WEIGHTS)
    assert view["cost"].shape == (30, 0) and view["rows"].numel() == view["cols"].numel() == 0
    assert view["total"] == 0.0 and all(v == 0.0 for v in view["matched_terms"].values())
    assert view["shown"].tolist() == list(range(10))  # the cheapest of nothing: index order
    assert not any(torch.isnan(p).any() for p in view["parts"].values())


def test_matching_view_with_more_objects_than_queries_leaves_some_out():
    logits, boxes, labels, targets = random_case(4, Q=2, M=4)
    view = matching_view(logits, boxes, labels, targets, WEIGHTS)
    assert view["rows"].tolist() == [0, 1] and len(set(view["cols"].tolist())) == 2
    assert len(view["shown"]) == 2


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"weights": {"class": 1, "l1": 1}}, ValueError, "weights: expected a dict with keys 'class', 'l1'"),
        ({"weights": {"class": -1, "l1": 1, "giou": 1}}, ValueError,
         r"weights\['class'\]: expected a value in \[0.0, inf\], got -1"),
        ({"logits": torch.zeros(30)}, ValueError, r"logits: expected a float Tensor\[Q, K\], got \(30,\)"),
        ({"boxes": torch.rand(29, 4)}, ValueError, r"boxes: expected a Tensor\[30, 4\] of cxcywh boxes"),
        ({"boxes": -torch.rand(30, 4)}, ValueError, "and a negative side"),
        ({"labels": torch.tensor([0, 5, 1, 1])}, ValueError, r"labels: expected classes in 0..4, got \[0, 5"),
        ({"labels": torch.zeros(4)}, ValueError, r"labels: expected an int Tensor\[M\]"),
        ({"target_boxes": torch.rand(3, 4)}, ValueError, r"target_boxes: expected a Tensor\[4, 4\]"),
        ({"labels": [0, 1]}, TypeError, "labels: expected a torch.Tensor, got list"),
        ({"num_shown": 2.5}, TypeError, "num_shown: expected an int"),
    ],
)
def test_matching_view_rejects_bad_input(change, error, match):
    logits, boxes, labels, targets = random_case(5)
    arguments = {"logits": logits, "boxes": boxes, "labels": labels, "target_boxes": targets,
                 "weights": WEIGHTS, **change}
    with pytest.raises(error, match=match):
        matching_view(**arguments)


# --- attention_view ---------------------------------------------------------------------------
def test_attention_view_of_a_seeded_detr(outputs):
    layers, size = outputs
    last = layers[-1]
    view = attention_view(last["attention"][0], last["logits"][0], last["boxes"][0], size, 0)
    assert size == (128, 128) and view["map"].shape == (16, 16)
    assert float(view["map"].sum()) == pytest.approx(1.0, abs=1e-5)
    scores = torch.sigmoid(last["logits"][0]).max(dim=1).values
    assert view["query"] == int(scores.argmax()) and view["score"] == pytest.approx(float(scores.max()))
    assert torch.equal(view["order"], torch.argsort(scores, descending=True, stable=True))
    assert 1 <= view["label"] <= 5 and 0.0 <= view["inside"] <= 1.0
    ranked = scores[view["order"]]
    assert (ranked[:-1] >= ranked[1:]).all()
    expected = box_convert(last["boxes"][0, view["query"]][None], "cxcywh", "xyxy")[0] * 128
    torch.testing.assert_close(view["box"], expected)


def test_attention_view_by_hand_ranks_reads_the_map_and_the_share_inside_the_box():
    # Two queries on a 2 x 4 token map of a 16 x 32 image (stride 8). Query 1 is the most confident.
    logits = torch.tensor([[0.0, -1.0], [2.0, 3.0]])
    boxes = torch.tensor([[0.5, 0.5, 1.0, 1.0], [0.25, 0.5, 0.5, 1.0]])  # query 1: the left half
    attention = torch.tensor([[0.125] * 8, [0.4, 0.1, 0.0, 0.1, 0.2, 0.1, 0.1, 0.0]])
    view = attention_view(attention, logits, boxes, (16, 32), 0)
    assert view["query"] == 1 and view["label"] == 2 and view["score"] == pytest.approx(torch.sigmoid(
        torch.tensor(3.0)).item())
    torch.testing.assert_close(view["map"], attention[1].view(2, 4))
    assert view["inside"] == pytest.approx(0.4 + 0.1 + 0.2 + 0.1)  # the two left columns
    torch.testing.assert_close(view["box"], torch.tensor([0.0, 0.0, 16.0, 16.0]))
    assert view["order"].tolist() == [1, 0]
    assert attention_view(attention, logits, boxes, (16, 32), 1)["query"] == 0
    # Ranked by other logits (the last layer's), rank 0 is another query.
    assert attention_view(attention, logits, boxes, (16, 32), 0, order_logits=logits.flip(0))["query"] == 0


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"rank": 2}, ValueError, r"rank: expected a value in \[0, 1\], got 2"),
        ({"attention": torch.zeros(2, 6)}, ValueError, r"attention: expected a Tensor\[2, 8\] \(queries,"),
        ({"stride": 0}, ValueError, r"stride: expected a value in \[1, inf\], got 0"),
        ({"image_size": (0, 32)}, ValueError, "image_size"),
        ({"order_logits": torch.zeros(3, 2)}, ValueError, r"order_logits: expected a float Tensor\[2, K\]"),
        ({"attention": [[0.5]]}, TypeError, "attention: expected a torch.Tensor"),
    ],
)
def test_attention_view_rejects_bad_input(change, error, match):
    arguments = {"attention": torch.full((2, 8), 0.125), "logits": torch.zeros(2, 2),
                 "boxes": torch.full((2, 4), 0.5), "image_size": (16, 32), "rank": 0, **change}
    with pytest.raises(error, match=match):
        attention_view(**arguments)


# --- the explorers ----------------------------------------------------------------------------
def test_matching_explorer_renders_runs_the_model_once_per_scene_and_follows_the_weights(model, data):
    images, targets = [image for image, _ in data], [target for _, target in data]
    calls = []
    encode = model.encode
    model.encode = lambda images: calls.append(len(images)) or encode(images)
    try:
        explorer = MatchingExplorer(model, images, targets)
        assert explorer.png.startswith(b"\x89PNG") and explorer.render_png().startswith(b"\x89PNG")
        assert explorer.figure.dpi >= 100 and min(ax.title.get_fontsize() for ax in explorer.axes) >= 11
        first = explorer.result
        assert first["cost"].shape == (30, len(targets[0]["labels"]))
        for name in ("class_weight", "l1_weight", "giou_weight"):
            explorer.controls[name].value = 0.0
        explorer.controls["l1_weight"].value = 1.0  # the L1 distance alone
        with torch.no_grad():
            layers = model.decode(encode([images[0]]))
        scale = torch.tensor([128.0, 128.0, 128.0, 128.0])
        objects = box_convert(targets[0]["boxes"], "xyxy", "cxcywh") / scale
        expected = torch.cdist(layers[-1]["boxes"][0], objects, p=1)
        torch.testing.assert_close(explorer.result["cost"], expected)
        explorer.controls["scene"].value = 2
        explorer.controls["num_shown"].value = 30
        explorer.controls["scene"].value = 0
        assert calls == [1, 1]  # scenes 0 and 2, once each: the weights and the rows only redo the matching
        assert "object 0 ← q" in explorer.status.value
        explorer.close()
    finally:
        del model.encode


def test_matching_explorer_on_a_scene_without_objects(model, data):
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    explorer = MatchingExplorer(model, [data[0][0], data[1][0]], [data[0][1], empty], layer=0)
    explorer.controls["scene"].value = 1  # after a scene with objects
    assert explorer.result["rows"].numel() == 0 and "no object to match" in explorer.status.value
    assert [text.get_text() for text in explorer.axes[1].texts] == ["no object to match"]
    assert explorer.render_png().startswith(b"\x89PNG")
    explorer.close()


def test_cross_attention_explorer_renders_every_layer_and_rank(model, data):
    explorer = CrossAttentionExplorer(model, [image for image, _ in data], layer=-1)
    assert explorer.controls["layer"].value == 2 and explorer.controls["rank"].max == 29
    order = explorer.result["order"]
    for layer in (0, 1):
        explorer.controls["layer"].value = layer
        assert torch.equal(explorer.result["order"], order)  # ranked by the last layer: the same queries
    explorer.controls["rank"].value = 29
    assert explorer.result["query"] == int(order[29])
    assert explorer.png.startswith(b"\x89PNG") and explorer.render_png().startswith(b"\x89PNG")
    assert "rank 29" in explorer.status.value
    explorer.close()


def test_explorers_reject_bad_input(model, data):
    images, targets = [image for image, _ in data], [target for _, target in data]
    with pytest.raises(TypeError, match="model: expected a course_lib.models.detr.DETR, got Linear"):
        MatchingExplorer(torch.nn.Linear(2, 2), images, targets)
    with pytest.raises(ValueError, match=r"layer: expected a value in \[-3, 2\], got 3"):
        CrossAttentionExplorer(model, images, layer=3)
    with pytest.raises(ValueError, match="targets: expected a list of 4 dicts"):
        MatchingExplorer(model, images, targets[:2])
    with pytest.raises(ValueError, match=r"images\[0\]: expected a float Tensor\[3, H, W\]"):
        CrossAttentionExplorer(model, [torch.rand(128, 128)])
    model.train()
    try:
        with pytest.raises(ValueError, match="expected a model in eval mode"):
            CrossAttentionExplorer(model, images)
    finally:
        model.eval()
