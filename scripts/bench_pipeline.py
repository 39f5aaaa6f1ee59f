"""Benchmark of the analysis stages against the paper's own toolchain, in one run.

Builds synthetic embedding sets (a Gaussian mixture with one dominant blank-like component, as
CTC models give) at the paper's scale and larger, times each stage with w2vlens's defaults and
with the reference tools (scikit-learn KMeans, spherical K-means as KMeans on unit-normalised
data; openTSNE and umap-learn with their own approximate neighbour searches, Annoy and NN-descent),
and prints one Markdown table with times, speed-ups and the agreement between the two answers, so
speed is never bought with a wrong clustering. Projections follow the paper's protocol: every
frame is fitted, ours on an exact kNN graph (the `knn` stage compares that search with the two
approximate ones alone, with their recall). It also times extraction through the pipeline against
the bare model forward.

    python scripts/bench_pipeline.py                       # 180,710 x 1024, every stage
    python scripts/bench_pipeline.py --sizes 180710,1000000 --stages kmeans,spherical
    python scripts/bench_pipeline.py --sizes 50000 --dim 256 --stages knn,tsne,umap
    python scripts/bench_pipeline.py --stages paper        # the whole experiment=paper analysis
    python scripts/bench_pipeline.py --stages paper --frames 45000,90000,180000,360000

The `paper` stage runs `experiment=paper` (three views, Tables 1-5, Figures 1-3) over stores of
the paper's size made from the demo pair's own: the demo test set's utterances, pseudo-labels,
transcripts and annotators, repeated up to the number of frames, with each view's embeddings
mapped to `--dim` dimensions by a fixed random projection plus noise. With one size it prints each
stage's time and share of the whole; with several, each size runs in a process of its own (so its
peak resident memory is its own) and one table gives per size the seconds of each stage, the peak
RSS, and the growth ratio per doubling of frames. `--experiment paper_fast` times that one instead.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from w2vlens.analysis.cluster import KMeans, _nearest, pick_backend
from w2vlens.analysis.metrics import clustering_scores

STAGES = ("kmeans", "spherical", "knn", "tsne", "umap", "extract", "paper")


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
    # our defaults (conf/cluster/kmeans.yaml): one greedy k-means++ start, Lloyd on 256 points per
    # centroid, 3 refining iterations on all points
    ours_time, ours = timed(lambda: KMeans(k, spherical=spherical, max_points_per_centroid=256).fit(points))
    row: dict[str, object] = {"ours_s": ours_time, "ours": f"{ours.backend_}/{ours.device_}"}
    if with_baseline:
        base_time, base = timed(lambda: SklearnKMeans(k, n_init=1, max_iter=50, random_state=0).fit(data))
        centers = base.cluster_centers_  # spherical: both objectives against unit-norm centroids
        centers = centers / np.linalg.norm(centers, axis=1, keepdims=True) if spherical else centers
        base_inertia = float(_nearest(np.ascontiguousarray(data, dtype=np.float32), centers)[1].sum())
        row |= {"baseline_s": base_time, "quality": f"inertia {ours.inertia_ / base_inertia:.4f}x sklearn, AMI "
                f"{clustering_scores(base.labels_, ours.labels_)['ami']:.3f}"}
    return row


def bench_knn(points: np.ndarray) -> list[dict[str, object]]:
    """The neighbour searches alone, on the projections' PCA-50 space: our exact graph against
    openTSNE's Annoy (90 neighbours, t-SNE's) and umap-learn's NN-descent (15 with the point
    itself, UMAP's), with the fraction of true neighbours each approximate search finds."""
    from openTSNE.nearest_neighbors import Annoy
    from sklearn.decomposition import PCA

    from w2vlens.analysis.reduce import RECALL_QUERIES, import_umap_with_cached_jit, knn_graph

    umap = import_umap_with_cached_jit()
    data = PCA(50, random_state=0).fit(points).transform(points).astype(np.float32)

    def annoy(rows: np.ndarray = data) -> np.ndarray:
        return Annoy(rows, 90, random_state=0, n_jobs=1).build()[0]

    def nn_descent(rows: np.ndarray = data) -> np.ndarray:  # as umap-learn calls it, without the point itself
        return umap.umap_.nearest_neighbors(rows, 15, "euclidean", {}, False, np.random.RandomState(0),
                                            n_jobs=1)[0][:, 1:]

    nn_descent(data[:5000])  # numba compiles NN-descent's kernels on first use: not timed

    rows = []
    for name, k, search, baseline in (("knn t-SNE", 90, annoy, "openTSNE's Annoy"),
                                      ("knn UMAP", 14, nn_descent, "umap-learn's NN-descent")):
        ours_time, exact = timed(lambda k=k: knn_graph(data, k, device="auto"))
        base_time, found = timed(search)
        recall = np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(exact.indices, found, strict=True)])
        rows.append((name, {"ours_s": ours_time, "ours": f"exact, k={k}", "baseline_s": base_time,
                            "baseline": baseline, "quality": f"approximate recall {recall:.3f}"}))
    hnsw_time, hnsw = timed(lambda: knn_graph(data, 90, device="cpu", neighbours="approximate"))
    rows.append(("knn t-SNE", {"ours_s": hnsw_time, "ours": "approximate (FAISS HNSW), k=90",
                               "quality": f"recall {hnsw.recall:.3f} on {RECALL_QUERIES} rows"}))
    return rows


def bench_projection(points: np.ndarray, name: str, with_baseline: bool) -> dict[str, object]:
    """Our projection of every point on the exact kNN graph (graph time included) against the
    same library fitted on every point with its own approximate neighbour search."""
    from w2vlens.analysis.faithfulness import cluster_agreement
    from w2vlens.analysis.reduce import TSNEProjection, UMAPProjection, shared_knn_graphs

    raw = KMeans(36, max_points_per_centroid=1024).fit(points).labels_
    projection = TSNEProjection() if name == "tsne" else UMAPProjection(backend="umap-learn")
    if name == "umap":  # numba compiles umap-learn's kernels on first use, with and without a graph: not timed
        from w2vlens.analysis.reduce import import_umap_with_cached_jit

        warm_up = points[:5000]
        UMAPProjection(backend="umap-learn", n_epochs=5).fit_transform(warm_up)
        import_umap_with_cached_jit().UMAP(n_epochs=5, random_state=0, n_jobs=1).fit_transform(warm_up)
    graph_time, (graph,) = timed(lambda: shared_knn_graphs(points, [projection]))
    fit_time, coords = timed(lambda: projection.fit_transform(points, knn=graph))
    library = "openTSNE" if name == "tsne" else "umap-learn"
    search = f"exact graph ({graph_time:.0f} s)" if graph is not None else "own search (defaults, CPU)"
    row: dict[str, object] = {"ours_s": graph_time + fit_time, "ours": f"{library}, {search} + fit, every point",
                              "quality": f"projection AMI {cluster_agreement(raw, coords)['ami']:.3f}"}
    if with_baseline:
        data = projection.pca_.transform(points).astype(np.float32)  # the same PCA-50 input
        if name == "tsne":
            from openTSNE import TSNE

            base_time, base = timed(lambda: np.asarray(TSNE(n_iter=projection.n_iter, n_jobs=1, random_state=0,
                                    early_exaggeration_iter=projection.early_exaggeration_iter).fit(data)))
        else:
            umap = import_umap_with_cached_jit()
            base_time, base = timed(lambda: umap.UMAP(n_epochs=projection.n_epochs, random_state=0,
                                                      n_jobs=1).fit_transform(data))
        row |= {"baseline_s": base_time, "baseline": f"{library}'s own search, every point",
                "quality": f"{row['quality']} (baseline {cluster_agreement(raw, base)['ami']:.3f})"}
    return row


def bench_extraction(seconds: float) -> dict[str, object]:
    """Audio seconds per second through `extract` (audio loading, batching, store writing)
    against the bare forward of the same model over the same batches."""
    import soundfile as sf
    import torch

    from w2vlens.corpora.corpus import load_manifest
    from w2vlens.embeddings.extract import extract
    from w2vlens.embeddings.models import load_checkpoint, resolve_device, resolve_dtype
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


class StageClock:
    """Exclusive wall time per named stage: time inside a nested stage counts for it alone."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.stack: list[tuple[str, float]] = []

    def wrap(self, name: str, function: Callable) -> Callable:
        def timed_function(*args: object, **kwargs: object) -> object:
            now = time.perf_counter()
            if self.stack:
                parent, started = self.stack[-1]
                self.seconds[parent] = self.seconds.get(parent, 0.0) + now - started
            self.stack.append((name, now))
            try:
                return function(*args, **kwargs)
            finally:
                _, started = self.stack.pop()
                now = time.perf_counter()
                self.seconds[name] = self.seconds.get(name, 0.0) + now - started
                if self.stack:
                    self.stack[-1] = (self.stack[-1][0], now)

        return timed_function


def scaled_store(source: object, corpus: object, path: Path, n_frames: int, dim: int, arrays: list[str],
                 seed: int) -> object:
    """A store of at least `n_frames` frames, opened with its own corpus: `source`'s utterances
    repeated (ids made unique, transcripts and metadata copied from `corpus`), each of `arrays`
    mapped to `dim` dimensions by one random projection plus fresh noise per copy; logits are
    copied unchanged, so the pseudo-labels stay the real model's."""
    from dataclasses import replace

    import pandas as pd

    from w2vlens.corpora.corpus import Corpus
    from w2vlens.embeddings.store import EmbeddingStore, StoreWriter

    rng = np.random.default_rng(seed)
    by_id = {utt.id: utt for utt in corpus.utterances}
    widths = {name: source.meta["arrays"][name]["dim"] for name in arrays}
    projections = {name: rng.standard_normal((width, dim)).astype(np.float32) / np.sqrt(width)
                   for name, width in widths.items() if name != "logits"}
    records = source.utterances()[["id", "audio", "duration", "offset", "n_frames"]].to_dict("records")
    rows, copies = [], []
    with StoreWriter(path, source.meta) as writer:
        copy = 0
        while writer.meta["n_frames"] < n_frames:
            for row in records:
                if writer.meta["n_frames"] >= n_frames:
                    break
                span = slice(row["offset"], row["offset"] + row["n_frames"])
                for name in arrays:
                    values = np.asarray(source.array(name)[span], dtype=np.float32)
                    if name != "logits":
                        values = values @ projections[name]
                        values += 0.1 * values.std() * rng.standard_normal(values.shape, dtype=np.float32)
                    writer.write(name, values, "float32")
                uid = f"{row['id']}#{copy}"
                rows.append({**row, "id": uid, "offset": writer.meta["n_frames"]})
                copies.append(replace(by_id[row["id"]], id=uid))
                writer.add_frames(row["n_frames"])
            copy += 1
        store = writer.commit(pd.DataFrame(rows))
    return EmbeddingStore(store.path, Corpus(f"{corpus.name} x{copy}", copies))


def bench_paper(n_frames: int, dim: int, experiment: str = "paper") -> list[tuple[str, float]]:
    """Wall time of each stage of `experiment=paper` on stores of `n_frames` x `dim` (see the module
    docstring): the demo pair's real stores are extracted first (cached, not timed), then the
    labelling stage and the paper pipeline run on the scaled stores, logged into a scratch MLflow
    store as the app logs them."""
    from functools import partial

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import w2vlens.analysis.probe as probe
    import w2vlens.analysis.reduce as reduce
    import w2vlens.pipelines.inputs as stage
    import w2vlens.pipelines.paper as paper
    from w2vlens import tracking
    from w2vlens.analysis.cluster import KMeans as OurKMeans
    from w2vlens.analysis.cluster import resolve_k
    from w2vlens.analysis.reduce import _Projection
    from w2vlens.app import build, read_views
    from w2vlens.config import register_resolvers
    from w2vlens.embeddings.views import needed_arrays
    from w2vlens.result import Result

    register_resolvers()
    scratch = Path(tempfile.mkdtemp(prefix="bench-paper-"))
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"])
    views = read_views(cfg)
    pair = stage.load_pair(cfg.pair.name, cfg.pair.finetuned, cfg.pair.pretrained, {"pretrained", "finetuned"},
                           cfg.extract.device, cfg.extract.dtype)
    corpus = build(cfg.data)
    demo_stores, _ = stage.extract_stores(pair, corpus, needed_arrays(views, pair.checkpoints), 
                                          OmegaConf.to_object(cfg.extract), Path(cfg.cache_dir))
    last = demo_stores["finetuned"].layer_name(-1)
    stores = {
        "pretrained": scaled_store(demo_stores["pretrained"], corpus, scratch / "pretrained", n_frames, dim,
                                   ["cnn", last], 1),
        "finetuned": scaled_store(demo_stores["finetuned"], corpus, scratch / "finetuned", n_frames, dim,
                                  [last, "logits"], 2),
    }
    print(f"paper stage: {stores['finetuned'].n_frames:,} frames x {dim} dims per view", flush=True)
    k = resolve_k(cfg.cluster.k, pair.vocabulary, cfg.cluster.k_scale)
    pipeline, settings = build(cfg.analysis.pipeline), build(cfg.analysis.settings, _convert_="object")
    kmeans = partial(build, cfg.cluster.estimator)
    clock = StageClock()
    for name in ("label_frames", "silence_scores"):
        setattr(stage, name, clock.wrap(name, getattr(stage, name)))
    for name in ("view_comparison", "characters", "annotator_errors", "projection_panels", "agreement_projection",
                 "confusion_figure"):
        setattr(paper, name, clock.wrap(name, getattr(paper, name)))
    paper.neighbourhood_scores = clock.wrap("projection_faithfulness", paper.neighbourhood_scores)
    paper.paper_tables.table2 = clock.wrap("projection_faithfulness", paper.paper_tables.table2)
    Result.add_figure = clock.wrap("saving figures", Result.add_figure)
    OurKMeans.fit = clock.wrap("k-means", OurKMeans.fit)
    _Projection.fit_transform = clock.wrap("projections (PCA, t-SNE, UMAP)", _Projection.fit_transform)
    reduce.knn_graph = clock.wrap("kNN graphs", reduce.knn_graph)
    probe.train_probe = clock.wrap("mistake probe (Lightning)", probe.train_probe)

    def labelled_and_analysed() -> None:  # what the app does after extraction
        experiment_id = tracking.configure(scratch / "mlruns", "bench")
        with tracking.start_run(experiment_id, f"bench {experiment}", {}) as active:
            inputs, labelled = stage.label_inputs(pair, corpus, views, stores, cfg.silence.min_frames, k,
                                                  training_logger=partial(tracking.lightning_logger,
                                                                          active.info.run_id))
            tracking.log_result(labelled)
            tracking.log_result(pipeline(inputs, kmeans, settings, cfg.seed))

    try:
        total, _ = timed(clock.wrap("other (MLflow logging, tables, summary)", labelled_and_analysed))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # GBs of scaled stores
    return [(f"whole experiment={experiment}", total)] + sorted(clock.seconds.items(), key=lambda item: -item[1])


def peak_rss_gb() -> float:
    """This process's peak resident memory so far, in GB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def bench_paper_sizes(sizes: list[int], dim: int, experiment: str) -> None:
    """One process per size; prints one table: seconds per stage per size, peak RSS, and the
    growth ratio from each size to the next (per doubling when they double)."""
    results = []
    for n in sizes:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run([sys.executable, __file__, "--stages", "paper", "--sizes", str(n), "--dim", str(dim),
                            "--experiment", experiment, "--paper-json", out.name], check=True)
            results.append(json.loads(Path(out.name).read_text()))
    stages = list(dict.fromkeys(name for result in results for name, _ in result["stages"]))
    head = [f"{n:,}" for n in sizes] + [f"{a:,} to {b:,}" for a, b in zip(sizes, sizes[1:], strict=False)]
    print(f"\n| {experiment} stage | " + " | ".join(head) + " |")
    print("| --- |" + " --- |" * len(head))
    for stage in stages:
        seconds = [dict(result["stages"]).get(stage, 0.0) for result in results]
        ratios = [f"{b / a:.2f}x" if a > 0.5 else "–" for a, b in zip(seconds, seconds[1:], strict=False)]
        print(f"| {stage} (s) | " + " | ".join(f"{value:,.1f}" for value in seconds) + " | "
              + " | ".join(ratios) + " |")
    rss = [result["peak_rss_gb"] for result in results]
    print("| peak RSS (GB) | " + " | ".join(f"{value:.2f}" for value in rss) + " | "
          + " | ".join(f"{b / a:.2f}x" for a, b in zip(rss, rss[1:], strict=False)) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", "--frames", default="180710", help="comma-separated numbers of frames")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--k", type=int, default=36)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--baseline-max-n", type=int, default=200_000,
                        help="run the reference tools only up to this many frames (they take hours beyond)")
    parser.add_argument("--extract-seconds", type=float, default=600.0, help="audio seconds for the extract stage")
    parser.add_argument("--experiment", default="paper", choices=["paper", "paper_fast"],
                        help="the experiment the paper stage runs")
    parser.add_argument("--paper-json", help=argparse.SUPPRESS)  # a child of a multi-size paper stage writes here
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.stages == "paper" and len(sizes) > 1:
        bench_paper_sizes(sizes, args.dim, args.experiment)
        return
    if args.paper_json:
        stage_times = bench_paper(sizes[0], args.dim, args.experiment)
        Path(args.paper_json).write_text(json.dumps({"stages": stage_times, "peak_rss_gb": peak_rss_gb()}))
        return
    stages = args.stages.split(",")
    backend, device = pick_backend("auto", "auto")
    print(f"machine: {os.cpu_count()} CPUs, K-means backend {backend}/{device}")
    KMeans(2).fit(np.random.default_rng(0).normal(size=(1000, 8)))  # imports and thread pools, not timed
    print("| stage | frames | ours (s) | baseline (s) | speed-up | ours | baseline | quality |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in (int(size) for size in args.sizes.split(",")):
        if not set(stages) & {"kmeans", "spherical", "knn", "tsne", "umap"}:
            break
        points, _ = mixture(n, args.dim, args.k, seed=0)
        with_baseline = n <= args.baseline_max_n
        for stage in stages:
            if stage in ("kmeans", "spherical"):
                row = bench_kmeans(points, args.k, stage == "spherical", with_baseline)
                suffix = " on unit-norm data" if stage == "spherical" else ""
                row.setdefault("baseline", f"sklearn KMeans, 50 iterations{suffix}")
            elif stage in ("tsne", "umap"):
                row = bench_projection(points, stage, with_baseline)
            elif stage == "knn":
                for name, row in bench_knn(points):
                    print(_row(name, n, row), flush=True)
                continue
            else:
                continue
            print(_row(stage, n, row), flush=True)
    if "extract" in stages:
        print(_row("extract", 0, bench_extraction(args.extract_seconds)), flush=True)
    if "paper" in stages:
        stage_times = bench_paper(sizes[0], args.dim, args.experiment)
        total = stage_times[0][1]
        print(f"\n| experiment={args.experiment} stage | seconds | share |\n| --- | --- | --- |")
        for name, seconds in stage_times:
            print(f"| {name} | {seconds:.1f} | {seconds / total:.0%} |")
        print(f"| peak RSS | {peak_rss_gb():.2f} GB | |")


def _row(stage: str, n: int, row: dict[str, object]) -> str:
    baseline = row.get("baseline_s")
    speedup = f"{baseline / row['ours_s']:.1f}x" if baseline else "–"
    base = f"{baseline:.1f}" if baseline else "–"
    frames = f"{n:,}" if n else "–"
    return (f"| {stage} | {frames} | {row['ours_s']:.1f} | {base} | {speedup} | {row.get('ours', '')} | "
            f"{row.get('baseline', '–')} | {row.get('quality', '')} |")


if __name__ == "__main__":
    main()
