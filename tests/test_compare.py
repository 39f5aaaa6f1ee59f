"""Linear CKA has the invariances it should, and clusterings compare pair by pair."""

import numpy as np
import pytest

from w2vlens.compare import linear_cka, pairwise_cluster_comparison
from w2vlens.errors import W2VLensError


def features(n: int = 2000, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim))  # correlated features


def test_cka_is_one_under_rotation_scaling_and_translation() -> None:
    x = features()
    rotation, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(32, 32)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ rotation + 5.0) == pytest.approx(1.0)
    assert linear_cka(x, x, max_points=500) == pytest.approx(1.0)


def test_cka_of_independent_views_is_near_zero() -> None:
    x = np.random.default_rng(2).normal(size=(2000, 32))
    noise = np.random.default_rng(3).normal(size=(2000, 16))
    assert linear_cka(x, noise) < 0.1
    assert 0.1 < linear_cka(x, np.hstack([x[:, :8], noise])) < 0.9


def test_cka_errors() -> None:
    with pytest.raises(W2VLensError, match="same rows"):
        linear_cka(features(100), features(99))
    with pytest.raises(W2VLensError, match="without variance"):
        linear_cka(features(100), np.ones((100, 4)))


def test_pairwise_comparison_of_identical_independent_and_nested_clusterings() -> None:
    rng = np.random.default_rng(0)
    fine = rng.integers(0, 10, 3000)
    clusterings = {
        "cnn": fine,
        "pre": (fine + 3) % 10,  # the same clustering with other ids
        "coarse": fine // 2,  # merges pairs of clusters
        "random": rng.integers(0, 10, 3000),
    }
    table = pairwise_cluster_comparison(clusterings)
    assert table.shape == (4, 12)
    assert table.index.tolist() == list(clusterings)
    assert np.isnan(table.loc["cnn", ("cnn", "ami")])
    assert table.loc["cnn", "pre"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert abs(table.loc["cnn", ("random", "ami")]) < 0.02
    # reference cnn, compared coarse: each cnn cluster lies in one coarse cluster (complete), not vice versa
    assert table.loc["cnn", ("coarse", "completeness")] == pytest.approx(1.0)
    assert table.loc["cnn", ("coarse", "homogeneity")] < 0.8
    assert table.loc["coarse", ("cnn", "homogeneity")] == pytest.approx(1.0)
    with pytest.raises(W2VLensError, match="different numbers of frames"):
        pairwise_cluster_comparison({"a": fine, "b": fine[:10]})
