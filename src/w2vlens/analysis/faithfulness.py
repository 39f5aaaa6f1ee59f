"""What a 2-D projection loses (paper, Table 2), measured against the high-dimensional data.

`cluster_agreement` is the paper's test: K-means with the same k before and after the projection,
the 2-D clustering scored against the raw one. The neighbourhood scores complement it locally:
trustworthiness (are 2-D neighbours true neighbours?), continuity (are true neighbours kept as 2-D
neighbours?), both after Venna & Kaski (2001), and the fraction of k nearest neighbours kept.

The neighbourhood scores are means over points, so they are estimated on a random sample of rows
(the same rows for all three, given the seed), and neighbourhoods are those within the sample.
Trustworthiness and continuity reuse scikit-learn's reference implementation, which ranks all
pairwise distances (O(n²) memory: about 0.2 GB at the default 3,000 rows); continuity is
trustworthiness with the two spaces swapped.
"""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np
from sklearn.manifold import trustworthiness as _sklearn_trustworthiness

from w2vlens.analysis.cluster import KMeans
from w2vlens.analysis.metrics import clustering_scores
from w2vlens.analysis.reduce import sample_rows
from w2vlens.errors import W2VLensError


def cluster_agreement(raw_clusters: np.ndarray, low_dim: np.ndarray, seed: int = 0, n_init: int = 3,
                      kmeans: Callable[..., object] | None = None) -> dict[str, float]:
    """AMI, homogeneity and completeness of K-means on the 2-D coordinates (as many clusters as
    `raw_clusters`, the K-means clustering of the raw embeddings) against the raw clustering, the
    reference: homogeneity is high when each 2-D cluster holds one raw cluster, completeness when
    each raw cluster stays in one 2-D cluster. Restarts (`n_init`) keep a K-means local optimum
    from passing for information the projection lost. `kmeans` (n_clusters=k -> an unfitted
    K-means) makes it the run's own estimator, as the paper used the same K-means on both sides;
    without it, `KMeans(k, n_init, seed)`."""
    _check_rows(raw_clusters, low_dim)
    k = len(np.unique(raw_clusters))
    estimator = kmeans(n_clusters=k) if kmeans is not None else KMeans(k, n_init=n_init, seed=seed)
    flat = estimator.fit(low_dim).labels_
    scores = clustering_scores(raw_clusters, flat)
    return {name: scores[name] for name in ("ami", "homogeneity", "completeness")}


def trustworthiness(high_dim: np.ndarray, low_dim: np.ndarray, k: int = 10, sample: int | None = 3000,
                    seed: int = 0) -> float:
    """Trustworthiness of the k-neighbourhoods on a sample of rows: 1 when no 2-D neighbour is a
    false one, lower the further such intruders are in the high-dimensional ranking."""
    high, low = _sample(high_dim, low_dim, sample, seed)
    return float(_sklearn_trustworthiness(high, low, n_neighbors=k))


def continuity(high_dim: np.ndarray, low_dim: np.ndarray, k: int = 10, sample: int | None = 3000,
               seed: int = 0) -> float:
    """Continuity of the k-neighbourhoods on a sample of rows: 1 when every high-dimensional
    neighbour stays a 2-D neighbour, lower the further the missing ones end up in 2-D."""
    high, low = _sample(high_dim, low_dim, sample, seed)
    return float(_sklearn_trustworthiness(low, high, n_neighbors=k))


def knn_preservation(high_dim: np.ndarray, low_dim: np.ndarray, k: int = 10, sample: int | None = 3000,
                     seed: int = 0) -> float:
    """Mean fraction of each sampled point's k nearest high-dimensional neighbours (exact search with
    FAISS) that are also among its k nearest 2-D neighbours."""
    high, low = _sample(high_dim, low_dim, sample, seed)
    high_neighbours, low_neighbours = _neighbours(high, k), _neighbours(low, k)
    kept = [np.intersect1d(a, b, assume_unique=True).size for a, b in zip(high_neighbours, low_neighbours, strict=True)]
    return float(np.mean(kept) / k)


def _check_rows(high_dim: np.ndarray, low_dim: np.ndarray) -> None:
    if len(high_dim) != len(low_dim):
        raise W2VLensError(f"{len(high_dim)} embeddings but {len(low_dim)} projected points")


def _sample(high_dim: np.ndarray, low_dim: np.ndarray, sample: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    _check_rows(high_dim, low_dim)
    rows = sample_rows(len(high_dim), sample, seed=seed)
    return np.asarray(high_dim[rows], dtype=np.float32), np.asarray(low_dim[rows], dtype=np.float32)


def _neighbours(points: np.ndarray, k: int) -> np.ndarray:
    """Ids of each row's k nearest other rows (the row itself excluded even among duplicates)."""
    if k >= len(points):
        raise W2VLensError(f"k={k} neighbours needs more than {len(points)} points")
    index = faiss.IndexFlatL2(points.shape[1])
    index.add(np.ascontiguousarray(points))
    _, ids = index.search(np.ascontiguousarray(points), k + 1)
    is_self = ids == np.arange(len(points))[:, None]
    return np.take_along_axis(ids, np.argsort(is_self, axis=1, kind="stable"), axis=1)[:, :k]


def neighbourhood_scores(embeddings: np.ndarray, coords: np.ndarray, neighbours: int, sample: int,
                         seed: int) -> dict[str, float]:
    """Trustworthiness, continuity and kNN preservation of the `neighbours`-neighbourhoods, on the
    same `sample` rows."""
    return {
        "trustworthiness": trustworthiness(embeddings, coords, k=neighbours, sample=sample, seed=seed),
        "continuity": continuity(embeddings, coords, k=neighbours, sample=sample, seed=seed),
        "knn_preservation": knn_preservation(embeddings, coords, k=neighbours, sample=sample, seed=seed),
    }


def projection_scores(agreement: dict[str, float], neighbourhood: dict[str, float]) -> dict[str, float]:
    """One projection's scores as runs log them: the cluster agreement as `projection_<score>`, then
    the neighbourhood scores."""
    return {f"projection_{name}": value for name, value in agreement.items()} | neighbourhood


def projection_faithfulness(embeddings: np.ndarray, coords: np.ndarray, raw_clusters: np.ndarray,
                            neighbours: int, sample: int, seed: int,
                            kmeans: Callable[..., object] | None = None) -> dict[str, float]:
    """What the 2-D coordinates keep of the embeddings (paper Table 2, with the run's K-means
    `kmeans`, and the neighbourhood scores)."""
    agreement = cluster_agreement(np.asarray(raw_clusters), np.asarray(coords), seed=seed, kmeans=kmeans)
    return projection_scores(agreement, neighbourhood_scores(embeddings, coords, neighbours, sample, seed))
