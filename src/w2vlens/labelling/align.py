"""CTC forced alignment of a reference transcript on one utterance's CTC log-probabilities.

The best path is found by Viterbi over the standard CTC topology: the targets interleaved with
blanks (blank, y1, blank, y2, ..., yL, blank), where a path may stay in a state, move to the next
one, or skip a blank between two different labels. Repeated labels (the two u's of "tuuli")
therefore need at least one blank frame between them.

Written in numpy because torchaudio's `forced_align`, the maintained implementation, is not
available for the torch version this project pins. Memory is O(T·S) for the backpointers, kept as
int8 (one byte per frame and state): a 10-minute file (30,000 frames) with 1,500 labels needs about
90 MB, so whole utterances are aligned in one piece without windowing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from w2vlens.corpora.text import characters_outside, normalize_text
from w2vlens.errors import W2VLensError
from w2vlens.labelling.names import WORD_DELIMITER


class AlignmentError(W2VLensError):
    """The transcript cannot be aligned to the utterance (too few frames, or no finite path)."""


def encode_transcript(text: str, vocabulary: Sequence[str]) -> list[int]:
    """CTC label ids of the normalised `text`, spaces as the word delimiter "|".

    `vocabulary` lists label names by id. Characters the model cannot emit are an error rather than
    being dropped, since dropping them would silently shift the alignment.
    """
    normalized = normalize_text(text)
    index = {token: token_id for token_id, token in enumerate(vocabulary)}
    missing = characters_outside(normalized, set(index))
    if missing:
        raise W2VLensError(f"transcript {normalized[:60]!r} has characters outside the model vocabulary: "
                           f"{' '.join(repr(ch) for ch in missing)}")
    return [index[ch] for ch in normalized.replace(" ", WORD_DELIMITER)]


def forced_align(log_probs: np.ndarray, targets: Sequence[int], blank: int) -> np.ndarray:
    """Per-frame label ids of the most likely CTC path that spells `targets`.

    `log_probs` is the (T, V) log-softmax output of one utterance; a frame gets `blank` where the
    path sits in a blank state. Raises `AlignmentError` when T is shorter than the transcript needs
    (one frame per label plus one blank between each pair of adjacent repeated labels).
    """
    log_probs = np.asarray(log_probs)
    if log_probs.ndim != 2:
        raise W2VLensError(f"log-probabilities must be a (frames, labels) array, got shape {log_probs.shape}")
    n_frames, n_labels = log_probs.shape
    labels = np.asarray(targets, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_labels or np.any(labels == blank)):
        raise W2VLensError(f"transcript ids must lie in [0, {n_labels}) and exclude the blank id {blank}")
    if labels.size == 0:
        return np.full(n_frames, blank, dtype=np.int64)
    repeats = int(np.sum(labels[1:] == labels[:-1]))
    needed = len(labels) + repeats
    if n_frames < needed:
        raise AlignmentError(f"the transcript needs at least {needed} frames ({len(labels)} labels + {repeats} "
                             f"blanks between repeated labels) but the utterance has only {n_frames}")

    states = np.full(2 * len(labels) + 1, blank, dtype=np.int64)
    states[1::2] = labels
    # A label state may be entered from two states back (skipping the blank) unless it repeats the label before it.
    can_skip = np.zeros(len(states), dtype=bool)
    can_skip[3::2] = labels[1:] != labels[:-1]

    score = np.full(len(states), -np.inf)
    score[:2] = log_probs[0, states[:2]]
    candidates = np.full((3, len(states)), -np.inf)  # rows: stay, advance by one state, skip a blank
    backpointers = np.zeros((n_frames, len(states)), dtype=np.int8)  # how many states each step moved
    for frame in range(1, n_frames):
        candidates[0] = score
        candidates[1, 1:] = score[:-1]
        candidates[2, 2:] = np.where(can_skip[2:], score[:-2], -np.inf)
        move = candidates.argmax(axis=0)
        backpointers[frame] = move
        score = np.take_along_axis(candidates, move[None], axis=0)[0] + log_probs[frame, states]

    state = len(states) - 1 if score[-1] >= score[-2] else len(states) - 2  # end on the last label or blank
    if not np.isfinite(score[state]):
        raise AlignmentError("no path with a finite log-probability spells the transcript")
    path = np.empty(n_frames, dtype=np.int64)
    for frame in range(n_frames - 1, -1, -1):
        path[frame] = states[state]
        state -= int(backpointers[frame, state])
    return path
