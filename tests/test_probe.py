"""The mistake probe: utterance-level splits, learning a separable toy problem, MLflow logging, AUROC."""

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from w2vlens.analysis.probe import (
    ProbeDataModule,
    check_disjoint_utterances,
    error_detection_auroc,
    train_probe,
    utterance_split,
)
from w2vlens.errors import W2VLensError
from w2vlens.tracking import lightning_logger

CLASSES = ["correct", "1/2", "2/2"]


def toy_frames(n: int = 2000, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three well-separated Gaussian classes, imbalanced like error categories, in 40 utterances."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dim)) * 4
    targets = rng.choice(3, size=n, p=[0.7, 0.2, 0.1])
    embeddings = (centres[targets] + rng.normal(size=(n, dim))).astype(np.float32)
    utterances = np.array([f"u{i}" for i in rng.integers(0, 40, n)])
    return embeddings, targets, utterances


def test_no_utterance_is_in_two_splits() -> None:
    embeddings, targets, utterances = toy_frames(n=500)
    data = ProbeDataModule(embeddings, targets, utterances, batch_size=64, fractions=(0.6, 0.2, 0.2), seed=3)
    per_split = [set(utterances[rows]) for rows in data.splits.values()]
    assert sum(len(s) for s in per_split) == len(set(utterances))
    assert not (per_split[0] & per_split[1] or per_split[0] & per_split[2] or per_split[1] & per_split[2])
    assert sum(len(rows) for rows in data.splits.values()) == len(utterances)
    assert np.array_equal(utterance_split(utterances, (0.6, 0.2, 0.2), 3, targets)["test"], data.splits["test"])
    features, labels = next(iter(data.train_dataloader()))
    assert features.shape == (64, 8) and labels.shape == (64,)
    overlapping = {"train": np.array([0, 1]), "test": np.flatnonzero(utterances == utterances[0])}
    with pytest.raises(W2VLensError, match="frames in both"):
        check_disjoint_utterances(overlapping, utterances)
    with pytest.raises(W2VLensError, match="at least 3 utterances"):
        utterance_split(np.array(["a", "a", "b"]), (0.8, 0.1, 0.1), 0)


def test_the_split_is_stratified_by_class_so_a_rare_class_reaches_the_test_split() -> None:
    # 30 utterances of 10 frames, all correct but for one rare class in 3 utterances and another in 2
    utterances = np.repeat([f"u{i:02d}" for i in range(30)], 10)
    targets = np.zeros(300, dtype=np.int64)
    targets[[5, 15, 25]] = 2  # utterances u00, u01, u02
    targets[[35, 45]] = 1  # utterances u03, u04
    for seed in range(5):
        splits = utterance_split(utterances, (0.8, 0.1, 0.1), seed, targets)
        classes = {name: set(targets[rows].tolist()) for name, rows in splits.items()}
        assert classes["test"] == {0, 1, 2}  # a class in two or more utterances is scored
        assert classes["train"] == {0, 1, 2}
        assert 2 in classes["val"]  # three utterances: one to each split
        check_disjoint_utterances(splits, utterances)
        assert sum(len(rows) for rows in splits.values()) == 300
        assert 20 <= len(splits["train"]) // 10 <= 26  # still about 80% of the utterances


def test_probe_learns_a_separable_problem_and_logs_its_curves_into_an_existing_run(tmp_path) -> None:
    embeddings, targets, utterances = toy_frames()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run() as run:
            result = train_probe(embeddings, targets, utterances, CLASSES, hidden=32, depth=1, dropout=0.1, lr=1e-2,
                                 max_epochs=4, batch_size=128, seed=0, patience=2,
                                 logger=lightning_logger(run.info.run_id))
            assert MlflowClient(uri).get_run(run.info.run_id).info.status == "RUNNING"  # still the caller's
    finally:
        mlflow.set_tracking_uri(previous)
    assert result.probe.balanced_accuracy > 0.95
    assert result.probe.report["support"].min() > 0  # stratified: every class has test frames
    assert result.baselines["majority"].balanced_accuracy < result.probe.balanced_accuracy
    assert result.baselines["logreg"].balanced_accuracy > 0.9
    assert result.probe.confusion.to_numpy().sum() == result.split_sizes["test"] == len(result.test_rows)
    assert list(result.probe.report.index) == CLASSES
    assert result.error_probability().shape == (len(result.test_rows),)
    logged = MlflowClient(uri).get_run(run.info.run_id).data.metrics
    assert {"probe_train_loss", "probe_val_loss"} <= set(logged)  # the curves
    assert not [name for name in logged if "test" in name]  # the caller logs the scores it wants
    assert set(result.balanced_accuracies()) == {"probe", "majority", "logreg"}
    assert not list(tmp_path.glob("**/*.ckpt"))


def test_plain_probe_favours_the_majority_class_that_weights_correct() -> None:
    # two overlapping classes, 95% correct: without weights the probe calls nearly everything correct
    rng = np.random.default_rng(0)
    targets = (rng.random(3000) < 0.05).astype(np.int64)
    embeddings = (rng.normal(size=(3000, 4)) + 0.7 * targets[:, None]).astype(np.float32)
    utterances = np.array([f"u{i}" for i in rng.integers(0, 60, 3000)])
    settings = dict(hidden=8, depth=1, lr=1e-2, max_epochs=3, batch_size=256, seed=0, patience=2)
    plain = train_probe(embeddings, targets, utterances, ["correct", "1/1"], class_weighting=None, **settings)
    balanced = train_probe(embeddings, targets, utterances, ["correct", "1/1"], **settings)
    recall = {name: r.probe.report.at["1/1", "recall"] for name, r in (("plain", plain), ("balanced", balanced))}
    assert recall["plain"] < 0.2 < recall["balanced"]
    with pytest.raises(W2VLensError, match="class_weighting"):
        train_probe(embeddings, targets, utterances, ["correct", "1/1"], class_weighting="inverse")


def test_probe_rejects_bad_input() -> None:
    embeddings, targets, utterances = toy_frames(n=100)
    with pytest.raises(W2VLensError, match="class ids"):
        train_probe(embeddings, targets + 1, utterances, CLASSES)


def test_error_detection_auroc_side_by_side() -> None:
    is_error = np.array([False, False, True, True])
    scores = error_detection_auroc(is_error, np.array([0.1, 0.2, 0.8, 0.9]), np.array([0.3, 0.9, 0.8, 0.4]))
    assert scores["probe_auroc"] == 1.0
    assert scores["confidence_auroc"] == pytest.approx(0.5)
    with pytest.raises(W2VLensError, match="both correct and erroneous"):
        error_detection_auroc(np.zeros(3, bool), np.zeros(3), np.zeros(3))
