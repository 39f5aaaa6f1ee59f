"""Analyses that combine stages over a store: frame labels with the silence split, what a
projection loses, and the paper's cross-view comparison. Plain functions over arrays and tables."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from w2vlens.align import AlignmentError, encode_transcript, forced_align
from w2vlens.characters import (
    character_confusion,
    character_groups,
    cluster_recognition_cer,
    majority_mapping,
    per_character_accuracy,
)
from w2vlens.compare import linear_cka, pairwise_cluster_comparison
from w2vlens.errors import W2VLensError
from w2vlens.faithfulness import cluster_agreement, continuity, knn_preservation, trustworthiness
from w2vlens.metrics import character_error_rate
from w2vlens.models import BLANK_LABEL
from w2vlens.probe import ProbeResult, error_detection_auroc, train_probe
from w2vlens.silence import SILENCE_LABEL, pause_frames, score_silence, split_blank
from w2vlens.text import WORD_DELIMITER, normalize_text
from w2vlens.transcripts import (
    ErrorFrames,
    annotator_columns,
    error_category_names,
    greedy_transcript,
    per_character_accuracy_vs_reference,
    percentile_groups,
)

log = logging.getLogger(__name__)
UNALIGNED = "unaligned"


@dataclass
class FrameLabels:
    """Per-frame labels of a corpus from the fine-tuned model.

    `pseudo` holds the greedy CTC ids; `classes` their names with blank frames split into
    `silence` and (non-silent) `blank` wherever the reference transcript could be aligned;
    `aligned` the forced alignment's label names, split the same way (`unaligned` where the
    alignment was skipped); `skipped` lists the utterances whose alignment was skipped, with the reason.
    """

    pseudo: np.ndarray
    classes: np.ndarray
    aligned: np.ndarray
    skipped: dict[str, str]


def label_frames(logits: np.ndarray, utterances: pd.DataFrame, vocabulary: list[str],
                 min_silence_frames: int) -> FrameLabels:
    """Greedy pseudo-labels for every frame, and the silence split from the forced alignment of
    each utterance's reference text; utterances without a usable transcript keep plain labels."""
    blank = vocabulary.index(BLANK_LABEL)
    delimiter = vocabulary.index(WORD_DELIMITER) if WORD_DELIMITER in vocabulary else None
    pseudo = np.empty(len(logits), dtype=np.int64)
    classes = np.empty(len(logits), dtype=object)
    aligned = np.full(len(logits), UNALIGNED, dtype=object)
    skipped: dict[str, str] = {}
    for utt in utterances.itertuples():
        rows = slice(utt.offset, utt.offset + utt.n_frames)
        log_probs = torch.log_softmax(torch.from_numpy(np.array(logits[rows], dtype=np.float32)), dim=-1).numpy()
        pseudo[rows] = log_probs.argmax(axis=1)
        text = utt.text if isinstance(utt.text, str) and utt.text.strip() else None
        try:
            if text is None:
                raise AlignmentError("no reference transcript")
            alignment = forced_align(log_probs, encode_transcript(text, vocabulary), blank)
        except W2VLensError as error:
            skipped[utt.id] = str(error)
            log.warning("utterance %s (%s): alignment skipped: %s", utt.id, utt.audio, error)
            classes[rows] = np.asarray(vocabulary, dtype=object)[pseudo[rows]]
            continue
        classes[rows] = split_blank(pseudo[rows], alignment, vocabulary, blank, delimiter, min_silence_frames)
        aligned[rows] = split_blank(alignment, alignment, vocabulary, blank, delimiter, min_silence_frames)
    return FrameLabels(pseudo, classes, aligned, skipped)


def silence_scores(classes: np.ndarray, utterances: pd.DataFrame, frame_seconds: float) -> dict[str, float] | None:
    """Precision, recall and F1 of `silence` frames against known pauses (a `pauses` column of
    JSON [[start, end], ...] intervals in seconds, as the demo corpus has), or None without one."""
    if "pauses" not in utterances.columns:
        return None
    truth = np.zeros(len(classes), dtype=bool)
    for utt in utterances.itertuples():
        truth[utt.offset : utt.offset + utt.n_frames] = pause_frames(json.loads(utt.pauses), utt.n_frames,
                                                                     frame_seconds)
    return score_silence(classes == SILENCE_LABEL, truth)


def projection_faithfulness(embeddings: np.ndarray, coords: np.ndarray, raw_clusters: np.ndarray,
                            neighbours: int, sample: int, seed: int) -> dict[str, float]:
    """What the 2-D coordinates keep of the embeddings (paper Table 2 and neighbourhood scores)."""
    agreement = cluster_agreement(raw_clusters, coords, seed=seed)
    return {f"projection_{name}": value for name, value in agreement.items()} | {
        "trustworthiness": trustworthiness(embeddings, coords, k=neighbours, sample=sample, seed=seed),
        "continuity": continuity(embeddings, coords, k=neighbours, sample=sample, seed=seed),
        "knn_preservation": knn_preservation(embeddings, coords, k=neighbours, sample=sample, seed=seed),
    }


def view_comparison(embeddings: dict[str, np.ndarray], clusters: dict[str, np.ndarray],
                    cka_points: int, seed: int) -> pd.DataFrame:
    """Paper Table 3: for each pair of views, AMI, homogeneity and completeness between their
    clusterings, plus linear CKA between their embeddings. One row per ordered pair."""
    clustering = pairwise_cluster_comparison(clusters)
    rows = []
    names = list(clusters)
    for i, reference in enumerate(names):
        for other in names[i + 1 :]:
            scores = clustering.loc[reference, other]
            rows.append({"reference": reference, "compared": other, **scores.to_dict(),
                         "linear_cka": linear_cka(embeddings[reference], embeddings[other],
                                                  max_points=cka_points, seed=seed)})
    return pd.DataFrame(rows)


@dataclass
class CharacterReport:
    """Paper Table 4: what one view's clusters know about characters."""

    mapping: dict[int, str]  # cluster id -> its majority label
    accuracy: pd.DataFrame  # per label: frames, correct, accuracy
    groups: pd.DataFrame  # merged with blank, often confused pairs, accuracy bands
    recognition_cer: float  # CER of the utterances decoded from their cluster sequences


def character_report(clusters: np.ndarray, frame_labels: np.ndarray, utterances: pd.DataFrame,
                     bands: list[tuple[float, float]]) -> CharacterReport:
    """Maps each cluster to its majority label (frames without a label left out) and scores it."""
    keep = frame_labels != UNALIGNED
    mapping = majority_mapping(clusters[keep], frame_labels[keep])
    accuracy = per_character_accuracy(clusters[keep], frame_labels[keep], None, mapping)
    confusion = character_confusion(clusters[keep], frame_labels[keep], None, mapping)
    groups = character_groups(accuracy, confusion, bands=tuple(tuple(band) for band in bands))
    cer = cluster_recognition_cer(clusters, mapping, utterances["offset"].tolist(), utterances["n_frames"].tolist(),
                                  utterances["text"].tolist())
    return CharacterReport(mapping, accuracy, groups, cer)


def most_accurate_annotator(utterances: pd.DataFrame) -> str:
    """The annotator column closest to the others: lowest CER against the reference `text` when
    there is one, else lowest mean CER against the other annotators (a consensus choice)."""
    columns = annotator_columns(utterances)
    if not columns:
        raise W2VLensError("the corpus has no annotator_* columns")
    transcripts = utterances[columns].fillna("").map(lambda text: normalize_text(str(text)))

    def disagreement(column: str) -> float:
        if "text" in utterances and utterances["text"].notna().all():
            return character_error_rate(utterances["text"].map(normalize_text).tolist(), transcripts[column].tolist())
        others = [c for c in columns if c != column] or [column]
        return float(np.mean([character_error_rate(transcripts[o].tolist(), transcripts[column].tolist())
                              for o in others]))

    return min(columns, key=disagreement)


def greedy_hypotheses(pseudo: np.ndarray, vocabulary: list[str], utterances: pd.DataFrame) -> list[str]:
    """Each utterance's greedy CTC transcript."""
    return [greedy_transcript(pseudo[utt.offset : utt.offset + utt.n_frames], vocabulary)[0]
            for utt in utterances.itertuples()]


def finetuned_character_report(pseudo: np.ndarray, vocabulary: list[str], utterances: pd.DataFrame,
                               reference: str, percentiles: list[float]) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Paper Table 5: per-character accuracy of the fine-tuned model's greedy transcripts against
    the `reference` column, the percentile groups, and the CER."""
    references = utterances[reference].fillna("").map(normalize_text).tolist()
    hypotheses = greedy_hypotheses(pseudo, vocabulary, utterances)
    accuracy = per_character_accuracy_vs_reference(hypotheses, references, vocabulary)
    return accuracy, percentile_groups(accuracy, percentiles), character_error_rate(references, hypotheses)


def single_characters(accuracy: pd.Series) -> pd.Series:
    """The entries of a per-label series that are single characters (not blank, silence or '|')."""
    return accuracy[[len(str(label)) == 1 and str(label) != WORD_DELIMITER for label in accuracy.index]]


@dataclass
class ProbeReport:
    """Paper Figure 3: the mistake probe's test scores, baselines and error-detection AUROC."""

    result: ProbeResult
    auroc: dict[str, float]


def mistake_probe(embeddings: np.ndarray, logits: np.ndarray, errors: ErrorFrames, utterances: pd.DataFrame,
                  settings: dict, seed: int, tracking_uri: str | None, run_id: str | None) -> ProbeReport:
    """Trains the probe to tell correct frames from each annotator-agreement level of error, and
    compares its error detection with the model's own confidence (max CTC posterior)."""
    annotated = np.flatnonzero(errors.counts >= 0)
    utterance_ids = np.empty(len(errors.counts), dtype=object)
    for utt in utterances.itertuples():
        utterance_ids[utt.offset : utt.offset + utt.n_frames] = utt.id
    class_names = error_category_names(errors.n_annotators)
    targets = errors.counts[annotated]  # class k = "k/K" annotators call the frame an error; 0 = correct
    result = train_probe(np.asarray(embeddings[annotated], dtype=np.float32), targets, utterance_ids[annotated],
                         class_names, **settings, seed=seed, mlflow_tracking_uri=tracking_uri, mlflow_run_id=run_id)
    test_frames = annotated[result.test_rows]
    posteriors = torch.softmax(torch.from_numpy(np.array(logits[test_frames], dtype=np.float32)), dim=-1)
    auroc = error_detection_auroc(errors.counts[test_frames] > 0, result.error_probability(),
                                  posteriors.max(dim=-1).values.numpy())
    return ProbeReport(result, auroc)
