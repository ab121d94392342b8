"""Tests for course_lib.plotting.anchors: anchors grouped by RPN label, with a counted legend."""

import pytest
import torch
from matplotlib.collections import PolyCollection

from course_lib.plotting.anchors import draw_anchor_grid


def test_draw_anchor_grid_groups_by_label_with_counted_legend(ax):
    anchors = torch.tensor([[0.0, 0, 10, 10], [5, 5, 20, 20], [1, 1, 3, 3], [2, 2, 30, 30], [0, 0, 4, 4]])
    labels = torch.tensor([1, 0, -1, 0, 0])
    collections = draw_anchor_grid(ax, anchors, labels)
    assert all(isinstance(collection, PolyCollection) for collection in collections)
    # negatives first, then ignored, positives on top
    assert [len(collection.get_paths()) for collection in collections] == [3, 1, 1]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["negative (3)", "ignored (1)", "positive (1)"]
    positive = collections[-1].get_paths()[0].vertices
    assert {tuple(v) for v in positive} >= {(0, 0), (10, 0), (10, 10), (0, 10)}


def test_draw_anchor_grid_without_labels_and_with_a_missing_group(ax):
    assert len(draw_anchor_grid(ax, torch.tensor([[0.0, 0, 4, 4]]))) == 1
    assert ax.get_legend().get_texts()[0].get_text() == "anchor (1)"
    collections = draw_anchor_grid(ax, torch.tensor([[0.0, 0, 4, 4]]), torch.tensor([0]))
    assert len(collections) == 1


def test_draw_anchor_grid_with_zero_anchors_draws_nothing(ax):
    assert draw_anchor_grid(ax, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)) == []
    assert len(ax.collections) == 0 and ax.get_legend() is None


def test_draw_anchor_grid_rejects_bad_labels(ax):
    with pytest.raises(ValueError, match=r"expected values in \{1, 0, -1\}, got \[0, 2\]"):
        draw_anchor_grid(ax, torch.zeros(2, 4), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="labels: expected 2 values"):
        draw_anchor_grid(ax, torch.zeros(2, 4), torch.tensor([0]))
