"""Projections of frame embeddings to 2-D for plotting: PCA, t-SNE (openTSNE) and UMAP.

Each projection is seeded and shares one recipe for large inputs: an optional PCA pre-reduction
(which speeds up neighbour search and removes noise dimensions), then the projection is fitted on at
most `max_points` rows (a sample stratified by the frames' labels, when given) and the remaining rows
are placed into the fitted map with the method's own out-of-sample `transform`.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
from sklearn.decomposition import PCA

from w2vlens.errors import W2VLensError

log = logging.getLogger(__name__)
UMAP_BACKENDS = ("auto", "umap-learn", "cuml")


def sample_rows(n_rows: int, size: int | None, labels: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most `size` of `n_rows` rows (all of them when `size` is None or larger).

    With `labels`, each label keeps its share of the rows and at least one row. Written by hand:
    scikit-learn's stratified splitters reject labels with a single member, which rare characters have.
    """
    if size is None or n_rows <= size:
        return np.arange(n_rows)
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.choice(n_rows, size, replace=False))
    labels = np.asarray(labels)
    if len(labels) != n_rows:
        raise W2VLensError(f"{len(labels)} labels for {n_rows} rows")
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quota = np.minimum(counts, np.maximum(1, np.round(counts * size / n_rows).astype(np.int64)))
    shuffled = rng.permutation(n_rows)
    grouped = shuffled[np.argsort(inverse[shuffled], kind="stable")]  # rows by label, random within a label
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.sort(np.concatenate([grouped[s : s + q] for s, q in zip(starts, quota, strict=True)]))


class _Projection:
    """Shared fit/transform recipe; subclasses implement `_fit` (returns coordinates) and `_place`."""

    def __init__(self, max_points: int | None, pca_components: int | None, seed: int) -> None:
        self.max_points = max_points
        self.pca_components = pca_components
        self.seed = seed

    def fit_transform(self, X: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """(n, 2) coordinates of the rows of X; with more than `max_points` rows the map is fitted on
        a sample (stratified by `labels`) and the other rows are placed with `transform`."""
        data = np.asarray(X, dtype=np.float32)
        if data.ndim != 2 or len(data) < 3:
            raise W2VLensError(f"a projection needs a (frames, dims) array with at least 3 rows, got {data.shape}")
        fitted = sample_rows(len(data), self.max_points, labels, self.seed)
        self.pca_ = None
        if self.pca_components is not None and self.pca_components < min(data.shape[1], len(fitted)):
            self.pca_ = PCA(self.pca_components, random_state=self.seed).fit(data[fitted])
            data = self.pca_.transform(data).astype(np.float32)
        log.info("%s: fitting on %d of %d rows, %d dims", type(self).__name__, len(fitted), len(data), data.shape[1])
        coords = np.empty((len(data), 2), dtype=np.float32)
        coords[fitted] = self._fit(data[fitted])
        rest = np.setdiff1d(np.arange(len(data)), fitted)
        if len(rest):
            coords[rest] = self._place(data[rest])
        return coords

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Places new rows into the fitted map."""
        data = np.asarray(X, dtype=np.float32)
        if self.pca_ is not None:
            data = self.pca_.transform(data).astype(np.float32)
        return self._place(data).astype(np.float32)

    def _fit(self, data: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _place(self, data: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class PCAProjection(_Projection):
    """The first two principal components (no pre-reduction: it would not change them)."""

    def __init__(self, max_points: int | None = None, seed: int = 0) -> None:
        super().__init__(max_points, None, seed)

    def _fit(self, data: np.ndarray) -> np.ndarray:
        self.model_ = PCA(2, random_state=self.seed).fit(data)
        return self.model_.transform(data)

    def _place(self, data: np.ndarray) -> np.ndarray:
        return self.model_.transform(data)


class TSNEProjection(_Projection):
    """t-SNE with openTSNE (FFT-accelerated gradients, out-of-sample placement of new points).

    The iteration counts are two thirds of openTSNE's (250 + 500), enough to converge on the
    10,000-point samples this fits by default (about 20 s for 40,000 × 192 on two cores). One thread:
    on a two-core machine that is busy with anything else, openTSNE's threads slow it down.
    """

    def __init__(self, perplexity: float = 30.0, n_iter: int = 350, early_exaggeration_iter: int = 150,
                 metric: str = "euclidean", pca_components: int | None = 50, max_points: int | None = 10_000,
                 n_jobs: int = 1, seed: int = 0) -> None:
        super().__init__(max_points, pca_components, seed)
        self.perplexity = perplexity
        self.n_iter = n_iter
        self.early_exaggeration_iter = early_exaggeration_iter
        self.metric = metric
        self.n_jobs = n_jobs

    def _fit(self, data: np.ndarray) -> np.ndarray:
        from openTSNE import TSNE

        tsne = TSNE(perplexity=self.perplexity, n_iter=self.n_iter, metric=self.metric, n_jobs=self.n_jobs,
                    early_exaggeration_iter=self.early_exaggeration_iter, random_state=self.seed)
        self.model_ = tsne.fit(data)
        return np.asarray(self.model_)

    def _place(self, data: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.transform(data))


def import_umap_with_cached_jit() -> ModuleType:
    """umap-learn, imported with numba's on-disk cache turned on for its kernels.

    umap-learn compiles dozens of numba kernels in every new process, and asks numba to cache only
    a few of them, so each job of a sweep paid the compilation again. While umap-learn (and
    pynndescent) are imported, `numba.njit` and `numba.jit` default to `cache=True`; a kernel numba
    cannot cache compiles as before. The cache lives in NUMBA_CACHE_DIR (the app points it into
    w2vlens's cache) or next to the installed package. Written by hand: neither package offers it.
    """
    if "umap" in sys.modules:
        return sys.modules["umap"]
    import numba
    from numba.core.errors import NumbaWarning

    def cached(decorator: Callable) -> Callable:
        def decorate(*args: object, **kwargs: object) -> object:
            kwargs.setdefault("cache", True)
            return decorator(*args, **kwargs)

        return decorate

    original = numba.njit, numba.jit
    numba.njit, numba.jit = cached(original[0]), cached(original[1])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaWarning)
            import umap
    finally:
        numba.njit, numba.jit = original
    return umap


def _cuml_umap() -> type | None:
    """cuML's UMAP class when a CUDA GPU and cuML are both present."""
    import torch

    if not torch.cuda.is_available():
        return None
    try:
        from cuml.manifold import UMAP
    except ImportError:
        return None
    return UMAP


class UMAPProjection(_Projection):
    """UMAP with cuML on a GPU when available (`backend="auto"`), else umap-learn.

    `n_epochs` defaults to umap-learn's choice for more than 10,000 points (200). umap-learn runs
    single-threaded when seeded, the price of a reproducible map, and its first fit in a process
    spends about half a minute compiling with numba. cuML results are seeded too but differ from
    umap-learn's.
    """

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "euclidean",
                 n_epochs: int | None = 200, pca_components: int | None = 50, max_points: int | None = 10_000,
                 backend: str = "auto", seed: int = 0) -> None:
        if backend not in UMAP_BACKENDS:
            raise W2VLensError(f"UMAP backend {backend!r} is not one of {UMAP_BACKENDS}")
        super().__init__(max_points, pca_components, seed)
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.n_epochs = n_epochs
        self.backend = backend

    def _fit(self, data: np.ndarray) -> np.ndarray:
        settings = dict(n_neighbors=self.n_neighbors, min_dist=self.min_dist, metric=self.metric,
                        n_epochs=self.n_epochs, random_state=self.seed)
        gpu_umap = _cuml_umap() if self.backend != "umap-learn" else None
        if self.backend == "cuml" and gpu_umap is None:
            raise W2VLensError("UMAP backend 'cuml' needs cuML and a CUDA GPU")
        if gpu_umap is not None:
            self.backend_, self.model_ = "cuml", gpu_umap(**settings)
        else:
            umap = import_umap_with_cached_jit()
            self.backend_, self.model_ = "umap-learn", umap.UMAP(**settings, n_jobs=1)
        return np.asarray(self.model_.fit_transform(data))

    def _place(self, data: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.transform(data))
