"""The entry point's wiring: reads the Hydra config, runs the stages, logs to MLflow.

Stages never see the config; only this module does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import transformers
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig

from w2vlens import tracking
from w2vlens.data import Corpus
from w2vlens.errors import W2VLensError
from w2vlens.extract import extract
from w2vlens.figures import contingency_heatmap
from w2vlens.metrics import cluster_summary, clustering_scores, contingency
from w2vlens.models import load_checkpoint, resolve_device, resolve_dtype
from w2vlens.store import EmbeddingStore
from w2vlens.text import characters_outside, normalize_text

log = logging.getLogger("w2vlens")
logging.getLogger("faiss.loader").setLevel(logging.WARNING)
transformers.utils.logging.disable_progress_bar()  # one bar per weight file is noise in job logs


@dataclass
class Stores:
    """The stores a run reads: the fine-tuned one (for labels) and the one of the view."""

    finetuned: EmbeddingStore
    view: EmbeddingStore
    cache_hits: dict[str, bool]


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


def load_stores(cfg: DictConfig, corpus: Corpus) -> Stores:
    """Extracts (or reuses) the fine-tuned store and, when the view needs it, the pre-trained one."""
    device = resolve_device(cfg.extract.device)
    dtype = resolve_dtype(cfg.extract.dtype, device)
    options = {"cache_dir": Path(cfg.cache_dir), "compute_dtype": dtype,
               "storage_dtype": cfg.extract.storage_dtype, "batch_seconds": cfg.extract.batch_seconds}
    finetuned = load_checkpoint(cfg.pair.finetuned, require_ctc=True, device=device, dtype=dtype)
    check_transcripts(corpus, finetuned.vocabulary)
    finetuned_store, finetuned_hit = extract(finetuned, corpus, **options)
    hits = {"finetuned": finetuned_hit}
    if cfg.model.checkpoint == "finetuned":
        return Stores(finetuned_store, finetuned_store, hits)
    pretrained = load_checkpoint(cfg.pair.pretrained, require_ctc=False, device=device, dtype=dtype)
    pretrained_store, hits["pretrained"] = extract(pretrained, corpus, **options)
    if pretrained_store.n_frames != finetuned_store.n_frames:
        raise W2VLensError(
            f"pair {cfg.pair.name}: {cfg.pair.pretrained} gives {pretrained_store.n_frames} frames but "
            f"{cfg.pair.finetuned} gives {finetuned_store.n_frames}; a pair needs the same CNN frame rate"
        )
    return Stores(finetuned_store, pretrained_store, hits)


def view_arrays(cfg: DictConfig, store: EmbeddingStore) -> list[tuple[str, int | None]]:
    """(array name, layer index) for each layer the view asks for; the CNN view has no layer."""
    if cfg.model.view == "cnn":
        return [("cnn", None)]
    layers = cfg.model.layer
    if layers == "all":
        layers = list(range(store.num_layers + 1))
    elif not isinstance(layers, (list, ListConfig)):
        layers = [layers]
    names = []
    for layer in layers:
        try:
            name = store.layer_name(int(layer))
        except IndexError:
            raise W2VLensError(
                f"model.layer={layer}: {store.meta['checkpoint']} has layers 0..{store.num_layers}"
            ) from None
        names.append((name, int(name.split("_")[1])))
    return names


def resolve_k(k: int | str, vocabulary: list[str]) -> int:
    """`auto` is the number of CTC outputs plus one, as in the paper (blank splits in two)."""
    if k == "auto":
        return len(vocabulary) + 1
    try:
        return int(k)
    except ValueError:
        raise W2VLensError(f"cluster.k={k!r}: use 'auto' or an integer") from None


def run(cfg: DictConfig) -> dict[str, float]:
    """One job: extract, label, cluster, score, log. Returns the metrics of the last layer."""
    experiment_id = tracking.configure(cfg.tracking.dir, cfg.tracking.experiment)
    corpus: Corpus = build(cfg.data)
    stores = load_stores(cfg, corpus)
    vocabulary = stores.finetuned.vocabulary
    pseudo_labels = np.asarray(stores.finetuned.array("logits")).argmax(axis=1)
    k = resolve_k(cfg.cluster.k, vocabulary)
    view = cfg.model.name
    tags = {"pair": cfg.pair.name, "view": view, "data": corpus.name, "git_commit": tracking.git_commit(),
            "cluster": cfg.cluster.name, "layer": str(cfg.model.get("layer", "cnn"))}
    output_dir = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None
    with tracking.start_run(experiment_id, f"{view} {cfg.cluster.name} k={k}", tags):
        tracking.log_config(cfg, output_dir)
        for name, hit in stores.cache_hits.items():
            mlflow.log_metric(f"cache_hit_{name}", float(hit))
        mlflow.log_metrics({"frames": stores.view.n_frames, "utterances": len(corpus.utterances), "k": k})
        scores: dict[str, float] = {}
        for array_name, layer in view_arrays(cfg, stores.view):
            kmeans = build(cfg.cluster.estimator, n_clusters=k).fit(stores.view.array(array_name))
            scores = clustering_scores(pseudo_labels, kmeans.labels_)
            mlflow.log_metrics(scores | {"inertia": kmeans.inertia_}, step=layer or 0)
            log.info("%s %s (%s, k=%d) vs pseudo-labels: %s", view, array_name, kmeans.backend_, k,
                     ", ".join(f"{m}={v:.3f}" for m, v in scores.items()))
            table = contingency(kmeans.labels_, pseudo_labels, vocabulary)
            mlflow.log_table(cluster_summary(table), artifact_file=f"tables/clusters_{array_name}.json")
            figure = contingency_heatmap(table, f"{cfg.pair.name} {view} {array_name}: clusters vs pseudo-labels")
            mlflow.log_figure(figure, f"figures/contingency_{array_name}.png")
            plt.close(figure)
    return scores
