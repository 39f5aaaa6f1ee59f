"""K-means backends agree with each other and recover well separated clusters."""

import numpy as np
import pytest
import torch

from w2vlens.analysis.cluster import DeviceRows, KMeans, _add_cluster_sums, pick_backend
from w2vlens.analysis.metrics import cluster_summary, clustering_scores, contingency
from w2vlens.errors import W2VLensError


def blobs(n_per: int = 300, k: int = 5, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=10.0, size=(k, dim))
    labels = np.repeat(np.arange(k), n_per)
    return (centers[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32), labels


@pytest.mark.parametrize("backend", ["faiss", "torch", "sklearn"])
@pytest.mark.parametrize("spherical", [False, True])
def test_backends_recover_separated_blobs(backend: str, spherical: bool) -> None:
    points, labels = blobs()
    kmeans = KMeans(5, spherical=spherical, backend=backend, device="cpu", n_init=3, seed=1).fit(points)
    assert kmeans.backend_ == backend
    assert clustering_scores(labels, kmeans.labels_)["ami"] > 0.99
    assert np.array_equal(kmeans.predict(points), kmeans.labels_)
    if spherical:
        assert np.allclose(np.linalg.norm(kmeans.cluster_centers_, axis=1), 1.0, atol=1e-5)


def test_inertia_is_comparable_across_backends() -> None:
    points, _ = blobs(n_per=200, k=8, dim=32, seed=3)
    inertia = {b: KMeans(8, backend=b, device="cpu", n_init=3, seed=0).fit(points).inertia_
               for b in ("faiss", "torch", "sklearn")}
    assert max(inertia.values()) <= 1.01 * min(inertia.values())


def test_spherical_clusters_directions_not_magnitudes() -> None:
    rng = np.random.default_rng(0)
    directions = np.array([[1.0, 0.0], [0.0, 1.0]])
    labels = np.repeat([0, 1], 200)
    scale = rng.uniform(0.1, 100.0, size=(400, 1))
    points = (directions[labels] + rng.normal(scale=0.05, size=(400, 2))) * scale
    spherical = KMeans(2, spherical=True, device="cpu", n_init=3).fit(points.astype(np.float32))
    assert clustering_scores(labels, spherical.labels_)["ami"] > 0.95


def test_k_larger_than_frames_is_an_error() -> None:
    with pytest.raises(W2VLensError, match=r"k=11 is larger than the number of frames \(10\)"):
        KMeans(11, device="cpu").fit(np.zeros((10, 2), np.float32))


def test_auto_backend_without_gpu_is_faiss_cpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert pick_backend("auto", "auto") == ("faiss", "cpu")


def test_scores_perfect_and_chance() -> None:
    truth = np.repeat(np.arange(4), 250)
    perfect = clustering_scores(truth, (truth + 1) % 4)  # same partition, other ids
    assert perfect["ami"] == pytest.approx(1.0) and perfect["homogeneity"] == pytest.approx(1.0)
    chance = clustering_scores(truth, np.random.default_rng(0).integers(0, 4, truth.size))
    assert abs(chance["ami"]) < 0.02
    merged = clustering_scores(truth, truth // 2)  # two labels per cluster: complete, not homogeneous
    assert merged["completeness"] == pytest.approx(1.0) and merged["homogeneity"] == pytest.approx(0.5)


def test_cluster_summary_names_majority_labels() -> None:
    clusters = np.array([0, 0, 0, 1, 1])
    labels = np.array([2, 2, 1, 0, 0])
    summary = cluster_summary(contingency(clusters, labels, ["blank", "a", "b"]))
    assert summary.to_dict("records")[0] == {
        "cluster": 0, "size": 3, "majority_label": "b", "purity": pytest.approx(2 / 3),
        "top_labels": "b (2), a (1)"}
    assert summary.loc[1, "majority_label"] == "blank"


def test_subsampled_restarts_refined_on_all_points_match_the_full_fit() -> None:
    points, _ = blobs(n_per=2500, k=8, dim=24, seed=5)
    full = KMeans(8, backend="faiss", device="cpu", n_init=3, seed=0).fit(points)
    sampled = KMeans(8, backend="faiss", device="cpu", n_init=3, seed=0, max_points_per_centroid=64,
                     refine_iter=3).fit(points)
    assert sampled.inertia_ <= 1.01 * full.inertia_


@pytest.mark.parametrize("spherical", [False, True])
def test_torch_lloyd_streamed_in_chunks_matches_the_resident_fit(spherical: bool) -> None:
    """The path that streams the points (data larger than the device's memory budget) gives the
    same clustering as the one holding them, and stops before max_iter once converged."""
    points, labels = blobs(n_per=600, k=6, dim=24, seed=4)
    resident = KMeans(6, spherical=spherical, backend="torch", device="cpu", seed=2).fit(points)
    streamed = KMeans(6, spherical=spherical, backend="torch", device="cpu", seed=2,
                      memory_budget=points.nbytes // 4).fit(points)
    rows = DeviceRows(points, torch.device("cpu"), spherical, budget=points.nbytes // 4)
    assert not rows.resident and rows.chunk_rows < len(points)
    assert np.array_equal(resident.labels_, streamed.labels_)
    assert streamed.inertia_ == pytest.approx(resident.inertia_, rel=1e-5)
    assert np.allclose(resident.cluster_centers_, streamed.cluster_centers_, atol=1e-4)
    assert clustering_scores(labels, streamed.labels_)["ami"] > 0.99
    assert resident.n_iter_ < resident.max_iter
    assert np.array_equal(streamed.predict(points), streamed.labels_)


def test_torch_kmeans_matches_scikit_learn_on_overlapping_clusters() -> None:
    """Overlapping clusters, where the objective depends on the seeding and the iterations: the
    torch Lloyd loop ends within 1% of scikit-learn's inertia."""
    from sklearn.cluster import KMeans as SklearnKMeans

    rng = np.random.default_rng(7)
    centers = rng.normal(scale=1.5, size=(12, 32))
    points = (centers[rng.integers(0, 12, 6000)] + rng.normal(size=(6000, 32))).astype(np.float32)
    ours = KMeans(12, backend="torch", device="cpu", seed=0).fit(points)
    reference = SklearnKMeans(12, n_init=1, random_state=0).fit(points)
    assert ours.inertia_ <= 1.01 * reference.inertia_


def test_one_hot_cluster_sums_equal_index_add() -> None:
    """The GPU's centroid sums (one-hot product) and the CPU's (index_add_) agree."""
    generator = torch.Generator().manual_seed(0)
    chunk = torch.randn(5000, 64, generator=generator)
    labels = torch.randint(0, 9, (5000,), generator=generator)
    by_product, by_index = torch.zeros(9, 64), torch.zeros(9, 64)
    _add_cluster_sums(by_product, chunk, labels, one_hot=True)
    _add_cluster_sums(by_index, chunk, labels, one_hot=False)
    assert torch.allclose(by_product, by_index, atol=1e-3)
    assert torch.allclose(by_index[3], chunk[labels == 3].sum(0), atol=1e-3)
