"""The mistake probe (paper Figure 3): an MLP that predicts a frame's annotator error category
("correct", "1/K" .. "K/K") from its embedding, trained with Lightning on an utterance-level split,
and compared on the same test frames with a majority-class and a logistic-regression baseline.

Embeddings may be a read-only memmap: batches are read by row index, never copied as a whole, and
the standardisation statistics are accumulated over the training rows in chunks.
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import Logger
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from w2vlens.config import ProbeConfig
from w2vlens.embeddings.store import spans
from w2vlens.errors import W2VLensError
from w2vlens.labelling.transcripts import ErrorFrames, error_category_names
from w2vlens.progress import duration, interactive

SPLITS = ("train", "val", "test")
_CHUNK = 65536  # rows per read when accumulating statistics over a memmap
log = logging.getLogger("w2vlens")


def utterance_split(utterance_ids: np.ndarray, fractions: Sequence[float], seed: int,
                    targets: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Sorted frame rows of the train, val and test splits, utterances dealt out whole by the
    (train, val, test) `fractions`, each split getting at least one.

    Without `targets`, utterances are shuffled with `seed` and cut by the fractions. With per-frame
    class `targets`, the split is stratified by class (iterative stratification, after Sechidis et
    al. 2011, on frame counts): classes are served rarest first, and each utterance holding frames of
    the class goes to the split furthest below its share of that class (relative to the share, ties
    to train, then test, then val), so a class in three utterances reaches all three splits and the
    test split never lacks a class the data has in at least two utterances. Written by hand:
    scikit-learn's StratifiedGroupKFold works in equal folds and can leave a rare class out of the
    test fold.
    """
    if len(fractions) != 3 or min(fractions) <= 0 or not np.isclose(sum(fractions), 1):
        raise W2VLensError(f"split fractions must be three positive numbers summing to 1, got {list(fractions)}")
    names, frame_utterance = np.unique(np.asarray(utterance_ids), return_inverse=True)
    if len(names) < 3:
        raise W2VLensError(f"an utterance-level train/val/test split needs at least 3 utterances, got {len(names)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    n_val = max(1, round(fractions[1] * len(names)))
    n_test = max(1, round(fractions[2] * len(names)))
    n_train = len(names) - n_val - n_test
    if n_train < 1:
        raise W2VLensError(f"{len(names)} utterances leave none for training with fractions {list(fractions)}")
    split_of = np.empty(len(names), dtype=np.int64)
    if targets is None:
        split_of[order] = np.repeat([0, 1, 2], [n_train, n_val, n_test])
    else:
        split_of[:] = _stratified_assignment(frame_utterance, np.asarray(targets), len(names), fractions, order)
    frame_split = split_of[frame_utterance]
    splits = {name: np.flatnonzero(frame_split == number) for number, name in enumerate(SPLITS)}
    empty = [name for name, rows in splits.items() if not len(rows)]
    if empty:
        raise W2VLensError(f"the stratified split left no utterance for the {', '.join(empty)} split")
    return splits


def _stratified_assignment(frame_utterance: np.ndarray, targets: np.ndarray, n_utterances: int,
                           fractions: Sequence[float], order: np.ndarray) -> np.ndarray:
    """Split number (0 train, 1 val, 2 test) per utterance; see `utterance_split`."""
    if len(targets) != len(frame_utterance):
        raise W2VLensError(f"{len(targets)} targets for {len(frame_utterance)} frames")
    classes, frame_class = np.unique(targets, return_inverse=True)
    counts = np.zeros((n_utterances, len(classes)))
    np.add.at(counts, (frame_utterance, frame_class), 1)
    desired = np.asarray(fractions)[:, None] * counts.sum(axis=0)[None, :]
    assigned = np.zeros_like(desired)
    split_of = np.full(n_utterances, -1, dtype=np.int64)
    preference = np.array([0, 2, 1])  # ties: train, then test, then val
    for cls in np.argsort(counts.sum(axis=0), kind="stable"):
        for utterance in order:  # shuffled, so equal utterances land by chance
            if split_of[utterance] >= 0 or counts[utterance, cls] == 0:
                continue
            unfilled = 1 - assigned[preference, cls] / desired[preference, cls]
            split = int(preference[np.argmax(unfilled)])
            split_of[utterance] = split
            assigned[split] += counts[utterance]
    return split_of


def check_disjoint_utterances(splits: Mapping[str, np.ndarray], utterance_ids: np.ndarray) -> None:
    """Raises when an utterance has frames in more than one split."""
    utterance_ids = np.asarray(utterance_ids)
    seen: dict[object, str] = {}
    for name, rows in splits.items():
        for utterance in np.unique(utterance_ids[rows]).tolist():
            if seen.setdefault(utterance, name) != name:
                raise W2VLensError(f"utterance {utterance!r} has frames in both the {seen[utterance]} and {name} split")


class _Rows(Dataset):
    """Batches of (embeddings, targets) read by row index; an item is a whole batch of positions."""

    def __init__(self, embeddings: np.ndarray, targets: np.ndarray, rows: np.ndarray) -> None:
        self.embeddings, self.targets, self.rows = embeddings, targets, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.sort(self.rows[positions])  # sorted rows read a memmap sequentially
        features = torch.from_numpy(np.asarray(self.embeddings[rows], dtype=np.float32))
        return features, torch.from_numpy(np.asarray(self.targets[rows], dtype=np.int64))


class ProbeDataModule(pl.LightningDataModule):
    """Frame embeddings, class ids and utterance ids, split by utterance and stratified by class
    (see `utterance_split`)."""

    def __init__(self, embeddings: np.ndarray, targets: np.ndarray, utterance_ids: np.ndarray, batch_size: int,
                 fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, stratify: bool = True) -> None:
        super().__init__()
        if not len(embeddings) == len(targets) == len(utterance_ids):
            raise W2VLensError(f"{len(embeddings)} embeddings, {len(targets)} targets and {len(utterance_ids)} "
                               "utterance ids must describe the same frames")
        self.embeddings, self.targets = embeddings, np.asarray(targets, dtype=np.int64)
        self.utterance_ids = np.asarray(utterance_ids)
        self.batch_size, self.seed = batch_size, seed
        self.splits = utterance_split(self.utterance_ids, fractions, seed, self.targets if stratify else None)
        check_disjoint_utterances(self.splits, self.utterance_ids)

    def scaler(self) -> StandardScaler:
        """Feature means and scales of the training rows, accumulated chunk by chunk."""
        scaler = StandardScaler()
        rows = self.splits["train"]
        for start in range(0, len(rows), _CHUNK):
            scaler.partial_fit(np.asarray(self.embeddings[rows[start : start + _CHUNK]], dtype=np.float64))
        return scaler

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = _Rows(self.embeddings, self.targets, self.splits[split])
        positions = (RandomSampler(range(len(dataset)), generator=torch.Generator().manual_seed(self.seed))
                     if shuffle else SequentialSampler(range(len(dataset))))
        return DataLoader(dataset, sampler=BatchSampler(positions, self.batch_size, drop_last=False), batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()


def balanced_class_weights(targets: np.ndarray, n_classes: int) -> np.ndarray:
    """n / (classes present · count) per class, as sklearn's "balanced", and 0 for classes absent
    from `targets` (sklearn's `compute_class_weight` refuses those)."""
    counts = np.bincount(targets, minlength=n_classes).astype(float)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


class ProbeModule(pl.LightningModule):
    """MLP (`depth` hidden layers of `hidden` units with GELU and dropout; depth 0 is a linear probe)
    over standardised embeddings, trained with (optionally class-weighted) cross-entropy and AdamW."""

    def __init__(self, input_dim: int, n_classes: int, hidden: int = 256, depth: int = 1, dropout: float = 0.1,
                 lr: float = 1e-3, weight_decay: float = 0.01, metric_prefix: str = "probe") -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)  # the caller logs its own config; params can't be re-logged
        layers: list[nn.Module] = []
        width = input_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, n_classes))
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("scale", torch.ones(input_dim))
        self.register_buffer("class_weights", torch.ones(n_classes))

    def set_statistics(self, scaler: StandardScaler, class_weights: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(scaler.mean_, dtype=torch.float32))
        self.scale.copy_(torch.as_tensor(scaler.scale_, dtype=torch.float32))
        self.class_weights.copy_(torch.as_tensor(class_weights, dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net((features - self.mean) / self.scale)

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        features, targets = batch
        loss = nn.functional.cross_entropy(self(features), targets, weight=self.class_weights)
        self.log(f"{self.hparams.metric_prefix}_{split}_loss", loss, on_step=False, on_epoch=True,
                 batch_size=len(targets))
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._loss(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._loss(batch, "val")

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return torch.softmax(self(batch[0]), dim=-1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)


@dataclass
class ClassifierScores:
    """Test-split scores of one classifier."""

    balanced_accuracy: float
    report: pd.DataFrame  # per class: precision, recall, f1, support
    confusion: pd.DataFrame  # rows true class, columns predicted class


@dataclass
class ProbeResult:
    """The probe's test-split scores and predictions, the baselines' scores on the same frames."""

    class_names: list[str]
    probe: ClassifierScores
    baselines: dict[str, ClassifierScores]
    test_rows: np.ndarray  # frame rows of the test split, in the order of `test_probabilities`
    test_probabilities: np.ndarray  # (test frames, classes) softmax of the probe
    split_sizes: dict[str, int]  # frames per split
    epochs: int

    def error_probability(self, correct_class: str = "correct") -> np.ndarray:
        """P(not `correct_class`) per test frame."""
        return 1.0 - self.test_probabilities[:, self.class_names.index(correct_class)]

    def balanced_accuracies(self) -> dict[str, float]:
        """Test balanced accuracy of the probe (`probe`) and of each baseline; per-class scores are
        in each classifier's `report` table."""
        return {"probe": self.probe.balanced_accuracy} | {
            name: scores.balanced_accuracy for name, scores in self.baselines.items()}


def _scores(truth: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> ClassifierScores:
    labels = np.arange(len(class_names))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels,
                                                                     zero_division=0)
    report = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support},
                          index=pd.Index(class_names, name="class"))
    confusion = pd.DataFrame(confusion_matrix(truth, predicted, labels=labels),
                             index=pd.Index(class_names, name="true"), columns=pd.Index(class_names, name="predicted"))
    with warnings.catch_warnings():  # classes predicted but absent from the test split are expected
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(truth, predicted))
    return ClassifierScores(balanced, report, confusion)


def _baselines(data: ProbeDataModule, scaler: StandardScaler, class_names: list[str], max_frames: int,
               max_iter: int, seed: int, class_weighting: str | None) -> dict[str, ClassifierScores]:
    """Majority class and logistic regression weighted like the probe (standardised features, at most `max_frames`
    training frames), fitted on the training split and scored on the test split."""
    train = data.splits["train"]
    if len(train) > max_frames:
        train = np.sort(np.random.default_rng(seed).choice(train, max_frames, replace=False))
    test = data.splits["test"]
    train_x = scaler.transform(np.asarray(data.embeddings[train], dtype=np.float64))
    test_x = scaler.transform(np.asarray(data.embeddings[test], dtype=np.float64))
    train_y, test_y = data.targets[train], data.targets[test]
    majority = DummyClassifier(strategy="most_frequent").fit(train_x, train_y)
    logistic = LogisticRegression(class_weight=class_weighting, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():  # a small max_iter is a deliberate speed/accuracy trade-off
        warnings.simplefilter("ignore", ConvergenceWarning)
        logistic.fit(train_x, train_y)
    return {"majority": _scores(test_y, majority.predict(test_x), class_names),
            "logreg": _scores(test_y, logistic.predict(test_x), class_names)}


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silences Lightning's info lines (hardware, tips, restoring the scratch checkpoint), its
    few-workers warning (batches are memmap reads) and its torch deprecation warning, and undoes
    the global deterministic mode that `Trainer(deterministic=True)` switches on for the rest of
    the process."""
    lightning_log = logging.getLogger("pytorch_lightning")
    level = lightning_log.level
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    lightning_log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            # Lightning's own pytree helper uses a torch class torch has deprecated: not ours to fix.
            warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
            yield
    finally:
        lightning_log.setLevel(level)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


class _EpochLog(pl.Callback):
    """One log line per epoch with the validation loss and the time left at most (early stopping
    may end sooner), for logs where Lightning's progress bar would be redrawn line by line."""

    def __init__(self, max_epochs: int, desc: str, monitor: str) -> None:
        self.max_epochs, self.desc, self.monitor = max_epochs, desc, monitor

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch + 1
        elapsed = time.perf_counter() - self.start
        if elapsed < 2:  # quick training (small data, tests) logs nothing
            return
        loss = trainer.callback_metrics.get(self.monitor)
        log.info("%s: epoch %d of at most %d, %s %s, %s elapsed, at most %s left", self.desc, epoch,
                 self.max_epochs, self.monitor, "?" if loss is None else f"{float(loss):.4f}", duration(elapsed),
                 duration(elapsed / epoch * (self.max_epochs - epoch)))


def train_probe(embeddings: np.ndarray, targets: np.ndarray, utterance_ids: np.ndarray, class_names: Sequence[str],
                hidden: int = 256, depth: int = 1, dropout: float = 0.1, lr: float = 1e-3, max_epochs: int = 20,
                batch_size: int = 512, seed: int = 0, patience: int = 3, logger: Logger | None = None,
                fractions: Sequence[float] = (0.8, 0.1, 0.1),
                weight_decay: float = 0.01, baseline_max_frames: int = 20000, baseline_max_iter: int = 200,
                metric_prefix: str = "probe", class_weighting: str | None = "balanced") -> ProbeResult:
    """Trains the probe with early stopping on the validation loss and scores it and the baselines on
    the test split (an utterance-level split stratified by class). The best epoch's weights are
    restored from a checkpoint in a temporary folder. `class_weighting` "balanced" weighs each class
    by n / (classes · count) in the loss and in the logistic baseline; None trains plainly, as the
    paper's classifier (whose confusion matrix shows most mistakes recognised as correct).

    `logger` (a Lightning logger, e.g. `w2vlens.tracking.lightning_logger`) receives the per-epoch
    losses as `{metric_prefix}_train_loss` and `_val_loss`; without one nothing is logged.
    """
    if class_weighting not in (None, "balanced"):
        raise W2VLensError(f"class_weighting must be 'balanced' or None, got {class_weighting!r}")
    class_names = list(class_names)
    targets = np.asarray(targets, dtype=np.int64)
    if targets.size and (targets.min() < 0 or targets.max() >= len(class_names)):
        raise W2VLensError(f"targets must be class ids in [0, {len(class_names)}), "
                           f"got {targets.min()}..{targets.max()}")
    pl.seed_everything(seed, workers=True, verbose=False)
    data = ProbeDataModule(embeddings, targets, utterance_ids, batch_size, fractions, seed)
    scaler = data.scaler()
    model = ProbeModule(embeddings.shape[1], len(class_names), hidden, depth, dropout, lr, weight_decay,
                        metric_prefix)
    weights = (balanced_class_weights(targets[data.splits["train"]], len(class_names)) if class_weighting
               else np.ones(len(class_names)))
    model.set_statistics(scaler, weights)
    monitor = f"{metric_prefix}_val_loss"
    train_batches = -(-len(data.splits["train"]) // batch_size)
    with tempfile.TemporaryDirectory(prefix="w2vlens-probe-") as scratch, _quiet_lightning():
        checkpoint = ModelCheckpoint(dirpath=scratch, monitor=monitor, save_top_k=1, save_weights_only=True)
        bar = interactive()  # Lightning's bar on a terminal, a log line per epoch in a job's log
        epochs = [] if bar else [_EpochLog(max_epochs, f"{metric_prefix} ({len(data.splits['train']):,} frames)",
                                           monitor)]
        trainer = pl.Trainer(
            max_epochs=max_epochs, logger=logger if logger is not None else False, default_root_dir=scratch,
            deterministic=True,
            callbacks=[EarlyStopping(monitor=monitor, patience=patience), checkpoint, *epochs],
            enable_progress_bar=bar, enable_model_summary=False, num_sanity_val_steps=0,
            log_every_n_steps=min(50, train_batches),
        )
        trainer.fit(model, datamodule=data)
        probabilities = torch.cat(trainer.predict(model, datamodule=data, ckpt_path="best")).numpy()
    test_rows = data.splits["test"]
    probe = _scores(data.targets[test_rows], probabilities.argmax(axis=1), class_names)
    result = ProbeResult(class_names, probe,
                         _baselines(data, scaler, class_names, baseline_max_frames, baseline_max_iter, seed,
                                    class_weighting),
                         test_rows, probabilities, {name: len(rows) for name, rows in data.splits.items()},
                         trainer.current_epoch)
    return result


def error_detection_auroc(is_error: np.ndarray, probe_error_probability: np.ndarray,
                          max_posterior: np.ndarray) -> dict[str, float]:
    """AUROC of telling errors from correct frames by the probe's P(not correct) and, side by side, by
    the model's own confidence (1 - its maximum CTC posterior)."""
    is_error = np.asarray(is_error, dtype=bool)
    if not len(is_error) == len(probe_error_probability) == len(max_posterior):
        raise W2VLensError(f"{len(is_error)} error flags, {len(probe_error_probability)} probe probabilities and "
                           f"{len(max_posterior)} posteriors must describe the same frames")
    if is_error.all() or not is_error.any():
        raise W2VLensError("AUROC needs both correct and erroneous frames")
    return {"probe_auroc": float(roc_auc_score(is_error, probe_error_probability)),
            "confidence_auroc": float(roc_auc_score(is_error, 1.0 - np.asarray(max_posterior))),
            "frames": float(len(is_error)), "error_rate": float(is_error.mean())}


@dataclass
class ProbeReport:
    """Paper Figure 3: the mistake probe trained as the paper did (`plain`: no class weights) and,
    as our extra on the same split, with balanced class weights, plus error-detection AUROCs of
    both beside the model's own confidence (max CTC posterior)."""

    plain: ProbeResult
    balanced: ProbeResult
    auroc: dict[str, float]


def mistake_probe(embeddings: np.ndarray, logits: np.ndarray, errors: ErrorFrames, utterances: pd.DataFrame,
                  settings: ProbeConfig, seed: int, logger: Logger | None = None) -> ProbeReport:
    """Trains the probe to tell correct frames from each annotator-agreement level of error, once
    without and once with class weights, on one utterance-level split stratified by category, and
    compares their error detection with the model's own confidence (max CTC posterior). `logger`
    (a Lightning logger) receives the training curves."""
    annotated = np.flatnonzero(errors.counts >= 0)
    utterance_ids = np.empty(len(errors.counts), dtype=object)
    for utt, rows in spans(utterances):
        utterance_ids[rows] = utt.id
    class_names = error_category_names(errors.n_annotators)
    targets = errors.counts[annotated]  # class k = "k/K" annotators call the frame an error; 0 = correct
    features = np.asarray(embeddings[annotated], dtype=np.float32)
    results = {weighting: train_probe(features, targets, utterance_ids[annotated], class_names, hidden=settings.hidden,
                                      depth=settings.depth, dropout=settings.dropout, lr=settings.lr,
                                      max_epochs=settings.max_epochs, batch_size=settings.batch_size,
                                      patience=settings.patience, seed=seed,
                                      class_weighting=weighting, metric_prefix=prefix, logger=logger)
               for weighting, prefix in ((None, "probe"), ("balanced", "probe_balanced"))}
    plain, balanced = results[None], results["balanced"]
    test_frames = annotated[plain.test_rows]
    posteriors = torch.softmax(torch.from_numpy(np.array(logits[test_frames], dtype=np.float32)), dim=-1)
    is_error = errors.counts[test_frames] > 0
    confidence = posteriors.max(dim=-1).values.numpy()
    auroc = error_detection_auroc(is_error, plain.error_probability(), confidence)
    auroc["probe_balanced_auroc"] = error_detection_auroc(is_error, balanced.error_probability(),
                                                          confidence)["probe_auroc"]
    return ProbeReport(plain, balanced, auroc)
