"""The cluster-majority view (an extra beside Table 4): majority mapping and per-label accuracy."""

import numpy as np
import pytest

from w2vlens.analysis.characters import character_confusion, majority_mapping, per_character_accuracy

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


def test_confusion_counts_frames_by_true_and_predicted_label() -> None:
    confusion = character_confusion(CLUSTERS, NAMES, None, majority_mapping(CLUSTERS, NAMES))
    assert confusion.loc["c", "blank"] == 3  # c's frames in the blank-majority cluster
    assert confusion.loc["a", "b"] == 1 and confusion.loc["b", "a"] == 2
