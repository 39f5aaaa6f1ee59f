"""K-means and spherical K-means with FAISS, torch or scikit-learn underneath.

All backends share one interface and one definition of the objective: `inertia_` is the sum
of squared Euclidean distances of (unit-normalised, when spherical) points to their centroid.
Spherical K-means (Hornik et al. 2012) clusters directions: inputs and centroids have unit
norm, so the nearest centroid is the one with the highest cosine similarity.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch

from w2vlens.errors import W2VLensError

log = logging.getLogger(__name__)
BACKENDS = ("auto", "faiss", "torch", "sklearn")


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
    """Resolves `auto` to the fastest available (backend, device) pair."""
    if backend not in BACKENDS:
        raise W2VLensError(f"cluster backend {backend!r} is not one of {BACKENDS}")
    want_cuda = device in {"auto", "cuda"} and torch.cuda.is_available()
    if backend == "auto":
        if want_cuda:
            return ("faiss", "cuda") if _faiss_gpu_available() else ("torch", "cuda")
        return ("faiss", "cpu") if _faiss_available() else ("sklearn", "cpu")
    if backend == "faiss":
        return "faiss", "cuda" if want_cuda and _faiss_gpu_available() else "cpu"
    if backend == "torch":
        return "torch", "cuda" if want_cuda else ("cpu" if device == "auto" else device)
    return "sklearn", "cpu"


def _normalize(points: np.ndarray) -> np.ndarray:
    """Unit-norm rows, in place (the squared norms come without a temporary of the points' size)."""
    points /= np.maximum(np.sqrt(np.einsum("ij,ij->i", points, points)), 1e-12)[:, None]
    return points


class KMeans:
    """Sklearn-style K-means: `fit(X)` sets `cluster_centers_`, `labels_`, `inertia_`."""

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
        data = self._prepare(points)
        self.backend_, self.device_ = pick_backend(self.backend, self.device)
        log.info("k-means: k=%d on %s with %s/%s", self.n_clusters, data.shape, self.backend_, self.device_)
        fit = {"faiss": self._fit_faiss, "torch": self._fit_torch, "sklearn": self._fit_sklearn}[self.backend_]
        self.cluster_centers_ = fit(data).astype(np.float32)
        if self.spherical:
            self.cluster_centers_ = _normalize(self.cluster_centers_)
        self.labels_, distances = self._assign(data)
        self.inertia_ = float(distances.sum())
        return self

    def predict(self, points: np.ndarray) -> np.ndarray:
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
        with warnings.catch_warnings():  # a read-only memmap: the seeding only reads it
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")
            points = torch.from_numpy(data)
        for restart in range(self.n_init):
            seeds = _kmeans_plus_plus(points, self.n_clusters, generator).numpy()
            centers = self._faiss_lloyd(data, seeds, self.max_iter, self.max_points_per_centroid or len(data),
                                        self.seed + restart)
            objective = 0.0  # the objective on all points only chooses between restarts
            if self.n_init > 1:
                objective = float(_faiss_nearest(data, centers, self.device_ == "cuda")[1].sum())
            if objective < best_objective:
                best_centers, best_objective = centers, objective
        if sampled and self.refine_iter > 0:
            best_centers = self._faiss_lloyd(data, best_centers, self.refine_iter, len(data), self.seed)
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

    def _fit_torch(self, data: np.ndarray) -> np.ndarray:
        # Written by hand: no maintained package offers K-means on torch tensors on any device.
        device = torch.device(self.device_)
        points = torch.from_numpy(data).to(device)
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        best_centers, best_inertia = None, float("inf")
        for _ in range(self.n_init):
            centers = _kmeans_plus_plus(points, self.n_clusters, generator)
            for _ in range(self.max_iter):
                labels, inertia = _torch_assign(points, centers)
                sums = torch.zeros_like(centers).index_add_(0, labels, points)
                counts = torch.bincount(labels, minlength=self.n_clusters).unsqueeze(1)
                updated = torch.where(counts > 0, sums / counts.clamp_min(1), centers)
                if self.spherical:
                    updated = torch.nn.functional.normalize(updated, dim=1)
                shift = (updated - centers).norm()
                centers = updated
                if shift < 1e-6:
                    break
            _, inertia = _torch_assign(points, centers)
            if inertia < best_inertia:
                best_centers, best_inertia = centers, inertia
        return best_centers.float().cpu().numpy()


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


def _torch_assign(points: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, float]:
    labels = torch.empty(len(points), dtype=torch.long, device=points.device)
    inertia = 0.0
    center_norms = (centers**2).sum(1)
    for start in range(0, len(points), 262144):
        chunk = points[start : start + 262144]
        squared = (chunk**2).sum(1, keepdim=True) - 2 * chunk @ centers.T + center_norms
        best, index = squared.min(1)
        labels[start : start + len(chunk)] = index
        inertia += float(best.clamp_min(0).sum())
    return labels, inertia


def _kmeans_plus_plus(points: torch.Tensor, k: int, generator: torch.Generator,
                      points_per_cluster: int = 512) -> torch.Tensor:
    """Greedy k-means++ seeding on a random sample of the points (at least 8,192, or
    `points_per_cluster` per cluster), as scikit-learn seeds.

    Each step draws candidates with probability proportional to their squared distance to the
    nearest chosen centre and keeps the one that lowers the total the most (Arthur & Vassilvitskii
    2007). scikit-learn draws 2 + ln(k); a step here costs one pass over the sample however many
    candidates it scores (distances come from one matrix product), so it draws 2 + 4 ln(k), which
    at the paper's scale avoided the merged-cluster starts that cost 1% of the objective.
    """
    sample = max(8_192, points_per_cluster * k)  # each step reads the whole sample: keep it small
    pick = torch.randperm(len(points), generator=generator)[:sample].to(points.device)
    candidates = points[pick].float()
    norms = (candidates**2).sum(1)

    def squared_distances(rows: torch.Tensor) -> torch.Tensor:
        chosen = candidates[rows]
        return (norms[rows, None] - 2 * chosen @ candidates.T + norms[None, :]).clamp_min(0)

    trials = 2 + int(4 * np.log(k))
    first = torch.randint(len(candidates), (1,), generator=generator).to(points.device)
    chosen = [int(first)]
    closest = squared_distances(first)[0]
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than clusters: repeat one
            chosen.append(chosen[-1])
            continue
        draws = (torch.rand(trials, generator=generator).to(points.device) * total).to(closest.dtype)
        rows = torch.searchsorted(torch.cumsum(closest, 0), draws).clamp_max(len(candidates) - 1)
        improved = torch.minimum(closest[None, :], squared_distances(rows))
        best = int(improved.sum(1).argmin())
        chosen.append(int(rows[best]))
        closest = improved[best]
    return candidates[torch.tensor(chosen, device=points.device)].to(points.dtype)
