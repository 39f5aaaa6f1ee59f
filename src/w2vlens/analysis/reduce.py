"""Projections of frame embeddings to 2-D for plotting: PCA, t-SNE (openTSNE) and UMAP.

Each projection is seeded and shares one recipe: an optional PCA pre-reduction (which removes noise
dimensions), then the map is fitted on every row (`max_points=None`, the paper's protocol) or on
a sample of `max_points` rows (stratified by the frames' labels, when given) with the remaining rows
placed into the fitted map by the method's own out-of-sample `transform`.

t-SNE and UMAP spend most of their time finding nearest neighbours with approximate searches
(openTSNE's Annoy, umap-learn's NN-descent). Here both get a k-nearest-neighbour graph instead
(`knn_graph`): exact where that is cheap (a chunked matrix product with torch on a GPU, FAISS's
brute force on the CPU up to `EXACT_CPU_MAX_ROWS` rows), and above that on the CPU FAISS's HNSW
index, whose recall against the exact graph is measured on a sample of rows and kept with the graph
(`KNNGraph.recall`). The projections' `neighbours` setting (auto, exact, approximate) chooses. One
graph per view and metric can be computed once and handed to every projection
(`shared_knn_graphs`, then `fit_transform(X, knn=graph)`).
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
from sklearn.decomposition import PCA

from w2vlens.analysis.cluster import _tf32, memory_budget
from w2vlens.choices import NEIGHBOURS, PROJECTION_METRICS, UMAP_BACKENDS
from w2vlens.errors import W2VLensError
from w2vlens.progress import Progress, progress_iter

log = logging.getLogger(__name__)
# `neighbours: auto` searches exactly on the CPU up to this many rows of 1024 dims (up to the same
# work, rows^2 x dims, at other widths: about 115,000 rows of 192 dims), approximately above.
# FAISS's brute force grows with the square of the rows (45,000 x 1024: 44 s on 2 busy cores;
# 90,000: about 4 times that), HNSW's build and search about linearly (45,000: 26 s, 90,000: 65 s,
# both at recall 0.999).
EXACT_CPU_MAX_ROWS = 50_000
# HNSW over IVF, measured on 2 cores at 45,000-180,000 rows x 1024 (demo embeddings mapped to 1024
# dims plus noise, k = 90; scripts/bench_pipeline.py --stages knn): at the same recall HNSW was as
# fast or faster, it needs no training pass and no cell count to tune with the rows, and IVF's
# search cost grows with the rows scanned per probe (N^1.5 with nlist ~ sqrt(N)), HNSW's with log N.
HNSW_LINKS = 32  # M: graph links per row
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 128  # at least k + 1; recall 0.999 at k = 90 in the measurement above
HNSW_EF_MAX = 2048  # the widest search tried for rows that need more to reach RECALL_TARGET
RECALL_TARGET = 0.95
RECALL_QUERIES = 1000  # rows whose exact neighbours measure an approximate graph's recall


@dataclass(frozen=True)
class KNNGraph:
    """The k nearest neighbours of every row, nearest first, the row itself left out (a duplicate
    of a row is its neighbour). `distances` are Euclidean, or cosine distances (1 - cos) for
    `metric="cosine"`; `pca_components` is the PCA pre-reduction the search ran on (None: the rows
    as given). `search` is "exact" or "approximate"; `recall` the share of the true k nearest
    neighbours the graph holds (1.0 for an exact graph; measured on a sample of rows otherwise)."""

    indices: np.ndarray
    distances: np.ndarray
    metric: str
    pca_components: int | None
    search: str = "exact"
    recall: float = 1.0

    @property
    def n_neighbors(self) -> int:
        return self.indices.shape[1]

    def check(self, n_rows: int, n_neighbors: int, metric: str, pca_components: int | None) -> None:
        """A clear error when this graph cannot stand in for the search a projection would run."""
        wanted = f"{n_neighbors} {metric} neighbours of {n_rows} rows after PCA to {pca_components}"
        have = f"{self.n_neighbors} {self.metric} neighbours of {len(self.indices)} rows after PCA to " \
               f"{self.pca_components}"
        if (len(self.indices), self.metric, self.pca_components) != (n_rows, metric, pca_components) \
                or self.n_neighbors < n_neighbors:
            raise W2VLensError(f"the precomputed kNN graph has {have}; the projection needs {wanted}")

    def nearest(self, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances) of the `n_neighbors` nearest, openTSNE's convention."""
        return self.indices[:, :n_neighbors], self.distances[:, :n_neighbors]

    def with_self(self, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances) of each row itself (distance 0) and its `n_neighbors - 1` nearest,
        umap-learn's convention."""
        own = np.arange(len(self.indices))[:, None]
        return (np.hstack([own, self.indices[:, : n_neighbors - 1]]),
                np.hstack([np.zeros_like(own, dtype=np.float32), self.distances[:, : n_neighbors - 1]]))


def check_neighbours(neighbours: str, owner: str = "neighbours") -> str:
    """`neighbours` when it is one of NEIGHBOURS, else a one-line error naming `owner`."""
    if neighbours not in NEIGHBOURS:
        raise W2VLensError(f"{owner}={neighbours!r} is not one of {', '.join(NEIGHBOURS)}")
    return neighbours


def resolve_neighbours(neighbours: str, n_rows: int, dims: int, device: str) -> str:
    """"exact" or "approximate": what `neighbours` (auto, exact, approximate) means for a graph of
    `n_rows` rows of `dims` dimensions searched on `device`. auto: exact on a CUDA GPU, and on the
    CPU up to the work of EXACT_CPU_MAX_ROWS rows of 1024 dims; approximate above."""
    check_neighbours(neighbours)
    if neighbours != "auto":
        return neighbours
    return "exact" if _on_gpu(device) or n_rows**2 * dims <= EXACT_CPU_MAX_ROWS**2 * 1024 else "approximate"


def knn_graph(X: np.ndarray, n_neighbors: int, metric: str = "euclidean", device: str = "auto",
              pca_components: int | None = None, seed: int = 0, neighbours: str = "exact") -> KNNGraph:
    """The `n_neighbors` nearest neighbours of every row of X (after an optional PCA to
    `pca_components`, fitted as the projections fit theirs). Exact (`neighbours="exact"`, or
    "auto" where `resolve_neighbours` says so) by torch on a CUDA GPU (`device` auto or cuda) and by
    FAISS's brute force on the CPU; approximate by FAISS's HNSW index on the CPU, with its recall
    measured against an exact search of RECALL_QUERIES sampled rows. Cosine neighbours are
    Euclidean ones of unit-normalised rows."""
    if metric not in PROJECTION_METRICS:
        raise W2VLensError(f"kNN metric {metric!r} is not one of {PROJECTION_METRICS}")
    if not 0 < n_neighbors < len(X):
        raise W2VLensError(f"{n_neighbors} nearest neighbours need more than {len(X)} rows")
    data = np.asarray(X, dtype=np.float32)  # the store's memmap itself when it holds float32
    pca_components = _effective_pca(pca_components, data.shape)
    search = resolve_neighbours(neighbours, len(data), pca_components or data.shape[1], device)
    if pca_components is not None:
        data = PCA(pca_components, random_state=seed).fit(data).transform(data).astype(np.float32)  # as projections do
    if metric == "cosine":
        data = data / np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12)
    data = np.ascontiguousarray(data)
    on_gpu = search == "exact" and _on_gpu(device)
    where = "cuda" if on_gpu else "cpu"
    desc = f"{search} kNN graph ({len(data):,} x {data.shape[1]}, k={n_neighbors}, {metric}, {where})"
    recall = 1.0
    if search == "approximate":
        indices, squared, recall = _hnsw_neighbours(data, n_neighbors, seed, desc)
    elif on_gpu:
        indices, squared = _torch_neighbours(data, data, n_neighbors, torch.device("cuda"), exclude_self=True)
    else:
        indices, squared = _faiss_neighbours(data, data, n_neighbors, exclude_self=True, desc=desc)
    distances = squared / 2 if metric == "cosine" else np.sqrt(squared)
    log.info("%s: recall@%d %s", desc, n_neighbors, "1 (exact)" if search == "exact" else f"{recall:.3f}")
    return KNNGraph(indices, distances.astype(np.float32), metric, pca_components, search, recall)


def _hnsw_neighbours(data: np.ndarray, k: int, seed: int, desc: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(ids, squared Euclidean distances, recall@k) of each row's k nearest other rows by FAISS's
    HNSW index (distances exact for the neighbours found). Before the whole search, efSearch is
    doubled from HNSW_EF_SEARCH until RECALL_QUERIES sampled rows reach RECALL_TARGET (or
    HNSW_EF_MAX): rows spread in many dimensions (the recall falls with the data's intrinsic
    dimension, not with its width) need a wider search."""
    import faiss

    index = faiss.IndexHNSWFlat(data.shape[1], HNSW_LINKS)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    block = _block_rows(len(data))
    with Progress(2 * len(data), desc, "rows (built, then searched)") as progress:
        for start in range(0, len(data), block):
            index.add(data[start : start + block])
            progress.update(len(data[start : start + block]))
        rows, kth = _true_kth(data, k, seed)
        ef = max(HNSW_EF_SEARCH, k + 1)
        while True:
            index.hnsw.efSearch = ef
            _, ids = index.search(data[rows], k + 1)
            recall = _recall(data, rows, kth, _drop_self(ids.astype(np.int64), ids, rows, k)[0])
            if recall >= RECALL_TARGET or ef >= HNSW_EF_MAX:
                break
            log.info("%s: recall@%d %.3f at efSearch %d, searching wider", desc, k, recall, ef)
            ef = min(2 * ef, HNSW_EF_MAX)
        if recall < RECALL_TARGET:
            log.warning("%s: recall@%d only %.3f at efSearch %d (the widest); neighbours: exact gives the exact "
                        "graph", desc, k, recall, ef)
        indices = np.empty((len(data), k), dtype=np.int64)
        squared = np.empty((len(data), k), dtype=np.float32)
        for start in range(0, len(data), block):
            found, ids = index.search(data[start : start + block], k + 1)
            ids, found = _drop_self(ids.astype(np.int64), np.maximum(found, 0), start, k)
            indices[start : start + len(ids)], squared[start : start + len(ids)] = ids, found
            progress.update(len(ids))
    return indices, squared, _recall(data, rows, kth, indices[rows])


def _true_kth(data: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """RECALL_QUERIES sampled rows (sorted) and the squared distance to each one's true k-th
    nearest other row (FAISS's brute force, the distance recomputed directly: FAISS's rounds
    through the rows' norms)."""
    import faiss

    rows = np.sort(np.random.default_rng(seed).choice(len(data), min(len(data), RECALL_QUERIES), replace=False))
    _, ids = faiss.knn(np.ascontiguousarray(data[rows]), data, k + 1)  # no index: no copy of the rows
    others = _drop_self(ids.astype(np.int64), ids, rows, k)[0]
    return rows, ((data[others[:, -1]] - data[rows]) ** 2).sum(axis=1)


def _recall(data: np.ndarray, rows: np.ndarray, kth: np.ndarray, found: np.ndarray) -> float:
    """Recall@k of the neighbours `found` (k per row of `rows`): the share no farther than the
    row's true k-th nearest, `kth` (ties at the k-th distance count as found: any of them is a
    true neighbour), distances computed directly."""
    hits = 0
    for start in range(0, len(rows), 64):
        queries = data[rows[start : start + 64]][:, None, :]
        near = ((data[found[start : start + 64]] - queries) ** 2).sum(axis=2)
        hits += int((near <= kth[start : start + 64, None] * (1 + 1e-4) + 1e-12).sum())
    return hits / found.size


def _block_rows(n_rows: int) -> int:
    """Rows per block of a search reported in parts: about 1% of the rows, at least 4,096 (FAISS's
    brute force multiplies blocks of queries with the database; smaller ones lose speed)."""
    return max(4096, -(-n_rows // 100))


def _effective_pca(pca_components: int | None, shape: tuple[int, int]) -> int | None:
    """The PCA pre-reduction a projection applies to `shape` rows x dims (None: none, as when it
    would not reduce anything)."""
    return pca_components if pca_components is not None and pca_components < min(shape) else None


def _drop_self(indices: np.ndarray, squared: np.ndarray, first_row: int | np.ndarray | None,
               k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k columns left after removing each row's own id (searched with k + 1 columns; the
    rows are `first_row` onwards, or the ids in an array `first_row`); where duplicates pushed a
    row's own id out of its k + 1 nearest, the last column goes instead."""
    if first_row is None:
        return indices[:, :k], squared[:, :k]
    own = first_row if isinstance(first_row, np.ndarray) else np.arange(first_row, first_row + len(indices))
    is_self = indices == own[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(indices, order, axis=1), np.take_along_axis(squared, order, axis=1)


def _faiss_neighbours(database: np.ndarray, queries: np.ndarray, k: int, exclude_self: bool,
                      desc: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, squared Euclidean distances) of each query's k nearest database rows, by FAISS's
    exact search; `exclude_self` when the queries are the database. The queries go in blocks,
    counted by a `Progress` named `desc`, against the database as it is (no index: no copy)."""
    import faiss

    indices = np.empty((len(queries), k), dtype=np.int64)
    squared = np.empty((len(queries), k), dtype=np.float32)
    block = _block_rows(len(queries))
    with Progress(len(queries), desc or f"exact kNN search ({len(queries):,} queries)", "rows") as progress:
        for start in range(0, len(queries), block):
            found, ids = faiss.knn(queries[start : start + block], database, k + int(exclude_self))
            ids, found = _drop_self(ids.astype(np.int64), np.maximum(found, 0), start if exclude_self else None, k)
            indices[start : start + len(ids)], squared[start : start + len(ids)] = ids, found
            progress.update(len(ids))
    return indices, squared


def _torch_neighbours(database: np.ndarray, queries: np.ndarray, k: int, device: torch.device,
                      exclude_self: bool, budget: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, squared Euclidean distances) of each query's k nearest database rows, exactly, with
    torch on `device`: the database stays on the device, the queries go through in chunks whose
    distance matrix fits the memory budget, products in full fp32 (TF32 could reorder near ties).
    Written with torch, which every install has and which runs on any GPU it sees, rather than with
    FAISS's GPU build (`faiss-gpu` on PyPI, the optional `gpu` extra), so that the exact graph needs
    no optional package and its chunks follow the same memory budget as the torch K-means."""
    points = torch.from_numpy(database).to(device)
    norms = torch.linalg.vector_norm(points, dim=1) ** 2
    available = memory_budget(device, budget) - points.numel() * 4
    chunk = int(max(64, min(len(queries), available // (len(points) * 4 * 3))))  # distances and top-k temporaries
    indices = np.empty((len(queries), k), dtype=np.int64)
    squared = np.empty((len(queries), k), dtype=np.float32)
    with _tf32(False):
        for start in range(0, len(queries), chunk):
            block = torch.from_numpy(queries[start : start + chunk]).to(device)
            distances = torch.addmm(norms[None, :], block, points.T, alpha=-2)
            distances += (torch.linalg.vector_norm(block, dim=1) ** 2)[:, None]
            values, ids = distances.topk(k + int(exclude_self), dim=1, largest=False)
            ids, values = _drop_self(ids.cpu().numpy(), values.clamp_min(0).cpu().numpy(),
                                     start if exclude_self else None, k)
            indices[start : start + len(ids)], squared[start : start + len(ids)] = ids, values
    return indices, squared


class ExactNeighbours:
    """openTSNE's nearest-neighbour index (duck-typed: `build`, `query`, `k`, `n_samples`) over a
    precomputed exact graph; `query` places new points by an exact search of the fitted rows."""

    def __init__(self, data: np.ndarray, graph: KNNGraph, k: int, device: str) -> None:
        self.data, self.graph, self.k, self.device = data, graph, k, device
        self.n_samples = len(data)

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        return self.graph.nearest(self.k)

    def query(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(query, dtype=np.float32)
        database = self.data
        if self.graph.metric == "cosine":
            database = database / np.maximum(np.linalg.norm(database, axis=1, keepdims=True), 1e-12)
            queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        database = np.ascontiguousarray(database, dtype=np.float32)
        on_gpu = _on_gpu(self.device)
        indices, squared = (_torch_neighbours(database, queries, k, torch.device("cuda"), exclude_self=False)
                            if on_gpu else _faiss_neighbours(database, queries, k, exclude_self=False))
        return indices, squared / 2 if self.graph.metric == "cosine" else np.sqrt(squared)


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
    """Shared fit/transform recipe; subclasses implement `_fit` (returns coordinates) and `_place`,
    and those that search neighbours `graph_request`. `exact_on_cpu`: whether an exact search on
    the CPU (FAISS, quadratic in the rows) beats the method's own approximate one there."""

    exact_on_cpu = True

    def __init__(self, max_points: int | None, pca_components: int | None, seed: int, device: str = "auto",
                 neighbours: str = "auto") -> None:
        self.max_points = max_points
        self.pca_components = pca_components
        self.seed = seed
        self.device = device
        self.neighbours = neighbours

    def graph_request(self, n_rows: int) -> tuple[int, str] | None:
        """(neighbours, metric) of the kNN graph `fit_transform` can take for `n_rows` rows; None
        when it fits a sample (the graph would be of other rows) or searches no neighbours."""
        return None

    def fit_transform(self, X: np.ndarray, labels: np.ndarray | None = None, knn: KNNGraph | None = None) -> np.ndarray:
        """(n, 2) coordinates of the rows of X; with more than `max_points` rows the map is fitted on
        a sample (stratified by `labels`) and the other rows are placed with `transform`. `knn`, a
        graph over all rows of X (see `graph_request`, `shared_knn_graphs`), replaces the
        projection's own neighbour search."""
        data = np.asarray(X, dtype=np.float32)
        if data.ndim != 2 or len(data) < 3:
            raise W2VLensError(f"a projection needs a (frames, dims) array with at least 3 rows, got {data.shape}")
        fitted = sample_rows(len(data), self.max_points, labels, self.seed)
        pca_components = _effective_pca(self.pca_components, (len(fitted), data.shape[1]))
        if knn is not None:
            request = self.graph_request(len(data))
            if request is None:
                raise W2VLensError(f"{type(self).__name__} with max_points={self.max_points} fits a sample of "
                                   f"{len(data)} rows and cannot use a kNN graph of all of them")
            knn.check(len(data), *request, pca_components)
        self.pca_ = None
        every_row = len(fitted) == len(data)  # then no copy of the rows for the fit
        if pca_components is not None:
            self.pca_ = PCA(pca_components, random_state=self.seed).fit(data if every_row else data[fitted])
            data = self.pca_.transform(data).astype(np.float32)
        log.info("%s: fitting on %d of %d rows, %d dims", type(self).__name__, len(fitted), len(data), data.shape[1])
        coords = np.empty((len(data), 2), dtype=np.float32)
        coords[fitted] = self._fit(data if every_row else data[fitted], knn, not every_row)
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

    def _fit(self, data: np.ndarray, knn: KNNGraph | None, placing: bool) -> np.ndarray:
        """Coordinates of `data`; `knn` is its neighbour graph or None, `placing` whether
        `_place` will be asked for other rows."""
        raise NotImplementedError

    def _place(self, data: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def shared_knn_graphs(X: np.ndarray, projections: Sequence[_Projection], device: str = "auto",
                      seed: int = 0) -> list[KNNGraph | None]:
    """One kNN graph per (metric, PCA pre-reduction) among `projections` over the rows of X, with
    as many neighbours as the most demanding one asks for, in the projections' order (None for
    those that take none): compute once per view, hand each to `fit_transform(X, knn=...)`. A
    graph is exact when any projection sharing it resolves its `neighbours` to exact
    (`resolve_neighbours`), approximate otherwise. On the CPU a graph is searched only where a
    projection gains from it (`exact_on_cpu`: t-SNE); UMAP then shares t-SNE's graph when metric
    and PCA match, and otherwise searches its own."""
    on_gpu = _on_gpu(device)
    keys = []
    for projection in projections:
        request = projection.graph_request(len(X))
        keys.append(None if request is None else
                    (request[1], _effective_pca(projection.pca_components, X.shape), request[0]))
    wanted: dict[tuple[str, int | None], int] = {}
    for key in filter(None, keys):
        wanted[key[:2]] = max(wanted.get(key[:2], 0), key[2])
    # on the CPU, a graph only for groups with a projection that gains from an exact search there
    worth = {key[:2] for key, projection in zip(keys, projections, strict=True)
             if key is not None and (on_gpu or projection.exact_on_cpu)}
    exact = {key[:2] for key, projection in zip(keys, projections, strict=True)
             if key is not None and resolve_neighbours(projection.neighbours, len(X), key[1] or X.shape[1],
                                                       device) == "exact"}
    graphs = {(metric, pca): knn_graph(X, k, metric, device, pca, seed,
                                       "exact" if (metric, pca) in exact else "approximate")
              for (metric, pca), k in wanted.items() if (metric, pca) in worth}
    return [None if key is None else graphs.get(key[:2]) for key in keys]


def _on_gpu(device: str) -> bool:
    """Whether `device` (auto, cuda, cpu, ...) puts the neighbour search on a CUDA GPU."""
    return device in ("auto", "cuda") and torch.cuda.is_available()


class PCAProjection(_Projection):
    """The first two principal components (no pre-reduction: it would not change them)."""

    def __init__(self, max_points: int | None = None, seed: int = 0) -> None:
        super().__init__(max_points, None, seed, neighbours="exact")

    def _fit(self, data: np.ndarray, knn: KNNGraph | None, placing: bool) -> np.ndarray:
        self.model_ = PCA(2, random_state=self.seed).fit(data)
        return self.model_.transform(data)

    def _place(self, data: np.ndarray) -> np.ndarray:
        return self.model_.transform(data)


class TSNEProjection(_Projection):
    """t-SNE with openTSNE (FFT-accelerated gradients, out-of-sample placement of new points), on
    a kNN graph of 3 x perplexity neighbours (given, or searched on `device`), exact or approximate
    as `neighbours` says (auto, exact, approximate: see `resolve_neighbours`).

    The iteration counts are two thirds of openTSNE's (250 + 500), enough for a converged map of
    the frames. One thread by default: on a two-core machine that is busy with anything else,
    openTSNE's threads slow it down; raise `n_jobs` on a machine of its own.
    """

    def __init__(self, perplexity: float = 30.0, n_iter: int = 350, early_exaggeration_iter: int = 150,
                 metric: str = "euclidean", pca_components: int | None = 50, max_points: int | None = None,
                 n_jobs: int = 1, device: str = "auto", neighbours: str = "auto", seed: int = 0) -> None:
        if metric not in PROJECTION_METRICS:
            raise W2VLensError(f"t-SNE metric {metric!r} is not one of {PROJECTION_METRICS}")
        check_neighbours(neighbours, "t-SNE neighbours")
        super().__init__(max_points, pca_components, seed, device, neighbours)
        self.perplexity = perplexity
        self.n_iter = n_iter
        self.early_exaggeration_iter = early_exaggeration_iter
        self.metric = metric
        self.n_jobs = n_jobs

    def graph_request(self, n_rows: int) -> tuple[int, str] | None:
        if self.max_points is not None and n_rows > self.max_points:
            return None
        return min(n_rows - 1, int(3 * self.perplexity)), self.metric  # openTSNE's own choice of k

    def _fit(self, data: np.ndarray, knn: KNNGraph | None, placing: bool) -> np.ndarray:
        from openTSNE import TSNE
        from openTSNE.affinity import PerplexityBasedNN

        k = min(len(data) - 1, int(3 * self.perplexity))
        graph = knn if knn is not None else knn_graph(data, k, self.metric, self.device, neighbours=self.neighbours)
        index = ExactNeighbours(data, graph, k, self.device)
        affinities = PerplexityBasedNN(perplexity=self.perplexity, knn_index=index, n_jobs=self.n_jobs,
                                       random_state=self.seed)
        total = self.early_exaggeration_iter + self.n_iter
        every = max(10, total // 20)  # openTSNE computes the KL divergence for each callback

        with Progress(total, f"t-SNE ({len(data):,} rows)", "iterations") as progress:
            def tick(_iteration: int, _error: float, _embedding: np.ndarray) -> bool:
                progress.update(every)
                return False  # go on

            tsne = TSNE(n_iter=self.n_iter, early_exaggeration_iter=self.early_exaggeration_iter, n_jobs=self.n_jobs,
                        random_state=self.seed, callbacks=tick, callbacks_every_iters=every)
            self.model_ = tsne.fit(data, affinities=affinities)
        self.model_.gradient_descent_params["callbacks"] = None  # placing new rows reports nothing
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
    """UMAP with cuML on a GPU when available (`backend="auto"`), else umap-learn on a kNN graph
    (exact or approximate, as `neighbours` says) when it fits every row: the graph given, or one
    searched on a CUDA `device`. Without
    either, umap-learn searches with its own NN-descent, which on the CPU is as fast as FAISS's
    exact search at 50,000 rows and faster beyond (the exact one grows with the square of the rows).

    `n_epochs` defaults to umap-learn's choice for more than 10,000 points (200). umap-learn runs
    single-threaded when seeded, the price of a reproducible map, and its first fit in a process
    spends about half a minute compiling with numba. A map fitted on a sample places the other rows
    through umap-learn's own search index, so that fit searches with NN-descent. cuML searches its
    own neighbours on the GPU; its results are seeded too but differ from umap-learn's.
    """

    exact_on_cpu = False

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "euclidean",
                 n_epochs: int | None = 200, pca_components: int | None = 50, max_points: int | None = None,
                 backend: str = "auto", device: str = "auto", neighbours: str = "auto", seed: int = 0) -> None:
        if backend not in UMAP_BACKENDS:
            raise W2VLensError(f"UMAP backend {backend!r} is not one of {UMAP_BACKENDS}")
        if metric not in PROJECTION_METRICS:
            raise W2VLensError(f"UMAP metric {metric!r} is not one of {PROJECTION_METRICS}")
        check_neighbours(neighbours, "UMAP neighbours")
        super().__init__(max_points, pca_components, seed, device, neighbours)
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.n_epochs = n_epochs
        self.backend = backend

    def _gpu_umap(self) -> type | None:
        gpu_umap = _cuml_umap() if self.backend != "umap-learn" else None
        if self.backend == "cuml" and gpu_umap is None:
            raise W2VLensError("UMAP backend 'cuml' needs cuML and a CUDA GPU")
        return gpu_umap

    def graph_request(self, n_rows: int) -> tuple[int, str] | None:
        if (self.max_points is not None and n_rows > self.max_points) or self._gpu_umap() is not None:
            return None
        return self.n_neighbors - 1, self.metric  # umap-learn counts each row as its own neighbour

    def _fit(self, data: np.ndarray, knn: KNNGraph | None, placing: bool) -> np.ndarray:
        settings = dict(n_neighbors=self.n_neighbors, min_dist=self.min_dist, metric=self.metric,
                        n_epochs=self.n_epochs, random_state=self.seed)
        gpu_umap = self._gpu_umap()
        if gpu_umap is not None:
            self.backend_, self.model_ = "cuml", gpu_umap(**settings)
            return np.asarray(self.model_.fit_transform(data))
        umap = import_umap_with_cached_jit()
        if knn is None and not placing and _on_gpu(self.device):
            knn = knn_graph(data, self.n_neighbors - 1, self.metric, self.device, neighbours=self.neighbours)
        if knn is not None:
            settings["precomputed_knn"] = knn.with_self(self.n_neighbors)
        self.backend_, self.model_ = "umap-learn", umap.UMAP(**settings, n_jobs=1)
        with warnings.catch_warnings(), _umap_epochs(f"UMAP ({len(data):,} rows)"):
            # no search index: this map places no other rows
            warnings.filterwarnings("ignore", "precomputed_knn.2. .knn_search_index. is not an NNDescent")
            return np.asarray(self.model_.fit_transform(data))

    def _place(self, data: np.ndarray) -> np.ndarray:
        if self.backend_ == "cuml":
            return np.asarray(self.model_.transform(data))
        with _umap_epochs(f"UMAP placing {len(data):,} rows"):
            return np.asarray(self.model_.transform(data))


@contextmanager
def _umap_epochs(desc: str) -> Iterator[None]:
    """umap-learn's epochs counted by a `Progress` (a bar on a terminal, log lines in a job's log)
    rather than its own tqdm bar, which it shows only with `verbose` and then redraws into logs.
    Written by hand: umap-learn's epoch loop takes tqdm's keywords but no other progress."""
    import umap.layouts

    original = umap.layouts.tqdm
    umap.layouts.tqdm = lambda iterable, **_settings: progress_iter(iterable, desc, unit="epochs")
    try:
        yield
    finally:
        umap.layouts.tqdm = original
