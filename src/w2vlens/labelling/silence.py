"""Splitting the CTC blank into silence and non-silent blank with a forced alignment (paper, Fig. 1).

The rule: take the forced-alignment path of the reference transcript (per-frame label ids, blank
where the aligner sits in a blank state) and cut it into gaps, the maximal runs of frames aligned to
the blank or the word delimiter "|". A gap is a pause when it

- lies before the first aligned character, after the last one, or at a word boundary (it contains
  the delimiter, i.e. it lies between two words), and
- is at least `min_silence_frames` long (default 10 frames = 200 ms).

Frames whose greedy pseudo-label is the blank become `silence` inside a pause and stay `blank`
(non-silent blank) everywhere else; other frames keep their character label. Gaps inside a word are
never silence: they are the blank frames CTC puts between character spikes. The length threshold
separates real pauses from ordinary word boundaries, whose gaps in fluent speech span a few frames
(one delimiter spike and the blanks around it); it sits below the shortest pause worth calling one
(the demo corpus inserts 250-800 ms at the edges and between phrases, none between words of a phrase).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from w2vlens.errors import W2VLensError
from w2vlens.labelling.names import SILENCE_LABEL

FRAME_SECONDS = 0.02  # wav2vec2's frame rate: one output frame per 20 ms of audio


def pause_gaps(alignment: np.ndarray, blank: int, delimiter: int | None, min_silence_frames: int = 10) -> np.ndarray:
    """Per-frame booleans: does the frame lie in a pause gap of the alignment (see the module docstring)?

    `delimiter` is the word-delimiter id, or None for a vocabulary without one (then only the gaps
    at the edges can be pauses).
    """
    alignment = np.asarray(alignment)
    in_gap = (alignment == blank) | (alignment == delimiter) if delimiter is not None else alignment == blank
    edges = np.flatnonzero(np.diff(np.concatenate(([0], in_gap.astype(np.int8), [0]))))
    pause = np.zeros(len(alignment), dtype=bool)
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        at_edge = start == 0 or end == len(alignment)
        at_word_boundary = delimiter is not None and bool(np.any(alignment[start:end] == delimiter))
        if end - start >= min_silence_frames and (at_edge or at_word_boundary):
            pause[start:end] = True
    return pause


def split_blank(pseudo_labels: np.ndarray, alignment: np.ndarray, vocabulary: Sequence[str], blank: int,
                delimiter: int | None, min_silence_frames: int = 10) -> np.ndarray:
    """Per-frame class names: the pseudo-label's name, with blank frames inside a pause renamed `silence`."""
    pseudo_labels = np.asarray(pseudo_labels)
    if len(pseudo_labels) != len(alignment):
        raise W2VLensError(f"{len(pseudo_labels)} pseudo-labels but an alignment of {len(alignment)} frames")
    names = np.asarray(vocabulary, dtype=object)[pseudo_labels]
    names[(pseudo_labels == blank) & pause_gaps(alignment, blank, delimiter, min_silence_frames)] = SILENCE_LABEL
    return names


def pause_frames(pauses: Sequence[Sequence[float]], n_frames: int, frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
    """Per-frame booleans from known pause intervals [start_s, end_s): frame i covers
    [i·frame_seconds, (i+1)·frame_seconds) and is a pause frame when its centre lies in an interval."""
    centres = (np.arange(n_frames) + 0.5) * frame_seconds
    inside = np.zeros(n_frames, dtype=bool)
    for start, end in pauses:
        inside |= (centres >= start) & (centres < end)
    return inside


def score_silence(predicted_silence: np.ndarray, true_silence: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of frames predicted as silence against the true pause frames."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        np.asarray(true_silence, dtype=bool), np.asarray(predicted_silence, dtype=bool),
        average="binary", zero_division=0,
    )
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}
