"""Explorer of image retrieval by embedding: a query and its nearest neighbours in a database.

The lecture's "nearest neighbours in feature space" slide (AlexNet's last hidden layer): images
whose embeddings are close look alike to the network, even when their pixels differ.
:func:`neighbors_view` is the pure computation; :class:`NeighborsExplorer` wraps it.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from torch import Tensor

from course_lib._checks import check_number, check_tensor
from course_lib.visualization.embeddings import nearest_neighbors
from course_lib.widgets.base import WIDE_LABEL, Explorer

METRICS = ("l2", "cosine")
SPACES = ("embedding", "pixels")


def neighbors_view(
    query_features: Tensor, database_features: Tensor, query: int, k: int, metric: str = "l2"
) -> dict[str, Any]:
    """The ``k`` nearest database rows of query row ``query``: ``{"indices", "distances", ...}``."""
    check_number(query, "query", low=0, high=len(query_features) - 1, integer=True)
    check_number(k, "k", low=1, high=len(database_features), integer=True)
    indices, distances = nearest_neighbors(query_features[query : query + 1], database_features, k, metric)
    return {"query": query, "k": k, "metric": metric, "indices": indices[0], "distances": distances[0]}


class NeighborsExplorer(Explorer):
    """Pick a query image, the distance and the feature space; see its nearest database images.

    Controls: ``query`` (index into the query images), ``metric`` (``"l2"`` / ``"cosine"``),
    ``space`` (the network's ``"embedding"`` or raw ``"pixels"``) and ``k``. The status line counts
    the neighbours that share the query's label.

    Args:
        query_images (Tensor[Q, C, H, W]), database_images (Tensor[N, C, H, W]): in [0, 1].
        query_features (Tensor[Q, D]), database_features (Tensor[N, D]): their embeddings.
        query_labels (Tensor[Q]), database_labels (Tensor[N]): class indices.
        class_names: ``class_names[label]`` is shown.
    """

    def __init__(
        self,
        query_images: Tensor,
        database_images: Tensor,
        query_features: Tensor,
        database_features: Tensor,
        query_labels: Tensor,
        database_labels: Tensor,
        class_names=None,
    ) -> None:
        for name, images in (("query_images", query_images), ("database_images", database_images)):
            check_tensor(images, name)
            if images.dim() != 4:
                raise ValueError(f"{name}: expected a Tensor[N, C, H, W], got shape {tuple(images.shape)}")
        if len(query_features) != len(query_images) or len(database_features) != len(database_images):
            raise ValueError(
                "features: expected one row per image, got "
                f"{len(query_features)} for {len(query_images)} queries and "
                f"{len(database_features)} for {len(database_images)} database images"
            )
        self.query_images, self.database_images = query_images, database_images
        self.features = {
            "embedding": (query_features, database_features),
            "pixels": (query_images.flatten(1), database_images.flatten(1)),
        }
        self.query_labels, self.database_labels = query_labels, database_labels
        self.class_names = class_names
        self._neighbors: dict[tuple[str, str], tuple[Tensor, Tensor]] = {}
        controls = {
            "query": widgets.IntSlider(
                value=0, min=0, max=len(query_images) - 1, description="query", style=WIDE_LABEL
            ),
            "metric": widgets.Dropdown(options=METRICS, value="l2", description="distance", style=WIDE_LABEL),
            "space": widgets.Dropdown(
                options=SPACES, value="embedding", description="features", style=WIDE_LABEL
            ),
            "k": widgets.IntSlider(
                value=8, min=1, max=min(12, len(database_images)), description="k", style=WIDE_LABEL
            ),
        }
        # Room under the row for two lines of 11-point labels (class and distance).
        super().__init__(controls, num_axes=1, figsize=(9.0, 2.0), dpi=100,
                         margins={"left": 0.01, "right": 0.99, "top": 0.98, "bottom": 0.3})

    def compute(self, query: int, metric: str, space: str, k: int) -> dict[str, Any]:
        # Every query's neighbours at once, once per feature space and metric: moving the query or k
        # then only slices (the pixel space has 12288 dimensions, a search is not instant).
        if (space, metric) not in self._neighbors:
            query_features, database_features = self.features[space]
            self._neighbors[space, metric] = nearest_neighbors(query_features, database_features,
                                                               self.controls["k"].max, metric)
        indices, distances = self._neighbors[space, metric]
        result = {"query": query, "k": k, "metric": metric, "indices": indices[query, :k],
                  "distances": distances[query, :k]}
        same = self.database_labels[result["indices"]] == self.query_labels[query]
        return {**result, "space": space, "same_label": int(same.sum())}

    def draw(self, result: dict[str, Any], ax: Axes) -> None:
        images = [self.query_images[result["query"]]] + [self.database_images[i] for i in result["indices"]]
        gap = torch.ones_like(images[0][:, :, :2])
        row = torch.cat([torch.cat([image, gap], dim=2) for image in images], dim=2)[:, :, :-2]  # (C, H, W')
        row = row.repeat(3, 1, 1) if row.shape[0] == 1 else row
        ax.imshow(row.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        width = images[0].shape[2] + 2
        ax.axvline(width - 1.5, color="#d62728", linewidth=2)
        ax.set_xticks([width * (i + 0.5) - 1 for i in range(len(images))])
        labels = [self._name(self.query_labels[result["query"]])]
        labels += [
            f"{self._name(self.database_labels[i])}\n{d:.2f}"
            for i, d in zip(result["indices"].tolist(), result["distances"].tolist(), strict=True)
        ]
        ax.set_xticklabels(labels, fontsize=11)
        ax.set_yticks([])

    def _name(self, label: Tensor) -> str:
        return str(int(label)) if self.class_names is None else self.class_names[int(label)]

    def summary(self, result: dict[str, Any]) -> str:
        return (
            f"query {result['query']} (left of the red line) · {result['k']} nearest by "
            f"{result['metric']} in {result['space']} space · {result['same_label']} of {result['k']} "
            "share its label"
        )
