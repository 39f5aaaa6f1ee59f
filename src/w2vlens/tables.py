"""The paper's tables as pure functions over frame-level arrays (Grósz et al., Tables 1-5, Figure 2).

Every function takes numpy arrays of integer ids (clusters, CTC label ids) or plain Python data and
returns numbers, pandas objects or small dataclasses: no config, no MLflow, no files. The app's
`experiment=paper` calls these functions; a researcher can call them on their own arrays::

    from w2vlens import tables
    tables.table1(labels, clusters)                      # {'ami': ..., 'homogeneity': ..., ...}
    tables.table4(pre_clusters, labels, vocabulary).bands
    tables.table1_intervals(labels, clusters, utterance_ids)    # mean, std, min, max, 95% low, high

Where the paper is vague, the rules follow the authors' scripts (github.com/aalto-speech/
Wav2vec2Interpretation, `scripts/`): scikit-learn's scores are called as `f(reference, compared)`
with the labels (Table 1), the raw clusters (Table 2) or the later view's clusters (Table 3) as the
reference; Table 4 is character-centred and its cluster decoding spells frames as that script's
tokenizer does (`eval_pre_clusters_asr.py`). Two bugs of those scripts are fixed here and named where
they matter: a character without frames got cluster 0 from an empty histogram (the paper's "merged
with blank" row), and the cluster decoding took `argmax(distr[1:])` without adding the 1 back,
naming every cluster after the label before its own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from w2vlens.analysis.characters import majority_mapping, per_character_accuracy
from w2vlens.analysis.correlate import character_correlations
from w2vlens.analysis.faithfulness import cluster_agreement
from w2vlens.analysis.intervals import paired_difference, score_intervals, spread
from w2vlens.analysis.metrics import SCORES, character_error_rate, clustering_scores
from w2vlens.corpora.text import normalize_text
from w2vlens.errors import W2VLensError
from w2vlens.labelling.names import BLANK_LABEL, WORD_DELIMITER
from w2vlens.labelling.transcripts import (
    ErrorFrames,
    per_character_accuracy_vs_reference,
    percentile_groups,
)
from w2vlens.labelling.transcripts import error_frames as _error_frames

DEFAULT_BANDS = ((0.0, 0.2), (0.2, 0.3), (0.3, 1.0))


def table1(labels: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    """Table 1: a clustering scored against the frames' labels, the reference (labels_true): `ami`,
    `homogeneity` (each cluster holds one label), `completeness` (each label stays in one cluster),
    plus `v_measure`, `nmi` and `ari`."""
    return clustering_scores(np.asarray(labels), np.asarray(clusters))


def table2(raw_clusters: np.ndarray, coords: np.ndarray, seed: int = 0,
           kmeans: Callable[..., object] | None = None) -> dict[str, float]:
    """Table 2: K-means with as many clusters as `raw_clusters` on the 2-D `coords`, scored against
    the clusters of the embeddings (the reference): `ami`, `homogeneity`, `completeness`. `kmeans`
    (n_clusters=k -> an unfitted K-means): the run's estimator, as for the embeddings' clusters."""
    return cluster_agreement(np.asarray(raw_clusters), np.asarray(coords), seed=seed, kmeans=kmeans)


def table3(clusterings: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Table 3: every pair of clusterings of the same frames, indexed by (earlier, later) names in
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


def _check_labels(clusters: np.ndarray, labels: np.ndarray, n_labels: int) -> None:
    if len(clusters) != len(labels):
        raise W2VLensError(f"{len(clusters)} cluster ids but {len(labels)} frame labels")
    if labels.size and labels.max() >= n_labels:
        raise W2VLensError(f"label ids must lie below the vocabulary size {n_labels}, got {labels.max()}")
    if clusters.size and clusters.min() < 0:
        raise W2VLensError(f"cluster ids must be non-negative, got {clusters.min()}")


@dataclass
class Table4:
    """Table 4: what a view's clusters know about characters (see `table4`)."""

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
    the share: the cluster-centred reading of Table 4 (see `w2vlens.analysis.characters`)."""
    mapping = majority_mapping(clusters, labels, vocabulary)
    return per_character_accuracy(clusters, labels, vocabulary, mapping)


def table4(clusters: np.ndarray, labels: np.ndarray, vocabulary: Sequence[str], blank: str = "<pad>",
           bands: Sequence[tuple[float, float]] = DEFAULT_BANDS) -> Table4:
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
    _check_labels(clusters, labels, len(vocabulary))
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
    return Table4(accuracy.sort_index(), modal_cluster.sort_index(), frames.sort_index(), groups, merged, absent,
                  band_members, blank_cluster, cluster_label,
                  _cluster_majority(clusters_kept, labels_kept, vocabulary), clusters, vocabulary)


@dataclass
class Table5:
    """Table 5: the fine-tuned model's per-character accuracy against one reference transcript."""

    accuracy: pd.Series  # character -> matched / occurrences
    counts: pd.DataFrame  # per character: occurrences, matched, substituted, deleted, accuracy
    groups: pd.DataFrame  # per percentile group: low, high, interval, characters
    cer: float  # CER of the hypotheses against the references
    ungrouped: list[str] = field(default_factory=list)  # listed characters left out of the groups


def table5(hypotheses: Sequence[str], references: Sequence[str], percentiles: Sequence[float] = (33, 66),
           characters: Collection[str] | None = None, grouped: Collection[str] | None = None) -> Table5:
    """Table 5: per reference character (spaces left out), the share of its occurrences the
    hypotheses match in a minimum-edit alignment, grouped at the `percentiles` of those shares (a
    boundary value belongs to the lower group). References are normalised; hypotheses taken as given.
    With `characters` (e.g. the vocabulary's letters), only those are listed; with `grouped` (e.g.
    `frequent_characters`), only those listed characters are grouped, the others are `ungrouped`."""
    counts = per_character_accuracy_vs_reference(hypotheses, references)
    if characters is not None:
        counts = counts[counts.index.isin(list(characters))]
    kept = counts if grouped is None else counts[counts.index.isin(list(grouped))]
    references = [normalize_text(r or "") for r in references]
    return Table5(counts["accuracy"].rename("accuracy"), counts, percentile_groups(kept, percentiles),
                  character_error_rate(references, list(hypotheses)),
                  sorted(str(c) for c in counts.index if c not in kept.index))


def frequent_characters(frames: pd.Series, min_frames: int) -> list[str]:
    """The characters with at least `min_frames` frames (Table 4's `frames`, reindexed to every letter
    with 0 for the absent ones, so that 0 keeps them all): those whose accuracies
    the correlations and Table 5's groups use. A share of a handful of frames is noise, and Pearson's
    r lets one such character decide its value."""
    if min_frames < 0:
        raise W2VLensError(f"the minimum number of frames per character must be >= 0, got {min_frames}")
    return sorted(str(c) for c, n in frames.items() if n >= min_frames)


def correlations(pre_accuracy: pd.Series, fine_accuracy: pd.Series, frequencies: pd.Series | None = None,
                 characters: Collection[str] | None = None) -> dict[str, float]:
    """The paper's correlations over the characters both series have (only `characters`, e.g.
    `frequent_characters`, when given): pre-trained vs fine-tuned accuracy (paper: 0.35) always;
    with the characters' `frequencies` in the fine-tuning transcripts, also frequency vs the
    fine-tuned model's per-character CER (0.38) and the multiple R of both (0.52). Pearson and
    Spearman r, each with its p-value and n (see `character_correlations`)."""
    if characters is not None:
        keep = list(characters)
        pre_accuracy, fine_accuracy = pre_accuracy[pre_accuracy.index.isin(keep)], fine_accuracy[
            fine_accuracy.index.isin(keep)]
    return character_correlations(pre_accuracy, fine_accuracy, frequencies)


def error_categories(predictions: np.ndarray, vocabulary: Sequence[str], offsets: Sequence[int],
                     annotators: Mapping[str, Sequence[str | None]], pauses: np.ndarray | None = None,
                     blank: str = "<pad>", ids: Sequence[str] | None = None) -> ErrorFrames:
    """Figure 2: per frame, how many annotators' transcripts mark the greedy character it belongs
    to as a mistake (substituted or inserted), -1 for frames of utterances no annotator transcribed.

    `predictions` are the fine-tuned model's per-frame CTC ids, `offsets` the utterances' first
    frames (each runs to the next offset), `annotators` one transcript per utterance for each
    annotator. A deletion (an annotator hears characters the model did not emit) is put on the
    blank frames between the two predicted characters around it, leaving out `pauses` (per-frame
    booleans: the silence split's `silence` frames); a gap with no such frame hands it to the
    character after it. Without `pauses`, it covers every blank frame between them, pauses
    included, as the authors' released categories do. Categories: "correct", "k/K" for k of K
    annotators, "unannotated". `ids` name the utterances in warnings."""
    predictions = np.asarray(predictions)
    bounds = [int(offset) for offset in offsets] + [len(predictions)]
    if any(a > b for a, b in zip(bounds[:-1], bounds[1:], strict=True)):
        raise W2VLensError(f"utterance offsets must increase within the {len(predictions)} frames")
    names = list(ids) if ids is not None else [f"utterance {i}" for i in range(len(offsets))]
    table = pd.DataFrame({"id": names, "offset": bounds[:-1],
                          "n_frames": np.diff(bounds)})
    for name, transcripts in annotators.items():
        if len(transcripts) != len(table):
            raise W2VLensError(f"annotator {name!r}: {len(transcripts)} transcripts for {len(table)} utterances")
        column = name if str(name).startswith("annotator_") else f"annotator_{name}"
        table[column] = list(transcripts)
    tokens = [token if token != blank else BLANK_LABEL for token in vocabulary]
    return _error_frames(predictions, tokens, table, pauses)


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


# Uncertainty (issue 20): bootstrap intervals over utterances or speakers, paired bootstrap tests and
# the spread over K-means seeds; the machinery is `w2vlens.analysis.intervals`.


def table1_intervals(labels: np.ndarray, clusters: np.ndarray, units: np.ndarray, n_resamples: int = 1000,
                     seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Table 1 with its uncertainty: rows `ami`, `homogeneity`, `completeness` of `clusters` against
    `labels`; columns the mean, std, min and max over K-means seeds (`clusters` 1-D, or seeds x
    frames) and the `level` bootstrap interval (`low`, `high`) from `n_resamples` resamples of the
    `units` (each frame's utterance or speaker) with replacement, every seed's replicates pooled."""
    return score_intervals(labels, clusters, units, n_resamples, seed, level)


def table3_intervals(later: np.ndarray, earlier: np.ndarray, units: np.ndarray, n_resamples: int = 1000,
                     seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """One Table 3 entry with its uncertainty, the `later` view's clusters the reference (as
    `table3`); the columns of `table1_intervals`. Either may be seeds x frames."""
    return score_intervals(later, earlier, units, n_resamples, seed, level)


def paired_bootstrap(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray],
                     units: np.ndarray, metric: str = "ami", n_resamples: int = 1000, seed: int = 0,
                     level: float = 0.95) -> dict[str, float]:
    """The paper's comparisons as tests: `metric` of `first` minus that of `second`, each a
    (reference, compared) pair over the same frames (e.g. (labels, fine-tuned clusters) and
    (labels, pre-trained clusters)), both scored under the same resamples of the `units`:
    `difference`, its interval `low`-`high` and the two-sided bootstrap `p_value`."""
    return paired_difference(first, second, units, metric, n_resamples, seed, level)


def seed_spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, std, min and max of a score over K-means seeds."""
    return spread(values)


def band_changes(clusterings: Sequence[np.ndarray], labels: np.ndarray, vocabulary: Sequence[str],
                 blank: str = "<pad>", bands: Sequence[tuple[float, float]] = DEFAULT_BANDS) -> pd.DataFrame:
    """Table 4's accuracy bands under several K-means seeds: one row per character with frames,
    its band under each clustering in `clusterings` (columns `seed_0`, `seed_1`, ...) and `changes`,
    whether it leaves the band of the first clustering under any other."""
    columns = {}
    for number, clusters in enumerate(clusterings):
        table = table4(clusters, labels, vocabulary, blank, bands)
        columns[f"seed_{number}"] = pd.Series({character: name for name, members in table.bands.items()
                                               for character in members}, dtype=object)
    frame = pd.DataFrame(columns).sort_index()
    frame["changes"] = frame.nunique(axis=1, dropna=False) > 1
    frame.index.name = "character"
    return frame
