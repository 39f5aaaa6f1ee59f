"""The entry point's wiring: reads the Hydra config, runs the stages, logs to MLflow.

Stages never see the config; only this module does.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import transformers
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from matplotlib.figure import Figure
from omegaconf import DictConfig, ListConfig, OmegaConf

from w2vlens import tables as paper_tables
from w2vlens import tracking
from w2vlens.analysis import (
    FrameLabels,
    aligned_label_ids,
    greedy_hypotheses,
    label_frames,
    mistake_probe,
    most_accurate_annotator,
    projection_faithfulness,
    silence_scores,
    view_comparison,
)
from w2vlens.atlas import ATLAS_DIR, export_viewer, frame_table
from w2vlens.compare import linear_cka
from w2vlens.correlate import character_frequencies
from w2vlens.data import Corpus, demo_corpus, load_manifest
from w2vlens.errors import W2VLensError
from w2vlens.extract import Shard, checkpoint_arrays, extract, resolve_storage_dtype
from w2vlens.figures import contingency_heatmap, layer_curves
from w2vlens.listen import cluster_montages, clusters_page, utterance_reader, write_montages
from w2vlens.metrics import cluster_summary, clustering_scores, contingency
from w2vlens.models import BLANK_LABEL, Checkpoint, load_checkpoint, resolve_device, resolve_dtype
from w2vlens.plots import projection_panels
from w2vlens.plots_errors import agreement_projection, confusion_figure
from w2vlens.reduce import shared_knn_graphs
from w2vlens.report import SCORES, characters_summary, paper_summary
from w2vlens.silence import SILENCE_LABEL
from w2vlens.store import EmbeddingStore, layer_name
from w2vlens.text import characters_outside, normalize_text
from w2vlens.transcripts import ErrorFrames, annotator_columns

log = logging.getLogger("w2vlens")
logging.getLogger("faiss.loader").setLevel(logging.WARNING)
transformers.utils.logging.disable_progress_bar()  # one bar per weight file is noise in job logs


def build(config: DictConfig, **kwargs: object) -> object:
    """`hydra.utils.instantiate`, letting a stage's W2VLensError through unwrapped."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, W2VLensError):
            raise error.__cause__ from None
        raise


def check_transcripts(corpus: Corpus, vocabulary: list[str]) -> None:
    """Fails on the first reference transcript with characters the CTC vocabulary lacks."""
    known = set(vocabulary)
    for utt in corpus.utterances:
        if utt.text is None:
            continue
        missing = characters_outside(normalize_text(utt.text), known)
        if missing:
            raise W2VLensError(
                f"{utt.audio}: transcript of {utt.id!r} has characters outside the model's vocabulary: "
                + " ".join(repr(ch) for ch in missing)
            )


def needed_arrays(cfg: DictConfig, views: dict[str, DictConfig], checkpoints: dict[str, Checkpoint]
                  ) -> dict[str, set[str]]:
    """The arrays each side's store must keep: what the views read (every layer for
    `experiment=layers`), the fine-tuned logits (they label the frames), and `extract.layers` on
    top (`all`: every view of both). A shard job, which cannot know the later analysis, also keeps
    the CNN and `layer` of both sides."""
    needed: dict[str, set[str]] = {side: set() for side in checkpoints}
    needed["finetuned"].add("logits")
    if cfg.extract.shard is not None:
        needed["pretrained"].add("cnn")
        for side, checkpoint in checkpoints.items():
            needed[side] |= {name for name, _ in _layer_arrays(cfg.layer, checkpoint.num_layers, checkpoint.name)}
    for view in views.values():
        checkpoint = checkpoints[view.checkpoint]
        if view.view == "cnn":
            needed[view.checkpoint].add("cnn")
            continue
        layers = "all" if cfg.analysis == "layers" else view.layer  # experiment=layers scores every layer
        needed[view.checkpoint] |= {name for name, _ in _layer_arrays(layers, checkpoint.num_layers, checkpoint.name)}
    extra = cfg.extract.layers
    for side, checkpoint in checkpoints.items():
        if extra == "all":
            needed[side] = set(checkpoint_arrays(checkpoint))
        elif extra is not None:
            needed[side] |= {name for name, _ in _layer_arrays(extra, checkpoint.num_layers, checkpoint.name,
                                                                "extract.layers")}
    return needed


def load_stores(cfg: DictConfig, views: dict[str, DictConfig], sides: set[str]
                ) -> tuple[Corpus, dict[str, EmbeddingStore | None], dict[str, bool]]:
    """Loads the pair's checkpoints (first, so a bad one fails before any data work), the corpus,
    and extracts (or reuses, or extends) the store of each side in `sides` with the arrays `views`
    read; the fine-tuned one always, since its logits label the frames. Returns the corpus, the
    stores (joined with the corpus's transcripts and metadata) and which were cache hits.
    With `extract.shard` set, only that shard is extracted, and a store is None until all shards are."""
    device = resolve_device(cfg.extract.device)
    dtype = resolve_dtype(cfg.extract.dtype, device)
    storage_dtype = resolve_storage_dtype(cfg.extract.storage_dtype, dtype)
    shard = None if cfg.extract.shard is None else Shard(int(cfg.extract.shard), int(cfg.extract.num_shards))
    options = {"cache_dir": Path(cfg.cache_dir), "compute_dtype": dtype, "storage_dtype": storage_dtype,
               "batch_seconds": cfg.extract.batch_seconds, "window_seconds": cfg.extract.window_seconds,
               "context_seconds": cfg.extract.context_seconds, "chunk_seconds": cfg.extract.chunk_seconds,
               "shard": shard, "verify": bool(cfg.extract.verify), "loader_workers": cfg.extract.loader_workers}
    checkpoints = {"finetuned": load_checkpoint(cfg.pair.finetuned, require_ctc=True, device=device, dtype=dtype)}
    if "pretrained" in sides:
        checkpoints["pretrained"] = load_checkpoint(cfg.pair.pretrained, require_ctc=False, device=device,
                                                    dtype=dtype)
    needed = needed_arrays(cfg, views, checkpoints)
    corpus: Corpus = build(cfg.data)
    check_transcripts(corpus, checkpoints["finetuned"].vocabulary)
    stores, hits = {}, {}
    for side in ("finetuned", "pretrained"):
        if side in checkpoints:
            stores[side], hits[side] = extract(checkpoints[side], corpus, arrays=needed[side], **options)
    if "pretrained" in checkpoints:
        if shard is not None:
            return corpus, stores, hits
        if stores["pretrained"].n_frames != stores["finetuned"].n_frames:
            raise W2VLensError(
                f"pair {cfg.pair.name}: {cfg.pair.pretrained} gives {stores['pretrained'].n_frames} frames but "
                f"{cfg.pair.finetuned} gives {stores['finetuned'].n_frames}; a pair needs the same CNN frame rate"
            )
        if not stores["pretrained"].utterances()["id"].equals(stores["finetuned"].utterances()["id"]):
            raise W2VLensError(f"pair {cfg.pair.name}: the two stores hold the utterances in different orders")
    return corpus, stores, hits


def _layer_arrays(layers: object, num_layers: int, model_name: str, key: str = "layer"
                  ) -> list[tuple[str, int]]:
    """(array name, layer index) for a layer spec: an index, a list of them, or `all`."""
    if layers == "all":
        layers = list(range(num_layers + 1))
    elif not isinstance(layers, (list, ListConfig)):
        layers = [layers]
    names = []
    for layer in layers:
        try:
            name = layer_name(int(layer), num_layers)
        except (IndexError, ValueError):
            raise W2VLensError(f"{key}={layer}: {model_name} has layers 0..{num_layers}") from None
        names.append((name, int(name.split("_")[1])))
    return names


def view_arrays(view: DictConfig, store: EmbeddingStore) -> list[tuple[str, int | None]]:
    """(array name, layer index) for each layer the view asks for; the CNN view has no layer."""
    if view.view == "cnn":
        return [("cnn", None)]
    return _layer_arrays(view.layer, store.num_layers, store.meta["checkpoint"])


def layer_tag(analysis: str, views: dict[str, DictConfig], stores: dict[str, EmbeddingStore | None]) -> str:
    """The MLflow `layer` tag: the layer index each view actually clusters ("cnn" for the CNN view,
    "all" for the layer-wise analysis; several views as name=layer)."""
    if analysis == "layers":
        return "all"
    tags = []
    for view in views.values():
        arrays = view_arrays(view, stores[view.checkpoint])
        if analysis == "paper":
            arrays = arrays[-1:]  # the paper clusters the last requested layer of each view
        tags.append(",".join("cnn" if layer is None else str(layer) for _, layer in arrays))
    return tags[0] if len(tags) == 1 else " ".join(f"{name}={tag}" for name, tag in zip(views, tags, strict=True))


def resolve_k(k: int | str, vocabulary: list[str], scale: float = 1.0) -> int:
    """`auto` is the number of CTC outputs plus one, as in the paper (blank splits in two), times
    `scale`."""
    if k == "auto":
        return max(1, round((len(vocabulary) + 1) * scale))
    return int(k)  # check_config has made sure it is a positive integer


def check_config(cfg: DictConfig) -> None:
    """The checks the config's schema cannot express, made before any work or MLflow run starts:
    required values, the layer selection, k and the analysis."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise W2VLensError(f"{missing[0]} is required: set it on the command line ({missing[0]}=...)")
    layer = OmegaConf.to_container(cfg.layer) if isinstance(cfg.layer, ListConfig) else cfg.layer
    layers = layer if isinstance(layer, list) else [layer]
    if layer != "all" and (not layers or not all(isinstance(i, int) and not isinstance(i, bool) for i in layers)):
        raise W2VLensError(f"layer={layer!r}: use a layer index, a non-empty list of them or 'all'")
    k = cfg.cluster.k
    if k != "auto" and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise W2VLensError(f"cluster.k={k!r}: use 'auto' or a positive integer")
    scale = cfg.cluster.k_scale
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
        raise W2VLensError(f"cluster.k_scale={scale!r}: use a positive number")
    if cfg.analysis not in ("view", "layers", "paper"):
        raise W2VLensError(f"analysis={cfg.analysis!r}: use view, or experiment=layers or experiment=paper")
    if cfg.analysis != "view" and cfg[cfg.analysis] is None:
        raise W2VLensError(f"analysis={cfg.analysis} needs experiment={cfg.analysis}, which sets it up")


def view_title(view: str, array_name: str) -> str:
    """`finetuned layer_04` in titles, but `cnn` alone where the array is the view (not `cnn cnn`)."""
    return view if array_name == view else f"{view} {array_name}"


def log_figure(figure: Figure, path: str, formats: tuple[str, ...] = ("png",)) -> None:
    """Logs `figure` once per format (e.g. png and pdf) under `path` + extension, then closes it."""
    for extension in formats:
        mlflow.log_figure(figure, f"{path}.{extension}")
    plt.close(figure)


def run(cfg: DictConfig) -> dict[str, float]:
    """One job: extract, label, then score one view (the default), every layer of both models
    (`experiment=layers`) or run the paper's whole analysis (`experiment=paper`). Returns the
    headline metrics. An `extract.shard` job only extracts its shard, for both checkpoints of the pair,
    and returns none."""
    check_config(cfg)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(cfg.cache_dir) / "numba"))  # UMAP compiles once per machine
    experiment_id = tracking.configure(cfg.tracking.dir, cfg.tracking.experiment)
    analysis = cfg.analysis
    paper = analysis == "paper"
    views = dict(cfg[analysis].views) if analysis in ("paper", "layers") else {cfg.model.name: cfg.model}
    sides = {view.checkpoint for view in views.values()} if cfg.extract.shard is None else {"pretrained", "finetuned"}
    corpus, stores, hits = load_stores(cfg, views, sides)
    if cfg.extract.shard is not None:
        waiting = [side for side, store in stores.items() if store is None]
        log.info("extract.shard=%s of %s extracted; %s", cfg.extract.shard, cfg.extract.num_shards,
                 f"waiting for other shards: {', '.join(waiting)}" if waiting else "every store is complete")
        return {}
    finetuned = stores["finetuned"]
    utterances = finetuned.utterances()
    labels = label_frames(finetuned.array("logits"), utterances, finetuned.vocabulary, cfg.silence.min_frames)
    k = resolve_k(cfg.cluster.k, finetuned.vocabulary, cfg.cluster.k_scale)
    name = cfg.model.name if analysis == "view" else analysis
    tags = {"pair": cfg.pair.name, "view": name, "data": corpus.name, "git_commit": tracking.git_commit(),
            "cluster": cfg.cluster.name, "layer": layer_tag(analysis, views, stores),
            "reduce": str(cfg.reduce.name if cfg.reduce else None)}
    output_dir = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None
    with tracking.start_run(experiment_id, f"{name} {cfg.cluster.name} k={k}", tags):
        tracking.log_config(cfg, output_dir)
        mlflow.log_metrics({f"cache_hit_{side}": float(hit) for side, hit in hits.items()})
        mlflow.log_metrics({"frames": finetuned.n_frames, "utterances": len(corpus.utterances), "k": k,
                            "alignment_skipped": len(labels.skipped)})
        silence = silence_scores(labels.classes, utterances, finetuned.meta["frame_seconds"])
        if silence is not None:
            mlflow.log_metrics({f"silence_{metric}": value for metric, value in silence.items()})
            log.info("silence split vs known pauses: %s", ", ".join(f"{m}={v:.3f}" for m, v in silence.items()))
        if paper:
            return run_paper(cfg, views, stores, labels, k, silence, corpus.name)
        if analysis == "layers":
            return run_layers(cfg, views, stores, labels, k)
        return run_view(cfg, cfg.model, stores[cfg.model.checkpoint], labels, finetuned.vocabulary, k)


def run_layers(cfg: DictConfig, views: dict[str, DictConfig], stores: dict[str, EmbeddingStore],
               labels: FrameLabels, k: int) -> dict[str, float]:
    """Table 1 for every Transformer layer of each view from the one extraction pass, and the
    linear CKA between the views layer by layer; metrics are logged with step = layer, so the
    MLflow UI draws them as curves, and one figure shows all of them. Returns the last layer's."""
    num_layers = min(stores[view.checkpoint].num_layers for view in views.values())
    rows = []
    for layer in range(num_layers + 1):
        row: dict[str, float] = {"layer": layer}
        arrays = {}
        for name, view in views.items():
            store = stores[view.checkpoint]
            arrays[name] = store.array(store.layer_name(layer))
            clusters = build(cfg.cluster.estimator, n_clusters=k).fit(arrays[name]).labels_
            scores = clustering_scores(labels.pseudo, clusters)
            row |= {f"{name}_{metric}": scores[metric] for metric in SCORES}
        if len(arrays) == 2:
            row["linear_cka"] = linear_cka(*arrays.values(), max_points=cfg.layers.cka_points, seed=cfg.seed)
        mlflow.log_metrics({metric: value for metric, value in row.items() if metric != "layer"}, step=layer)
        log.info("layer %d: %s", layer, ", ".join(f"{m}={v:.3f}" for m, v in row.items() if m != "layer"))
        rows.append(row)
    table = pd.DataFrame(rows)
    mlflow.log_table(table, artifact_file="tables/layers.json")
    log_figure(layer_curves(table, list(views), f"{cfg.pair.name}: clusters vs pseudo-labels by layer"),
               "figures/layers", ("png", "pdf"))
    return {metric: float(table.iloc[-1][f"finetuned_{metric}"]) for metric in SCORES if f"finetuned_{metric}" in table}


def score_clusters(view: str, array_name: str, clusters: np.ndarray, labels: FrameLabels,
                   vocabulary: list[str], title: str) -> dict[str, float]:
    """Table 1 for one clustering: scores against the pseudo-labels, the cluster table, the heatmap."""
    scores = paper_tables.table1(labels.pseudo, clusters)
    log.info("%s %s vs pseudo-labels: %s", view, array_name, ", ".join(f"{m}={v:.3f}" for m, v in scores.items()))
    table = contingency(clusters, labels.pseudo, vocabulary)
    mlflow.log_table(cluster_summary(table), artifact_file=f"tables/clusters_{view}_{array_name}.json")
    log_figure(contingency_heatmap(table, title), f"figures/contingency_{view}_{array_name}")
    return scores


def run_view(cfg: DictConfig, view: DictConfig, store: EmbeddingStore, labels: FrameLabels,
             vocabulary: list[str], k: int) -> dict[str, float]:
    """Clusters each requested layer of one view and scores it; with `reduce` also projects it to
    2-D, measures what the projection loses and draws it."""
    scores: dict[str, float] = {}
    arrays = view_arrays(view, store)
    for array_name, layer in arrays:
        embeddings = store.array(array_name)
        kmeans = build(cfg.cluster.estimator, n_clusters=k).fit(embeddings)
        shown = view_title(view.name, array_name)
        scores = score_clusters(view.name, array_name, kmeans.labels_, labels, vocabulary,
                                f"{cfg.pair.name} {shown}: clusters vs pseudo-labels")
        mlflow.log_metrics(scores | {"inertia": kmeans.inertia_}, step=layer or 0)
        prefix = "" if len(arrays) == 1 else f"{array_name}/"
        if cfg.listen.enabled:
            log_cluster_audio(cfg, kmeans.labels_, labels.classes, store, f"{cfg.pair.name} {shown}", prefix)
        if cfg.reduce is not None:
            projection = build(cfg.reduce.projection)
            coords = projection.fit_transform(embeddings, labels=labels.classes)
            faithfulness = projection_faithfulness(embeddings, coords, kmeans.labels_, **cfg.faithfulness,
                                                   seed=cfg.seed)
            mlflow.log_metrics(faithfulness, step=layer or 0)
            log.info("%s %s %s: %s", view.name, array_name, cfg.reduce.name,
                     ", ".join(f"{m}={v:.3f}" for m, v in faithfulness.items()))
            title = f"{cfg.pair.name} {shown}, {cfg.reduce.name}"
            for colour_name, colours in (("label", labels.classes), ("cluster", kmeans.labels_)):
                figure = projection_panels({view.name: coords}, colours, title=f"{title}: by {colour_name}",
                                           seed=cfg.seed)
                log_figure(figure, f"figures/{cfg.reduce.name}_{array_name}_by_{colour_name}", ("png", "pdf"))
            if cfg.atlas.enabled:
                log_atlas(cfg, coords, kmeans.labels_, labels, store, vocabulary, f"{cfg.reduce.name}_{array_name}")
    return scores


def log_cluster_audio(cfg: DictConfig, clusters: np.ndarray, classes: np.ndarray, store: EmbeddingStore,
                      title: str, prefix: str) -> None:
    """Logs a montage per cluster (`audio/cluster_NN.wav`) and `clusters.html` with a player each."""
    utterances = store.utterances()
    montages = cluster_montages(clusters, utterances["offset"].to_numpy(), utterance_reader(utterances),
                                store.meta["frame_seconds"], cfg.seed, cfg.listen.frames, cfg.listen.context_seconds,
                                cfg.listen.gap_seconds)
    with tempfile.TemporaryDirectory() as folder:
        paths = write_montages(montages, Path(folder))
        served_at = f"/get-artifact?run_uuid={mlflow.active_run().info.run_id}&path={quote(prefix)}"
        page = clusters_page(clusters, classes, paths, f"{title}: listen to the clusters", cfg.listen.frames,
                             cfg.listen.context_seconds, served_at)
        (Path(folder) / "clusters.html").write_text(page, encoding="utf-8")
        mlflow.log_artifacts(folder, prefix.rstrip("/") or None)


def log_atlas(cfg: DictConfig, coords: np.ndarray, clusters: np.ndarray, labels: FrameLabels,
              store: EmbeddingStore, vocabulary: list[str], name: str) -> None:
    """Logs the projection's frame table as `atlas/<name>.parquet` (and, with `atlas.viewer`,
    Embedding Atlas's standalone viewer of it as `atlas/<name>.zip`)."""
    utterances = store.utterances()
    errors = annotator_errors(labels, vocabulary, utterances)
    errors = errors.categories if errors is not None else None
    texts = dict(zip(utterances["id"], utterances["text"], strict=True))
    table = frame_table(coords, labels.classes, clusters, store.frames(), texts, errors)
    with tempfile.TemporaryDirectory() as folder:
        table.to_parquet(Path(folder) / f"{name}.parquet", index=False)
        if cfg.atlas.viewer:
            export_viewer(table, Path(folder) / f"{name}.zip")
        mlflow.log_artifacts(folder, ATLAS_DIR)


def projection_protocol(projections: DictConfig) -> dict[str, str]:
    """How each projection of Table 2 was fitted, in words, for the summary: every frame (the
    paper's protocol) or a sample with the rest placed by `transform`, and the settings that differ."""
    protocol = {}
    for name, projection in projections.items():
        settings = projection.projection
        fitted = ("every frame" if settings.get("max_points") is None
                  else f"a stratified sample of {settings.max_points:,} frames, the rest placed with transform")
        details = [f"fitted on {fitted}"]
        if settings.get("pca_components") is not None:
            details.append(f"after PCA to {settings.pca_components} dims")
        for key in ("perplexity", "n_iter", "early_exaggeration_iter", "n_neighbors", "min_dist", "metric",
                    "n_epochs"):
            if key in settings:
                details.append(f"{key}={settings[key]}")
        protocol[name] = ", ".join(details)
    return protocol


def run_paper(cfg: DictConfig, views: dict[str, DictConfig], stores: dict[str, EmbeddingStore],
              labels: FrameLabels, k: int, silence: dict[str, float] | None, data_name: str) -> dict[str, float]:
    """The paper's analysis over the CNN, pre-trained and fine-tuned views, every table through
    `w2vlens.tables`: Table 1 (clusters vs pseudo-labels), Table 2 (what each projection loses),
    Table 3 (views compared), Figure 1, Tables 4-5 with their correlations, Figures 2-3 and a
    Markdown summary beside the paper's numbers. Returns the fine-tuned view's Table 1 scores."""
    vocabulary = stores["finetuned"].vocabulary
    embeddings: dict[str, np.ndarray] = {}
    clusters: dict[str, np.ndarray] = {}
    table1 = []
    for name, view in views.items():
        store = stores[view.checkpoint]
        array_name, _ = view_arrays(view, store)[-1]
        embeddings[name] = store.array(array_name)
        variants = [(cfg.cluster.name, {})] + ([("spherical", {"spherical": True})]
                                                if name in cfg.paper.spherical_views else [])
        for clustering, override in variants:
            kmeans = build(cfg.cluster.estimator, n_clusters=k, **override).fit(embeddings[name])
            clusters.setdefault(name, kmeans.labels_)
            scores = score_clusters(f"{name}_{clustering}", array_name, kmeans.labels_, labels, vocabulary,
                                    f"{cfg.pair.name} {view_title(name, array_name)} ({clustering}): "
                                    "clusters vs pseudo-labels")
            mlflow.log_metrics({f"{name}_{clustering}_{metric}": value for metric, value in scores.items()})
            table1.append({"view": name, "clustering": clustering, **{m: scores[m] for m in SCORES}})

    protocol = projection_protocol(cfg.paper.projections)
    table2 = []
    coords: dict[tuple[str, str], np.ndarray] = {}
    for name in views:  # one exact kNN graph per view, shared by the projections that take one
        projections = {projection_name: build(projection.projection)
                       for projection_name, projection in cfg.paper.projections.items()}
        graphs = shared_knn_graphs(embeddings[name], list(projections.values()), cfg.extract.device, cfg.seed)
        for (projection_name, projection), graph in zip(projections.items(), graphs, strict=True):
            coords[name, projection_name] = projection.fit_transform(embeddings[name], labels=labels.classes,
                                                                     knn=graph)
            faithfulness = projection_faithfulness(embeddings[name], coords[name, projection_name], clusters[name],
                                                   **cfg.faithfulness, seed=cfg.seed)
            mlflow.log_metrics({f"{name}_{projection_name}_{metric}": v for metric, v in faithfulness.items()})
            table2.append({"view": name, "projection": projection_name, **faithfulness})
            log.info("%s %s: %s", name, projection_name, ", ".join(f"{m}={v:.3f}" for m, v in faithfulness.items()))

    table3 = view_comparison(embeddings, clusters, cfg.paper.cka_points, cfg.seed)
    for row in table3.itertuples():
        mlflow.log_metrics({f"{row.earlier}_vs_{row.later}_{metric}": getattr(row, metric)
                            for metric in (*SCORES, "linear_cka")})

    shown = cfg.paper.figure_projection
    panels = {name: coords[name, shown] for name in views}
    title = f"{cfg.pair.name}: {', '.join(views)} ({shown})"
    hide = {name: {BLANK_LABEL, SILENCE_LABEL} for name in cfg.paper.hide_blank_in}
    log_figure(projection_panels(panels, labels.classes, title=f"{title}, by label", hide=hide, seed=cfg.seed),
               f"figures/figure1_{shown}", ("png", "pdf"))
    log_figure(projection_panels(panels, clusters, title=f"{title}, by cluster", seed=cfg.seed),
               f"figures/figure1_{shown}_by_cluster", ("png", "pdf"))
    frames = stores["finetuned"].frames()
    utterances = stores["finetuned"].utterances()
    for column in cfg.paper.color_by:
        if column not in frames.columns:
            log.warning("figure 1: no metadata column %r to colour by (columns: %s)", column, list(frames.columns))
            continue
        log_figure(projection_panels(panels, frames[column].to_numpy(), title=f"{title}, by {column}", seed=cfg.seed),
                   f"figures/figure1_{shown}_by_{column}", ("png", "pdf"))

    tables = {"table1": pd.DataFrame(table1), "table2": pd.DataFrame(table2), "table3": table3}
    for table_name, table in tables.items():
        mlflow.log_table(table, artifact_file=f"tables/{table_name}.json")
    mlflow.set_tag("table2_protocol", "; ".join(f"{name}: {text}" for name, text in protocol.items()))
    characters = run_characters(cfg, clusters, labels, utterances, vocabulary) | {"k": k}
    characters |= run_annotators(cfg, embeddings["finetuned"], clusters["finetuned"],
                                 stores["finetuned"].array("logits"), coords["finetuned", shown], labels, utterances,
                                 vocabulary)
    characters["differences"] = paper_differences(cfg, stores, views, k, len(utterances), protocol,
                                                  characters["table5_reference"])
    summary = paper_summary(f"w2vlens: pair {cfg.pair.name} on {data_name}", *tables.values(), silence, protocol)
    summary += characters_summary(characters)
    mlflow.log_text(summary, "summary.md")
    log.info("summary:\n%s", summary)
    finetuned_row = tables["table1"].query("view == 'finetuned'").iloc[0]
    return {metric: float(finetuned_row[metric]) for metric in SCORES}


def paper_differences(cfg: DictConfig, stores: dict[str, EmbeddingStore], views: dict[str, DictConfig], k: int,
                      n_utterances: int, protocol: dict[str, str], reference: str) -> list[str]:
    """The summary's list of what still differs from the paper's set-up, and why."""
    store = stores["finetuned"]
    layer, _ = view_arrays(views["finetuned"], store)[-1]
    every_frame = all(text.startswith("fitted on every frame") for text in protocol.values())
    return [
        f"Model: pair {cfg.pair.name}, {store.num_layers} Transformer layers, the last clustered ({layer}) of "
        f"{store.array(layer).shape[1]} dims; the paper's is wav2vec2 Large (24 layers of 1024 dims, VoxPopuli "
        "pre-training, 100 h of colloquial Finnish fine-tuning). Absolute scores follow the model, not the method.",
        f"Data: {n_utterances} utterances, {store.n_frames:,} frames; the paper's is the Lahjoita puhetta "
        "multi-annotator test set (4 annotator groups).",
        f"k = {k}: the CTC outputs plus one ({len(store.vocabulary)} + 1, times cluster.k_scale); the paper's "
        "vocabulary gave 36.",
        "Table 2: " + ("every frame projected, the authors' settings (scikit-learn t-SNE defaults, UMAP with the "
                       "cosine metric), as the paper." if every_frame else
                       "a faster protocol (experiment=paper_fast): see the protocol above; experiment=paper projects "
                       "every frame as the paper did."),
        "Table 4: the authors' script binned cluster ids at the vocabulary ids, so for k = vocabulary + 1 its last "
        "two clusters shared a bin and the last was never counted; we count every cluster. Its two other bugs "
        "(absent characters in cluster 0, the shifted cluster decoding) are fixed as described under Table 4.",
        f"Table 5: reference {reference} (paper.reference; 'best' is the annotator closest to the reference text); "
        "the paper used its best transcriber, T2.",
        "Figure 2: deletions sit on the blank frames around them but not on pause frames; the paper does not "
        "say how it placed them on frames.",
        f"Figure 3: the classifier is an MLP ({cfg.paper.probe.hidden} hidden units, {cfg.paper.probe.depth} "
        "layer(s)) on an utterance-level train/val/test split stratified by category; the paper calls it a "
        "simple classifier and gives no split.",
    ]


def finetuning_texts(cfg: DictConfig) -> list[str] | None:
    """Transcripts of the fine-tuning data for the character frequencies: `auto` is the demo's
    train split on the demo corpus (what the demo model was fine-tuned on) and nothing otherwise."""
    source = cfg.paper.finetuning_transcripts
    if source == "auto":
        if cfg.data._target_ != "w2vlens.data.demo_corpus":
            log.warning("paper.finetuning_transcripts=auto: no fine-tuning transcripts known for this data; "
                        "set it to a manifest of them for the frequency correlations")
            return None
        corpus = demo_corpus("train", cfg.data.seed, cfg.cache_dir)
    elif source is None:
        return None
    else:
        corpus = load_manifest(source)
    return [utt.text for utt in corpus.utterances if utt.text]


def run_characters(cfg: DictConfig, clusters: dict[str, np.ndarray], labels: FrameLabels,
                   utterances: pd.DataFrame, vocabulary: list[str]) -> dict[str, object]:
    """Table 4 (pre-trained clusters vs characters), Table 5 (fine-tuned per-character accuracy
    against the chosen reference) and the correlations between them and character frequency, all
    through `w2vlens.tables`."""
    label_ids = (aligned_label_ids(labels.aligned, vocabulary) if cfg.paper.character_labels == "aligned"
                 else labels.pseudo)
    table4 = paper_tables.table4(clusters["pretrained"], label_ids, vocabulary, blank=BLANK_LABEL,
                                 bands=[tuple(band) for band in cfg.paper.accuracy_bands])
    accuracy4 = pd.DataFrame({"frames": table4.frames, "modal_cluster": table4.modal_cluster,
                              "accuracy": table4.accuracy})
    mlflow.log_table(accuracy4.rename_axis("character").reset_index(), artifact_file="tables/table4_accuracy.json")
    groups4 = ([{"category": "no frames", "characters": ", ".join(table4.absent)},
                {"category": "merged with blank", "characters": ", ".join(table4.merged_with_blank)},
                {"category": "often confused", "characters": "; ".join(", ".join(g) for g in table4.groups)}]
               + [{"category": name, "characters": ", ".join(members)} for name, members in table4.bands.items()])
    mlflow.log_table(pd.DataFrame(groups4), artifact_file="tables/table4_groups.json")
    mlflow.log_table(table4.cluster_majority.reset_index(), artifact_file="tables/table4_cluster_majority.json")
    cluster_cer = table4.cer(utterances["offset"].tolist(), utterances["text"].tolist())
    mlflow.log_metric("pretrained_cluster_cer", cluster_cer)
    majority = majority_blank_clusters(clusters["pretrained"], label_ids, vocabulary.index(BLANK_LABEL))
    mlflow.log_metric("pretrained_majority_blank_clusters", majority)
    report: dict[str, object] = {"table4": table4, "cluster_cer": cluster_cer, "majority_blank_clusters": majority}
    reference = cfg.paper.reference
    if reference == "best":
        if not annotator_columns(utterances):
            log.warning("Table 5: no annotator_* columns; the reference text is used")
            reference = "text"
        else:
            reference = most_accurate_annotator(utterances)
    letters = [token for token in vocabulary if paper_tables.is_character(token, BLANK_LABEL)]
    table5 = paper_tables.table5(greedy_hypotheses(labels.pseudo, vocabulary, utterances),
                                 utterances[reference].fillna("").tolist(), list(cfg.paper.percentiles), letters)
    mlflow.log_table(table5.counts.reset_index(), artifact_file="tables/table5_accuracy.json")
    mlflow.log_table(table5.groups.astype(str), artifact_file="tables/table5_groups.json")
    mlflow.log_metric("finetuned_cer", table5.cer)
    mlflow.set_tag("table5_reference", reference)
    report |= {"table5": table5, "table5_reference": reference}
    texts = finetuning_texts(cfg)
    frequencies = character_frequencies(texts) if texts else None
    try:
        correlations = paper_tables.correlations(table4.accuracy, table5.accuracy, frequencies)
    except W2VLensError as error:
        log.warning("correlations skipped: %s", error)
    else:
        mlflow.log_metrics({f"correlation_{name}": value for name, value in correlations.items()})
        report["correlations"] = correlations
    return report


def majority_blank_clusters(clusters: np.ndarray, label_ids: np.ndarray, blank: int) -> int:
    """How many clusters have the blank as their majority label (the cluster-majority view's problem)."""
    keep = label_ids >= 0
    table = pd.crosstab(clusters[keep], label_ids[keep])
    return int((table.idxmax(axis=1) == blank).sum())


def annotator_errors(labels: FrameLabels, vocabulary: list[str], utterances: pd.DataFrame) -> ErrorFrames | None:
    """Figure 2's categories (how many annotators call each predicted character a mistake), or None
    when the corpus has no annotator transcripts."""
    columns = annotator_columns(utterances)
    if not columns:
        return None
    return paper_tables.error_categories(
        labels.pseudo, vocabulary, utterances["offset"].tolist(), {c: utterances[c].tolist() for c in columns},
        pauses=labels.classes == SILENCE_LABEL, blank=BLANK_LABEL, ids=utterances["id"].astype(str).tolist())


def run_annotators(cfg: DictConfig, embeddings: np.ndarray, clusters: np.ndarray, logits: np.ndarray,
                   coords: np.ndarray, labels: FrameLabels, utterances: pd.DataFrame,
                   vocabulary: list[str]) -> dict[str, object]:
    """Figure 2 (how many annotators call each predicted character a mistake, and how far each
    category lies from its cluster's centroid) and Figure 3 (the mistake classifier as the paper
    trained it, the class-balanced one, and error detection against the model's own confidence)."""
    errors = annotator_errors(labels, vocabulary, utterances)
    if errors is None:
        log.warning("Figures 2-3 skipped: the corpus has no annotator_* columns")
        return {}
    counts = pd.Series(errors.categories).value_counts()
    mlflow.log_metrics({f"frames_{name.replace('/', '_of_')}": float(n) for name, n in counts.items()})
    log_figure(agreement_projection(coords, errors.categories, title="Figure 2: annotators calling a frame a mistake",
                                    seed=cfg.seed), "figures/figure2", ("png", "pdf"))
    distances = paper_tables.category_distances(embeddings, clusters, errors.categories,
                                                blank_frames=labels.pseudo == vocabulary.index(BLANK_LABEL))
    mlflow.log_table(distances.reset_index(), artifact_file="tables/figure2_distances.json")
    run_id = mlflow.active_run().info.run_id
    probe = mistake_probe(embeddings, logits, errors, utterances, OmegaConf.to_container(cfg.paper.probe),
                          cfg.seed, mlflow.get_tracking_uri(), run_id)
    mlflow.log_metrics({f"error_detection_{name}": value for name, value in probe.auroc.items()})
    for prefix, result in (("figure3", probe.plain), ("figure3_balanced", probe.balanced)):
        for name, scores in {"probe": result.probe, **result.baselines}.items():
            mlflow.log_table(scores.report.reset_index(), artifact_file=f"tables/{prefix}_{name}_report.json")
    log_figure(confusion_figure(probe.plain.probe.confusion,
                                "Figure 3: confusion matrix of the mistake classifier (no class weights)"),
               "figures/figure3", ("png", "pdf"))
    log_figure(confusion_figure(probe.balanced.probe.confusion,
                                "Mistake classifier with balanced class weights (our extra)"),
               "figures/figure3_balanced", ("png", "pdf"))
    return {"probe": probe, "distances": distances}
