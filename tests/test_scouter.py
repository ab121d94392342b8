"""SCOUTER: the xSlot module, the xClassifier's sign switch, the area loss and the recipes.

The attention and the slot update are checked against a plain transcription of the xSlot
equations (Sec. 3 of Li et al. 2021): loops over slots and tokens, the GRU's gate equations
written out, using the module's weights but none of its code.
"""

import dataclasses
import math

import pytest
import torch
from torch.nn import functional as F

from course_lib.models.backbone import freeze_batchnorm
from course_lib.models.scouter import Scouter, SlotAttention, scouter_loss
from course_lib.recipes import scouter_neg, scouter_pos
from course_lib.recipes.backbone import crops
from course_lib.recipes.scouter import CONFIG, explanation_area


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def linear(x, layer):
    """``x W^T + b`` of an ``nn.Linear``, for one vector, as a list of floats."""
    weight, bias = layer.weight.tolist(), layer.bias.tolist()
    return [sum(w * v for w, v in zip(row, x, strict=True)) + b for row, b in zip(weight, bias, strict=True)]


def mlp(x, module):
    """``Linear, ReLU, Linear`` one vector at a time."""
    hidden = [max(0.0, value) for value in linear(x, module[0])]
    return linear(hidden, module[2])


def gru(x, h, cell):
    """The GRU of Cho et al. 2014 as torch defines it: reset r, update z, candidate n."""
    d = len(h)
    gates_x = linear(x, type("L", (), {"weight": cell.weight_ih, "bias": cell.bias_ih}))
    gates_h = linear(h, type("L", (), {"weight": cell.weight_hh, "bias": cell.bias_hh}))
    r = [sigmoid(gates_x[c] + gates_h[c]) for c in range(d)]
    z = [sigmoid(gates_x[d + c] + gates_h[d + c]) for c in range(d)]
    n = [math.tanh(gates_x[2 * d + c] + r[c] * gates_h[2 * d + c]) for c in range(d)]
    return [(1 - z[c]) * n[c] + z[c] * h[c] for c in range(d)]


def xslot_by_hand(module, features, positions, iterations):
    """The xSlot, one image: ``A = sigmoid(q(w) k(F + P)^T / sqrt(d))``, ``U = A F / N``, ``GRU(U, w)``."""
    tokens, dim = len(features), len(features[0])
    keys = [
        mlp([f + p for f, p in zip(features[j], positions[j], strict=True)], module.k) for j in range(tokens)
    ]
    slots = module.initial_slots.tolist()
    for _ in range(iterations):
        queries = [mlp(slot, module.q) for slot in slots]
        attention = [
            [sigmoid(sum(a * b for a, b in zip(query, key, strict=True)) / math.sqrt(dim)) for key in keys]
            for query in queries
        ]
        updates = [
            [sum(row[j] * features[j][c] for j in range(tokens)) / tokens for c in range(dim)]
            for row in attention
        ]
        slots = [gru(update, slot, module.gru) for update, slot in zip(updates, slots, strict=True)]
    return slots, attention


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("iterations", [1, 2])
def test_slot_attention_equals_the_papers_equations(iterations):
    torch.manual_seed(0)
    module = SlotAttention(num_slots=3, dim=8, iterations=iterations)
    features, positions = torch.randn(2, 6, 8), torch.randn(6, 8)
    with torch.no_grad():
        slots, attention = module(features, positions)
    for b in range(2):
        want_slots, want_attention = xslot_by_hand(
            module, features[b].tolist(), positions.tolist(), iterations
        )
        torch.testing.assert_close(attention[b], torch.tensor(want_attention), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(slots[b], torch.tensor(want_slots), atol=1e-5, rtol=1e-5)


def test_attention_is_a_sigmoid_not_a_softmax_over_slots():
    torch.manual_seed(1)
    module = SlotAttention(num_slots=4, dim=8)
    with torch.no_grad():
        _, attention = module(torch.randn(3, 10, 8))
    assert ((attention > 0) & (attention < 1)).all()
    assert not torch.allclose(attention.sum(dim=1), torch.ones(3, 10))  # slots do not compete for a token


def test_updates_are_the_attention_weighted_mean_over_tokens():
    features = torch.arange(12.0).reshape(1, 4, 3)  # tokens (0,1,2), (3,4,5), (6,7,8), (9,10,11)
    attention = torch.tensor([[[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]])
    want = torch.tensor([[[4.5, 5.5, 6.5], [0.0, 0.25, 0.5], [1.875, 2.125, 2.375]]])
    torch.testing.assert_close(SlotAttention.updates(attention, features), want)


def test_scouter_shapes_and_the_kept_attention():
    torch.manual_seed(0)
    model = Scouter().eval()
    assert model.attention is None
    images = torch.rand(2, 3, 64, 64)
    logits = model(images)
    assert logits.shape == (2, 5) and model.attention.shape == (2, 5, 8, 8)
    assert model.classes == ("circle", "square", "triangle", "star", "ring")
    explained_logits, attention = model.explain(images)
    torch.testing.assert_close(explained_logits, logits)
    torch.testing.assert_close(attention, model.attention)
    assert Scouter().eval().explain(torch.rand(1, 3, 40, 72))[1].shape == (1, 5, 5, 9)


def tokens_of(model, images):
    """``F' = relu(conv1x1(stride-8 map))`` as tokens, Tensor[B, N, d]."""
    backbone = model.backbone
    feature_map = backbone.features(images)["stride8"]
    return F.relu(model.project(feature_map)).flatten(2).transpose(1, 2)


@torch.no_grad()
def test_logit_is_lambda_times_the_sum_of_the_slots_update():
    torch.manual_seed(0)
    model = Scouter(lambda_=1).eval()
    images = torch.rand(3, 3, 64, 64)
    logits, attention = model.explain(images)
    tokens = tokens_of(model, images)  # (B, N, d)
    flat = attention.flatten(2)  # (B, n, N)
    want = torch.einsum("bij,bjc->bi", flat, tokens) / tokens.shape[1]  # sum over c of U_ic
    torch.testing.assert_close(logits, want)
    assert (logits >= 0).all()  # F' >= 0 and A >= 0: SCOUTER+ scores are evidence found


@torch.no_grad()
def test_negative_lambda_flips_the_sign_of_the_evidence():
    torch.manual_seed(0)
    positive = Scouter(lambda_=1).eval()
    negative = Scouter(lambda_=-1).eval()
    negative.load_state_dict(positive.state_dict())
    images = torch.rand(4, 3, 64, 64)
    logits_pos, attention_pos = positive.explain(images)
    logits_neg, attention_neg = negative.explain(images)
    torch.testing.assert_close(logits_neg, -logits_pos)
    torch.testing.assert_close(attention_neg, attention_pos)
    assert (logits_neg <= 0).all()
    # SCOUTER- picks the class whose slot found the least evidence
    assert torch.equal(logits_neg.argmax(dim=1), logits_pos.argmin(dim=1))


@torch.no_grad()
def test_batch_of_one_equals_one_of_the_batch():
    torch.manual_seed(0)
    model = Scouter().eval()
    images = torch.rand(3, 3, 64, 64)
    logits, attention = model.explain(images)
    one_logits, one_attention = model.explain(images[1:2])
    torch.testing.assert_close(one_logits, logits[1:2], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(one_attention, attention[1:2], atol=1e-5, rtol=1e-5)


def test_scouter_loss_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax (1/4, 3/4)
    attention = torch.tensor([[[0.5, 0.25], [1.0, 0.0]]])  # (B=1, n=2, N=2)
    losses = scouter_loss(logits, torch.tensor([1]), attention, area_weight=2.0)
    torch.testing.assert_close(losses["classification"], torch.tensor(math.log(4 / 3)))
    torch.testing.assert_close(losses["area"], torch.tensor(2.0 * (0.5 + 0.25 + 1.0 + 0.0) / 4))


def test_area_loss_grows_with_the_weight_and_the_attention():
    torch.manual_seed(0)
    logits, labels = torch.randn(4, 5), torch.randint(0, 5, (4,))
    attention = torch.rand(4, 5, 8, 8)
    areas = [
        float(scouter_loss(logits, labels, attention, weight)["area"]) for weight in (0.0, 0.5, 1.0, 2.0)
    ]
    assert areas[0] == 0.0 and areas == sorted(areas) and len(set(areas)) == 4
    bigger = float(scouter_loss(logits, labels, (attention + 0.1).clamp(max=1), 1.0)["area"])
    assert bigger > areas[2]
    classification = {float(scouter_loss(logits, labels, attention, w)["classification"]) for w in (0.0, 2.0)}
    assert len(classification) == 1  # the weight touches the area term only


def test_recipes_differ_only_in_lambda():
    assert scouter_pos.build().lambda_ == 1 and scouter_neg.build().lambda_ == -1
    assert scouter_pos.CONFIG == scouter_neg.CONFIG == CONFIG
    assert scouter_pos.AREA_WEIGHT == scouter_neg.AREA_WEIGHT
    assert scouter_pos.SPLIT == scouter_neg.SPLIT == "test"


def test_short_training_overfits_sixteen_crops():
    from course_lib import zoo

    torch.manual_seed(0)
    model = Scouter(lambda_=1)
    model.backbone.load_state_dict(zoo.load("shapes_backbone").state_dict())
    images, labels = crops("train", 16)
    targets = labels - 1  # output k scores CLASSES[k + 1]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    freeze_batchnorm(model)
    history = []
    for _ in range(30):
        logits, attention = model.explain(images)
        losses = scouter_loss(logits, targets, attention, area_weight=0.1)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
        history.append(float(losses["classification"].detach()))
    assert history[-1] < 0.25 * history[0]
    assert scouter_pos.evaluate(model, "train", 16)["accuracy"] >= 0.75  # eval mode = train mode (BN frozen)
    assert 0.0 <= explanation_area(model, "train", 16) <= 1.0


def test_recipe_train_respects_max_steps():
    config = dataclasses.replace(CONFIG, max_steps=2)
    model, history = scouter_neg.train(config=config, progress=False, limit=8)
    assert len(history) == 2 and not model.training and model.lambda_ == -1


def test_empty_batch_gives_empty_results():
    model = Scouter().eval()
    with torch.no_grad():
        logits, attention = model.explain(torch.zeros(0, 3, 64, 64))
        slots, slot_attention = SlotAttention(3, 8)(torch.zeros(0, 6, 8))
    assert logits.shape == (0, 5) and attention.shape == (0, 5, 8, 8)
    assert slots.shape == (0, 3, 8) and slot_attention.shape == (0, 3, 6)
    losses = scouter_loss(torch.zeros(0, 5), torch.zeros(0, dtype=torch.int64), torch.zeros(0, 5, 8, 8), 1.0)
    assert all(float(value) == 0.0 for value in losses.values())


def test_bad_input_raises_clear_errors():
    model = Scouter().eval()
    with pytest.raises(ValueError, match="lambda_: expected"):
        Scouter(lambda_=0)
    with pytest.raises(ValueError, match="lambda_: expected"):
        Scouter(lambda_=True)
    with pytest.raises(ValueError, match="dim: expected a multiple of 4"):
        Scouter(dim=30)
    with pytest.raises(ValueError, match=r"images: expected a Tensor\[B, 3, H, W\], got shape \(1, 1, 64"):
        model(torch.zeros(1, 1, 64, 64))
    with pytest.raises(TypeError, match="images: expected a torch.Tensor"):
        model([torch.zeros(3, 64, 64)])
    with pytest.raises(ValueError, match=r"features: expected a Tensor\[B, N, 8\]"):
        SlotAttention(3, 8)(torch.zeros(2, 6, 5))
    with pytest.raises(ValueError, match=r"positions: expected a Tensor\[6, 8\], got shape \(5, 8\)"):
        SlotAttention(3, 8)(torch.zeros(2, 6, 8), torch.zeros(5, 8))
    with pytest.raises(TypeError, match="features: expected a floating-point"):
        SlotAttention(3, 8)(torch.zeros(2, 6, 8, dtype=torch.int64))
    logits, attention = torch.zeros(2, 5), torch.zeros(2, 5, 8, 8)
    with pytest.raises(ValueError, match=r"labels: expected values in \[0, 4\]"):
        scouter_loss(logits, torch.tensor([0, 5]), attention, 1.0)
    with pytest.raises(ValueError, match="labels: expected an integer"):
        scouter_loss(logits, torch.tensor([0.0, 1.0]), attention, 1.0)
    with pytest.raises(ValueError, match=r"attention: expected a Tensor\[2, 5, h, w\]"):
        scouter_loss(logits, torch.tensor([0, 1]), torch.zeros(2, 4, 8, 8), 1.0)
    with pytest.raises(ValueError, match="area_weight: expected a value in"):
        scouter_loss(logits, torch.tensor([0, 1]), attention, -1.0)
