"""Tests for course_lib.widgets.dissection: the intervention view and the dissection explorer, on a tiny
untrained generator and segmenter (seeded)."""

import pytest
import torch

import course_lib.widgets.dissection as dissection
from course_lib.models.gan import Generator
from course_lib.models.segmenter import ShapesSegmenter
from course_lib.visualization.dissection import concept_share
from course_lib.widgets.dissection import DissectionExplorer, generate_and_segment, intervention_view, outline

LAYER, UNITS = "layer2", 16  # Generator(width=4): layer2 has 4 * 4 units on an 8 x 8 map


@pytest.fixture(scope="module")
def networks():
    torch.manual_seed(0)
    generator = Generator(z_dim=8, width=4).eval()
    torch.manual_seed(0)
    return generator, ShapesSegmenter().eval()


@pytest.fixture(scope="module")
def z():
    return torch.randn(3, 8, generator=torch.Generator().manual_seed(0))


def make_explorer(networks, samples, **changes):
    generator, segmenter = networks
    layer = changes.pop("layer", LAYER)
    args = {"iou": torch.rand(UNITS, 6, generator=torch.Generator().manual_seed(1)),
            "thresholds": torch.full((UNITS,), 0.5), "activations_mean": torch.full((UNITS,), 3.0),
            "z": samples}
    return DissectionExplorer(generator, segmenter, layer, **{**args, **changes})


def test_view_has_four_titled_panels_with_the_concept_share(networks, z):
    generator, segmenter = networks
    figure = intervention_view(generator, segmenter, z[0], LAYER, [0, 1], "ablate", concept="circle")
    titles = [ax.get_title() for ax in figure.axes]
    assert len(titles) == 4 and titles[0].startswith("as drawn") and titles[1].startswith("2 units ablated")
    assert titles[2].startswith("label map, as drawn") and titles[3].startswith("label map, 2 units ablated")
    share = float(concept_share(segmenter, generator(z[:1]), "circle")[0])
    assert f"circle {share:.1%}" in titles[0] and f"circle {share:.1%}" in titles[2]
    legend = [text.get_text() for text in figure.axes[3].get_legend().get_texts()]
    assert legend == list(segmenter.classes) and figure.dpi >= 100


def test_insert_outlines_the_region_in_image_pixels(networks, z):
    generator, segmenter = networks
    where = torch.zeros(8, 8, dtype=torch.bool)
    where[2:4, 5:7] = True
    figure = intervention_view(generator, segmenter, z[:1], LAYER, [3], "insert", where, 5.0)
    (lines,) = figure.axes[1].collections
    corners = lines.get_segments()
    xs = {x for segment in corners for x in segment[:, 0]}
    ys = {y for segment in corners for y in segment[:, 1]}
    assert (min(xs), max(xs), min(ys), max(ys)) == (40, 56, 16, 32)  # 8 image pixels per layer cell


def test_outline_of_one_cell_is_its_four_edges():
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[1, 1] = True
    assert len(outline(mask, 2.0)) == 4 and outline(torch.zeros(2, 2), 1.0).shape == (0, 2, 2)


@pytest.mark.parametrize("mode", ["ablate", "insert"])
def test_each_mode_calls_its_context_manager_and_changes_the_image(networks, z, mode, monkeypatch):
    generator, segmenter = networks
    calls = []
    for name in ("ablate", "insert"):
        original = getattr(dissection, name)
        spy = lambda *a, _n=name, _o=original, **k: calls.append(_n) or _o(*a, **k)  # noqa: E731
        monkeypatch.setattr(dissection, name, spy)
    where = torch.ones(8, 8, dtype=torch.bool)
    plain, _ = generate_and_segment(generator, segmenter, z[0])
    changed, _ = generate_and_segment(generator, segmenter, z[0], LAYER, list(range(UNITS)), mode, where, 5.0)
    assert calls == [mode] and not torch.allclose(plain, changed)


def test_explorer_panels_status_and_cache(networks, z):
    explorer = make_explorer(networks, z)
    titles = [ax.get_title() for ax in explorer.axes]
    assert titles[1].startswith("5 units ablated") and titles[3].startswith("label map, 5 units ablated")
    status = explorer.status.value
    assert status.count("%") == 2 and "top 5 units of layer2 for circle" in status
    assert list(explorer.cache) == [0] and explorer.controls["row"].disabled
    cached = explorer.cache[0]["image"]
    explorer.controls["num_units"].value = 3
    assert explorer.cache[0]["image"] is cached  # the plain sample is not drawn again
    explorer.close()


def test_each_control_updates_the_state(networks, z):
    explorer = make_explorer(networks, z)
    moves = {"index": 2, "concept": 4, "num_units": 7, "mode": "insert", "row": 0, "col": 6,
             "random_units": True}
    for name, value in moves.items():
        explorer.controls[name].value = value
        assert explorer.state[name] == value
        where = explorer.result["where"].nonzero()  # (4, 2): the inserted 2 x 2 square's cells
        seen = {"num_units": len(explorer.result["units"]), "row": int(where[:, 0].min()),
                "col": int(where[:, 1].min()), "random_units": explorer.result["random"]}
        assert seen.get(name, explorer.result.get(name)) == value, name
    result = explorer.result
    assert result["index"] == 2 and result["concept"] == 4 and len(result["units"]) == 7
    assert result["mode"] == "insert" and result["random"] and not explorer.controls["row"].disabled
    assert result["where"].nonzero()[:, 0].unique().tolist() == [0, 1]  # 8 x 8 map: a 2 x 2 square
    assert result["where"].nonzero()[:, 1].unique().tolist() == [6, 7]
    assert "star" in explorer.status.value and "inserted" in explorer.status.value
    explorer.controls["mode"].value = "none"
    assert explorer.result["share_before"] == explorer.result["share_after"]
    assert explorer.controls["col"].disabled
    explorer.close()


def test_intervention_changes_the_sample_in_the_explorer(networks, z):
    explorer = make_explorer(networks, z, thresholds=torch.zeros(UNITS))
    explorer.controls["num_units"].value = UNITS
    before, after = explorer.result["before"][0], explorer.result["after"][0]
    assert not torch.allclose(before, after)
    explorer.controls["mode"].value = "insert"
    assert not torch.allclose(explorer.result["after"][0], before)
    explorer.close()


def test_random_units_differ_from_the_top_units_and_are_seeded(networks, z):
    explorer = make_explorer(networks, z)
    top = explorer.choose_units(1, 5, random_units=False)
    random = explorer.choose_units(1, 5, random_units=True)
    assert top.tolist() == torch.argsort(explorer.iou[:, 1], descending=True, stable=True)[:5].tolist()
    assert not set(top.tolist()) & set(random.tolist())
    assert torch.equal(random, make_explorer(networks, z).choose_units(1, 5, random_units=True))
    assert len(set(explorer.choose_units(1, 12, random_units=True).tolist())) == 12  # others, then top ones
    explorer.close()


@pytest.mark.parametrize("change, error, message", [
    ({"iou": torch.zeros(15, 6)}, ValueError, r"iou: expected a Tensor\[16, 6\] \(16 units of 'layer2'\)"),
    ({"thresholds": torch.zeros(3)}, ValueError, r"thresholds: expected a Tensor\[16\]"),
    ({"activations_mean": [1.0] * 16}, TypeError, "activations_mean: expected a torch.Tensor, got list"),
    ({"layer": "layer9"}, ValueError, "layer: unknown name 'layer9'; expected one of"),
    ({"z": torch.zeros(3, 5)}, ValueError, r"z: expected vectors of the generator's z_dim 8, got shape"),
    ({"z": torch.zeros(0, 8)}, ValueError, "z: expected at least one noise vector, got none"),
    ({"z": torch.zeros(8)}, ValueError, r"z: expected a Tensor\[M, Z\], got shape \(8,\)"),
], ids=["iou", "thresholds", "mean", "layer", "z width", "empty z", "z 1-D"])
def test_explorer_rejects_bad_inputs(networks, z, change, error, message):
    with pytest.raises(error, match=message):
        make_explorer(networks, z, **change)


def test_view_rejects_bad_inputs(networks, z):
    generator, segmenter = networks
    with pytest.raises(ValueError, match="mode: expected one of 'ablate', 'insert', 'none', got 'remove'"):
        intervention_view(generator, segmenter, z[0], LAYER, [0], "remove")
    with pytest.raises(ValueError, match="where, value: expected a region and a value to insert"):
        intervention_view(generator, segmenter, z[0], LAYER, [0], "insert")
    with pytest.raises(ValueError, match=r"z: expected a Tensor\[1, Z\] or Tensor\[Z\], got shape \(2, 8\)"):
        intervention_view(generator, segmenter, z[:2], LAYER, [0])
    with pytest.raises(ValueError, match="concept: expected one of"):
        intervention_view(generator, segmenter, z[0], LAYER, [0], concept="hexagon")
    with pytest.raises(ValueError, match="layer: unknown name"):
        intervention_view(generator, segmenter, z[0], "nope", [0])
