"""Embeddings: what a CNN's last layer sees, compared by nearest neighbours, t-SNE and class centroids.

Cut off the last linear layer and the network maps each image to a vector, its *embedding*.
Krizhevsky et al. 2012 (AlexNet, Sec. 6.1, Fig. 4) retrieved the training images whose 4096-d
embeddings are nearest (L2) to a query: they share the class, not the pixels. Van der Maaten and
Hinton 2008 ("Visualizing Data using t-SNE") map such vectors to 2-d so that neighbours stay
neighbours; the lecture's figure is the t-SNE of the digits.

Distances here are computed pair by pair (not through ``|a|^2 + |b|^2 - 2 a.b``), so that two equal
database rows get bit-identical distances and ties are broken by the lower index, always.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from course_lib._checks import check_choice, check_number, check_tensor
from course_lib.visualization.hooks import eval_mode

__all__ = ["class_centroid_distances", "closeness_report", "embed", "nearest_neighbors", "tsne"]

METRICS = ("l2", "cosine")
# Pairs compared at once by the chunked distance (bounds memory to a few tens of MB).
_CHUNK_ELEMENTS = 4_000_000


def _last_linear(model: nn.Module) -> nn.Linear:
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(f"model: expected an nn.Linear layer or an embed method, got {type(model).__name__}")
    return linears[-1]


def _embed_batch(model: nn.Module, images: Tensor) -> Tensor:
    if hasattr(model, "embed"):
        return model.embed(images)
    # Record the *input* of the last linear layer; hooks.record keeps outputs, so a pre-hook.
    seen = []
    handle = _last_linear(model).register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    try:
        model(images)
    finally:
        handle.remove()
    return seen[-1].flatten(1)  # (B, D)


@torch.no_grad()
def embed(model: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    """Each image's embedding: the input of the model's last linear layer.

    If the model has an ``embed(images)`` method (as :class:`~course_lib.models.classifier.GAPClassifier`
    does), it is used. Otherwise the model runs as a whole and a forward pre-hook on its last
    ``nn.Linear`` (in ``model.modules()`` order) records that layer's input; the hook is removed
    afterwards, also after an error. The model runs in eval mode (batch norm uses its running
    statistics, so an image's embedding does not depend on its batch) and is put back in the
    mode it was in.

    Args:
        model: a classifier.
        images: Tensor[B, C, H, W], as the model expects them.
        batch_size: images per forward pass.

    Returns:
        Tensor[B, D], float, without gradient.
    """
    check_tensor(images, "images")
    if images.dim() != 4:
        raise ValueError(f"images: expected a Tensor[B, C, H, W], got shape {tuple(images.shape)}")
    check_number(batch_size, "batch_size", low=1, integer=True)
    with eval_mode(model):
        if len(images) == 0:
            return _embed_batch(model, images).float()  # (0, D): the layers handle an empty batch
        chunks = [_embed_batch(model, batch) for batch in images.split(batch_size)]
    return torch.cat(chunks).float()  # (B, D)


def _check_features(features: Tensor, name: str) -> Tensor:
    check_tensor(features, name)
    if features.dim() != 2:
        raise ValueError(f"{name}: expected a Tensor[N, D], got shape {tuple(features.shape)}")
    if not features.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {features.dtype}")
    if features.numel() and not torch.isfinite(features).all():
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return features


def _pairwise_l2(queries: Tensor, database: Tensor) -> Tensor:
    """Euclidean distances, Tensor[Q, N], each pair computed on its own (no cancellation, exact ties)."""
    Q, N, D = len(queries), len(database), queries.shape[1]  # queries, database rows, dimensions
    step = max(1, _CHUNK_ELEMENTS // max(1, N * D))
    rows = [
        (chunk[:, None, :] - database[None, :, :]).pow(2).sum(-1).sqrt()  # (q, N)
        for chunk in queries.split(step)
    ]
    return torch.cat(rows) if rows else queries.new_zeros(Q, N)


def _unit(features: Tensor) -> Tensor:
    """Rows scaled to length 1; a zero row stays zero (as scikit-learn's ``normalize``)."""
    norms = features.norm(dim=1, keepdim=True)  # (N, 1)
    return torch.where(norms > 0, features / norms.clamp_min(1e-30), features)


def nearest_neighbors(
    queries: Tensor, database: Tensor, k: int, metric: str = "l2"
) -> tuple[Tensor, Tensor]:
    """The ``k`` database rows closest to each query, nearest first, ties broken by the lower index.

    Args:
        queries: Tensor[Q, D] embeddings.
        database: Tensor[N, D] embeddings.
        k: neighbours per query, ``0 <= k <= N``.
        metric: ``"l2"``, the Euclidean distance (AlexNet's retrieval), or ``"cosine"``,
            ``1 - cos(angle)`` in [0, 2], which ignores the vectors' lengths. As in scikit-learn,
            a zero vector has cosine distance 1 to everything.

    Returns:
        ``(indices Tensor[Q, k] int64, distances Tensor[Q, k])``, rows sorted by increasing
        distance. A query that is also in the database finds itself first (distance 0), unless
        an equal row has a lower index.
    """
    _check_features(queries, "queries")
    _check_features(database, "database")
    if queries.shape[1] != database.shape[1]:
        raise ValueError(
            f"database: expected D = {queries.shape[1]} features as in queries, "
            f"got shape {tuple(database.shape)}"
        )
    check_choice(metric, METRICS, "metric")
    check_number(k, "k", low=0, integer=True)
    if k > len(database):
        raise ValueError(f"k: expected at most N = {len(database)} (the database rows), got {k}")
    queries, database = queries.float(), database.float()
    if metric == "l2":
        distances = _pairwise_l2(queries, database)  # (Q, N)
    else:
        # For unit vectors |a - b|^2 = 2 - 2 cos, so the pairwise L2 gives the cosine distance;
        # a zero row is handled apart to keep scikit-learn's convention (distance 1).
        unit_q, unit_d = _unit(queries), _unit(database)
        distances = (_pairwise_l2(unit_q, unit_d).pow(2) / 2).clamp(0.0, 2.0)  # (Q, N)
        zero = (unit_q.norm(dim=1) == 0)[:, None] | (unit_d.norm(dim=1) == 0)[None, :]  # (Q, N)
        distances = torch.where(zero, torch.ones_like(distances), distances)
    # A stable sort keeps equal distances in index order: the lower index wins a tie.
    ordered, indices = distances.sort(dim=1, stable=True)  # (Q, N)
    return indices[:, :k], ordered[:, :k]


def tsne(features: Tensor, seed: int = 0, perplexity: float = 30.0) -> Tensor:
    """A 2-d map of the features by t-SNE (van der Maaten and Hinton 2008), scikit-learn's implementation.

    Deterministic: PCA initialisation and ``random_state=seed``, so the same input and seed give
    the same map (on the same machine and thread count; Barnes-Hut sums in floating point). With
    a PCA start nothing else is random, so in practice the seed does not change the map; it is
    kept for scikit-learn's randomized PCA solver and for symmetry with the other recipes.

    Args:
        features: Tensor[N, D].
        seed: the random state of the optimisation.
        perplexity: roughly the number of neighbours each point keeps close; must be below N.

    Returns:
        Tensor[N, 2], float32.
    """
    from sklearn.manifold import TSNE

    _check_features(features, "features")
    check_number(seed, "seed", low=0, integer=True)
    check_number(perplexity, "perplexity", low=0)
    N = len(features)
    if N == 0:
        return features.new_zeros(0, 2, dtype=torch.float32)
    if not 0 < perplexity < N:
        raise ValueError(f"perplexity: expected a value in (0, N) = (0, {N}), got {perplexity}")
    model = TSNE(2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed)
    points = model.fit_transform(features.detach().double().numpy())  # (N, 2)
    return torch.from_numpy(points).float()


def _check_labels(features: Tensor, labels: Tensor) -> Tensor:
    _check_features(features, "features")
    check_tensor(labels, "labels")
    if labels.dim() != 1 or len(labels) != len(features):
        raise ValueError(
            f"labels: expected a Tensor[{len(features)}] (one per feature row), "
            f"got shape {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels: expected an integer tensor, got dtype {labels.dtype}")
    return labels


def class_centroid_distances(features: Tensor, labels: Tensor) -> Tensor:
    """Euclidean distances between the class centroids (the mean embedding of each class).

    Args:
        features: Tensor[N, D].
        labels: Tensor[N], integer class of each row.

    Returns:
        Tensor[K, K], symmetric with a zero diagonal, for the K distinct labels in increasing
        order (``labels.unique()``); Tensor[0, 0] for empty input.
    """
    _check_labels(features, labels)
    classes = labels.unique()  # (K,), sorted
    if len(classes) == 0:
        return features.new_zeros(0, 0, dtype=torch.float32)
    centroids = torch.stack([features[labels == c].float().mean(0) for c in classes])  # (K, D)
    return _pairwise_l2(centroids, centroids)  # (K, K), exactly 0 on the diagonal


def closeness_report(features: Tensor, labels: Tensor, classes: tuple[int, ...] = (3, 5, 8)) -> dict:
    """How close some classes sit in embedding space, compared with all classes.

    The lecture says that digits 3, 5 and 8 sit close together in the t-SNE of the digits. This
    measures it without t-SNE (whose distances between clusters are not meaningful): the mean
    distance between the centroids of ``classes``, divided by the mean distance over all pairs
    of classes. A ratio below 1 means they are closer than a typical pair.

    Args:
        features: Tensor[N, D].
        labels: Tensor[N], integer classes.
        classes: two or more labels present in ``labels``.

    Returns:
        A dict with ``classes``; ``mean_distance`` (among ``classes``); ``mean_distance_all``
        (over all pairs of classes); ``ratio`` (the first over the second; 1.0 if every centroid
        is the same point); ``rank``, the place
        of ``classes`` among all groups of the same size sorted by mean distance (1 = closest);
        ``closest_classes`` and ``closest_mean_distance``, the closest such group.
    """
    _check_labels(features, labels)
    present = labels.unique().tolist()
    classes = tuple(int(c) for c in classes)
    if len(set(classes)) < 2:
        raise ValueError(f"classes: expected at least two distinct labels, got {classes}")
    for c in classes:
        if c not in present:
            raise ValueError(f"classes: expected labels among {present}, got {c}")
    distances = class_centroid_distances(features, labels)  # (K, K)
    position = {label: index for index, label in enumerate(present)}

    def mean_distance(group: tuple[int, ...]) -> float:
        pairs = list(itertools.combinations([position[c] for c in group], 2))
        return sum(float(distances[i, j]) for i, j in pairs) / len(pairs)

    groups = sorted(itertools.combinations(present, len(classes)), key=mean_distance)
    within, overall = mean_distance(classes), mean_distance(tuple(present))
    rank = 1 + sum(mean_distance(group) < within for group in groups)
    return {
        "classes": classes,
        "mean_distance": within,
        "mean_distance_all": overall,
        "ratio": within / overall if overall > 0 else 1.0,  # all centroids equal: none is closer
        "rank": rank,
        "num_groups": len(groups),
        "closest_classes": tuple(int(c) for c in groups[0]),
        "closest_mean_distance": mean_distance(groups[0]),
    }
