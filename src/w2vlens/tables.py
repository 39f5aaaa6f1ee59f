"""The paper's tables as pure functions over frame-level arrays (Grósz et al., Tables 1-5, Figure 2).

Every function takes numpy arrays of integer ids (clusters, CTC label ids) or plain Python data and
returns numbers, pandas objects or small dataclasses: no config, no MLflow, no files. This is the
public top layer: the rules live in `w2vlens.analysis` and `w2vlens.labelling`, these functions give
them the paper's names, and `experiment=paper` (`w2vlens.pipelines.paper`) calls them; no stage
imports this module. A researcher can call them on their own arrays::

    from w2vlens import tables
    tables.table1(labels, clusters)                      # {'ami': ..., 'homogeneity': ..., ...}
    tables.table4(pre_clusters, labels, vocabulary).bands
    tables.table1_intervals(labels, clusters, utterance_ids)    # mean, std, min, max, 95% low, high

Where the paper is vague, the rules follow the authors' scripts (github.com/aalto-speech/
Wav2vec2Interpretation, `scripts/`): scikit-learn's scores are called as `f(reference, compared)`
with the labels (Table 1), the raw clusters (Table 2) or the later view's clusters (Table 3) as the
reference; Table 4 is character-centred and its cluster decoding spells frames as that script's
tokenizer does (`eval_pre_clusters_asr.py`; two bugs of it are fixed, see
`w2vlens.analysis.characters`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from w2vlens.analysis import characters, metrics
from w2vlens.analysis.characters import DEFAULT_BANDS, CharacterClusters, character_clusters
from w2vlens.analysis.compare import clustering_comparison
from w2vlens.analysis.correlate import character_correlations
from w2vlens.analysis.faithfulness import cluster_agreement
from w2vlens.analysis.intervals import paired_difference, score_intervals, spread
from w2vlens.analysis.metrics import character_error_rate, clustering_scores
from w2vlens.corpora.text import normalize_text
from w2vlens.errors import W2VLensError
from w2vlens.labelling.transcripts import (
    ErrorFrames,
    annotator_error_frames,
    per_character_accuracy_vs_reference,
    percentile_groups,
)

Table4 = CharacterClusters  # what `table4` returns


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
    (pre vs CNN, fine vs CNN, fine vs pre). Columns `ami`, `homogeneity`, `completeness`
    (`w2vlens.analysis.compare.clustering_comparison`)."""
    return clustering_comparison(clusterings)


def table4(clusters: np.ndarray, labels: np.ndarray, vocabulary: Sequence[str], blank: str = "<pad>",
           bands: Sequence[tuple[float, float]] = DEFAULT_BANDS) -> Table4:
    """Table 4, character-centred as in the authors' `eval_pre_clusters_asr.py`: per character of
    `vocabulary` (`labels` are per-frame ids into it, negative ones left out), its modal cluster
    and accuracy, the "often confused" groups, the characters "merged with blank", those `absent`
    and the accuracy `bands`; `decode` and `cer` spell utterances by their clusters
    (`w2vlens.analysis.characters.character_clusters`)."""
    return character_clusters(clusters, labels, vocabulary, blank, bands)


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
    to as a mistake, and its category ("correct", "k/K", "unannotated"). `predictions` are the
    per-frame CTC ids, `offsets` the utterances' first frames, `annotators` one transcript per
    utterance for each annotator; deletions leave out the `pauses` frames
    (`w2vlens.labelling.transcripts.annotator_error_frames`)."""
    return annotator_error_frames(predictions, vocabulary, offsets, annotators, pauses, blank, ids)


def category_distances(embeddings: np.ndarray, clusters: np.ndarray, categories: np.ndarray,
                       blank_frames: np.ndarray | None = None) -> pd.DataFrame:
    """Figure 2's visual claim as numbers: per error category, the mean distance of its frames to
    their own cluster's centroid, relative to the cluster's mean distance; with `blank_frames`, also
    split into character and blank frames (`w2vlens.analysis.metrics.category_distances`)."""
    return metrics.category_distances(embeddings, clusters, categories, blank_frames)


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
    """Table 4's accuracy bands under several K-means seeds: per character, its band under each
    clustering (`seed_0`, `seed_1`, ...) and `changes` (`w2vlens.analysis.characters.band_changes`)."""
    return characters.band_changes(clusterings, labels, vocabulary, blank, bands)
