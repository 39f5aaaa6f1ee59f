"""Per-frame labels of a corpus from the fine-tuned model: greedy CTC pseudo-labels, the silence
split from the forced alignment of each reference transcript, and what the annotators' transcripts
say about each frame (Figure 2's categories). Plain functions over arrays and tables."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from w2vlens.analysis.metrics import character_error_rate
from w2vlens.corpora.corpus import ANNOTATOR_PREFIX
from w2vlens.corpora.text import normalize_text
from w2vlens.embeddings.store import spans
from w2vlens.errors import W2VLensError
from w2vlens.labelling.align import AlignmentError, encode_transcript, forced_align
from w2vlens.labelling.names import BLANK_LABEL, SILENCE_LABEL, UNALIGNED, WORD_DELIMITER
from w2vlens.labelling.silence import pause_frames, score_silence, split_blank
from w2vlens.labelling.transcripts import ErrorFrames, annotator_columns, annotator_error_frames, greedy_transcript

log = logging.getLogger(__name__)


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
    for utt, rows in spans(utterances):
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
    for utt, rows in spans(utterances):
        truth[rows] = pause_frames(json.loads(utt.pauses), utt.n_frames, frame_seconds)
    return score_silence(classes == SILENCE_LABEL, truth)


def aligned_label_ids(aligned: np.ndarray, vocabulary: list[str]) -> np.ndarray:
    """The forced alignment's label names as vocabulary ids: silence is the blank, frames whose
    utterance was not aligned are -1 (no label)."""
    ids = {name: index for index, name in enumerate(vocabulary)} | {SILENCE_LABEL: vocabulary.index(BLANK_LABEL),
                                                                   UNALIGNED: -1}
    return np.asarray([ids[name] for name in aligned], dtype=np.int64)


def _has_reference_text(utterances: pd.DataFrame) -> bool:
    return "text" in utterances and bool(utterances["text"].notna().all())


def most_accurate_annotator(utterances: pd.DataFrame) -> str:
    """The annotator column closest to the others: lowest CER against the reference `text` when
    there is one, else lowest mean CER against the other annotators (a consensus choice)."""
    columns = annotator_columns(utterances)
    if not columns:
        raise W2VLensError("the corpus has no annotator_* columns")
    transcripts = utterances[columns].fillna("").map(lambda text: normalize_text(str(text)))

    def disagreement(column: str) -> float:
        if _has_reference_text(utterances):
            return character_error_rate(utterances["text"].map(normalize_text).tolist(), transcripts[column].tolist())
        others = [c for c in columns if c != column] or [column]
        return float(np.mean([character_error_rate(transcripts[o].tolist(), transcripts[column].tolist())
                              for o in others]))

    return min(columns, key=disagreement)


def reference_column(utterances: pd.DataFrame, setting: str) -> tuple[str, str]:
    """Table 5's reference column for `paper.reference` and the rule that chose it, in words:
    `best` (`most_accurate_annotator`; the reference text when there are no annotators), `text`,
    an annotator column (`annotator_2`) or an annotator's name (`2`, the column without its prefix)."""
    columns = annotator_columns(utterances)
    if setting == "best" and not columns:
        log.warning("Table 5: no annotator_* columns; the reference text is used")
        return "text", "paper.reference=best, and the corpus has no annotator transcripts: the reference text"
    if setting == "best":
        rule = ("the lowest CER against the reference text" if _has_reference_text(utterances) else
                "the lowest mean CER against the other annotators (no reference text)")
        return most_accurate_annotator(utterances), f"paper.reference=best: the annotator with {rule}"
    column = setting if setting == "text" or setting in columns else f"{ANNOTATOR_PREFIX}{setting}"
    if column not in columns and not (column == "text" and "text" in utterances):
        names = ", ".join(c.removeprefix(ANNOTATOR_PREFIX) for c in columns) or "none"
        raise W2VLensError(f"paper.reference={setting!r}: no such annotator (annotators: {names}); "
                           "give best, text or an annotator's name")
    return column, f"paper.reference={setting}"


def greedy_hypotheses(pseudo: np.ndarray, vocabulary: list[str], utterances: pd.DataFrame) -> list[str]:
    """Each utterance's greedy CTC transcript."""
    return [greedy_transcript(pseudo[rows], vocabulary)[0] for _, rows in spans(utterances)]


def annotator_errors(labels: FrameLabels, vocabulary: list[str], utterances: pd.DataFrame,
                     on_pauses: bool = False) -> ErrorFrames | None:
    """Figure 2's categories (how many annotators call each predicted character a mistake), or None
    when the corpus has no annotator transcripts. Deletions leave out the silence split's pause
    frames, or, `on_pauses`, cover them too (the authors' placement)."""
    columns = annotator_columns(utterances)
    if not columns:
        return None
    return annotator_error_frames(
        labels.pseudo, vocabulary, utterances["offset"].tolist(), {c: utterances[c].tolist() for c in columns},
        pauses=None if on_pauses else labels.classes == SILENCE_LABEL, blank=BLANK_LABEL,
        ids=utterances["id"].astype(str).tolist())
