"""Characters in clusters: paper Table 4, character-centred as the authors' `eval_pre_clusters_asr.py`
(`character_clusters`, `band_changes`), and the cluster-centred reading beside it, an extra.

Table 4 asks, per character, where its frames go: its modal cluster, the share of its frames there
(its accuracy), the characters sharing a modal cluster ("often confused") or the blank's ("merged
with blank"), and accuracy bands. Its cluster decoding spells frames as that script's tokenizer
does. Two bugs of that script are fixed here: a character without frames got cluster 0 from an
empty histogram (the paper's "merged with blank" row), and the cluster decoding took
`argmax(distr[1:])` without adding the 1 back, naming every cluster after the label before its own.

The cluster-centred reading names each K-means cluster after its most frequent frame label (the
majority mapping); a frame is then "recognised" when its cluster's name equals its own label. From
that come per-label accuracies and a label x label confusion. On pre-trained clusters nearly every
cluster's majority is the blank, so this view says little about characters.

Labels are either integer ids into `label_names` (the CTC vocabulary) or names already (e.g.
`FrameLabels.classes`, where blank frames are split into "silence" and "blank"). Blank and silence
are ordinary labels in the cluster-centred reading: a cluster may map to them, and they get accuracy
rows of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from w2vlens.analysis.metrics import character_error_rate
from w2vlens.corpora.text import normalize_text
from w2vlens.errors import W2VLensError
from w2vlens.labelling.names import WORD_DELIMITER

DEFAULT_BANDS = ((0.0, 0.2), (0.2, 0.3), (0.3, 1.0))  # the paper's Table 4 accuracy bands


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


def is_character(token: str, blank: str) -> bool:
    """A vocabulary entry Tables 4-5 list: a letter, so not the blank, the word delimiter, a special
    token (<unk>) or punctuation such as `-` or `'` (the paper's tables hold letters only)."""
    return token != blank and token.isalpha()


def band_name(low: float, high: float, last: bool) -> str:
    """'accuracy <20%', 'accuracy 20–30%', 'accuracy 30%+' (the last band includes its upper bound)."""
    if low <= 0:
        return f"accuracy <{high:.0%}"
    if last and high >= 1:
        return f"accuracy {low:.0%}+"
    return f"accuracy {low:.0%}–{high:.0%}"


def _check_label_ids(clusters: np.ndarray, labels: np.ndarray, n_labels: int) -> None:
    if len(clusters) != len(labels):
        raise W2VLensError(f"{len(clusters)} cluster ids but {len(labels)} frame labels")
    if labels.size and labels.max() >= n_labels:
        raise W2VLensError(f"label ids must lie below the vocabulary size {n_labels}, got {labels.max()}")
    if clusters.size and clusters.min() < 0:
        raise W2VLensError(f"cluster ids must be non-negative, got {clusters.min()}")


@dataclass
class CharacterClusters:
    """Table 4: what a view's clusters know about characters (see `character_clusters`)."""

    accuracy: pd.Series  # character -> share of its frames in its modal cluster
    modal_cluster: pd.Series  # character -> its most common cluster
    frames: pd.Series  # character -> its number of frames
    groups: list[list[str]]  # characters sharing a modal cluster other than the blank's ("often confused")
    merged_with_blank: list[str]  # characters whose modal cluster is the blank's modal cluster
    absent: list[str]  # vocabulary characters without any frame
    bands: dict[str, list[str]]  # band name -> characters, from the lowest band to the highest
    blank_cluster: int | None  # the blank's modal cluster (None: no blank frames)
    cluster_label: dict[int, str]  # cluster -> its most frequent non-blank label (for `decode`)
    cluster_majority: pd.DataFrame  # extra view: each cluster named after its majority label, blank included
    clusters: np.ndarray = field(repr=False)
    vocabulary: list[str] = field(repr=False)

    def decode(self, offsets: Sequence[int], spaces: bool = False) -> list[str]:
        """Each utterance's text spelled by its clusters, every frame named after its cluster's most
        frequent non-blank label. As the authors' `eval_pre_clusters_asr.py` (the paper's 83.4% row):
        each frame's token is decoded on its own, so the word delimiter and special tokens (<unk>)
        give nothing, and consecutive repeats are merged after that (`a|a` reads `a`). With `spaces`
        (ours), the delimiter is a space before the merge (`a|a` reads `a a`). `offsets` are the
        utterances' first frames in order; each runs to the next one's offset, the last to the end."""
        bounds = [int(offset) for offset in offsets] + [len(self.clusters)]
        if any(a > b for a, b in zip(bounds[:-1], bounds[1:], strict=True)) or (bounds and bounds[0] < 0):
            raise W2VLensError(f"utterance offsets must increase within the {len(self.clusters)} frames")
        spelled = {cluster: (" " if spaces else "") if token == WORD_DELIMITER else token if len(token) == 1 else ""
                   for cluster, token in self.cluster_label.items()}
        texts = []
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            text = "".join(spelled.get(int(c), "") for c in self.clusters[start:end])
            merged = "".join(ch for i, ch in enumerate(text) if i == 0 or ch != text[i - 1])
            texts.append(" ".join(merged.split()))
        return texts

    def cer(self, offsets: Sequence[int], references: Sequence[str | None], spaces: bool = False) -> float:
        """CER of `decode(offsets, spaces)` against the normalised reference transcripts, their spaces
        removed unless `spaces` (the paper's 83.4% compares the authors' space-free decoding);
        utterances without a reference are left out."""
        hypotheses = self.decode(offsets, spaces)
        if len(references) != len(hypotheses):
            raise W2VLensError(f"{len(references)} references for {len(hypotheses)} utterances")
        normalised = [normalize_text(r) if isinstance(r, str) else "" for r in references]
        pairs = [(r if spaces else r.replace(" ", ""), h) for r, h in zip(normalised, hypotheses, strict=True) if r]
        if not pairs:
            raise W2VLensError("no utterance has a reference text to score the cluster decoding against")
        return character_error_rate([r for r, _ in pairs], [h for _, h in pairs])


def _cluster_majority(clusters: np.ndarray, labels: np.ndarray, vocabulary: Sequence[str]) -> pd.DataFrame:
    """Per label: frames, frames whose cluster's majority label (blank included) is that label, and
    the share: the cluster-centred reading of Table 4 (the module docstring)."""
    mapping = majority_mapping(clusters, labels, vocabulary)
    return per_character_accuracy(clusters, labels, vocabulary, mapping)


def character_clusters(clusters: np.ndarray, labels: np.ndarray, vocabulary: Sequence[str], blank: str = "<pad>",
                       bands: Sequence[tuple[float, float]] = DEFAULT_BANDS) -> CharacterClusters:
    """Table 4, character-centred as in the authors' `eval_pre_clusters_asr.py`.

    `labels` are per-frame ids into `vocabulary` (the fine-tuned model's pseudo-labels in the
    paper); negative ids mark frames without a label, left out. For each character, its frames'
    distribution over the clusters gives its modal cluster and its accuracy (the share of its frames
    there). Characters sharing a modal cluster form the "often confused" groups, those sharing the
    blank's modal cluster are "merged with blank", and characters with no frames are `absent` (the
    authors' empty histogram put them in cluster 0, which is how the paper's "merged with blank" row
    came about). Accuracy bands run low <= accuracy < high, the last one including its upper bound.
    """
    clusters, labels = np.asarray(clusters, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    vocabulary = list(vocabulary)
    if blank not in vocabulary:
        raise W2VLensError(f"the blank {blank!r} is not in the vocabulary")
    _check_label_ids(clusters, labels, len(vocabulary))
    keep = labels >= 0
    clusters_kept, labels_kept = clusters[keep], labels[keep]
    blank_id = vocabulary.index(blank)
    counts = pd.crosstab(labels_kept, clusters_kept)  # label id x cluster
    modal = counts.idxmax(axis=1)  # idxmax: the smallest cluster id wins a tie
    share = counts.max(axis=1) / counts.sum(axis=1)
    characters = [i for i, token in enumerate(vocabulary) if is_character(token, blank)]
    present = [i for i in characters if i in counts.index]
    names = {i: vocabulary[i] for i in characters}
    accuracy = pd.Series({names[i]: float(share[i]) for i in present}, name="accuracy", dtype=float)
    modal_cluster = pd.Series({names[i]: int(modal[i]) for i in present}, name="modal_cluster", dtype=np.int64)
    frames = pd.Series({names[i]: int(counts.loc[i].sum()) for i in present}, name="frames", dtype=np.int64)
    blank_cluster = int(modal[blank_id]) if blank_id in counts.index else None
    merged = sorted(c for c in modal_cluster.index if modal_cluster[c] == blank_cluster)
    by_cluster: dict[int, list[str]] = {}
    for character, cluster in modal_cluster.items():
        if cluster != blank_cluster:
            by_cluster.setdefault(int(cluster), []).append(str(character))
    groups = sorted(sorted(members) for members in by_cluster.values() if len(members) > 1)
    band_members: dict[str, list[str]] = {}
    for number, (low, high) in enumerate(sorted(tuple(band) for band in bands)):
        last = number == len(bands) - 1
        band_members[band_name(low, high, last)] = sorted(
            c for c, value in accuracy.items() if low <= value < high or (last and value == high))
    non_blank = counts.drop(index=[blank_id], errors="ignore").T  # cluster x label, blank left out
    cluster_label = {int(cluster): vocabulary[int(row.idxmax())] for cluster, row in non_blank.iterrows()
                     if row.sum() > 0}
    absent = sorted(names[i] for i in characters if i not in counts.index)
    return CharacterClusters(accuracy.sort_index(), modal_cluster.sort_index(), frames.sort_index(), groups, merged,
                             absent, band_members, blank_cluster, cluster_label,
                             _cluster_majority(clusters_kept, labels_kept, vocabulary), clusters, vocabulary)


def band_changes(clusterings: Sequence[np.ndarray], labels: np.ndarray, vocabulary: Sequence[str],
                 blank: str = "<pad>", bands: Sequence[tuple[float, float]] = DEFAULT_BANDS) -> pd.DataFrame:
    """Table 4's accuracy bands under several K-means seeds: one row per character with frames,
    its band under each clustering in `clusterings` (columns `seed_0`, `seed_1`, ...) and `changes`,
    whether it leaves the band of the first clustering under any other."""
    columns = {}
    for number, clusters in enumerate(clusterings):
        table = character_clusters(clusters, labels, vocabulary, blank, bands)
        columns[f"seed_{number}"] = pd.Series({character: name for name, members in table.bands.items()
                                               for character in members}, dtype=object)
    frame = pd.DataFrame(columns).sort_index()
    frame["changes"] = frame.nunique(axis=1, dropna=False) > 1
    frame.index.name = "character"
    return frame
