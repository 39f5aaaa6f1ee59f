"""Comparing two models' views of the same frames (paper, Table 3): representation similarity
(linear CKA) and agreement between their clusterings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from w2vlens.errors import W2VLensError
from w2vlens.metrics import clustering_scores
from w2vlens.reduce import sample_rows

PAIR_METRICS = ("ami", "homogeneity", "completeness")


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


def pairwise_cluster_comparison(clusterings: dict[str, np.ndarray]) -> pd.DataFrame:
    """AMI, homogeneity and completeness for every ordered pair of clusterings of the same frames.

    Rows name the reference clustering A, columns (B, metric) the compared one: homogeneity is high
    when each of B's clusters holds frames of a single A cluster, completeness when each A cluster
    falls in a single B cluster (AMI is symmetric). Swapping the pair swaps the two. The diagonal
    is NaN, like the dashes of the paper's table.
    """
    names = list(clusterings)
    lengths = {name: len(labels) for name, labels in clusterings.items()}
    if len(set(lengths.values())) > 1:
        raise W2VLensError(f"clusterings cover different numbers of frames: {lengths}")
    columns = pd.MultiIndex.from_product([names, PAIR_METRICS], names=["compared", "metric"])
    table = pd.DataFrame(np.nan, index=pd.Index(names, name="reference"), columns=columns)
    for reference in names:
        for compared in names:
            if reference != compared:
                scores = clustering_scores(clusterings[reference], clusterings[compared])
                for metric in PAIR_METRICS:
                    table.loc[reference, (compared, metric)] = scores[metric]
    return table
