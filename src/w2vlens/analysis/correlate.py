"""The paper's correlations between per-character accuracies and training-data frequencies
(section 4.1: 0.35 pre-trained vs fine-tuned accuracy, 0.38 frequency vs fine-tuned CER, 0.52 combined)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from w2vlens.corpora.text import normalize_text
from w2vlens.errors import W2VLensError


def character_frequencies(texts: Iterable[str]) -> pd.Series:
    """Relative frequency of each character in the normalised texts, spaces left out; sorted by character."""
    counts = Counter(ch for text in texts if isinstance(text, str) for ch in normalize_text(text) if ch != " ")
    if not counts:
        raise W2VLensError("no characters to count: the texts are empty")
    frequencies = pd.Series(counts, dtype=float).sort_index()
    return frequencies / frequencies.sum()


def _pair(name: str, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pearson = stats.pearsonr(x, y)
    spearman = stats.spearmanr(x, y)
    return {f"{name}_pearson_r": float(pearson.statistic), f"{name}_pearson_p": float(pearson.pvalue),
            f"{name}_spearman_r": float(spearman.statistic), f"{name}_spearman_p": float(spearman.pvalue),
            f"{name}_n": float(len(x))}


def character_correlations(pretrained_acc: pd.Series, finetuned_acc: pd.Series,
                           train_frequency: pd.Series | None = None) -> dict[str, float]:
    """Pearson and Spearman r, each with its p-value and n, of pre-trained vs fine-tuned accuracy
    (`pre_vs_fine_*`) over the characters both series have; with `train_frequency`, also of training
    frequency vs the fine-tuned model's per-character error rate, 1 - accuracy (`frequency_vs_fine_cer_*`:
    the paper correlates frequency with "the final CER", so a frequent character being recognised
    better gives a negative r), and the multiple correlation R of fine-tuned accuracy with both (the
    square root of R² of an ordinary least-squares fit with an intercept, `multiple_r_p` its F-test),
    those over the characters all three have. A constant series gives NaN correlations."""
    pair = pd.concat({"pre": pretrained_acc, "fine": finetuned_acc}, axis=1, join="inner").dropna()
    if len(pair) < 4:
        raise W2VLensError(f"correlations need at least 4 characters with both accuracies, got {len(pair)}")
    scores = _pair("pre_vs_fine", *(pair[c].to_numpy(dtype=float) for c in ("pre", "fine")))
    if train_frequency is None:
        return scores
    table = pd.concat({"pre": pretrained_acc, "fine": finetuned_acc, "frequency": train_frequency},
                      axis=1, join="inner").dropna()
    if len(table) < 4:
        raise W2VLensError(f"frequency correlations need at least 4 characters present in all three series, "
                           f"got {len(table)}")
    pre, fine, frequency = (table[c].to_numpy(dtype=float) for c in ("pre", "fine", "frequency"))
    design = np.column_stack([np.ones(len(table)), pre, frequency])
    coefficients, *_ = np.linalg.lstsq(design, fine, rcond=None)
    residual = np.sum((fine - design @ coefficients) ** 2)
    total = np.sum((fine - fine.mean()) ** 2)
    r_squared = 1 - residual / total if total > 0 else float("nan")
    degrees = len(table) - 3  # two predictors and the intercept
    f_value = (r_squared / 2) / ((1 - r_squared) / degrees) if degrees > 0 and r_squared < 1 else float("inf")
    p_value = float(stats.f.sf(f_value, 2, degrees)) if degrees > 0 and np.isfinite(r_squared) else float("nan")
    return scores | _pair("frequency_vs_fine_cer", frequency, 1 - fine) | {
        "multiple_r2": float(r_squared), "multiple_r": float(np.sqrt(max(r_squared, 0.0))),
        "multiple_r_p": p_value, "multiple_n": float(len(table))}
