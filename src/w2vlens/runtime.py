"""Process-wide settings, made once by an entry point (`run.py`, `scripts/build_demo.py`) before
torch, FAISS, numba or matplotlib are imported. Importing w2vlens itself changes nothing."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path


def configure_process(cache_dir: str | Path | None = None, omp_wait_policy: str = "PASSIVE",
                      log_level: int = logging.INFO) -> None:
    """Sets the OpenMP wait policy, matplotlib's file-only backend, numba's on-disk cache and the
    log format; an environment variable the user set (OMP_WAIT_POLICY, NUMBA_CACHE_DIR) wins.

    FAISS and PyTorch each bring their own OpenMP runtime: with active waiting the idle threads of
    one keep spinning while the other computes, which made FAISS K-means about 5x slower on 2
    cores, so the app waits passively; demo training uses torch alone and runs best with ACTIVE.
    The policy only takes effect when set before the first OpenMP runtime loads. numba's cache
    (`cache_dir`/numba) lets UMAP's kernels compile once per machine rather than once per job."""
    os.environ.setdefault("OMP_WAIT_POLICY", omp_wait_policy)
    if cache_dir is not None:
        os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(cache_dir) / "numba"))
    # UMAP's nearest-neighbour kernels (pynndescent) ask numba to cache functions it cannot cache;
    # numba says so on every run, and nothing the user does changes it.
    warnings.filterwarnings("ignore", message="Cannot cache compiled function")
    import matplotlib

    matplotlib.use("Agg")  # figures are only written to files, also on machines without a display
    logging.getLogger("w2vlens").setLevel(log_level)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    import transformers

    transformers.utils.logging.disable_progress_bar()  # one bar per weight file is noise in job logs
