"""The cluster-centred reading of Table 4, an extra beside the paper's character-centred one
(`w2vlens.tables.table4`).

Each K-means cluster is named after its most frequent frame label (the majority mapping); a frame is
then "recognised" when its cluster's name equals its own label. From that come per-label accuracies
and a label x label confusion. On pre-trained clusters nearly every cluster's majority is the blank,
so this view says little about characters: the paper's Table 4 asks, per character, where its frames go.

Labels are either integer ids into `label_names` (the CTC vocabulary) or names already (e.g.
`FrameLabels.classes`, where blank frames are split into "silence" and "blank"). Blank and silence
are ordinary labels here: a cluster may map to them, and they get accuracy rows of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from w2vlens.errors import W2VLensError


def _names(labels: np.ndarray, label_names: Sequence[str] | None) -> np.ndarray:
    """Per-frame label names: ids looked up in `label_names`, or the labels themselves when they are names."""
    labels = np.asarray(labels)
    if label_names is None or not np.issubdtype(labels.dtype, np.integer):
        return labels.astype(str)
    if labels.size and (labels.min() < 0 or labels.max() >= len(label_names)):
        raise W2VLensError(f"label ids must lie in [0, {len(label_names)}), got {labels.min()}..{labels.max()}")
    return np.asarray(label_names, dtype=object)[labels].astype(str)


def _check_lengths(clusters: np.ndarray, labels: np.ndarray) -> None:
    if len(clusters) != len(labels):
        raise W2VLensError(f"{len(clusters)} cluster ids but {len(labels)} frame labels")


def _mapped(clusters: np.ndarray, mapping: Mapping[int, str]) -> np.ndarray:
    """Per-frame names of the frames' clusters; a cluster the mapping lacks is an error."""
    clusters = np.asarray(clusters)
    ids, inverse = np.unique(clusters, return_inverse=True)
    missing = [int(c) for c in ids if int(c) not in mapping]
    if missing:
        raise W2VLensError(f"clusters without a mapped label: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    return np.asarray([mapping[int(c)] for c in ids], dtype=object)[inverse].astype(str)


def majority_mapping(clusters: np.ndarray, labels: np.ndarray,
                     label_names: Sequence[str] | None = None) -> dict[int, str]:
    """Each cluster's most frequent label; ties go to the alphabetically first label name."""
    clusters = np.asarray(clusters)
    names = _names(labels, label_names)
    _check_lengths(clusters, names)
    table = pd.crosstab(clusters, names)
    table = table[sorted(table.columns)]  # idxmax returns the first maximum: the smallest name wins a tie
    return {int(cluster): str(label) for cluster, label in table.idxmax(axis=1).items()}


def character_confusion(clusters: np.ndarray, labels: np.ndarray, label_names: Sequence[str] | None,
                        mapping: Mapping[int, str]) -> pd.DataFrame:
    """Frames per (true label, predicted label), the prediction being the frame's cluster's mapped
    label. Rows and columns cover every label that occurs on either side, in sorted order."""
    clusters = np.asarray(clusters)
    names = _names(labels, label_names)
    _check_lengths(clusters, names)
    predicted = _mapped(clusters, mapping)
    everything = sorted(set(names) | set(predicted))
    table = pd.crosstab(pd.Series(names, name="label"), pd.Series(predicted, name="predicted"))
    return table.reindex(index=everything, columns=everything, fill_value=0)


def per_character_accuracy(clusters: np.ndarray, labels: np.ndarray, label_names: Sequence[str] | None,
                           mapping: Mapping[int, str]) -> pd.DataFrame:
    """Per true label: `frames`, `correct` (frames whose cluster maps to that label) and `accuracy`.
    Blank and silence get their own rows like any other label."""
    confusion = character_confusion(clusters, labels, label_names, mapping)
    frames = confusion.sum(axis=1)
    correct = pd.Series(np.diag(confusion.to_numpy()), index=confusion.index)
    table = pd.DataFrame({"frames": frames, "correct": correct})
    table = table[table["frames"] > 0]
    table["accuracy"] = table["correct"] / table["frames"]
    table.index.name = "label"
    return table


def majority_blank_clusters(clusters: np.ndarray, label_ids: np.ndarray, blank: int) -> int:
    """How many clusters have the blank as their majority label (the cluster-majority view's problem)."""
    keep = label_ids >= 0
    table = pd.crosstab(clusters[keep], label_ids[keep])
    return int((table.idxmax(axis=1) == blank).sum())
