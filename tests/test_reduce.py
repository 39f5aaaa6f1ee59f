"""Projections keep well separated blobs apart, and the faithfulness scores can tell."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from w2vlens.cluster import KMeans
from w2vlens.errors import W2VLensError
from w2vlens.faithfulness import cluster_agreement, continuity, knn_preservation, trustworthiness
from w2vlens.reduce import PCAProjection, TSNEProjection, UMAPProjection, sample_rows


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


def test_umap_kernels_are_compiled_once_per_machine(tmp_path: Path) -> None:
    """umap-learn's numba kernels land in NUMBA_CACHE_DIR, so later processes (sweep jobs) reuse them."""
    script = ("import numpy as np\n"
              "from w2vlens.reduce import import_umap_with_cached_jit\n"
              "umap = import_umap_with_cached_jit()\n"
              "print(type(umap.umap_.smooth_knn_dist._cache).__name__)\n"
              "umap.UMAP(n_epochs=20, random_state=0, n_jobs=1).fit(np.random.default_rng(0).normal(size=(300, 5)))\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["FunctionCache"]
    assert any((tmp_path / "numba").rglob("*.nbc"))  # compiled machine code on disk
