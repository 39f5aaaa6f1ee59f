"""Majority mapping, per-character accuracy, Table 4 groups and the CTC-style cluster decoding."""

import numpy as np
import pytest

from w2vlens.characters import (
    character_confusion,
    character_groups,
    cluster_recognition_cer,
    decode_cluster_sequence,
    majority_mapping,
    per_character_accuracy,
)
from w2vlens.errors import W2VLensError

# (cluster, label, frames): cluster 4 holds one c and one d, a tie the alphabetically first label wins
CONTINGENCY = [(0, "a", 6), (0, "b", 2), (1, "b", 5), (1, "a", 1), (2, "blank", 8), (2, "c", 3),
               (3, "silence", 4), (3, "blank", 1), (4, "c", 1), (4, "d", 1)]
CLUSTERS = np.repeat([c for c, _, n in CONTINGENCY], [n for *_, n in CONTINGENCY])
NAMES = np.repeat([label for _, label, n in CONTINGENCY], [n for *_, n in CONTINGENCY])


def test_majority_mapping_and_accuracy_on_a_known_contingency() -> None:
    mapping = majority_mapping(CLUSTERS, NAMES)
    assert mapping == {0: "a", 1: "b", 2: "blank", 3: "silence", 4: "c"}
    label_names = ["blank", "silence", "a", "b", "c", "d"]
    ids = np.array([label_names.index(name) for name in NAMES])
    assert majority_mapping(CLUSTERS, ids, label_names) == mapping  # ids and names give the same answer

    table = per_character_accuracy(CLUSTERS, ids, label_names, mapping)
    expected = {"a": (7, 6), "b": (7, 5), "c": (4, 1), "d": (1, 0), "blank": (9, 8), "silence": (4, 4)}
    assert {label: (row.frames, row.correct) for label, row in table.iterrows()} == expected
    assert table.loc["c", "accuracy"] == pytest.approx(0.25)


def test_character_groups_follow_table_4() -> None:
    mapping = majority_mapping(CLUSTERS, NAMES)
    table = per_character_accuracy(CLUSTERS, NAMES, None, mapping)
    groups = character_groups(table, character_confusion(CLUSTERS, NAMES, None, mapping)).set_index("category")
    assert groups.loc["merged with blank", "members"] == ["c"]  # 3 of its 4 frames sit in the blank cluster
    # a<->b cross over in 3 of 14 frames, c<->d in 1 of 5
    assert groups.loc["often confused pairs", "members"] == [("a", "b"), ("c", "d")]
    assert groups.loc["often confused pairs", "text"] == "[a, b], [c, d]"
    assert groups.loc["accuracy <20%", "members"] == ["d"]
    assert groups.loc["accuracy 20%–30%", "members"] == ["c"]
    assert groups.loc["accuracy 30%+", "members"] == ["a", "b"]


def test_decoding_collapses_runs_of_frames_so_separated_double_letters_survive() -> None:
    mapping = {0: "t", 1: "u", 2: "blank", 3: "l", 4: "i", 5: "|", 6: "u", 7: "silence"}
    # t t u u blank u l i i, the first u-run spanning two clusters that both map to u
    assert decode_cluster_sequence(np.array([0, 0, 1, 6, 2, 1, 3, 4, 4]), mapping) == "tuuli"
    assert decode_cluster_sequence(np.array([0, 0, 1, 1, 6, 3, 4]), mapping) == "tuli"
    assert decode_cluster_sequence(np.array([5, 7, 0, 5, 2, 5, 1, 5]), mapping) == "t u"
    with pytest.raises(W2VLensError, match="without a mapped label"):
        decode_cluster_sequence(np.array([0, 9]), mapping)


def test_cluster_recognition_cer_scores_every_utterance() -> None:
    mapping = {0: "t", 1: "u", 2: "blank", 3: "l", 4: "i"}
    frames = np.array([0, 1, 2, 1, 3, 4] + [0, 1, 3, 4])  # "tuuli", then "tuli"
    cer = cluster_recognition_cer(frames, mapping, [0, 6], [6, 4], ["Tuuli!", "tuuli"])
    assert cer == pytest.approx(1 / 10)
    with pytest.raises(W2VLensError, match="no utterance has a reference"):
        cluster_recognition_cer(frames, mapping, [0, 6], [6, 4], [None, " "])
