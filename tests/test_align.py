"""CTC forced alignment finds the best valid path, even where greedy decoding merges a repeat."""

import itertools

import numpy as np
import pytest

from w2vlens.errors import W2VLensError
from w2vlens.labelling.align import AlignmentError, encode_transcript, forced_align

VOCABULARY = ["blank", "<unk>", "|"] + list("abcdefghijklmnopqrstuvwxyzåäö")
BLANK = 0


def ids(text: str) -> list[int]:
    return [VOCABULARY.index(ch) for ch in text]


def emissions(rows: list[dict[str, float]]) -> np.ndarray:
    """Log-probabilities from per-frame {label: probability}; the remaining mass is spread evenly."""
    probs = np.zeros((len(rows), len(VOCABULARY)))
    for frame, row in enumerate(rows):
        rest = (1.0 - sum(row.values())) / (len(VOCABULARY) - len(row))
        probs[frame] = rest
        for label, p in row.items():
            probs[frame, VOCABULARY.index(label)] = p
    return np.log(probs)


def collapse(path: np.ndarray) -> list[int]:
    merged = [label for i, label in enumerate(path) if i == 0 or label != path[i - 1]]
    return [label for label in merged if label != BLANK]


def test_repeated_letter_gets_a_blank_where_it_is_most_likely() -> None:
    log_probs = emissions([
        {"t": 0.9}, {"u": 0.9}, {"u": 0.6, "blank": 0.35}, {"u": 0.8, "blank": 0.15}, {"u": 0.9},
        {"l": 0.9}, {"i": 0.9}, {"blank": 0.9},
    ])
    greedy = log_probs.argmax(axis=1)
    assert collapse(greedy) == ids("tuli")  # greedy decoding merges the two u's
    path = forced_align(log_probs, ids("tuuli"), BLANK)
    assert path.tolist() == ids("tu") + [BLANK] + ids("uuli") + [BLANK]
    assert collapse(path) == ids("tuuli")


def test_matches_brute_force_over_all_paths() -> None:
    rng = np.random.default_rng(0)
    for targets in ([1, 1, 2], [1, 2, 1], [2], [3, 3]):
        logits = rng.normal(size=(6, 4))
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        best = max(
            (sum(log_probs[t, p] for t, p in enumerate(path)), path)
            for path in itertools.product(range(4), repeat=6) if collapse(np.array(path)) == targets
        )
        path = forced_align(log_probs, targets, BLANK)
        assert collapse(path) == targets
        assert log_probs[np.arange(6), path].sum() == pytest.approx(best[0])


def test_too_short_utterance_names_required_and_available_frames() -> None:
    log_probs = emissions([{"u": 0.9}] * 5)
    with pytest.raises(AlignmentError, match=r"at least 6 frames \(5 labels \+ 1 blanks.*only 5"):
        forced_align(log_probs, ids("tuuli"), BLANK)
    assert forced_align(emissions([{"u": 0.9}] * 6), ids("tuuli"), BLANK).tolist() == ids("tu") + [BLANK] + ids("uli")


def test_long_utterance_aligns_in_one_piece() -> None:
    rng = np.random.default_rng(1)
    targets = rng.integers(1, len(VOCABULARY), size=700)
    logits = rng.normal(size=(4000, len(VOCABULARY))).astype(np.float32)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    path = forced_align(log_probs, targets, BLANK)
    assert path.shape == (4000,)
    assert collapse(path) == targets.tolist()


def test_empty_transcript_is_all_blank_and_bad_ids_are_errors() -> None:
    log_probs = emissions([{"a": 0.9}] * 3)
    assert forced_align(log_probs, [], BLANK).tolist() == [BLANK] * 3
    with pytest.raises(W2VLensError, match="exclude the blank"):
        forced_align(log_probs, [BLANK, 3], BLANK)


def test_encode_transcript_normalises_and_maps_spaces_to_the_delimiter() -> None:
    assert encode_transcript("Tuuli,  on KOVA!", VOCABULARY) == ids("tuuli|on|kova")
    with pytest.raises(W2VLensError, match="outside the model vocabulary: 'ß' 'ï'"):
        encode_transcript("naïve Straße", VOCABULARY)
