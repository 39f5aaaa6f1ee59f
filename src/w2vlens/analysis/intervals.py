"""Uncertainty of the paper's clustering scores: bootstrap intervals over utterances (or speakers),
paired bootstrap tests between two clusterings, and the spread over K-means seeds, as pure
functions over frame-level arrays.

The bootstrap resamples whole units (the utterances or speakers the frames belong to) with
replacement, because neighbouring frames of one utterance are far from independent. It is
vectorised: the frames' contingency table (reference x compared) is built once per unit, a resample
is a vector of unit counts (multinomial), and its contingency table is that vector times the
per-unit tables, so 1,000 resamples cost one sparse matrix product instead of 1,000 passes over
the frames. AMI, homogeneity and completeness are then computed from each table as scikit-learn
computes them from the frames.

A resample repeats some units and drops others, and repeated frames are not independent draws:
scored as they stand, every resample would look more dependent than the frames it came from. The
plug-in mutual information's upward bias, ~(cells - R - C + 1) / 2N for R x C classes filling
`cells` cells over N frames (Miller-Madow; (R - 1)(C - 1) / 2N when every cell is filled), grows as
if there were only N_eff = (sum of weights)^2 / sum of squared weights frames, about N / 2. On
shuffled labels the resampled AMIs would then all lie above 0. The default (`emi="units"`) takes
that excess, the bias at N_eff less the bias at N, off each resample's mutual information before
computing its scores, and uses for AMI's chance term (the expected mutual information, EMI) the
original frames' exact EMI times the ratio of its large-sample form (R - 1)(C - 1) / 2N between the
resample and the original. That is also what makes it fast: scikit-learn's exact EMI sum takes
~0.2 s per table at 180k frames, and it is computed once. `emi="frames"` is scikit-learn on the
resampled frames as they stand (the exact EMI per resample, no correction): slow and biased
upward, for checking against scikit-learn. `scripts/bench_bootstrap.py` measures both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.metrics.cluster._expected_mutual_info_fast import expected_mutual_information

from w2vlens.errors import W2VLensError

METRICS = ("ami", "homogeneity", "completeness")
EMI_MODES = ("units", "frames")
_EPS = np.finfo(np.float64).eps


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    uniques, codes = np.unique(np.asarray(values), return_inverse=True)
    return codes.ravel().astype(np.int64), len(uniques)


@dataclass
class UnitTables:
    """Per-unit contingency tables of one (reference, compared) pair of labellings of the same frames:
    `tables` is units x (rows * cols), sparse; row r, column c of unit u at u, r * cols + c."""

    tables: sparse.csr_matrix
    rows: int
    cols: int

    def total(self) -> np.ndarray:
        """The contingency table of all frames (rows x cols)."""
        return np.asarray(self.tables.sum(axis=0)).reshape(self.rows, self.cols)

    def resampled(self, weights: np.ndarray) -> np.ndarray:
        """One contingency table per row of `weights` (resamples x units counts): resamples x rows x cols."""
        summed = (self.tables.T @ np.asarray(weights, dtype=np.float64).T).T
        return np.asarray(summed).reshape(len(weights), self.rows, self.cols)

    def effective_frames(self, weights: np.ndarray) -> np.ndarray:
        """Per resample, the independent frames its repeated ones stand for: (sum_f w_f)^2 / sum_f w_f^2,
        w_f the count of frame f's unit."""
        frames = np.asarray(self.tables.sum(axis=1)).ravel()
        weights = np.asarray(weights, dtype=np.float64)
        return (weights @ frames) ** 2 / np.maximum((weights**2) @ frames, 1)


def unit_tables(units: np.ndarray, reference: np.ndarray, compared: np.ndarray) -> UnitTables:
    """The per-unit contingency tables of `reference` (rows) against `compared` (columns); `units`
    give each frame's unit id (any hashable values: utterance ids, speakers)."""
    units, reference, compared = np.asarray(units), np.asarray(reference), np.asarray(compared)
    if not len(units) == len(reference) == len(compared):
        raise W2VLensError(f"{len(units)} unit ids, {len(reference)} reference and {len(compared)} compared labels "
                           "must describe the same frames")
    if not len(units):
        raise W2VLensError("no frames to bootstrap")
    unit, n_units = _codes(units)
    row, rows = _codes(reference)
    col, cols = _codes(compared)
    tables = sparse.csr_matrix((np.ones(len(unit)), (unit, row * cols + col)), shape=(n_units, rows * cols))
    tables.sum_duplicates()
    return UnitTables(tables, rows, cols)


def resample_weights(n_units: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """How often each of `n_units` units is drawn in each of `n_resamples` resamples with
    replacement of `n_units` units: an (n_resamples, n_units) integer array."""
    if n_units < 1 or n_resamples < 1:
        raise W2VLensError(f"need at least one unit and one resample, got {n_units} and {n_resamples}")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_resamples)


def _entropy(counts: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Natural-log entropy of each row of `counts` (resamples x classes) with row sums `total`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / total[:, None]
        return -np.where(counts > 0, p * np.log(np.where(counts > 0, p, 1.0)), 0.0).sum(axis=1)


def _emi_exact(table: np.ndarray) -> float:
    n = int(round(table.sum()))
    return float(expected_mutual_information(np.rint(table).astype(np.int64), n)) if n else 0.0


def _emi_form(tables: np.ndarray) -> np.ndarray:
    """(R - 1)(C - 1) / 2N per table, R and C counting non-empty rows and columns, N its frames."""
    rows = (tables.sum(axis=2) > 0).sum(axis=1)
    cols = (tables.sum(axis=1) > 0).sum(axis=1)
    n = tables.sum(axis=(1, 2))
    return np.maximum(rows - 1, 0) * np.maximum(cols - 1, 0) / (2.0 * np.maximum(n, 1))


def contingency_scores(tables: np.ndarray, emi: str = "frames", reference_table: np.ndarray | None = None,
                       effective_frames: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """AMI (arithmetic normalisation, scikit-learn's default), homogeneity and completeness of each
    contingency table in `tables` (tables x reference classes x compared classes, or one 2-D table).
    `emi="frames"`: as scikit-learn computes them from the frames the table counts (its exact EMI
    per table). `emi="units"`: each table is a resample of `reference_table` (the original frames'
    table) standing for `effective_frames` independent frames (default: its total); see the
    module's docstring."""
    if emi not in EMI_MODES:
        raise W2VLensError(f"emi={emi!r}: use one of {EMI_MODES}")
    tables = np.asarray(tables, dtype=np.float64)
    single = tables.ndim == 2
    tables = tables[None] if single else tables
    n = tables.sum(axis=(1, 2))
    a, b = tables.sum(axis=2), tables.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        outer = a[:, :, None] * b[:, None, :]
        terms = np.where(tables > 0, tables * np.log(np.where(tables > 0, tables * n[:, None, None], 1.0)
                                                     / np.where(outer > 0, outer, 1.0)), 0.0)
        mi = np.maximum(terms.sum(axis=(1, 2)) / np.maximum(n, 1), 0.0)
    h_ref, h_cmp = _entropy(a, n), _entropy(b, n)
    if emi == "frames":
        expected = np.array([_emi_exact(table) for table in tables])
        dependence = mi
    else:
        if reference_table is None:
            raise W2VLensError('emi="units" needs the original frames\' contingency table (reference_table)')
        reference_table = np.asarray(reference_table, dtype=np.float64)
        form = _emi_form(reference_table[None])[0]
        expected = (_emi_exact(reference_table) / form if form > 0 else 0.0) * _emi_form(tables)
        effective = n if effective_frames is None else np.asarray(effective_frames, dtype=np.float64)
        cells = (tables > 0).sum(axis=(1, 2)) - (a > 0).sum(axis=1) - (b > 0).sum(axis=1) + 1
        excess = np.maximum(cells, 0) / 2 * (1 / np.maximum(effective, 1) - 1 / np.maximum(n, 1))
        dependence = np.maximum(mi - excess, 0.0)
    homogeneity = np.divide(dependence, h_ref, out=np.ones_like(mi), where=h_ref > 0)
    completeness = np.divide(dependence, h_cmp, out=np.ones_like(mi), where=h_cmp > 0)
    denominator = (h_ref + h_cmp) / 2 - expected
    denominator = np.where(denominator < 0, np.minimum(denominator, -_EPS), np.maximum(denominator, _EPS))
    ami = (dependence - expected) / denominator
    classes_ref, classes_cmp = (a > 0).sum(axis=1), (b > 0).sum(axis=1)
    trivial = ((classes_ref == 1) & (classes_cmp == 1)) | ((classes_ref == 0) & (classes_cmp == 0))
    ami = np.where(trivial, 1.0, ami)
    scores = {"ami": ami, "homogeneity": homogeneity, "completeness": completeness}
    return {name: value[0] for name, value in scores.items()} if single else scores


def _as_rows(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    return labels[None] if labels.ndim == 1 else labels


def bootstrap_replicates(reference: np.ndarray, compared: np.ndarray, units: np.ndarray, weights: np.ndarray,
                         emi: str = "units") -> dict[str, np.ndarray]:
    """The scores of `compared` against `reference` under each resample of `weights` (resamples x
    units, from `resample_weights` over the units in sorted order). Either array may be 2-D, one row
    per K-means seed (a 1-D one is used with every row): the result then has seeds x resamples
    values per metric, every seed under the same resamples."""
    references, compareds = _as_rows(reference), _as_rows(compared)
    seeds = max(len(references), len(compareds))
    if len(references) not in (1, seeds) or len(compareds) not in (1, seeds):
        raise W2VLensError(f"{len(references)} reference and {len(compareds)} compared rows: give one or as many "
                           "as each other")
    out: dict[str, list[np.ndarray]] = {metric: [] for metric in METRICS}
    for seed in range(seeds):
        tables = unit_tables(units, references[seed % len(references)], compareds[seed % len(compareds)])
        if tables.tables.shape[0] != weights.shape[1]:
            raise W2VLensError(f"{weights.shape[1]} unit weights for {tables.tables.shape[0]} units")
        scores = contingency_scores(tables.resampled(weights), emi, tables.total(), tables.effective_frames(weights))
        for metric in METRICS:
            out[metric].append(scores[metric])
    return {metric: np.stack(values) for metric, values in out.items()}


def interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap `replicates` (any shape, pooled) at `level`."""
    if not 0 < level < 1:
        raise W2VLensError(f"level={level!r}: use a number between 0 and 1")
    low, high = np.quantile(np.asarray(replicates, dtype=np.float64).ravel(), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def spread(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean, standard deviation (ddof 1; 0 for one value), min and max of per-seed values."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if not len(values):
        raise W2VLensError("no values to summarise")
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()), "max": float(values.max())}


def score_intervals(reference: np.ndarray, compared: np.ndarray, units: np.ndarray, n_resamples: int = 1000,
                    seed: int = 0, level: float = 0.95, emi: str = "units") -> pd.DataFrame:
    """Per metric (AMI, homogeneity, completeness) of `compared` against `reference`: the mean over
    seeds, the seeds' std, min and max, and the `level` bootstrap interval over `units` (`low`,
    `high`; `n_resamples` resamples drawn from `seed`, the replicates of every K-means seed pooled;
    0 resamples: no interval, NaN). `reference`/`compared`: one labelling per frame, or seeds x frames."""
    references, compareds = _as_rows(reference), _as_rows(compared)
    point = [contingency_scores(unit_tables(units, references[i % len(references)],
                                            compareds[i % len(compareds)]).total())
             for i in range(max(len(references), len(compareds)))]
    replicates = None
    if n_resamples:
        weights = resample_weights(len(np.unique(np.asarray(units))), n_resamples, seed)
        replicates = bootstrap_replicates(reference, compared, units, weights, emi)
    rows = {}
    for metric in METRICS:
        low, high = interval(replicates[metric], level) if replicates is not None else (np.nan, np.nan)
        rows[metric] = spread([scores[metric] for scores in point]) | {"low": low, "high": high}
    return pd.DataFrame(rows).T.rename_axis("metric")


def paired_difference(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray],
                      units: np.ndarray, metric: str = "ami", n_resamples: int = 1000, seed: int = 0,
                      level: float = 0.95, emi: str = "units") -> dict[str, float]:
    """Paired bootstrap of `metric`(first) - `metric`(second), each a (reference, compared) pair of
    labellings of the same frames (1-D, or seeds x frames): both are scored under the same unit
    resamples. Returns the observed `difference` (mean over seeds), its `low`-`high` interval, and
    `p_value`, the two-sided bootstrap share: twice the smaller share of resampled differences on
    either side of 0, counting the observed one ((count + 1) / (resamples + 1)), at most 1."""
    if metric not in METRICS:
        raise W2VLensError(f"metric={metric!r}: use one of {METRICS}")
    weights = resample_weights(len(np.unique(np.asarray(units))), n_resamples, seed)
    differences = (bootstrap_replicates(*first, units, weights, emi)[metric]
                   - bootstrap_replicates(*second, units, weights, emi)[metric])
    observed = np.mean([contingency_scores(unit_tables(units, ref, cmp).total())[metric]
                        for ref, cmp in zip(*np.broadcast_arrays(*_pairs(first)), strict=True)]) - np.mean(
        [contingency_scores(unit_tables(units, ref, cmp).total())[metric]
         for ref, cmp in zip(*np.broadcast_arrays(*_pairs(second)), strict=True)])
    pooled = differences.ravel()
    low, high = interval(pooled, level)
    below = (np.count_nonzero(pooled <= 0) + 1) / (len(pooled) + 1)
    above = (np.count_nonzero(pooled >= 0) + 1) / (len(pooled) + 1)
    return {"difference": float(observed), "low": low, "high": high, "p_value": float(min(1.0, 2 * min(below, above))),
            "resamples": int(len(pooled))}


def _pairs(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return _as_rows(pair[0]), _as_rows(pair[1])
