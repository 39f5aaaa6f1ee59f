"""Scores of a clustering against reference labels (paper Table 1), the character error rate, and
how far each error category's frames lie from their cluster's centroid (Figure 2), as plain functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein
from sklearn import metrics

from w2vlens.errors import W2VLensError


def clustering_scores(labels_true: np.ndarray, labels_pred: np.ndarray) -> dict[str, float]:
    """AMI, homogeneity and completeness as in the paper, plus NMI, ARI and V-measure."""
    homogeneity, completeness, v_measure = metrics.homogeneity_completeness_v_measure(labels_true, labels_pred)
    return {
        "ami": float(metrics.adjusted_mutual_info_score(labels_true, labels_pred)),
        "homogeneity": float(homogeneity),
        "completeness": float(completeness),
        "v_measure": float(v_measure),
        "nmi": float(metrics.normalized_mutual_info_score(labels_true, labels_pred)),
        "ari": float(metrics.adjusted_rand_score(labels_true, labels_pred)),
    }


def contingency(clusters: np.ndarray, labels: np.ndarray, label_names: list[str]) -> pd.DataFrame:
    """Frames per (cluster, label): rows are cluster ids, columns label names, both sorted."""
    table = pd.crosstab(pd.Series(clusters, name="cluster"), pd.Series(np.asarray(label_names)[labels], name="label"))
    return table[table.sum().sort_values(ascending=False).index]


def cluster_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per cluster: size, majority label, its share (purity) and the three largest labels."""
    rows = []
    for cluster, counts in table.iterrows():
        top = counts.sort_values(ascending=False)
        size = int(counts.sum())
        rows.append({
            "cluster": int(cluster),
            "size": size,
            "majority_label": str(top.index[0]),
            "purity": float(top.iloc[0] / size),
            "top_labels": ", ".join(f"{label} ({count})" for label, count in top.head(3).items() if count),
        })
    return pd.DataFrame(rows).sort_values("size", ascending=False, ignore_index=True)


def character_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Character edit distance summed over utterances divided by the total reference length
    (spaces count as characters)."""
    edits = sum(Levenshtein.distance(r, h) for r, h in zip(references, hypotheses, strict=True))
    return edits / max(1, sum(len(r) for r in references))


def category_distances(embeddings: np.ndarray, clusters: np.ndarray, categories: np.ndarray,
                       blank_frames: np.ndarray | None = None, chunk: int = 65536) -> pd.DataFrame:
    """Figure 2's visual claim as numbers: per error category, the mean distance of its frames to
    their own cluster's centroid, each distance divided by its cluster's mean distance (1 is the
    cluster's average frame, above 1 towards the edge). With `blank_frames`, also split into the
    frames of emitted characters and the blank frames a deletion was put on. Rows: category,
    columns: frames and `distance` (and `character_*`, `blank_*`)."""
    clusters = np.asarray(clusters, dtype=np.int64)
    categories = np.asarray(categories).astype(str)
    if not len(embeddings) == len(clusters) == len(categories):
        raise W2VLensError(f"{len(embeddings)} embeddings, {len(clusters)} clusters and {len(categories)} "
                           "categories must describe the same frames")
    k = int(clusters.max()) + 1
    sums = np.zeros((k, embeddings.shape[1]))
    for start in range(0, len(clusters), chunk):
        np.add.at(sums, clusters[start : start + chunk], np.asarray(embeddings[start : start + chunk], np.float64))
    sizes = np.bincount(clusters, minlength=k)
    centroids = sums / np.maximum(sizes, 1)[:, None]
    distance = np.empty(len(clusters))
    for start in range(0, len(clusters), chunk):
        rows = slice(start, start + chunk)
        distance[rows] = np.linalg.norm(np.asarray(embeddings[rows], np.float64) - centroids[clusters[rows]], axis=1)
    mean = np.bincount(clusters, weights=distance, minlength=k) / np.maximum(sizes, 1)
    relative = np.divide(distance, mean[clusters], out=np.ones_like(distance), where=mean[clusters] > 0)
    frame = pd.DataFrame({"category": categories, "distance": relative})
    parts = {"": np.ones(len(clusters), dtype=bool)}
    if blank_frames is not None:
        parts |= {"character_": ~np.asarray(blank_frames, dtype=bool), "blank_": np.asarray(blank_frames, dtype=bool)}
    columns = {}
    for prefix, mask in parts.items():
        grouped = frame[mask].groupby("category")["distance"]
        columns[f"{prefix}frames"] = grouped.size()
        columns[f"{prefix}distance"] = grouped.mean()
    result = pd.DataFrame(columns)
    order = sorted(result.index, key=lambda c: (c != "correct", c == "unannotated", c))
    result = result.reindex(order)
    for column in result.columns:
        if column.endswith("frames"):
            result[column] = result[column].fillna(0).astype(np.int64)
    result.index.name = "category"
    return result
