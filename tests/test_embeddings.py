"""Embeddings: the last layer's input, nearest neighbours against scikit-learn, t-SNE, class centroids."""

import math

import pytest
import torch
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors
from torch import nn

from course_lib import zoo
from course_lib.recipes.digits_cnn import digits_split
from course_lib.visualization.embeddings import (
    class_centroid_distances,
    closeness_report,
    embed,
    nearest_neighbors,
    tsne,
)
from course_lib.visualization.hooks import has_hooks


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))


# ---- embed ----------------------------------------------------------------------------------------


def test_embed_is_the_input_of_the_last_linear_layer():
    model = mlp().train()
    images = torch.rand(7, 3, 2, 2)
    features = embed(model, images, batch_size=3)
    model.eval()
    expected = model[3](model[2](model[1](images.flatten(1))))
    torch.testing.assert_close(features, expected.detach())
    assert features.shape == (7, 5) and not features.requires_grad


def test_embed_restores_the_mode_and_leaves_no_hook_even_after_an_error():
    model = mlp().train()
    embed(model, torch.rand(2, 3, 2, 2))
    assert model.training and not has_hooks(model)
    with pytest.raises(RuntimeError):
        embed(model, torch.rand(2, 3, 3, 3))  # 27 features into Linear(12, 5)
    assert model.training and not has_hooks(model)


def test_embed_uses_the_model_embed_method_in_batches():
    model = zoo.load("digits_cnn")
    images, _ = digits_split("test")
    images = images[:20]
    features = embed(model, images, batch_size=8)
    assert features.shape == (20, 64)
    torch.testing.assert_close(features, model.embed(images).detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.fc(features), model(images).detach(), rtol=1e-5, atol=1e-5)
    assert embed(model, images[:0]).shape == (0, 64)


def test_embed_bad_input():
    with pytest.raises(ValueError, match=r"expected a Tensor\[B, C, H, W\], got shape \(3, 2, 2\)"):
        embed(mlp(), torch.rand(3, 2, 2))
    with pytest.raises(ValueError, match=r"batch_size: expected a value in \[1, inf\], got 0"):
        embed(mlp(), torch.rand(1, 3, 2, 2), batch_size=0)
    with pytest.raises(ValueError, match="expected an nn.Linear layer or an embed method"):
        embed(nn.Sequential(nn.Conv2d(3, 2, 1)), torch.rand(1, 3, 2, 2))


# ---- nearest_neighbors ---------------------------------------------------------------------------


def test_nearest_neighbors_hand_case_with_a_tie():
    database = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0], [1.0, 0.0]])
    queries = torch.tensor([[0.0, 0.0], [3.0, 3.0]])
    indices, distances = nearest_neighbors(queries, database, k=3)
    assert indices.tolist() == [[0, 2, 3], [1, 2, 3]]  # rows 2 and 3 tie at distance 1 (and sqrt 13)
    torch.testing.assert_close(distances, torch.tensor([[0.0, 1.0, 1.0], [1.0, 13**0.5, 13**0.5]]))
    indices, distances = nearest_neighbors(torch.tensor([[1.0, 1.0]]), database, k=4, metric="cosine")
    assert indices.tolist() == [[1, 2, 3, 0]]  # zero row last: cosine distance 1 by convention
    cos = 7 / (5 * 2**0.5)
    torch.testing.assert_close(distances, torch.tensor([[1 - cos, 1 - 0.5**0.5, 1 - 0.5**0.5, 1.0]]))


def random_data(seed, num_queries, num_database, dim, duplicates):
    generator = torch.Generator().manual_seed(seed)
    database = torch.randn(num_database, dim, generator=generator)
    if duplicates:  # copies of earlier rows (exact ties) and queries taken from the database
        database[num_database // 2 :] = database[: num_database - num_database // 2]
    queries = torch.randn(num_queries, dim, generator=generator)
    if duplicates:
        queries[: num_queries // 2] = database[: num_queries // 2]
    return queries, database


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("seed, duplicates", [(0, False), (1, False), (2, True), (3, True)])
def test_nearest_neighbors_matches_sklearn(metric, seed, duplicates):
    queries, database = random_data(seed, 9, 30, 6, duplicates)
    for k in (1, 5, 30):  # k = N included
        indices, distances = nearest_neighbors(queries, database, k, metric=metric)
        sk_metric = "euclidean" if metric == "l2" else "cosine"
        reference = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=sk_metric).fit(database.numpy())
        ref_distances, ref_indices = reference.kneighbors(queries.numpy())
        torch.testing.assert_close(distances, torch.from_numpy(ref_distances).float(), rtol=0, atol=1e-5)
        if not duplicates:  # no ties: the same neighbours in the same order
            assert indices.tolist() == ref_indices.tolist()
        # either way, the distance reported for an index is scikit-learn's distance to that row...
        full = torch.from_numpy(pairwise_distances(queries.numpy(), database.numpy(), metric=sk_metric))
        torch.testing.assert_close(distances, full.gather(1, indices).float(), rtol=0, atol=1e-5)
        # ...and equal distances come in increasing index order
        same = distances[:, 1:] == distances[:, :-1]
        assert (indices[:, 1:] > indices[:, :-1])[same].all()
    if duplicates:
        assert same.any()  # the duplicates really produced ties


def test_nearest_neighbors_ties_go_to_the_lower_index():
    database = torch.tensor([[1.0, 2.0]]).repeat(5, 1)
    indices, distances = nearest_neighbors(torch.tensor([[0.0, 0.0], [1.0, 2.0]]), database, k=5)
    assert indices.tolist() == [[0, 1, 2, 3, 4]] * 2
    assert distances[1].eq(0).all()
    indices, _ = nearest_neighbors(torch.tensor([[2.0, 4.0]]), database, k=3, metric="cosine")
    assert indices.tolist() == [[0, 1, 2]]


def test_nearest_neighbors_edge_cases():
    database = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    indices, distances = nearest_neighbors(torch.zeros(0, 3), database, k=2)
    assert indices.shape == (0, 2) and indices.dtype == torch.int64 and distances.shape == (0, 2)
    indices, distances = nearest_neighbors(database, database, k=0)
    assert indices.shape == (4, 0) and distances.shape == (4, 0)
    indices, distances = nearest_neighbors(database, database, k=1)  # each row finds itself
    assert indices[:, 0].tolist() == [0, 1, 2, 3] and distances.eq(0).all()


def test_nearest_neighbors_bad_input():
    database = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"k: expected at most N = 4 \(the database rows\), got 5"):
        nearest_neighbors(database, database, k=5)
    with pytest.raises(ValueError, match="metric: expected one of 'l2', 'cosine', got 'manhattan'"):
        nearest_neighbors(database, database, k=1, metric="manhattan")
    with pytest.raises(ValueError, match=r"expected D = 3 features as in queries, got shape \(4, 2\)"):
        nearest_neighbors(database, torch.randn(4, 2), k=1)
    with pytest.raises(ValueError, match=r"queries: expected a Tensor\[N, D\], got shape \(3,\)"):
        nearest_neighbors(torch.randn(3), database, k=1)
    with pytest.raises(ValueError, match="expected finite values"):
        nearest_neighbors(torch.tensor([[0.0, float("nan"), 0.0]]), database, k=1)
    with pytest.raises(TypeError, match="expected an int"):
        nearest_neighbors(database, database, k=1.0)


# ---- tsne ----------------------------------------------------------------------------------------


def test_tsne_is_deterministic_and_keeps_clusters_apart():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(40, 5, generator=generator)
    features[20:] += 20  # two well separated clusters
    first, second = tsne(features, perplexity=5), tsne(features, perplexity=5)
    assert first.shape == (40, 2) and first.dtype == torch.float32
    assert torch.equal(first, second)
    # every point's nearest neighbour on the map is in its own cluster
    nearest = nearest_neighbors(first, first, k=2)[0][:, 1]
    assert ((nearest < 20) == (torch.arange(40) < 20)).all()


def test_tsne_edge_cases_and_bad_input():
    assert tsne(torch.zeros(0, 4)).shape == (0, 2)
    with pytest.raises(ValueError, match=r"perplexity: expected a value in \(0, N\) = \(0, 10\), got 30"):
        tsne(torch.randn(10, 3), perplexity=30)
    with pytest.raises(ValueError, match=r"features: expected a Tensor\[N, D\]"):
        tsne(torch.randn(10))


# ---- class centroids -----------------------------------------------------------------------------


def test_class_centroid_distances_hand_case():
    features = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 4.0], [1.0, 4.0], [1.0, 4.0]])
    labels = torch.tensor([7, 7, 3, 9, 9])  # centroids: class 3 (4, 4), class 7 (1, 0), class 9 (1, 4)
    expected = torch.tensor([[0.0, 5.0, 3.0], [5.0, 0.0, 4.0], [3.0, 4.0, 0.0]])
    torch.testing.assert_close(class_centroid_distances(features, labels), expected)
    report = closeness_report(features, labels, classes=(7, 9))
    assert report["mean_distance"] == pytest.approx(4.0)
    assert report["mean_distance_all"] == pytest.approx(4.0)
    assert report["ratio"] == pytest.approx(1.0)
    assert report["rank"] == 2 and report["num_groups"] == 3
    assert report["closest_classes"] == (3, 9) and report["closest_mean_distance"] == pytest.approx(3.0)


def test_class_centroids_invariants_and_edge_cases():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(50, 4, generator=generator)
    labels = torch.randint(0, 5, (50,), generator=generator)
    distances = class_centroid_distances(features, labels)
    assert distances.shape == (5, 5) and distances.diag().eq(0).all()
    torch.testing.assert_close(distances, distances.T)
    permutation = torch.randperm(50, generator=generator)
    permuted = class_centroid_distances(features[permutation], labels[permutation])
    torch.testing.assert_close(permuted, distances)
    torch.testing.assert_close(class_centroid_distances(features * 3, labels), distances * 3)
    assert class_centroid_distances(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)).shape == (0, 0)
    same = closeness_report(torch.ones(6, 2), torch.tensor([0, 0, 1, 1, 2, 2]), classes=(0, 1))
    assert same["ratio"] == 1.0  # every centroid the same point: no NaN


def test_class_centroids_bad_input():
    features = torch.randn(6, 2)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    message = r"labels: expected a Tensor\[6\] \(one per feature row\), got shape \(5,\)"
    with pytest.raises(ValueError, match=message):
        class_centroid_distances(features, labels[:5])
    with pytest.raises(TypeError, match="labels: expected an integer tensor"):
        class_centroid_distances(features, labels.float())
    with pytest.raises(ValueError, match=r"classes: expected labels among \[0, 1, 2\], got 3"):
        closeness_report(features, labels)
    with pytest.raises(ValueError, match="at least two distinct labels"):
        closeness_report(features, labels, classes=(1, 1))


def test_digits_3_5_8_closeness_measured(capsys):
    """The lecture's claim, measured; only structural facts are asserted (see the printed numbers)."""
    model = zoo.load("digits_cnn")
    images, labels = digits_split("test")
    features = embed(model, images)
    distances = class_centroid_distances(features, labels)
    assert distances.shape == (10, 10) and distances.diag().eq(0).all()
    assert (distances + torch.eye(10) > 0).all()
    for name, values in (("embedding (64-d)", features), ("raw pixels (64-d)", images.flatten(1))):
        report = closeness_report(values, labels)
        assert math.isfinite(report["ratio"]) and report["ratio"] > 0
        assert 1 <= report["rank"] <= report["num_groups"] == 120
        with capsys.disabled():
            print(
                f"\n{name}: 3/5/8 mean centroid distance {report['mean_distance']:.3f}, "
                f"all pairs {report['mean_distance_all']:.3f}, ratio {report['ratio']:.3f}, "
                f"rank {report['rank']}/{report['num_groups']}; closest triple {report['closest_classes']} "
                f"({report['closest_mean_distance']:.3f})"
            )
