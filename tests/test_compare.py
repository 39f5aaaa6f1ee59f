"""Linear CKA has the invariances it should (Table 3's clustering scores: tests/test_tables.py)."""

import numpy as np
import pytest

from w2vlens.analysis.compare import linear_cka
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
