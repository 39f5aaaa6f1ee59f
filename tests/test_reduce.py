"""Projections keep well separated blobs apart, and the faithfulness scores can tell."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from w2vlens.analysis.cluster import KMeans
from w2vlens.analysis.faithfulness import cluster_agreement, continuity, knn_preservation, trustworthiness
from w2vlens.analysis.reduce import (
    EXACT_CPU_MAX_ROWS,
    ExactNeighbours,
    PCAProjection,
    TSNEProjection,
    UMAPProjection,
    _torch_neighbours,
    knn_graph,
    resolve_neighbours,
    sample_rows,
    shared_knn_graphs,
)
from w2vlens.errors import W2VLensError


def blobs(n_per: int = 200, k: int = 5, dim: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=8.0, size=(k, dim))
    labels = np.repeat(np.arange(k), n_per)
    return (centers[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32), labels


def raw_clusters(points: np.ndarray) -> np.ndarray:
    return KMeans(5, n_init=3, device="cpu").fit(points).labels_


def small(name: str, **settings: object) -> PCAProjection | TSNEProjection | UMAPProjection:
    """Each projection with settings small enough for a unit test."""
    if name == "pca":
        return PCAProjection(**settings)
    if name == "tsne":
        return TSNEProjection(perplexity=20, n_iter=150, early_exaggeration_iter=100, pca_components=10, **settings)
    return UMAPProjection(n_epochs=100, pca_components=10, backend="umap-learn", **settings)


@pytest.mark.filterwarnings("ignore:Graph is not fully connected")
@pytest.mark.parametrize("name", ["pca", "tsne", "umap"])
def test_projections_keep_blobs_apart_and_sampled_fits_place_the_rest(name: str) -> None:
    points, labels = blobs()
    projection = small(name)
    coords = projection.fit_transform(points)
    assert coords.shape == (len(points), 2) and np.isfinite(coords).all()
    assert cluster_agreement(raw_clusters(points), coords)["ami"] > 0.95
    assert trustworthiness(points, coords) > 0.85
    if name != "pca":
        assert projection.pca_.n_components_ == 10

    sampled = small(name, max_points=400, seed=3).fit_transform(points, labels=labels)
    assert sampled.shape == (len(points), 2) and np.isfinite(sampled).all()
    assert cluster_agreement(raw_clusters(points), sampled)["ami"] > 0.95


def test_random_coordinates_score_low() -> None:
    points, _ = blobs()
    noise = np.random.default_rng(1).normal(size=(len(points), 2))
    assert cluster_agreement(raw_clusters(points), noise)["ami"] < 0.1
    assert trustworthiness(points, noise) < 0.7
    assert continuity(points, noise) < 0.7
    assert knn_preservation(points, noise) < 0.1


def test_neighbourhood_scores_are_one_for_an_isometry() -> None:
    flat = np.random.default_rng(2).normal(size=(600, 2)).astype(np.float32)
    embedded = np.hstack([flat, np.zeros((600, 48), np.float32)])
    for score in (trustworthiness, continuity, knn_preservation):
        assert score(embedded, flat, k=5, sample=400) == pytest.approx(1.0)
    duplicated = np.vstack([flat, flat])  # a point's duplicate is its neighbour, never itself
    assert knn_preservation(np.hstack([duplicated, duplicated]), duplicated, k=3, sample=None) == pytest.approx(1.0)


def test_stratified_sample_keeps_every_label_and_its_share() -> None:
    labels = np.array([0] * 900 + [1] * 99 + [2])
    rows = sample_rows(len(labels), 100, labels, seed=0)
    assert np.all(np.diff(rows) > 0)
    assert np.bincount(labels[rows]).tolist() == [90, 10, 1]
    assert len(sample_rows(1000, 100, seed=0)) == 100
    assert sample_rows(50, 100).tolist() == list(range(50))
    with pytest.raises(W2VLensError, match="labels for"):
        sample_rows(1000, 100, labels[:10])


def test_umap_backend_choice_is_checked() -> None:
    with pytest.raises(W2VLensError, match="not one of"):
        UMAPProjection(backend="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(W2VLensError, match="needs cuML"):
            UMAPProjection(backend="cuml").fit_transform(blobs(n_per=10)[0])


@pytest.mark.slow  # two fresh processes import umap-learn (a minute on 2 cores); CI runs it
def test_umap_kernels_are_compiled_once_per_machine(tmp_path: Path) -> None:
    """umap-learn's numba kernels land in NUMBA_CACHE_DIR, so later processes (sweep jobs) reuse them."""
    script = ("import numpy as np\n"
              "from w2vlens.analysis.reduce import import_umap_with_cached_jit\n"
              "umap = import_umap_with_cached_jit()\n"
              "print(type(umap.umap_.smooth_knn_dist._cache).__name__)\n"
              "umap.UMAP(n_epochs=20, random_state=0, n_jobs=1).fit(np.random.default_rng(0).normal(size=(300, 5)))\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["FunctionCache"]
    assert any((tmp_path / "numba").rglob("*.nbc"))  # compiled machine code on disk


def brute_force_neighbours(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    squared = ((points[:, None, :].astype(np.float64) - points[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(squared, np.inf)
    order = np.argsort(squared, axis=1, kind="stable")[:, :k]
    return order, np.sqrt(np.take_along_axis(squared, order, axis=1))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_graph_is_exact_on_the_cpu_and_in_the_torch_path(metric: str) -> None:
    """FAISS (the CPU's search) and the torch search a GPU runs, here on CPU tensors, both give
    the exact neighbours and distances, each row itself left out."""
    points = np.random.default_rng(0).normal(size=(400, 12)).astype(np.float32)
    graph = knn_graph(points, 7, metric, device="cpu")
    unit = points / np.linalg.norm(points, axis=1, keepdims=True) if metric == "cosine" else points
    expected_ids, expected = brute_force_neighbours(unit, 7)
    if metric == "cosine":
        expected = 1 - np.einsum("ij,ikj->ik", unit, unit[expected_ids])
    assert np.array_equal(graph.indices, expected_ids)
    assert np.allclose(graph.distances, expected, atol=1e-4)
    ids, squared = _torch_neighbours(np.ascontiguousarray(unit), np.ascontiguousarray(unit), 7, torch.device("cpu"),
                                     exclude_self=True, budget=400 * 12 * 4 + 50 * 400 * 12)  # several chunks
    assert np.array_equal(ids, expected_ids)
    assert np.allclose(squared / 2 if metric == "cosine" else np.sqrt(squared), expected, atol=1e-4)


def test_knn_graph_leaves_out_the_row_not_its_duplicate() -> None:
    points = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    doubled = np.vstack([points, points])
    graph = knn_graph(doubled, 3, device="cpu")
    rows = np.arange(100)
    assert not (graph.indices == rows[:, None]).any()
    assert np.array_equal(graph.indices[:, 0], (rows + 50) % 100) and np.allclose(graph.distances[:, 0], 0)
    own, distances = graph.with_self(3)
    assert np.array_equal(own[:, 0], rows) and np.array_equal(own[:, 1:], graph.indices[:, :2])
    assert (distances[:, 0] == 0).all()
    index = ExactNeighbours(doubled, graph, 3, "cpu")
    ids, found = index.query(points[:5] + 1e-3, 2)
    assert set(ids[0]) == {0, 50} and np.all(found[:, 0] < 0.01)


@pytest.mark.filterwarnings("ignore:Graph is not fully connected")
def test_one_shared_graph_per_view_gives_the_projections_own_maps() -> None:
    """`shared_knn_graphs` searches once for t-SNE and UMAP (same metric, same PCA), nothing for
    PCA; the shared graph holds the neighbours each projection finds in its own PCA space, and the
    maps drawn on it keep the blobs apart."""
    points, _ = blobs(n_per=80)
    projections = [small("pca"), small("tsne"), small("umap")]
    graphs = shared_knn_graphs(points, projections, device="cpu")
    assert graphs[0] is None and graphs[1] is graphs[2]
    assert graphs[1].n_neighbors == 60 and graphs[1].pca_components == 10  # 3 x perplexity 20
    for projection, graph in zip(projections[1:], graphs[1:], strict=True):
        coords = projection.fit_transform(points, knn=graph)
        own = knn_graph(projection.pca_.transform(points), graph.n_neighbors, device="cpu")
        assert np.array_equal(own.indices, graph.indices)
        assert cluster_agreement(raw_clusters(points), coords)["ami"] > 0.95
    cosine_umap = small("umap", metric="cosine")
    alone = shared_knn_graphs(points, [small("tsne"), cosine_umap], device="cpu")
    assert alone[0] is not None and alone[1] is None  # on the CPU NN-descent beats an exact search of its own


def test_a_graph_that_does_not_fit_the_projection_is_a_clear_error() -> None:
    points, _ = blobs(n_per=20)
    cosine = knn_graph(points, 5, "cosine", device="cpu", pca_components=10)
    with pytest.raises(W2VLensError, match="kNN graph has 5 cosine neighbours of 100 rows"):
        small("umap").fit_transform(points, knn=cosine)
    with pytest.raises(W2VLensError, match="fits a sample of 100 rows"):
        small("tsne", max_points=50).fit_transform(points, knn=cosine)
    with pytest.raises(W2VLensError, match="not one of"):
        knn_graph(points, 5, "manhattan")


def test_an_approximate_graph_finds_nearly_every_neighbour_and_says_how_many() -> None:
    """FAISS's HNSW graph: the row itself left out, distances exact for the neighbours it found,
    and its recall (measured on a sample of rows) the true one."""
    points, _ = blobs(n_per=600, dim=32)
    exact = knn_graph(points, 30, device="cpu")
    approximate = knn_graph(points, 30, device="cpu", neighbours="approximate")
    assert (exact.search, exact.recall, approximate.search) == ("exact", 1.0, "approximate")
    assert not (approximate.indices == np.arange(len(points))[:, None]).any()
    found = np.sqrt(((points[:, None, :] - points[approximate.indices]) ** 2).sum(-1))
    assert np.allclose(approximate.distances, found, atol=1e-3)
    true_recall = np.mean(approximate.distances <= exact.distances[:, -1:] + 1e-4)
    assert approximate.recall >= 0.95 and abs(approximate.recall - true_recall) < 0.02


def test_auto_neighbours_search_exactly_where_that_is_cheap() -> None:
    assert resolve_neighbours("auto", EXACT_CPU_MAX_ROWS, 1024, "cpu") == "exact"
    assert resolve_neighbours("auto", EXACT_CPU_MAX_ROWS + 1, 1024, "cpu") == "approximate"
    assert resolve_neighbours("auto", 2 * EXACT_CPU_MAX_ROWS, 192, "cpu") == "exact"  # the same work, fewer dims
    assert resolve_neighbours("exact", 10**7, 1024, "cpu") == "exact"
    assert resolve_neighbours("approximate", 100, 8, "cpu") == "approximate"
    if torch.cuda.is_available():
        assert resolve_neighbours("auto", 10**7, 1024, "cuda") == "exact"


def test_shared_graphs_follow_the_projections_neighbours_setting() -> None:
    points, _ = blobs(n_per=80)
    (graph,) = shared_knn_graphs(points, [small("tsne", neighbours="approximate")], device="cpu")
    assert graph.search == "approximate" and graph.recall > 0.95
    graphs = shared_knn_graphs(points, [small("tsne", neighbours="approximate"), small("umap", neighbours="exact")],
                               device="cpu")
    assert graphs[0] is graphs[1] and graphs[0].search == "exact"  # one projection asks for exact: both get it


@pytest.mark.parametrize("name", ["tsne", "umap"])
def test_a_bad_neighbours_value_is_one_line(name: str) -> None:
    with pytest.raises(W2VLensError, match=r"neighbours='fast' is not one of auto, exact, approximate") as error:
        small(name, neighbours="fast")
    assert "\n" not in str(error.value)
