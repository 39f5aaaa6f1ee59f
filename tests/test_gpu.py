"""The CUDA paths `auto` picks: half-precision extraction with SDPA attention, K-means on the GPU
(faiss-gpu or torch), the exact kNN graph of the projections, and cuML UMAP. Every test skips
cleanly on a machine without a CUDA GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from w2vlens.analysis.cluster import KMeans, pick_backend
from w2vlens.analysis.metrics import clustering_scores
from w2vlens.analysis.reduce import TSNEProjection, UMAPProjection, knn_graph
from w2vlens.corpora.corpus import load_manifest
from w2vlens.embeddings.extract import extract
from w2vlens.embeddings.models import load_checkpoint, resolve_device, resolve_dtype

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def gaussian_blobs(n_per: int, k: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(k), n_per)
    centers = rng.normal(scale=6.0, size=(k, dim))
    return (centers[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32), labels


def test_auto_extracts_in_half_precision_with_sdpa_and_matches_the_cpu(
        tiny_pair: tuple[Path, Path], corpus_manifest: Path, tmp_path: Path) -> None:
    device = resolve_device("auto")
    dtype = resolve_dtype("auto", device)
    assert device.type == "cuda" and dtype in (torch.bfloat16, torch.float16)
    corpus = load_manifest(corpus_manifest)
    gpu = load_checkpoint(str(tiny_pair[1]), require_ctc=True, device=device, dtype=dtype)
    assert gpu.model.config._attn_implementation == "sdpa"
    cpu = load_checkpoint(str(tiny_pair[1]), require_ctc=True, device=torch.device("cpu"), dtype=torch.float32)
    on_gpu, _ = extract(gpu, corpus, tmp_path / "gpu", dtype)
    on_cpu, _ = extract(cpu, corpus, tmp_path / "cpu", torch.float32)
    assert on_gpu.path != on_cpu.path  # the compute dtype is part of the cache key
    for name in ("layer_02", "logits"):
        a, b = np.asarray(on_gpu.array(name)), np.asarray(on_cpu.array(name))
        cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        assert cosine.min() > 0.98, name


@pytest.mark.parametrize("spherical", [False, True])
def test_auto_kmeans_runs_on_the_gpu_and_agrees_with_the_cpu(spherical: bool) -> None:
    backend, device = pick_backend("auto", "auto")
    assert (backend, device) == ("torch", "cuda")
    points, labels = gaussian_blobs(2000, 20, 256)
    gpu = KMeans(20, spherical=spherical, n_init=3).fit(points)
    cpu = KMeans(20, spherical=spherical, n_init=3, device="cpu").fit(points)
    assert gpu.device_ == "cuda"
    assert clustering_scores(labels, gpu.labels_)["ami"] > 0.95
    assert gpu.inertia_ <= cpu.inertia_ * 1.01


def test_torch_kmeans_on_cuda_scales_to_many_points() -> None:
    points, labels = gaussian_blobs(20_000, 36, 1024)
    model = KMeans(36, backend="torch", device="cuda", max_iter=20).fit(points)
    assert model.device_ == "cuda" and clustering_scores(labels, model.labels_)["ami"] > 0.95


@pytest.mark.parametrize("spherical", [False, True])
def test_torch_kmeans_on_cuda_streamed_resident_and_cpu_agree(spherical: bool) -> None:
    """Points held on the GPU, points streamed through it in chunks (a memory budget smaller than
    the data), and the same torch code on the CPU: the same clustering, TF32 or not."""
    points, labels = gaussian_blobs(5_000, 12, 128, seed=1)
    settings = dict(spherical=spherical, backend="torch", seed=3)
    resident = KMeans(12, device="cuda", **settings).fit(points)
    streamed = KMeans(12, device="cuda", memory_budget=points.nbytes // 4, **settings).fit(points)
    exact = KMeans(12, device="cuda", tf32=False, **settings).fit(points)
    cpu = KMeans(12, device="cpu", **settings).fit(points)
    for other in (streamed, exact, cpu):
        assert clustering_scores(resident.labels_, other.labels_)["ami"] > 0.999
        assert other.inertia_ == pytest.approx(resident.inertia_, rel=1e-4)
    assert clustering_scores(labels, resident.labels_)["ami"] > 0.95
    assert np.array_equal(resident.predict(points), resident.labels_)


def test_torch_kmeans_on_cuda_is_within_one_percent_of_scikit_learn() -> None:
    """Overlapping clusters (the objective depends on the optimisation): TF32 distance products
    and fp32 sums end within 1% of scikit-learn's objective."""
    from sklearn.cluster import KMeans as SklearnKMeans

    rng = np.random.default_rng(0)
    centers = rng.normal(scale=0.6, size=(36, 256))
    points = (centers[rng.integers(0, 36, 50_000)] + rng.normal(size=(50_000, 256))).astype(np.float32)
    ours = KMeans(36, backend="torch", device="cuda").fit(points)
    reference = SklearnKMeans(36, n_init=1, max_iter=50, random_state=0).fit(points)
    assert ours.inertia_ <= 1.01 * reference.inertia_


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_graph_on_cuda_matches_faiss_on_the_cpu(metric: str) -> None:
    points, _ = gaussian_blobs(1_000, 8, 64)
    gpu = knn_graph(points, 30, metric, device="cuda")
    cpu = knn_graph(points, 30, metric, device="cpu")
    same = np.mean([len(np.intersect1d(a, b)) / 30 for a, b in zip(gpu.indices, cpu.indices, strict=True)])
    assert same > 0.999
    assert np.allclose(np.sort(gpu.distances, 1), np.sort(cpu.distances, 1), atol=1e-3)


def test_tsne_on_all_frames_with_the_graph_searched_on_cuda() -> None:
    points, labels = gaussian_blobs(400, 5, 50)
    projection = TSNEProjection(n_iter=150, early_exaggeration_iter=100, pca_components=10, device="cuda")
    coords = projection.fit_transform(points)
    clusters = KMeans(5, device="cpu", n_init=3).fit(coords).labels_
    assert clustering_scores(labels, clusters)["ami"] > 0.9


def test_cuml_umap_keeps_blobs_apart() -> None:
    pytest.importorskip("cuml")
    points, labels = gaussian_blobs(300, 5, 50)
    projection = UMAPProjection(backend="cuml")
    coords = projection.fit_transform(points)
    assert projection.backend_ == "cuml" and coords.shape == (len(points), 2)
    clusters = KMeans(5, device="cpu", n_init=3).fit(coords).labels_
    assert clustering_scores(labels, clusters)["ami"] > 0.9
