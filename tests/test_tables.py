"""The paper's tables on hand-made arrays whose answers can be worked out on paper."""

import numpy as np
import pandas as pd
import pytest

from w2vlens import tables
from w2vlens.analysis.characters import is_character
from w2vlens.errors import W2VLensError
from w2vlens.labelling.frames import FrameLabels, annotator_errors, reference_column

VOCABULARY = ["<pad>", "<unk>", "|", "a", "b", "c", "d", "e"]
PAD, UNK, D, A, B, C, DD, E = range(8)


def test_table1_takes_the_labels_as_the_reference() -> None:
    labels = np.array([0, 0, 1, 1])
    split = np.array([0, 1, 2, 3])  # every label split over two clusters: homogeneous, not complete
    scores = tables.table1(labels, split)
    assert scores["homogeneity"] == pytest.approx(1.0)
    assert scores["completeness"] == pytest.approx(0.5)
    assert {"ami", "v_measure", "nmi", "ari"} <= set(scores)


def test_table3_takes_the_later_view_as_the_reference() -> None:
    clusterings = {"cnn": np.array([0, 0, 1, 1]), "pre": np.array([0, 1, 2, 3]), "fine": np.array([0, 0, 0, 0])}
    table = tables.table3(clusterings)
    assert table.index.tolist() == [("cnn", "pre"), ("cnn", "fine"), ("pre", "fine")]
    assert table.columns.tolist() == ["ami", "homogeneity", "completeness"]
    # f(pre, cnn): each cnn cluster holds two pre clusters (homogeneity 0.5), each pre cluster stays
    # in one cnn cluster (completeness 1)
    assert table.loc[("cnn", "pre"), "homogeneity"] == pytest.approx(0.5)
    assert table.loc[("cnn", "pre"), "completeness"] == pytest.approx(1.0)
    # f(fine, pre): one fine cluster, so every pre cluster is homogeneous, and fine is split fourfold
    assert table.loc[("pre", "fine"), "homogeneity"] == pytest.approx(1.0)
    assert table.loc[("pre", "fine"), "completeness"] == pytest.approx(0.0)
    with pytest.raises(W2VLensError, match="different numbers of frames"):
        tables.table3({"a": np.zeros(3), "b": np.zeros(4)})


# frames per (label, cluster): the blank's modal cluster is 0; a and b share modal cluster 1;
# c's modal cluster is the blank's; d sits alone in cluster 3; e has no frames at all
FRAMES = [(PAD, 0, 6), (PAD, 1, 1), (A, 1, 4), (A, 2, 1), (B, 1, 3), (B, 2, 2), (B, 3, 1),
          (C, 0, 3), (C, 2, 2), (DD, 3, 5), (DD, 2, 5), (D, 2, 1), (UNK, 0, 1)]
LABELS = np.repeat([label for label, _, n in FRAMES], [n for *_, n in FRAMES])
CLUSTERS = np.repeat([cluster for _, cluster, n in FRAMES], [n for *_, n in FRAMES])


def test_table4_is_character_centred() -> None:
    table = tables.table4(CLUSTERS, LABELS, VOCABULARY)
    assert table.accuracy.to_dict() == pytest.approx({"a": 4 / 5, "b": 3 / 6, "c": 3 / 5, "d": 5 / 10})
    # d ties between clusters 2 and 3 (5 frames each): the smaller cluster id wins
    assert table.modal_cluster.to_dict() == {"a": 1, "b": 1, "c": 0, "d": 2}
    assert table.blank_cluster == 0
    assert table.groups == [["a", "b"]]
    assert table.merged_with_blank == ["c"]
    assert table.absent == ["e"]  # its own row, never merged with blank
    assert "e" not in table.accuracy and "<unk>" not in table.accuracy and "|" not in table.accuracy


def test_table4_bands_run_from_the_lowest_to_the_highest() -> None:
    table = tables.table4(CLUSTERS, LABELS, VOCABULARY, bands=((0.55, 1.0), (0.0, 0.55)))
    assert list(table.bands) == ["accuracy <55%", "accuracy 55%+"]
    assert table.bands == {"accuracy <55%": ["b", "d"], "accuracy 55%+": ["a", "c"]}
    default = tables.table4(CLUSTERS, LABELS, VOCABULARY).bands
    assert default == {"accuracy <20%": [], "accuracy 20%–30%": [], "accuracy 30%+": ["a", "b", "c", "d"]}


def test_table4_leaves_out_unlabelled_frames_and_checks_its_input() -> None:
    labels = np.concatenate([LABELS, [-1, -1]])
    clusters = np.concatenate([CLUSTERS, [3, 3]])
    assert tables.table4(clusters, labels, VOCABULARY).accuracy.equals(tables.table4(CLUSTERS, LABELS,
                                                                                   VOCABULARY).accuracy)
    with pytest.raises(W2VLensError, match="blank"):
        tables.table4(CLUSTERS, LABELS, VOCABULARY, blank="blank")
    with pytest.raises(W2VLensError, match="cluster ids but"):
        tables.table4(CLUSTERS[:-1], LABELS, VOCABULARY)


def test_cluster_decoding_names_each_cluster_after_its_own_most_frequent_non_blank_label() -> None:
    table = tables.table4(CLUSTERS, LABELS, VOCABULARY)
    # cluster 0: blank 6, c 3, <unk> 1 -> c; cluster 1: a 4 (the blank's 1 frame left out); cluster 2:
    # d 5; cluster 3: d 5. The authors' argmax(distr[1:]) without +1 would have named them <unk>, |, c, c.
    assert table.cluster_label == {0: "c", 1: "a", 2: "d", 3: "d"}
    # utterance 1: clusters 1 1 0 2 3 -> a a c d d -> "acd"; utterance 2: 2 0 0 1 -> "dca"
    table.clusters = np.array([1, 1, 0, 2, 3, 2, 0, 0, 1])
    assert table.decode([0, 5]) == ["acd", "dca"]
    assert table.cer([0, 5], ["ACD", "dcab"]) == pytest.approx(1 / 7)
    with pytest.raises(W2VLensError, match="offsets must increase"):
        table.decode([5, 0])


def test_cluster_decoding_spells_the_delimiter_as_nothing_as_the_authors_tokenizer_does() -> None:
    labels = np.array([A, A, D, D, UNK, B, PAD])
    clusters = np.array([0, 0, 1, 1, 2, 3, 4])
    table = tables.table4(clusters, labels, VOCABULARY)
    assert table.cluster_label == {0: "a", 1: "|", 2: "<unk>", 3: "b"}  # cluster 4 holds only blank
    table.clusters = np.array([0, 1, 1, 0, 2, 4, 3, 1])  # a | | a <unk> - b |
    # the paper's 83.4% decoding: `|` gives nothing, so the two a's around it merge into one
    assert table.decode([0]) == ["ab"]
    assert table.decode([0], spaces=True) == ["a ab"]  # ours: the delimiter keeps them apart
    # scored against the reference without its spaces ("a ab" -> "aab"): one a missing
    assert table.cer([0], ["A ab"]) == pytest.approx(1 / 3)
    assert table.cer([0], ["A ab"], spaces=True) == pytest.approx(0.0)


def test_only_letters_are_characters() -> None:
    assert [t for t in ["<pad>", "<unk>", "|", "-", "'", "a", "ä"] if is_character(t, "<pad>")] == ["a", "ä"]
    vocabulary = VOCABULARY + ["-"]
    assert "-" not in tables.table4(CLUSTERS, LABELS, vocabulary).absent


def test_cluster_majority_is_kept_as_an_extra() -> None:
    majority = tables.table4(CLUSTERS, LABELS, VOCABULARY).cluster_majority
    # cluster 0 -> <pad>, 1 -> a, 2 -> d (5 of 11), 3 -> d: c and b are never their cluster's majority
    assert majority.loc["c", "correct"] == 0 and majority.loc["a", "correct"] == 4
    assert majority.loc["d", "correct"] == 10


def test_table5_groups_characters_at_percentiles() -> None:
    table = tables.table5(["kta", "tuli"], ["Kata.", "tuuli"], characters=list("aiklu"))
    assert "t" not in table.accuracy  # not one of the characters asked for
    assert table.accuracy["a"] == pytest.approx(0.5) and table.accuracy["u"] == pytest.approx(0.5)
    # accuracies .5 .5 1 1 1: the 33rd percentile is 0.66, the 66th 1.0
    assert table.groups["characters"].tolist() == ["a, u", "i, k, l", ""]
    assert table.cer == pytest.approx(2 / 9)


def test_correlations_need_frequencies_only_for_the_frequency_ones() -> None:
    characters = list("abcdef")
    pre = pd.Series([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], index=characters)
    only = tables.correlations(pre, 2 * pre)
    assert only["pre_vs_fine_pearson_r"] == pytest.approx(1.0) and only["pre_vs_fine_n"] == 6
    assert "multiple_r" not in only and "frequency_vs_fine_cer_pearson_r" not in only
    frequency = pd.Series([0.3, 0.1, 0.2, 0.0, 0.25, 0.15], index=characters)
    both = tables.correlations(pre, pre + frequency, frequency)
    assert both["multiple_r"] == pytest.approx(1.0) and both["multiple_n"] == 6


def test_frequency_is_correlated_with_the_fine_tuned_cer() -> None:
    characters = list("abcdef")
    frequency = pd.Series([0.05, 0.1, 0.15, 0.2, 0.2, 0.3], index=characters)
    fine = 0.7 + frequency  # frequent letters are recognised better: their CER is lower
    scores = tables.correlations(pd.Series(np.linspace(0, 1, 6), index=characters), fine, frequency)
    assert scores["frequency_vs_fine_cer_pearson_r"] == pytest.approx(-1.0)
    assert scores["frequency_vs_fine_cer_spearman_r"] == pytest.approx(-1.0)


def test_a_rare_letter_flips_pearson_but_not_the_thresholded_correlation() -> None:
    # six letters with hundreds of frames, pre and fine rising together; x has 3 frames, all of them
    # in its modal cluster (pre-trained accuracy 1), and the model misses it (fine-tuned accuracy 0)
    letters = list("abcdef")
    pre = pd.Series([0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 1.0], index=letters + ["x"])
    fine = pd.Series([0.90, 0.91, 0.93, 0.92, 0.95, 0.96, 0.0], index=letters + ["x"])
    frames = pd.Series([400, 300, 500, 200, 350, 450, 3], index=letters + ["x"])
    every = tables.correlations(pre, fine)
    assert every["pre_vs_fine_pearson_r"] < -0.5 and every["pre_vs_fine_n"] == 7
    frequent = tables.frequent_characters(frames, 20)
    assert frequent == letters
    kept = tables.correlations(pre, fine, characters=frequent)
    assert kept["pre_vs_fine_pearson_r"] > 0.8 and kept["pre_vs_fine_n"] == 6
    assert 0 < kept["pre_vs_fine_pearson_p"] < 0.05 and kept["pre_vs_fine_spearman_r"] > 0.8
    with pytest.raises(W2VLensError, match=">= 0"):
        tables.frequent_characters(frames, -1)


def test_table5_groups_only_the_frequent_letters() -> None:
    table = tables.table5(["kta", "tuli"], ["Kata.", "tuuli"], characters=list("aiklu"), grouped=list("aiu"))
    assert set(table.accuracy.index) == set("aiklu")  # every letter keeps its accuracy
    assert table.ungrouped == ["k", "l"]
    grouped = {c for members in table.groups["characters"] for c in members.split(", ") if c}
    assert grouped == set("aiu")


def test_a_deletion_sits_on_the_blank_frames_between_its_neighbours_but_not_on_pauses() -> None:
    # "ab" with a gap of 6 blank frames between a and b, the first 4 of them a pause
    predictions = np.array([A, PAD, PAD, PAD, PAD, PAD, PAD, B])
    pauses = np.array([False, True, True, True, True, False, False, False])
    annotators = {"1": ["acb"], "2": ["acb"], "3": ["ab"]}  # two annotators hear a c the model deleted
    errors = tables.error_categories(predictions, VOCABULARY, [0], annotators, pauses)
    assert errors.counts.tolist() == [0, 0, 0, 0, 0, 2, 2, 0]
    assert errors.categories.tolist() == ["correct"] * 5 + ["2/3", "2/3", "correct"]
    without = tables.error_categories(predictions, VOCABULARY, [0], annotators)
    assert without.counts.tolist() == [0, 2, 2, 2, 2, 2, 2, 0]  # without the silence split: the whole gap
    # a gap that is all pause hands the deletion to the character after it
    all_pause = np.array([False] + [True] * 6 + [False])
    assert tables.error_categories(predictions, VOCABULARY, [0], annotators, all_pause).counts.tolist() == \
        [0, 0, 0, 0, 0, 0, 0, 2]


def test_error_categories_over_several_utterances() -> None:
    predictions = np.array([A, PAD, B, B, A])
    errors = tables.error_categories(predictions, VOCABULARY, [0, 3], {"x": ["ab", None], "y": ["ac", None]})
    assert errors.counts.tolist() == [0, 0, 1, -1, -1]  # y hears c for b; utterance 2 has no transcript
    assert errors.categories.tolist()[-1] == "unannotated"


def test_category_distances_measure_how_far_frames_lie_from_their_centroid() -> None:
    # one cluster on a line: centroid 0, distances 1, 1, 3, 3 (mean 2)
    embeddings = np.array([[-1.0], [1.0], [-3.0], [3.0]])
    table = tables.category_distances(embeddings, np.zeros(4, dtype=int), np.array(["correct", "correct", "2/2",
                                                                                     "2/2"]),
                                      blank_frames=np.array([False, False, True, False]))
    assert table.index.tolist() == ["correct", "2/2"]
    assert table.loc["correct", "distance"] == pytest.approx(0.5)
    assert table.loc["2/2", "distance"] == pytest.approx(1.5)
    assert table.loc["2/2", "blank_frames"] == 1 and table.loc["correct", "blank_frames"] == 0


def test_deletions_go_on_pause_frames_only_with_the_authors_placement() -> None:
    # "ab" with 5 blank frames between a and b, the middle 3 of them a pause (silence); both
    # annotators hear a c the model deleted
    pseudo = np.array([A, PAD, PAD, PAD, PAD, PAD, B])
    classes = np.array(["a", "blank", "silence", "silence", "silence", "blank", "b"])
    labels = FrameLabels(pseudo, classes, classes, {})
    utterances = pd.DataFrame({"id": ["u"], "offset": [0], "n_frames": [7], "text": ["acb"],
                               "annotator_1": ["acb"], "annotator_2": ["a cb"]})
    vocabulary = ["blank", *VOCABULARY[1:]]  # the store's name for the CTC blank
    ours = annotator_errors(labels, vocabulary, utterances)
    assert ours.counts.tolist() == [0, 2, 0, 0, 0, 2, 0]  # pauses left out
    authors = annotator_errors(labels, vocabulary, utterances, on_pauses=True)
    assert authors.counts.tolist() == [0, 2, 2, 2, 2, 2, 0]


def test_table5_reference_takes_an_annotators_name_and_says_why_it_was_chosen() -> None:
    utterances = pd.DataFrame({"text": ["kala", "talo"], "annotator_T1": ["kalat", "talo"],
                               "annotator_T2": ["kala", "talo"]})
    assert reference_column(utterances, "T1") == ("annotator_T1", "paper.reference=T1")
    assert reference_column(utterances, "annotator_T1")[0] == "annotator_T1"
    assert reference_column(utterances, "text")[0] == "text"
    column, rule = reference_column(utterances, "best")
    assert column == "annotator_T2" and "lowest CER against the reference text" in rule
    with pytest.raises(W2VLensError, match="no such annotator.*T1, T2"):
        reference_column(utterances, "T3")
