"""K-means and spherical K-means with FAISS, torch or scikit-learn underneath.

All backends share one interface and one definition of the objective: `inertia_` is the sum
of squared Euclidean distances of (unit-normalised, when spherical) points to their centroid.
Spherical K-means (Hornik et al. 2012) clusters directions: inputs and centroids have unit
norm, so the nearest centroid is the one with the highest cosine similarity.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from w2vlens.choices import KMEANS_BACKENDS
from w2vlens.errors import W2VLensError
from w2vlens.progress import Progress

log = logging.getLogger(__name__)


def _faiss_gpu_available() -> bool:
    try:
        import faiss
    except ImportError:
        return False
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def pick_backend(backend: str, device: str) -> tuple[str, str]:
    """Resolves `auto` to the fastest available (backend, device) pair: torch on a CUDA GPU,
    FAISS on the CPU, scikit-learn when FAISS is missing."""
    if backend not in KMEANS_BACKENDS:
        raise W2VLensError(f"cluster backend {backend!r} is not one of {KMEANS_BACKENDS}")
    want_cuda = device in {"auto", "cuda"} and torch.cuda.is_available()
    if backend == "auto":  # on CUDA, torch: whole-data Lloyd on the device (FAISS seeds on the host)
        if want_cuda:
            return "torch", "cuda"
        return ("faiss", "cpu") if _faiss_available() else ("sklearn", "cpu")
    if backend == "faiss":
        return "faiss", "cuda" if want_cuda and _faiss_gpu_available() else "cpu"
    if backend == "torch":
        return "torch", "cuda" if want_cuda else ("cpu" if device == "auto" else device)
    return "sklearn", "cpu"


def resolve_k(k: int | str, vocabulary: list[str], scale: float = 1.0) -> int:
    """`auto` is the number of CTC outputs plus one, as in the paper (blank splits in two), times
    `scale`; an integer is taken as it is."""
    if k == "auto":
        return max(1, round((len(vocabulary) + 1) * scale))
    return int(k)


def _normalize(points: np.ndarray) -> np.ndarray:
    """Unit-norm rows, in place (the squared norms come without a temporary of the points' size)."""
    points /= np.maximum(np.sqrt(np.einsum("ij,ij->i", points, points)), 1e-12)[:, None]
    return points


class KMeans:
    """Sklearn-style K-means: `fit(X)` sets `cluster_centers_`, `labels_`, `inertia_`.

    The torch backend runs Lloyd iterations on every point on its device (`tol` as scikit-learn's:
    a fraction of the data's mean variance the centroids' total squared shift must fall below;
    `n_iter_` the iterations of the best start). On CUDA, `tf32` lets the Lloyd iterations' distance
    products use tensor cores (fp32 inputs rounded to 10 mantissa bits, fp32 accumulation and
    output; centroid sums stay in full fp32); the final labels, `inertia_` and `predict` are
    computed in full fp32 (on an H200, TF32 distances moved the objective by 0.07%).
    `memory_budget` bounds the device memory it uses (None: 80% of what is free): the points stay
    on the device when they fit, else they are streamed in chunks.
    """

    def __init__(
        self,
        n_clusters: int,
        spherical: bool = False,
        backend: str = "auto",
        device: str = "auto",
        n_init: int = 1,
        max_iter: int = 50,
        max_points_per_centroid: int | None = None,
        refine_iter: int = 3,
        tol: float = 1e-4,
        tf32: bool = True,
        memory_budget: int | None = None,
        seed: int = 0,
    ) -> None:
        self.n_clusters = int(n_clusters)
        self.spherical = spherical
        self.backend = backend
        self.device = device
        self.n_init = n_init
        self.max_iter = max_iter
        self.max_points_per_centroid = max_points_per_centroid
        self.refine_iter = refine_iter
        self.tol = tol
        self.tf32 = tf32
        self.memory_budget = memory_budget
        self.seed = seed

    def _prepare(self, points: np.ndarray) -> np.ndarray:
        """float32 rows; spherical K-means normalises a copy (the input, often a read-only
        memmap of the store, is never written), Euclidean K-means reads the input as it is."""
        if self.spherical:
            return _normalize(np.array(points, dtype=np.float32))
        return np.ascontiguousarray(points, dtype=np.float32)

    def fit(self, points: np.ndarray) -> KMeans:
        if self.n_clusters < 1:
            raise W2VLensError(f"k={self.n_clusters}: the number of clusters must be at least 1")
        if self.n_clusters > len(points):
            raise W2VLensError(f"k={self.n_clusters} is larger than the number of frames ({len(points)})")
        self.backend_, self.device_ = pick_backend(self.backend, self.device)
        log.info("k-means: k=%d on %s with %s/%s", self.n_clusters, points.shape, self.backend_, self.device_)
        if self.backend_ == "torch":  # normalises, assigns and scores on its device
            self.cluster_centers_, self.labels_, self.inertia_ = self._fit_torch(points)
            return self
        data = self._prepare(points)
        fit = {"faiss": self._fit_faiss, "sklearn": self._fit_sklearn}[self.backend_]
        limit = self.max_points_per_centroid
        sampled = limit is not None and len(data) > limit * self.n_clusters
        steps = (self.n_init + int(sampled and self.refine_iter > 0) if self.backend_ == "faiss" else 0) + 1
        with Progress(steps, f"k-means (k={self.n_clusters}, {len(data):,} rows)", "steps (fits, then labels)") \
                as self._progress:
            self.cluster_centers_ = fit(data).astype(np.float32)
            if self.spherical:
                self.cluster_centers_ = _normalize(self.cluster_centers_)
            self.labels_, distances = self._assign(data)
            self._progress.update()
        del self._progress
        self.inertia_ = float(distances.sum())
        return self

    def predict(self, points: np.ndarray) -> np.ndarray:
        if self.backend_ == "torch":
            rows = DeviceRows(points, torch.device(self.device_), self.spherical, self.memory_budget)
            centers = torch.from_numpy(self.cluster_centers_).to(rows.device)
            with _tf32(False):  # as the labels of `fit`: in full fp32
                return _torch_assign(rows, centers, self.n_clusters)[0].cpu().numpy()
        return self._assign(self._prepare(points))[0]

    def _assign(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.backend_ == "faiss":
            return _faiss_nearest(data, self.cluster_centers_, self.device_ == "cuda")
        return _nearest(data, self.cluster_centers_)

    def _fit_faiss(self, data: np.ndarray) -> np.ndarray:

        # FAISS seeds with random points, which often merges clusters; each restart is seeded
        # with k-means++ instead and the lowest objective on all points wins. With
        # `max_points_per_centroid`, restarts run on FAISS's subsample and the winner is then
        # refined with `refine_iter` Lloyd iterations on every point: nearly the full-data
        # objective at a fraction of the time.
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        limit = self.max_points_per_centroid
        sampled = limit is not None and len(data) > limit * self.n_clusters
        best_centers, best_objective = None, float("inf")
        for restart in range(self.n_init):
            pick = _seeding_sample(len(data), self.n_clusters, generator)
            seeds = _kmeans_plus_plus(torch.from_numpy(data[pick.numpy()]), self.n_clusters, generator).numpy()
            centers = self._faiss_lloyd(data, seeds, self.max_iter, self.max_points_per_centroid or len(data),
                                        self.seed + restart)
            objective = 0.0  # the objective on all points only chooses between restarts
            if self.n_init > 1:
                objective = float(_faiss_nearest(data, centers, self.device_ == "cuda")[1].sum())
            if objective < best_objective:
                best_centers, best_objective = centers, objective
            self._progress.update()
        if sampled and self.refine_iter > 0:
            best_centers = self._faiss_lloyd(data, best_centers, self.refine_iter, len(data), self.seed)
            self._progress.update()
        return best_centers

    def _faiss_lloyd(self, data: np.ndarray, seeds: np.ndarray, iterations: int, points_per_centroid: int,
                     seed: int) -> np.ndarray:
        import faiss

        kmeans = faiss.Kmeans(data.shape[1], self.n_clusters, niter=iterations, seed=seed, spherical=self.spherical,
                              gpu=self.device_ == "cuda", max_points_per_centroid=points_per_centroid)
        kmeans.train(data, init_centroids=np.ascontiguousarray(seeds, dtype=np.float32))
        return kmeans.centroids.copy()

    def _fit_sklearn(self, data: np.ndarray) -> np.ndarray:
        from sklearn.cluster import KMeans as SklearnKMeans

        # scikit-learn has no spherical K-means: on unit-normalised inputs it is the usual
        # approximation (centroids are re-normalised after fitting).
        kmeans = SklearnKMeans(self.n_clusters, n_init=self.n_init, max_iter=self.max_iter, random_state=self.seed)
        return kmeans.fit(data).cluster_centers_

    def _fit_torch(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Lloyd iterations on every point, on the device: (centroids, labels, inertia).

        Written by hand: no maintained package offers K-means on torch tensors on any device.
        Everything per iteration stays on the device (assignment, centroid update, the shift);
        the host reads the shift only every `_CHECK_EVERY` iterations, so the GPU is never
        drained by a synchronisation per iteration.
        """
        rows = DeviceRows(points, torch.device(self.device_), self.spherical, self.memory_budget)
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        best: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        with _tf32(self.tf32 and rows.device.type == "cuda"):
            for _ in range(self.n_init):
                sample = rows.take(_seeding_sample(rows.n, self.n_clusters, generator))
                tolerance = self.tol * sample.var(0).mean()  # the data's mean variance, from the sample
                centers = _kmeans_plus_plus(sample, self.n_clusters, generator)
                iterations = 0
                for iterations in range(1, self.max_iter + 1):
                    labels, _ = _torch_assign(rows, centers, self.n_clusters)
                    updated = _torch_update(rows, labels, centers, self.spherical)
                    shift = ((updated - centers) ** 2).sum()
                    centers = updated
                    if (iterations % _CHECK_EVERY == 0 or iterations == self.max_iter) and shift <= tolerance:
                        break
                with _tf32(False):  # the reported labels and objective in full fp32
                    labels, distances = _torch_assign(rows, centers, self.n_clusters)
                inertia = distances.sum(dtype=torch.float64)
                if best is None or inertia < best[2]:
                    best, self.n_iter_ = (centers, labels, inertia), iterations
        centers, labels, inertia = best
        return centers.float().cpu().numpy(), labels.cpu().numpy(), float(inertia)


_CHECK_EVERY = 4  # Lloyd iterations between reads of the centroid shift by the host


@contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    """Lets CUDA float32 matrix products use TF32 tensor cores inside the block (fp32 output)."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def memory_budget(device: torch.device, budget: int | None = None) -> int:
    """Bytes of working memory a torch stage may use on `device`: `budget` when given, else 80% of
    the GPU memory free now, or 1 GiB of host memory per chunk on the CPU."""
    if budget is not None:
        return int(budget)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(0.8 * free)
    return 1 << 30


class DeviceRows:
    """The rows of a (frames, dims) host array as float32 tensors on `device`, unit-normalised when
    `spherical`: uploaded once when they fit in half of the memory budget (the other half is left
    for the per-chunk work), else streamed chunk by chunk from the host on every pass. Squared
    norms are kept on the device in fp32 either way."""

    def __init__(self, points: np.ndarray, device: torch.device, spherical: bool, budget: int | None = None) -> None:
        self.device = device
        self.n, self.dim = points.shape
        self.spherical = spherical
        with warnings.catch_warnings():  # a read-only memmap of the store: only read, never written
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")
            self.host = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
        available = memory_budget(device, budget)
        data_bytes = self.n * self.dim * 4
        self.resident = data_bytes <= available // 2
        per_row = 4 * 2 * 256  # a chunk's distances and one-hot rows, for up to k = 256
        if not self.resident:
            per_row += 4 * self.dim * 2  # the streamed chunk and its normalised copy
        held = data_bytes if self.resident and device.type != "cpu" else 0
        self.chunk_rows = int(max(1024, min(self.n, (available - held) // per_row)))
        self.data = None
        if self.resident:
            self.data = self._prepare(self.host) if spherical or device.type != "cpu" else self.host
        self.squared_norms = torch.cat([torch.linalg.vector_norm(chunk, dim=1) ** 2 for _, chunk in self.chunks()])

    def _prepare(self, host: torch.Tensor) -> torch.Tensor:
        rows = torch.empty(host.shape, dtype=torch.float32, device=self.device)
        for start in range(0, len(host), 1 << 18):  # bounded host temporaries while normalising
            block = host[start : start + (1 << 18)].to(self.device, non_blocking=True)
            rows[start : start + len(block)] = torch.nn.functional.normalize(block, dim=1) if self.spherical else block
        return rows

    def chunks(self) -> Iterator[tuple[int, torch.Tensor]]:
        """(first row, rows) over all rows, `chunk_rows` at a time."""
        for start in range(0, self.n, self.chunk_rows):
            if self.data is not None:
                yield start, self.data[start : start + self.chunk_rows]
            else:
                block = self.host[start : start + self.chunk_rows].to(self.device, non_blocking=True)
                yield start, torch.nn.functional.normalize(block, dim=1) if self.spherical else block

    def take(self, index: torch.Tensor) -> torch.Tensor:
        """The rows at `index`, in its order, on the device."""
        if self.data is not None:
            return self.data[index.to(self.device)]
        block = self.host[index].to(self.device)
        return torch.nn.functional.normalize(block, dim=1) if self.spherical else block


def _torch_assign(rows: DeviceRows, centers: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centroid (long) and squared distance (fp32) of every row, both on the device.

    ||x - c||² = ||x||² - 2 x·c + ||c||²: the argmin needs only -2 x·c + ||c||², one matrix product
    per chunk (addmm); ||x||² is added to the winner alone.
    """
    labels = torch.empty(rows.n, dtype=torch.long, device=rows.device)
    distances = torch.empty(rows.n, dtype=torch.float32, device=rows.device)
    center_norms = (centers**2).sum(1)
    for start, chunk in rows.chunks():
        best, index = torch.addmm(center_norms, chunk, centers.T, alpha=-2).min(1)
        stop = start + len(chunk)
        labels[start:stop] = index
        distances[start:stop] = (best + rows.squared_norms[start:stop]).clamp_min(0)
    return labels, distances


def _add_cluster_sums(sums: torch.Tensor, chunk: torch.Tensor, labels: torch.Tensor, one_hot: bool) -> None:
    """Adds each row of `chunk` to the row of `sums` its label names: a one-hot product in full
    fp32 (`one_hot`) or index_add_."""
    if one_hot:
        with _tf32(False):
            sums.addmm_(torch.nn.functional.one_hot(labels, len(sums)).to(chunk.dtype).T, chunk)
    else:
        sums.index_add_(0, labels, chunk)


def _torch_update(rows: DeviceRows, labels: torch.Tensor, centers: torch.Tensor, spherical: bool) -> torch.Tensor:
    """The mean of each centroid's rows (an empty cluster keeps its centroid), on the device.

    On CUDA the sums are a one-hot matrix product in full fp32: index_add_ there is an atomic add
    of every row into one of only k rows of sums, where thousands of threads wait on each address.
    On the CPU, index_add_ is the cheaper of the two.
    """
    k = len(centers)
    sums = torch.zeros_like(centers)
    for start, chunk in rows.chunks():
        _add_cluster_sums(sums, chunk, labels[start : start + len(chunk)], one_hot=rows.device.type == "cuda")
    counts = torch.bincount(labels, minlength=k).unsqueeze(1)
    updated = torch.where(counts > 0, sums / counts.clamp_min(1), centers)
    return torch.nn.functional.normalize(updated, dim=1) if spherical else updated


def _nearest(data: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid and squared distance for every point, in chunks to bound memory."""
    center_tensor = torch.from_numpy(np.ascontiguousarray(centers, dtype=np.float32))
    center_norms = (center_tensor**2).sum(1)
    labels = np.empty(len(data), dtype=np.int64)
    distances = np.empty(len(data), dtype=np.float64)
    for start in range(0, len(data), 65536):
        chunk = torch.from_numpy(data[start : start + 65536])
        squared = (chunk**2).sum(1, keepdim=True) - 2 * chunk @ center_tensor.T + center_norms
        best, index = squared.min(1)
        labels[start : start + len(chunk)] = index.numpy()
        distances[start : start + len(chunk)] = best.clamp_min(0).numpy()
    return labels, distances


def _faiss_nearest(data: np.ndarray, centers: np.ndarray, gpu: bool) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid and squared distance for every point, by an exact FAISS search."""
    import faiss

    index = faiss.IndexFlatL2(centers.shape[1])
    if gpu:
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(np.ascontiguousarray(centers, dtype=np.float32))
    distances, labels = index.search(np.ascontiguousarray(data, dtype=np.float32), 1)
    return labels[:, 0].astype(np.int64), np.maximum(distances[:, 0], 0).astype(np.float64)


def _seeding_sample(n_rows: int, k: int, generator: torch.Generator, points_per_cluster: int = 512) -> torch.Tensor:
    """Ids of the random rows k-means++ seeds on, in the order drawn (the seeds depend on it): at
    least 8,192, or `points_per_cluster` per cluster (each seeding step reads the whole sample: it
    is kept small)."""
    return torch.randperm(n_rows, generator=generator)[: max(8_192, points_per_cluster * k)]


def _kmeans_plus_plus(candidates: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ seeding among `candidates` (a random sample of the points, see
    `_seeding_sample`), as scikit-learn seeds; on the candidates' device.

    Each step draws candidates with probability proportional to their squared distance to the
    nearest chosen centre and keeps the one that lowers the total the most (Arthur & Vassilvitskii
    2007). scikit-learn draws 2 + ln(k); a step here costs one pass over the sample however many
    candidates it scores (distances come from one matrix product), so it draws 2 + 4 ln(k), which
    at the paper's scale avoided the merged-cluster starts that cost 1% of the objective.
    """
    dtype, candidates = candidates.dtype, candidates.float()
    norms = (candidates**2).sum(1)

    def squared_distances(rows: torch.Tensor) -> torch.Tensor:
        chosen = candidates[rows]
        return (norms[rows, None] - 2 * chosen @ candidates.T + norms[None, :]).clamp_min(0)

    trials = 2 + int(4 * np.log(k))
    first = torch.randint(len(candidates), (1,), generator=generator).to(candidates.device)
    chosen = [int(first)]
    closest = squared_distances(first)[0]
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than clusters: repeat one
            chosen.append(chosen[-1])
            continue
        draws = (torch.rand(trials, generator=generator).to(candidates.device) * total).to(closest.dtype)
        rows = torch.searchsorted(torch.cumsum(closest, 0), draws).clamp_max(len(candidates) - 1)
        improved = torch.minimum(closest[None, :], squared_distances(rows))
        best = int(improved.sum(1).argmin())
        chosen.append(int(rows[best]))
        closest = improved[best]
    return candidates[torch.tensor(chosen, device=candidates.device)].to(dtype)
