"""The CUDA paths `auto` picks: half-precision extraction with SDPA attention, K-means on the GPU
(faiss-gpu or torch), and cuML UMAP. Every test skips cleanly on a machine without a CUDA GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from w2vlens.cluster import KMeans, pick_backend
from w2vlens.data import load_manifest
from w2vlens.extract import extract
from w2vlens.metrics import clustering_scores
from w2vlens.models import load_checkpoint, resolve_device, resolve_dtype
from w2vlens.reduce import UMAPProjection

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
    assert device == "cuda" and backend in ("faiss", "torch")
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


def test_cuml_umap_keeps_blobs_apart() -> None:
    pytest.importorskip("cuml")
    points, labels = gaussian_blobs(300, 5, 50)
    projection = UMAPProjection(backend="cuml")
    coords = projection.fit_transform(points)
    assert projection.backend_ == "cuml" and coords.shape == (len(points), 2)
    clusters = KMeans(5, device="cpu", n_init=3).fit(coords).labels_
    assert clustering_scores(labels, clusters)["ami"] > 0.9
