"""Blank frames become silence only in long gaps at the edges or between words."""

import numpy as np
import pytest

from w2vlens.labelling.names import SILENCE_LABEL
from w2vlens.labelling.silence import pause_frames, pause_gaps, score_silence, split_blank

VOCABULARY = ["blank", "|", "a", "b"]
BLANK, DELIMITER = 0, 1


def segments(*parts: tuple[str, int]) -> np.ndarray:
    """An id sequence from (label, repeat) parts."""
    return np.concatenate([np.full(n, VOCABULARY.index(label)) for label, n in parts])


# leading gap (12) | a | short word boundary (2+1+2) | b | long gap inside a word (15) | a |
# long word boundary (3+1+10) | b | trailing gap (11)
ALIGNMENT = segments(("blank", 12), ("a", 1), ("blank", 2), ("|", 1), ("blank", 2), ("b", 1), ("blank", 15),
                     ("a", 1), ("blank", 3), ("|", 1), ("blank", 10), ("b", 1), ("blank", 11))


def test_pause_gaps_are_long_edge_or_word_boundary_gaps() -> None:
    pause = pause_gaps(ALIGNMENT, BLANK, DELIMITER, min_silence_frames=10)
    assert pause.tolist() == np.repeat([True, False, True, False, True], [12, 1 + 5 + 1 + 15 + 1, 14, 1, 11]).tolist()
    # a shorter threshold takes in the short word boundary, never the gap inside a word
    assert pause_gaps(ALIGNMENT, BLANK, DELIMITER, min_silence_frames=5)[13:18].all()
    assert not pause_gaps(ALIGNMENT, BLANK, DELIMITER, min_silence_frames=5)[19:34].any()
    # without a delimiter only the edges can be pauses
    assert pause_gaps(ALIGNMENT, BLANK, None).sum() == 12 + 11


def test_split_blank_renames_only_blank_pseudo_labels_in_pauses() -> None:
    pseudo = ALIGNMENT.copy()
    pseudo[5] = VOCABULARY.index("a")  # a character the greedy decoder emits inside the leading pause
    pseudo[12] = BLANK  # greedy blank where the aligner put "a": not in a gap, so a plain blank
    names = split_blank(pseudo, ALIGNMENT, VOCABULARY, BLANK, DELIMITER)
    assert names[:5].tolist() == [SILENCE_LABEL] * 5
    assert names[5] == "a"
    assert names[12] == "blank"
    assert set(names[13:18]) == {"blank", "|"}  # short word boundary
    assert set(names[19:34]) == {"blank"}  # gap inside a word
    assert names[35:38].tolist() == [SILENCE_LABEL] * 3 and names[38] == "|"
    assert names[-11:].tolist() == [SILENCE_LABEL] * 11


def test_pause_intervals_to_frames_by_frame_centre() -> None:
    frames = pause_frames([[0.0, 0.05], [0.1, 0.15]], n_frames=10)
    assert frames.tolist() == [True, True, False, False, False, True, True, False, False, False]
    assert pause_frames([[0.15, 9.0]], n_frames=10).tolist() == [False] * 7 + [True] * 3


def test_score_silence() -> None:
    scores = score_silence(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    assert scores == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    assert score_silence(np.zeros(4, bool), np.array([1, 0, 1, 0], bool)) == {"precision": 0.0, "recall": 0.0,
                                                                              "f1": 0.0}


def test_split_matches_known_pauses() -> None:
    alignment = segments(("blank", 15), ("a", 1), ("blank", 1), ("|", 1), ("b", 1), ("blank", 20), ("|", 1),
                         ("a", 1), ("blank", 12))
    truth = pause_frames([[0.0, 0.3], [0.38, 0.8], [0.84, 1.08]], n_frames=len(alignment))
    predicted = split_blank(alignment, alignment, VOCABULARY, BLANK, DELIMITER) == SILENCE_LABEL
    assert score_silence(predicted, truth)["f1"] > 0.95
