"""Bootstrap intervals, paired tests and seed spread (w2vlens.analysis.intervals, w2vlens.tables) on
constructed data where the answer is known."""

import numpy as np
import pandas as pd
import pytest
from helpers import compose_app
from sklearn import metrics

from w2vlens import tables
from w2vlens.analysis import intervals
from w2vlens.errors import W2VLensError
from w2vlens.pipelines.paper import bootstrap_units
from w2vlens.validation import check_config


def corpus(rng: np.random.Generator, units: int = 60, frames: int = 30, classes: int = 4,
           agreement: tuple[float, float] = (4.0, 2.0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames of `units` utterances; labels uniform; each utterance's clusters copy the label with its
    own probability q ~ Beta(agreement), else draw a uniform cluster."""
    unit = np.repeat(np.arange(units), frames)
    labels = rng.integers(0, classes, len(unit))
    copy = rng.random(len(unit)) < rng.beta(*agreement, units)[unit]
    clusters = np.where(copy, labels, rng.integers(0, classes, len(unit)))
    return unit, labels, clusters


def test_contingency_scores_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    unit, labels, clusters = corpus(rng, classes=6)
    clusters[:50] = 9  # a cluster of its own, and ids that are not 0..k-1
    scores = intervals.contingency_scores(intervals.unit_tables(unit, labels, clusters).total())
    homogeneity, completeness, _ = metrics.homogeneity_completeness_v_measure(labels, clusters)
    assert scores["ami"] == pytest.approx(metrics.adjusted_mutual_info_score(labels, clusters), abs=1e-12)
    assert scores["homogeneity"] == pytest.approx(homogeneity, abs=1e-12)
    assert scores["completeness"] == pytest.approx(completeness, abs=1e-12)


def test_vectorised_bootstrap_equals_resampling_the_frames() -> None:
    rng = np.random.default_rng(1)
    unit, labels, clusters = corpus(rng, units=40, classes=5)
    unit = np.array([f"utt{u:03d}" for u in unit])  # ids sort as the units do
    weights = intervals.resample_weights(40, 3, seed=7)
    exact = intervals.bootstrap_replicates(labels, clusters, unit, weights, emi="frames")
    scaled = intervals.bootstrap_replicates(labels, clusters, unit, weights)
    ids = np.unique(unit)
    for resample, counts in enumerate(weights):
        frames = np.concatenate([np.flatnonzero(unit == ids[u]) for u in np.repeat(np.arange(40), counts)])
        ami = metrics.adjusted_mutual_info_score(labels[frames], clusters[frames])
        assert exact["ami"][0, resample] == pytest.approx(ami, abs=1e-12)
        assert exact["homogeneity"][0, resample] == pytest.approx(
            metrics.homogeneity_score(labels[frames], clusters[frames]), abs=1e-12)
        # the default takes the repeated frames' excess dependence off: a little below, never above
        assert ami - 0.01 < scaled["ami"][0, resample] < ami
        assert scaled["completeness"][0, resample] < metrics.completeness_score(labels[frames], clusters[frames])
    # without repeats (each unit once) the default is scikit-learn on the frames, up to the EMI's form
    once = intervals.bootstrap_replicates(labels, clusters, unit, np.ones((1, 40), dtype=np.int64))
    assert once["ami"][0, 0] == pytest.approx(metrics.adjusted_mutual_info_score(labels, clusters), abs=1e-12)
    half = np.repeat([[1, 0]], 20, axis=0).ravel()[None]
    frames = np.flatnonzero(np.isin(unit, ids[half[0] == 1]))
    assert intervals.bootstrap_replicates(labels, clusters, unit, half)["ami"][0, 0] == pytest.approx(
        metrics.adjusted_mutual_info_score(labels[frames], clusters[frames]), abs=1e-3)


def test_identical_clusterings_give_a_zero_width_interval() -> None:
    rng = np.random.default_rng(2)
    unit, labels, _ = corpus(rng)
    renamed = (labels * 7 + 3) % 11  # the same partition under other ids
    table = tables.table1_intervals(labels, renamed, unit, n_resamples=200)
    assert np.allclose(table[["mean", "low", "high"]].to_numpy(), 1.0)
    assert table["std"].eq(0).all()


def test_shuffled_labels_give_an_interval_around_zero() -> None:
    rng = np.random.default_rng(3)
    unit, labels, _ = corpus(rng, units=80)
    shuffled = rng.permutation(labels)
    table = tables.table1_intervals(labels, shuffled, unit, n_resamples=300)
    assert table.loc["ami", "low"] <= 0 <= table.loc["ami", "high"]
    assert table.loc["ami", "high"] - table.loc["ami", "low"] < 0.02


def test_the_interval_covers_the_truth_in_most_repetitions() -> None:
    """Population: labels uniform on 4 classes, clusters copy the label with probability q (mean 2/3
    over utterances) else draw uniformly, so the population's joint distribution, and its
    homogeneity (= AMI's large-sample limit here, both margins uniform), are known."""
    classes, q = 4, 4.0 / 6.0
    joint = np.full((classes, classes), (1 - q) / classes**2) + np.eye(classes) * q / classes
    truth = float((joint * np.log(joint * classes**2)).sum() / np.log(classes))
    rng = np.random.default_rng(4)
    covered = {"ami": 0, "homogeneity": 0}
    repetitions = 120
    for repetition in range(repetitions):
        unit, labels, clusters = corpus(rng, units=100, frames=40, classes=classes)
        table = tables.table1_intervals(labels, clusters, unit, n_resamples=200, seed=repetition)
        for metric in covered:
            covered[metric] += table.loc[metric, "low"] <= truth <= table.loc[metric, "high"]
    assert covered["ami"] / repetitions >= 0.9, covered
    assert covered["homogeneity"] / repetitions >= 0.9, covered


def test_seeds_pool_into_mean_spread_and_one_interval() -> None:
    rng = np.random.default_rng(5)
    unit, labels, clusters = corpus(rng)
    noisy = np.where(rng.random(len(labels)) < 0.3, rng.integers(0, 4, len(labels)), clusters)
    table = tables.table1_intervals(labels, np.stack([clusters, noisy]), unit, n_resamples=100)
    single = [tables.table1(labels, c)["ami"] for c in (clusters, noisy)]
    assert table.loc["ami", "mean"] == pytest.approx(np.mean(single))
    assert table.loc["ami", "min"] == pytest.approx(min(single))
    assert table.loc["ami", "std"] == pytest.approx(np.std(single, ddof=1))
    assert table.loc["ami", "low"] < min(single) and table.loc["ami", "high"] > max(single) - 0.05
    assert tables.seed_spread([0.5]) == {"mean": 0.5, "std": 0.0, "min": 0.5, "max": 0.5}


def test_paired_bootstrap_separates_a_real_difference_from_none() -> None:
    rng = np.random.default_rng(6)
    unit, labels, good = corpus(rng, units=80, agreement=(8.0, 2.0))
    bad = np.where(rng.random(len(labels)) < 0.5, rng.integers(0, 4, len(labels)), good)
    test = tables.paired_bootstrap((labels, good), (labels, bad), unit, n_resamples=400)
    observed = tables.table1(labels, good)["ami"] - tables.table1(labels, bad)["ami"]
    assert test["difference"] == pytest.approx(observed)
    assert 0 < test["low"] < observed < test["high"]
    assert test["p_value"] == pytest.approx(2 / 401)
    same = tables.paired_bootstrap((labels, good), (labels, good), unit, n_resamples=100)
    assert same["difference"] == 0 and same["low"] == same["high"] == 0 and same["p_value"] == 1


def test_bad_inputs_fail_with_one_line() -> None:
    with pytest.raises(W2VLensError, match="same frames"):
        intervals.unit_tables(np.zeros(3), np.zeros(3), np.zeros(2))
    with pytest.raises(W2VLensError, match="metric="):
        tables.paired_bootstrap((np.zeros(3), np.zeros(3)), (np.zeros(3), np.zeros(3)), np.zeros(3), metric="ari")
    with pytest.raises(W2VLensError, match="emi="):
        intervals.contingency_scores(np.ones((2, 2)), emi="scaled")


@pytest.mark.parametrize(("override", "message"), [
    ("paper.seeds=0", r"^paper.seeds=0: use a positive integer up to 1000$"),
    ("paper.bootstrap=-1", r"^paper.bootstrap=-1: use a non-negative integer up to 1000000$"),
    ("paper.bootstrap_unit=word", r"^paper.bootstrap_unit='word': use auto, utterance or speaker$"),
])
def test_bad_uncertainty_settings_are_one_line(override: str, message: str) -> None:
    with pytest.raises(W2VLensError, match=message):
        check_config(compose_app(["experiment=paper", override]))


def test_paper_presets_set_seeds_and_bootstrap() -> None:
    paper, fast = compose_app(["experiment=paper"]).paper, compose_app(["experiment=paper_fast"]).paper
    assert (paper.seeds, paper.bootstrap, paper.bootstrap_unit) == (5, 1000, "auto")
    assert (fast.seeds, fast.bootstrap) == (1, 1000)


def test_bootstrap_units_take_speakers_only_when_there_are_enough() -> None:
    utterances = np.repeat([f"u{i}" for i in range(40)], 3)
    few = pd.DataFrame({"utterance": utterances, "speaker": np.repeat([f"s{i % 4}" for i in range(40)], 3)})
    many = few.assign(speaker=np.repeat([f"s{i}" if i else None for i in range(40)], 3))
    assert bootstrap_units(few, "auto")[1] == "utterance"
    assert bootstrap_units(few, "speaker")[1] == "speaker"
    units, unit = bootstrap_units(many, "auto")
    assert unit == "speaker" and units[0] == "utterance:u0" and units[-1] == "speaker:s39"
    assert bootstrap_units(many, "utterance")[0].tolist() == utterances.tolist()
    with pytest.raises(W2VLensError, match="no speaker column"):
        bootstrap_units(few.drop(columns="speaker"), "speaker")


def test_band_changes_count_the_characters_that_move() -> None:
    vocabulary = ["<pad>", "a", "b"]
    labels = np.array([0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    steady = np.array([0, 0, 1, 1, 1, 1, 2, 2, 2, 2])  # a and b each in one cluster: accuracy 1
    split = np.array([0, 0, 1, 1, 3, 4, 2, 2, 2, 2])  # a spread over three clusters: 0.5
    moved = tables.band_changes([steady, split], labels, vocabulary, bands=[(0.0, 0.6), (0.6, 1.0)])
    assert moved.loc["a"].tolist() == ["accuracy 60%+", "accuracy <60%", True]
    assert moved["changes"].sum() == 1


def test_forest_plot_draws_one_panel_per_metric() -> None:
    from w2vlens.figures import forest_plot
    from w2vlens.figures.projections import DPI

    table = pd.DataFrame({"ami": [0.6, 0.2], "ami_low": [0.55, 0.15], "ami_high": [0.65, 0.25], "ami_min": [0.58, 0.19],
                          "ami_max": [0.61, 0.22], "homogeneity": [0.8, 0.3]}, index=["finetuned kmeans", "cnn kmeans"])
    figure = forest_plot(table, ("ami", "homogeneity"), "Table 1")
    assert len(figure.axes) == 2 and figure.dpi == DPI >= 200


def test_summary_cells_and_sentences() -> None:
    from w2vlens.summary import uncertainty_summary

    row = {"ami": 0.70, "ami_std": 0.012, "ami_low": 0.68, "ami_high": 0.72}
    table1 = pd.DataFrame([{"view": "finetuned", "clustering": "kmeans", **row, "homogeneity": 0.9,
                            "completeness": 0.5}])
    table3 = pd.DataFrame(columns=["earlier", "later", "ami", "homogeneity", "completeness"])
    tests = pd.DataFrame([{"comparison": "fine-tuned − pre-trained", "metric": "ami", "difference": 0.36,
                           "low": 0.34, "high": 0.38, "p_value": 0.0004}])
    text = uncertainty_summary(table1, table3, tests, "5 K-means seeds", seeds=5)
    assert "| 1 | finetuned kmeans | 0.70 ± 0.01 [0.68, 0.72] | 0.90 | 0.50 |" in text
    assert "- fine-tuned − pre-trained AMI 0.36 [0.34, 0.38], p < 0.001." in text
    assert "0.70 [0.68, 0.72]" in uncertainty_summary(table1, table3, tests.iloc[:0], "one seed", seeds=1)
