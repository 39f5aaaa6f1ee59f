"""The entry point's wiring: reads the Hydra config, runs the stages, logs to MLflow.

Stages never see the config; only this module does.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

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

from w2vlens import tracking
from w2vlens.analysis import (
    FrameLabels,
    character_report,
    finetuned_character_report,
    label_frames,
    mistake_probe,
    most_accurate_annotator,
    projection_faithfulness,
    silence_scores,
    single_characters,
    view_comparison,
)
from w2vlens.compare import linear_cka
from w2vlens.correlate import character_correlations, character_frequencies
from w2vlens.data import Corpus, demo_corpus, load_manifest
from w2vlens.errors import W2VLensError
from w2vlens.extract import Shard, checkpoint_arrays, extract, resolve_storage_dtype
from w2vlens.figures import contingency_heatmap, layer_curves
from w2vlens.metrics import cluster_summary, clustering_scores, contingency
from w2vlens.models import BLANK_LABEL, Checkpoint, load_checkpoint, resolve_device, resolve_dtype
from w2vlens.plots import projection_panels
from w2vlens.plots_errors import agreement_projection, confusion_figure
from w2vlens.report import SCORES, characters_summary, paper_summary
from w2vlens.silence import SILENCE_LABEL
from w2vlens.store import EmbeddingStore, layer_name
from w2vlens.text import characters_outside, normalize_text
from w2vlens.transcripts import annotator_columns, error_frames

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


def resolve_k(k: int | str, vocabulary: list[str], scale: float = 1.0) -> int:
    """`auto` is the number of CTC outputs plus one, as in the paper (blank splits in two), times
    `scale`."""
    if k == "auto":
        return max(1, round((len(vocabulary) + 1) * scale))
    try:
        return int(k)
    except ValueError:
        raise W2VLensError(f"cluster.k={k!r}: use 'auto' or an integer") from None


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
            "cluster": cfg.cluster.name, "layer": str(cfg.layer), "reduce": str(cfg.get("reduce", {}).get("name"))}
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
    scores = clustering_scores(labels.pseudo, clusters)
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
    for array_name, layer in view_arrays(view, store):
        embeddings = store.array(array_name)
        kmeans = build(cfg.cluster.estimator, n_clusters=k).fit(embeddings)
        scores = score_clusters(view.name, array_name, kmeans.labels_, labels, vocabulary,
                                f"{cfg.pair.name} {view.name} {array_name}: clusters vs pseudo-labels")
        mlflow.log_metrics(scores | {"inertia": kmeans.inertia_}, step=layer or 0)
        if cfg.get("reduce") is not None:
            projection = build(cfg.reduce.projection)
            coords = projection.fit_transform(embeddings, labels=labels.classes)
            faithfulness = projection_faithfulness(embeddings, coords, kmeans.labels_, **cfg.faithfulness,
                                                   seed=cfg.seed)
            mlflow.log_metrics(faithfulness, step=layer or 0)
            log.info("%s %s %s: %s", view.name, array_name, cfg.reduce.name,
                     ", ".join(f"{m}={v:.3f}" for m, v in faithfulness.items()))
            title = f"{cfg.pair.name} {view.name} {array_name}, {cfg.reduce.name}"
            for colour_name, colours in (("label", labels.classes), ("cluster", kmeans.labels_)):
                figure = projection_panels({view.name: coords}, colours, title=f"{title}: by {colour_name}",
                                           seed=cfg.seed)
                log_figure(figure, f"figures/{cfg.reduce.name}_{array_name}_by_{colour_name}", ("png", "pdf"))
    return scores


def run_paper(cfg: DictConfig, views: dict[str, DictConfig], stores: dict[str, EmbeddingStore],
              labels: FrameLabels, k: int, silence: dict[str, float] | None, data_name: str) -> dict[str, float]:
    """The paper's analysis over the CNN, pre-trained and fine-tuned views: Table 1 (clusters vs
    pseudo-labels), Table 2 (what each projection loses), Table 3 (views compared), Figure 1 and
    a Markdown summary beside the paper's numbers. Returns the fine-tuned view's Table 1 scores."""
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
                                    f"{cfg.pair.name} {name} {array_name} ({clustering}): clusters vs pseudo-labels")
            mlflow.log_metrics({f"{name}_{clustering}_{metric}": value for metric, value in scores.items()})
            table1.append({"view": name, "clustering": clustering, **{m: scores[m] for m in SCORES}})

    table2 = []
    coords: dict[tuple[str, str], np.ndarray] = {}
    for projection_name, projection in cfg.paper.projections.items():
        for name in views:
            coords[name, projection_name] = build(projection.projection).fit_transform(embeddings[name],
                                                                                       labels=labels.classes)
            faithfulness = projection_faithfulness(embeddings[name], coords[name, projection_name], clusters[name],
                                                   **cfg.faithfulness, seed=cfg.seed)
            mlflow.log_metrics({f"{name}_{projection_name}_{metric}": v for metric, v in faithfulness.items()})
            table2.append({"view": name, "projection": projection_name, **faithfulness})
            log.info("%s %s: %s", name, projection_name, ", ".join(f"{m}={v:.3f}" for m, v in faithfulness.items()))

    table3 = view_comparison(embeddings, clusters, cfg.paper.cka_points, cfg.seed)
    for row in table3.itertuples():
        mlflow.log_metrics({f"{row.reference}_vs_{row.compared}_{metric}": getattr(row, metric)
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
    characters = run_characters(cfg, clusters, labels, utterances, vocabulary)
    characters |= run_annotators(cfg, embeddings["finetuned"], stores["finetuned"].array("logits"),
                                 coords["finetuned", shown], labels, utterances, vocabulary)
    summary = paper_summary(f"w2vlens: pair {cfg.pair.name} on {data_name}", *tables.values(), silence)
    summary += characters_summary(characters)
    mlflow.log_text(summary, "summary.md")
    log.info("summary:\n%s", summary)
    finetuned_row = tables["table1"].query("view == 'finetuned'").iloc[0]
    return {metric: float(finetuned_row[metric]) for metric in SCORES}



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
    against the chosen reference) and the correlations between them and character frequency."""
    frame_labels = labels.aligned if cfg.paper.character_labels == "aligned" else labels.classes
    table4 = character_report(clusters["pretrained"], frame_labels, utterances, cfg.paper.accuracy_bands)
    mlflow.log_table(table4.accuracy.reset_index(), artifact_file="tables/table4_accuracy.json")
    mlflow.log_table(table4.groups[["category", "text"]], artifact_file="tables/table4_groups.json")
    mlflow.log_metric("pretrained_cluster_cer", table4.recognition_cer)
    report: dict[str, object] = {"table4": table4}
    reference = cfg.paper.reference
    if reference == "best":
        if not annotator_columns(utterances):
            log.warning("Table 5: no annotator_* columns; the reference text is used")
            reference = "text"
        else:
            reference = most_accurate_annotator(utterances)
    accuracy, groups, cer = finetuned_character_report(labels.pseudo, vocabulary, utterances, reference,
                                                       list(cfg.paper.percentiles))
    mlflow.log_table(accuracy.reset_index(), artifact_file="tables/table5_accuracy.json")
    mlflow.log_table(groups.astype(str), artifact_file="tables/table5_groups.json")
    mlflow.log_metric("finetuned_cer", cer)
    mlflow.set_tag("table5_reference", reference)
    report |= {"table5": groups, "table5_reference": reference, "finetuned_cer": cer}
    texts = finetuning_texts(cfg)
    frequency = character_frequencies(texts) if texts else pd.Series(dtype=float)
    try:
        correlations = character_correlations(single_characters(table4.accuracy["accuracy"]),
                                              single_characters(accuracy["accuracy"]), frequency)
    except W2VLensError as error:
        log.warning("correlations skipped: %s", error)
    else:
        mlflow.log_metrics({f"correlation_{name}": value for name, value in correlations.items()})
        report["correlations"] = correlations
    return report


def run_annotators(cfg: DictConfig, embeddings: np.ndarray, logits: np.ndarray, coords: np.ndarray,
                   labels: FrameLabels, utterances: pd.DataFrame, vocabulary: list[str]) -> dict[str, object]:
    """Figure 2 (how many annotators call each predicted character a mistake) and Figure 3 (the
    mistake probe, its baselines, and error detection against the model's own confidence)."""
    if not annotator_columns(utterances):
        log.warning("Figures 2-3 skipped: the corpus has no annotator_* columns")
        return {}
    errors = error_frames(labels.pseudo, vocabulary, utterances)
    counts = pd.Series(errors.categories).value_counts()
    mlflow.log_metrics({f"frames_{name.replace('/', '_of_')}": float(n) for name, n in counts.items()})
    log_figure(agreement_projection(coords, errors.categories, title="Figure 2: annotators calling a frame a mistake",
                                    seed=cfg.seed), "figures/figure2", ("png", "pdf"))
    run_id = mlflow.active_run().info.run_id
    probe = mistake_probe(embeddings, logits, errors, utterances, OmegaConf.to_container(cfg.paper.probe),
                          cfg.seed, mlflow.get_tracking_uri(), run_id)
    mlflow.log_metrics({f"error_detection_{name}": value for name, value in probe.auroc.items()})
    for name, scores in {"probe": probe.result.probe, **probe.result.baselines}.items():
        mlflow.log_table(scores.report.reset_index(), artifact_file=f"tables/figure3_{name}_report.json")
    log_figure(confusion_figure(probe.result.probe.confusion, "Figure 3: confusion matrix of the mistake probe"),
               "figures/figure3", ("png", "pdf"))
    return {"probe": probe}
