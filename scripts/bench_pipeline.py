"""Benchmark of the analysis stages against the paper's own toolchain, in one run.

Builds synthetic embedding sets (a Gaussian mixture with one dominant blank-like component, as
CTC models give) at the paper's scale and larger, times each stage with w2vlens's defaults and
with the reference tools (scikit-learn KMeans, spherical K-means as KMeans on unit-normalised
data, scikit-learn t-SNE on a sample, umap-learn with a fixed seed), and prints one Markdown table
with times, speed-ups and the agreement between the two answers, so speed is never bought with a
wrong clustering. It also times extraction through the pipeline against the bare model forward.

    python scripts/bench_pipeline.py                       # 180,710 x 1024, every stage
    python scripts/bench_pipeline.py --sizes 180710,1000000 --stages kmeans,spherical
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from w2vlens.cluster import KMeans, _nearest, pick_backend
from w2vlens.metrics import clustering_scores

STAGES = ("kmeans", "spherical", "tsne", "umap", "extract")


def mixture(n: int, dim: int, components: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` points from `components` Gaussians; the first holds 40% of the points (the blank)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(components, dim)).astype(np.float32) * 0.6
    weights = np.full(components, 0.6 / (components - 1))
    weights[0] = 0.4
    labels = rng.choice(components, size=n, p=weights)
    points = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        block = labels[start : start + 100_000]
        points[start : start + len(block)] = centers[block] + rng.standard_normal((len(block), dim), dtype=np.float32)
    return points, labels


def timed(function: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def bench_kmeans(points: np.ndarray, k: int, spherical: bool, with_baseline: bool) -> dict[str, object]:
    from sklearn.cluster import KMeans as SklearnKMeans

    data = points / np.linalg.norm(points, axis=1, keepdims=True) if spherical else points
    ours_time, ours = timed(lambda: KMeans(k, spherical=spherical, max_points_per_centroid=1024).fit(points))
    row: dict[str, object] = {"ours_s": ours_time, "ours": f"{ours.backend_}/{ours.device_}"}
    if with_baseline:
        base_time, base = timed(lambda: SklearnKMeans(k, n_init=1, max_iter=50, random_state=0).fit(data))
        base_inertia = float(_nearest(np.ascontiguousarray(data, dtype=np.float32), base.cluster_centers_)[1].sum())
        row |= {"baseline_s": base_time, "quality": f"inertia {ours.inertia_ / base_inertia:.4f}x sklearn, AMI "
                f"{clustering_scores(base.labels_, ours.labels_)['ami']:.3f}"}
    return row


def bench_projection(points: np.ndarray, name: str, with_baseline: bool) -> dict[str, object]:
    from w2vlens.faithfulness import cluster_agreement
    from w2vlens.reduce import TSNEProjection, UMAPProjection

    raw = KMeans(36, max_points_per_centroid=1024).fit(points).labels_
    projection = TSNEProjection() if name == "tsne" else UMAPProjection()
    ours_time, coords = timed(lambda: projection.fit_transform(points, labels=raw))
    row: dict[str, object] = {"ours_s": ours_time, "ours": "openTSNE" if name == "tsne" else "umap-learn",
                              "quality": f"projection AMI {cluster_agreement(raw, coords)['ami']:.3f}"}
    if with_baseline:
        if name == "tsne":  # the paper's toolchain: scikit-learn t-SNE, which only copes with a sample
            from sklearn.manifold import TSNE

            rows = np.random.default_rng(0).choice(len(points), min(20_000, len(points)), replace=False)
            base_time, base = timed(lambda: TSNE(random_state=0).fit_transform(points[rows]))
            base_ami = cluster_agreement(raw[rows], base)["ami"]
            row["baseline"] = f"sklearn TSNE on {len(rows):,} points"
        else:
            import umap

            base_time, base = timed(lambda: umap.UMAP(random_state=0).fit_transform(points))
            base_ami = cluster_agreement(raw, base)["ami"]
            row["baseline"] = "umap-learn on all points"
        row |= {"baseline_s": base_time, "quality": f"{row['quality']} (baseline {base_ami:.3f})"}
    return row


def bench_extraction(seconds: float) -> dict[str, object]:
    """Audio seconds per second through `extract` (audio loading, batching, store writing)
    against the bare forward of the same model over the same batches."""
    import soundfile as sf
    import torch

    from w2vlens.data import load_manifest
    from w2vlens.extract import extract
    from w2vlens.models import load_checkpoint, resolve_device, resolve_dtype
    from w2vlens.paths import DEMO_PAIR_DIR

    device = resolve_device("auto")
    dtype = resolve_dtype("auto", device)
    checkpoint = load_checkpoint(str(DEMO_PAIR_DIR / "finetuned"), require_ctc=True, device=device, dtype=dtype)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        lengths = rng.uniform(2.0, 12.0, size=int(seconds / 7) + 1)
        rows = ["audio"]
        for index, length in enumerate(lengths):
            sf.write(folder / f"u{index}.wav", 0.1 * rng.standard_normal(int(length * 16000)).astype(np.float32), 16000)
            rows.append(f"u{index}.wav")
        (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
        corpus = load_manifest(folder / "manifest.csv")
        pipeline_time, _ = timed(lambda: extract(checkpoint, corpus, folder / "cache", dtype))
        audio = [torch.from_numpy(0.1 * rng.standard_normal(int(length * 16000)).astype(np.float32))
                 for length in sorted(lengths)]

        def bare() -> None:
            with torch.inference_mode():
                for start in range(0, len(audio), 8):
                    batch = torch.nn.utils.rnn.pad_sequence(audio[start : start + 8], batch_first=True)
                    checkpoint.model(batch.to(device, dtype), output_hidden_states=True)

        bare_time, _ = timed(bare)
    total = float(lengths.sum())
    return {"ours_s": pipeline_time, "baseline_s": bare_time, "ours": f"{total / pipeline_time:.0f} audio-s/s",
            "baseline": f"bare forward {total / bare_time:.0f} audio-s/s",
            "quality": f"pipeline at {bare_time / pipeline_time:.0%} of the bare forward"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="180710", help="comma-separated numbers of frames")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--k", type=int, default=36)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--baseline-max-n", type=int, default=200_000,
                        help="run the reference tools only up to this many frames (they take hours beyond)")
    parser.add_argument("--extract-seconds", type=float, default=600.0, help="audio seconds for the extract stage")
    args = parser.parse_args()
    stages = args.stages.split(",")
    backend, device = pick_backend("auto", "auto")
    print(f"machine: {os.cpu_count()} CPUs, K-means backend {backend}/{device}")
    print("| stage | frames | ours (s) | baseline (s) | speed-up | ours | baseline | quality |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in (int(size) for size in args.sizes.split(",")):
        points, _ = mixture(n, args.dim, args.k, seed=0)
        with_baseline = n <= args.baseline_max_n
        for stage in stages:
            if stage in ("kmeans", "spherical"):
                row = bench_kmeans(points, args.k, stage == "spherical", with_baseline)
                suffix = " on unit-norm data" if stage == "spherical" else ""
                row.setdefault("baseline", f"sklearn KMeans, 50 iterations{suffix}")
            elif stage in ("tsne", "umap"):
                row = bench_projection(points, stage, with_baseline)
            else:
                continue
            print(_row(stage, n, row), flush=True)
    if "extract" in stages:
        print(_row("extract", 0, bench_extraction(args.extract_seconds)), flush=True)


def _row(stage: str, n: int, row: dict[str, object]) -> str:
    baseline = row.get("baseline_s")
    speedup = f"{baseline / row['ours_s']:.1f}x" if baseline else "–"
    base = f"{baseline:.1f}" if baseline else "–"
    frames = f"{n:,}" if n else "–"
    return (f"| {stage} | {frames} | {row['ours_s']:.1f} | {base} | {speedup} | {row.get('ours', '')} | "
            f"{row.get('baseline', '–')} | {row.get('quality', '')} |")


if __name__ == "__main__":
    main()
