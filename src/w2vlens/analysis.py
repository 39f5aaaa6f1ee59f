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
from w2vlens.compare import linear_cka, pairwise_cluster_comparison
from w2vlens.errors import W2VLensError
from w2vlens.faithfulness import cluster_agreement, continuity, knn_preservation, trustworthiness
from w2vlens.models import BLANK_LABEL
from w2vlens.silence import SILENCE_LABEL, pause_frames, score_silence, split_blank
from w2vlens.text import WORD_DELIMITER

log = logging.getLogger(__name__)


@dataclass
class FrameLabels:
    """Per-frame labels of a corpus from the fine-tuned model.

    `pseudo` holds the greedy CTC ids; `classes` their names with blank frames split into
    `silence` and (non-silent) `blank` wherever the reference transcript could be aligned;
    `skipped` lists the utterances whose alignment was skipped, with the reason.
    """

    pseudo: np.ndarray
    classes: np.ndarray
    skipped: dict[str, str]


def label_frames(logits: np.ndarray, utterances: pd.DataFrame, vocabulary: list[str],
                 min_silence_frames: int) -> FrameLabels:
    """Greedy pseudo-labels for every frame, and the silence split from the forced alignment of
    each utterance's reference text; utterances without a usable transcript keep plain labels."""
    blank = vocabulary.index(BLANK_LABEL)
    delimiter = vocabulary.index(WORD_DELIMITER) if WORD_DELIMITER in vocabulary else None
    pseudo = np.empty(len(logits), dtype=np.int64)
    classes = np.empty(len(logits), dtype=object)
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
    return FrameLabels(pseudo, classes, skipped)


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
