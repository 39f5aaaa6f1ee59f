"""Comparing views of the same frames (paper Table 3): their clusterings scored against each other,
the later view's as the reference, and representation similarity by linear CKA."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from w2vlens.analysis.metrics import clustering_scores
from w2vlens.analysis.reduce import sample_rows
from w2vlens.choices import SCORES
from w2vlens.errors import W2VLensError


def linear_cka(X: np.ndarray, Y: np.ndarray, max_points: int | None = 10_000, seed: int = 0) -> float:
    """Linear centered kernel alignment (Kornblith et al. 2019) of two views of the same rows, on a
    random sample of at most `max_points` rows.

    Uses the feature-space form ||YᵀX||²_F / (||XᵀX||_F ||YᵀY||_F) on column-centred data, which
    costs O(n·(p+q)²) time and O((p+q)²) memory: no n × n Gram matrices. It is invariant to
    orthogonal transforms and isotropic scaling of either view, 1 for identical views.
    """
    if len(X) != len(Y):
        raise W2VLensError(f"CKA needs the same rows in both views, got {len(X)} and {len(Y)}")
    rows = sample_rows(len(X), max_points, seed=seed)
    x = np.asarray(X[rows], dtype=np.float64)
    y = np.asarray(Y[rows], dtype=np.float64)
    x -= x.mean(axis=0)
    y -= y.mean(axis=0)
    denominator = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    if denominator == 0:
        raise W2VLensError("CKA is undefined for a view without variance")
    return float(np.linalg.norm(y.T @ x) ** 2 / denominator)


def clustering_comparison(clusterings: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Paper Table 3: every pair of clusterings of the same frames, indexed by (earlier, later) names in
    the mapping's order, with the later view as the reference, as the authors' `f(later, earlier)`
    (pre vs CNN, fine vs CNN, fine vs pre): homogeneity is high when each cluster of the earlier
    view holds frames of one later cluster, completeness when each later cluster stays in one
    earlier cluster. Columns `ami`, `homogeneity`, `completeness`."""
    names = list(clusterings)
    lengths = {name: len(clusterings[name]) for name in names}
    if len(set(lengths.values())) > 1:
        raise W2VLensError(f"clusterings cover different numbers of frames: {lengths}")
    rows = {}
    for i, earlier in enumerate(names):
        for later in names[i + 1 :]:
            scores = clustering_scores(np.asarray(clusterings[later]), np.asarray(clusterings[earlier]))
            rows[earlier, later] = {metric: scores[metric] for metric in SCORES}
    index = pd.MultiIndex.from_tuples(list(rows), names=["earlier", "later"])
    return pd.DataFrame(list(rows.values()), index=index, columns=list(SCORES))


def view_comparison(embeddings: dict[str, np.ndarray], clusters: dict[str, np.ndarray],
                    cka_points: int, seed: int) -> pd.DataFrame:
    """Paper Table 3 (`clustering_comparison`: the later view's clusters are the reference) with
    columns `earlier`, `later`, AMI, homogeneity, completeness, plus linear CKA of the embeddings."""
    table = clustering_comparison(clusters).reset_index()
    table["linear_cka"] = [linear_cka(embeddings[row.earlier], embeddings[row.later], max_points=cka_points, seed=seed)
                           for row in table.itertuples()]
    return table
