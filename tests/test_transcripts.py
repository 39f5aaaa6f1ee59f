"""Greedy transcripts with frame spans, Table 5 accuracies and annotator error counts (Figure 2)."""

import logging

import numpy as np
import pandas as pd
import pytest

from w2vlens.corpora.text import normalize_text
from w2vlens.errors import W2VLensError
from w2vlens.labelling.transcripts import (
    annotator_error_counts,
    char_alignment,
    check_annotators,
    count_categories,
    error_frames,
    frame_error_counts,
    greedy_transcript,
    per_character_accuracy_vs_reference,
    percentile_groups,
)

VOCABULARY = ["blank", "<unk>", "|", "a", "k", "t", "u", "i", "l", "o"]
B, UNK, D, A, K, T, U = range(7)
KTA = [B, K, K, B, B, T, A, A, B]  # "kta": k on frames 1-2, t on 5, a on 6-7; t and a touch


def test_greedy_transcript_keeps_each_characters_frame_span() -> None:
    assert greedy_transcript(np.array(KTA), VOCABULARY) == ("kta", [(1, 3), (5, 6), (6, 8)])
    # delimiters at the edges or after another delimiter emit nothing; <unk> emits U+FFFD
    text, spans = greedy_transcript(np.array([D, T, U, B, U, D, B, D, UNK, D]), VOCABULARY)
    assert text == "tuu \ufffd"
    assert spans == [(1, 2), (2, 3), (4, 5), (5, 6), (8, 9)]


def test_char_alignment_names_every_step() -> None:
    ops = [(s.op, s.ref_char, s.hyp_char) for s in char_alignment("kata", "kto")]
    assert ops == [("match", "k", "k"), ("delete", "a", None), ("match", "t", "t"), ("substitute", "a", "o")]


def test_annotator_counts_with_a_deletion_carried_to_gap_frames() -> None:
    text, spans = greedy_transcript(np.array(KTA), VOCABULARY)
    # annotator 1 heard "kata" (the model deleted an a between k and t), 2 agrees, 3 heard "kto"
    counts = annotator_error_counts(text, ["kata", "kta", "KTO"])
    assert counts.char_counts.tolist() == [0, 0, 1]
    assert counts.deletion_counts.tolist() == [0, 1, 0, 0]
    assert counts.n_annotators == 3
    frames = frame_error_counts(len(KTA), spans, counts.char_counts, counts.deletion_counts)
    assert frames.tolist() == [0, 0, 0, 1, 1, 0, 1, 1, 0]  # the deletion lands on the blanks between k and t
    assert count_categories(frames, 3).tolist() == ["correct"] * 3 + ["1/3"] * 2 + ["correct", "1/3", "1/3",
                                                                                    "correct"]
    # a deletion between t and a, whose spans touch, goes to the frames of the a after it
    gap = annotator_error_counts(text, ["ktxa", "ktxa"])
    assert gap.deletion_counts.tolist() == [0, 0, 2, 0]
    assert frame_error_counts(len(KTA), spans, gap.char_counts, gap.deletion_counts).tolist() == [0] * 6 + [2, 2, 0]
    # a pause among the gap's frames keeps the deletion off it; an all-pause gap hands it on to t
    pause = np.array([False, False, False, True, False, False, False, False, False])
    assert frame_error_counts(len(KTA), spans, counts.char_counts, counts.deletion_counts, pause).tolist() == \
        [0, 0, 0, 0, 1, 0, 1, 1, 0]
    pause[4] = True
    assert frame_error_counts(len(KTA), spans, counts.char_counts, counts.deletion_counts, pause).tolist() == \
        [0, 0, 0, 0, 0, 1, 1, 1, 0]
    # insertion: the model's t is not in "ka"
    assert annotator_error_counts(text, ["ka"]).char_counts.tolist() == [0, 1, 0]


def test_empty_annotator_transcripts_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        counts = annotator_error_counts("kta", ["kata", "", None])
    assert counts.n_annotators == 1 and "missing or empty" in caplog.text
    with pytest.raises(W2VLensError, match="no usable annotator transcript"):
        annotator_error_counts("kta", ["", "  "])


def test_error_frames_over_a_corpus_with_uneven_annotators() -> None:
    utterances = pd.DataFrame({
        "id": ["u1", "u2", "u3"], "offset": [0, 9, 12], "n_frames": [9, 3, 2],
        "annotator_1": ["kata", "ta", None], "annotator_2": ["kta", "ta", ""], "annotator_3": ["kto", None, None],
    })
    pseudo = np.array(KTA + [T, A, B] + [B, A])
    result = error_frames(pseudo, VOCABULARY, utterances)
    assert result.n_annotators == 3
    assert result.counts.tolist() == [0, 0, 0, 1, 1, 0, 1, 1, 0] + [0, 0, 0] + [-1, -1]
    assert result.categories[-2:].tolist() == ["unannotated"] * 2
    assert any("annotator_3" in w and "fewer than 3 annotators" in w for w in result.warnings)
    assert any("u3" in w and "unannotated" in w for w in result.warnings)


def test_bad_annotator_tables_give_clear_errors() -> None:
    with pytest.raises(W2VLensError, match="no annotator_\\* columns"):
        check_annotators(pd.DataFrame({"id": ["u1"], "text": ["kta"]}))
    with pytest.raises(W2VLensError, match="every annotator transcript is missing or empty"):
        check_annotators(pd.DataFrame({"id": ["u1"], "annotator_1": [""], "annotator_2": [None]}))
    warnings = check_annotators(pd.DataFrame({"id": ["u1"], "annotator_1": ["kätä"]}), VOCABULARY)
    assert any("outside the model vocabulary" in w and "'ä'" in w for w in warnings)


def test_per_character_accuracy_vs_reference_and_percentile_groups() -> None:
    table = per_character_accuracy_vs_reference(["kta", "tuli"], ["Kata.", "tuuli"])
    assert table.loc["a"].tolist()[:4] == [2, 1, 0, 1]  # occurrences, matched, substituted, deleted
    assert table.loc["u", "accuracy"] == pytest.approx(0.5)
    assert " " not in table.index
    groups = percentile_groups(table)
    assert groups["characters"].tolist() == ["a, u", "i, k, l, t", ""]
    with pytest.raises(W2VLensError, match="outside the model vocabulary: 'é'"):
        per_character_accuracy_vs_reference(["kta"], ["kéta"], VOCABULARY)


def test_transcripts_are_normalised_as_the_authors_did() -> None:
    # hyphens are removed, tokens starting with "." (annotation marks) dropped, apostrophes kept
    assert normalize_text("Linja-auto .laugh tuli, vaa'an .br") == "linjaauto tuli vaa'an"
