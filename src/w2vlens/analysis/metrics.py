"""Scores of a clustering against reference labels (paper Table 1) as plain functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein
from sklearn import metrics

SCORES = ("ami", "homogeneity", "completeness")  # the paper's scores (Tables 1-3), in its order


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
