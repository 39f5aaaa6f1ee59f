"""The entry point's wiring: reads the Hydra config, builds the corpus, the stores, the estimators
and the pipeline the `analysis` names (`w2vlens.pipelines`), runs it and hands its result to the
tracker. Only this module reads the config; pipelines and stages get plain values."""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import mlflow
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from w2vlens import tracking
from w2vlens.corpora.corpus import Corpus, load_manifest
from w2vlens.corpora.text import characters_outside, normalize_text
from w2vlens.embeddings.extract import Shard, checkpoint_arrays, extract, resolve_storage_dtype
from w2vlens.embeddings.models import Checkpoint, load_checkpoint, resolve_device, resolve_dtype
from w2vlens.embeddings.store import EmbeddingStore, layer_name
from w2vlens.errors import W2VLensError
from w2vlens.labelling.frames import label_frames, silence_scores
from w2vlens.pipelines.layers import run_layers
from w2vlens.pipelines.paper import PaperView, check_uncertainty, run_paper
from w2vlens.pipelines.view import Projected, run_view
from w2vlens.result import Result

log = logging.getLogger("w2vlens")


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


def load_checkpoints(cfg: DictConfig, sides: set[str]) -> dict[str, Checkpoint]:
    """The pair's checkpoints (the fine-tuned one always: its logits label the frames), loaded
    before any data work so that a bad one fails first."""
    device = resolve_device(cfg.extract.device)
    dtype = resolve_dtype(cfg.extract.dtype, device)
    checkpoints = {"finetuned": load_checkpoint(cfg.pair.finetuned, require_ctc=True, device=device, dtype=dtype)}
    if "pretrained" in sides:
        checkpoints["pretrained"] = load_checkpoint(cfg.pair.pretrained, require_ctc=False, device=device,
                                                    dtype=dtype)
    return checkpoints


def extract_stores(cfg: DictConfig, corpus: Corpus, checkpoints: dict[str, Checkpoint],
                   views: dict[str, DictConfig]) -> tuple[dict[str, EmbeddingStore | None], dict[str, bool]]:
    """Extracts (or reuses, or extends) each checkpoint's store with the arrays `views` read.
    Returns the stores (joined with the corpus's transcripts and metadata) and which were cache
    hits. With `extract.shard` set, only that shard is extracted, and a store is None until all are."""
    settings = cfg.extract
    dtype = resolve_dtype(settings.dtype, resolve_device(settings.device))
    shard = None if settings.shard is None else Shard(settings.shard, settings.num_shards)
    needed = needed_arrays(cfg, views, checkpoints)
    stores, hits = {}, {}
    for side in ("finetuned", "pretrained"):
        if side in checkpoints:
            stores[side], hits[side] = extract(
                checkpoints[side], corpus, arrays=needed[side], cache_dir=Path(cfg.cache_dir), compute_dtype=dtype,
                storage_dtype=resolve_storage_dtype(settings.storage_dtype, dtype),
                batch_seconds=settings.batch_seconds, window_seconds=settings.window_seconds,
                context_seconds=settings.context_seconds, chunk_seconds=settings.chunk_seconds, shard=shard,
                verify=settings.verify, loader_workers=settings.loader_workers)
    if "pretrained" in checkpoints and shard is None:
        if stores["pretrained"].n_frames != stores["finetuned"].n_frames:
            raise W2VLensError(
                f"pair {cfg.pair.name}: {cfg.pair.pretrained} gives {stores['pretrained'].n_frames} frames but "
                f"{cfg.pair.finetuned} gives {stores['finetuned'].n_frames}; a pair needs the same CNN frame rate"
            )
        if not stores["pretrained"].utterances()["id"].equals(stores["finetuned"].utterances()["id"]):
            raise W2VLensError(f"pair {cfg.pair.name}: the two stores hold the utterances in different orders")
    return stores, hits


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


def view_arrays(view: DictConfig, checkpoint: Checkpoint) -> list[tuple[str, int | None]]:
    """(array name, layer index) for each layer the view asks for; the CNN view has no layer."""
    if view.view == "cnn":
        return [("cnn", None)]
    return _layer_arrays(view.layer, checkpoint.num_layers, checkpoint.name)


def layer_tag(analysis: str, views: dict[str, DictConfig], checkpoints: dict[str, Checkpoint]) -> str:
    """The MLflow `layer` tag: the layer index each view actually clusters ("cnn" for the CNN view,
    "all" for the layer-wise analysis; several views as name=layer)."""
    if analysis == "layers":
        return "all"
    tags = []
    for view in views.values():
        arrays = view_arrays(view, checkpoints[view.checkpoint])
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
    if cfg.analysis == "paper":
        check_uncertainty(cfg.paper)


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


def finetuning_texts(source: str | None, corpus: Corpus) -> list[str] | None:
    """Transcripts of the fine-tuning data for the character frequencies: `auto` is what the
    corpus says its model was fine-tuned on (the demo's train split), else a manifest's texts."""
    if source is None:
        return None
    if source == "auto":
        if corpus.finetuning_texts is None:
            log.warning("paper.finetuning_transcripts=auto: no fine-tuning transcripts known for this data; "
                        "set it to a manifest of them for the frequency correlations")
            return None
        return corpus.finetuning_texts()
    return [utt.text for utt in load_manifest(source).utterances if utt.text]


def run(cfg: DictConfig) -> dict[str, float]:
    """One job: extract, label, then score one view (the default), every layer of both models
    (`experiment=layers`) or run the paper's whole analysis (`experiment=paper`). Returns the
    headline metrics. An `extract.shard` job only extracts its shard, for both checkpoints of the pair,
    and returns none."""
    check_config(cfg)
    experiment_id = tracking.configure(cfg.tracking.dir, cfg.tracking.experiment)
    analysis = cfg.analysis
    views = dict(cfg[analysis].views) if analysis in ("paper", "layers") else {cfg.model.name: cfg.model}
    sharded = cfg.extract.shard is not None
    sides = {view.checkpoint for view in views.values()} if not sharded else {"pretrained", "finetuned"}
    checkpoints = load_checkpoints(cfg, sides)
    corpus: Corpus = build(cfg.data)
    check_transcripts(corpus, checkpoints["finetuned"].vocabulary)
    if sharded:
        stores, _ = extract_stores(cfg, corpus, checkpoints, views)
        waiting = [side for side, store in stores.items() if store is None]
        log.info("extract.shard=%s of %s extracted; %s", cfg.extract.shard, cfg.extract.num_shards,
                 f"waiting for other shards: {', '.join(waiting)}" if waiting else "every store is complete")
        return {}
    k = resolve_k(cfg.cluster.k, checkpoints["finetuned"].vocabulary, cfg.cluster.k_scale)
    name = cfg.model.name if analysis == "view" else analysis
    clustering = cfg.cluster.name if analysis != "paper" else f"{cfg.cluster.name}+spherical"
    tags = {"pair": cfg.pair.name, "view": name, "data": corpus.name, "git_commit": tracking.git_commit(),
            "cluster": cfg.cluster.name, "layer": layer_tag(analysis, views, checkpoints)}
    if cfg.reduce is not None:
        tags["reduce"] = cfg.reduce.name
    output_dir = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None
    # The run starts before extraction, so that its duration includes it.
    with tracking.start_run(experiment_id, f"{name} {clustering} k={k}", tags) as active:
        tracking.log_config(cfg, output_dir)
        started = time.perf_counter()
        stores, hits = extract_stores(cfg, corpus, checkpoints, views)
        mlflow.log_metric("extract_seconds", time.perf_counter() - started)
        mlflow.log_metrics({f"cache_hit_{side}": float(hit) for side, hit in hits.items()})
        finetuned = stores["finetuned"]
        utterances = finetuned.utterances()
        labels = label_frames(finetuned.array("logits"), utterances, finetuned.vocabulary, cfg.silence.min_frames)
        mlflow.log_metrics({"frames": finetuned.n_frames, "utterances": len(corpus.utterances), "k": k,
                            "alignment_skipped": len(labels.skipped)})
        silence = silence_scores(labels.classes, utterances, finetuned.meta["frame_seconds"])
        if silence is not None:
            mlflow.log_metrics({f"silence_{metric}": value for metric, value in silence.items()})
            log.info("silence split vs known pauses: %s", ", ".join(f"{m}={v:.3f}" for m, v in silence.items()))
        kmeans = partial(build, cfg.cluster.estimator)
        faithfulness = OmegaConf.to_object(cfg.faithfulness)
        result: Result
        if analysis == "paper":
            settings = OmegaConf.to_object(cfg.paper)
            paper_views = {view_name: PaperView(stores[view.checkpoint],
                                                view_arrays(view, checkpoints[view.checkpoint])[-1][0])
                           for view_name, view in views.items()}  # the paper clusters the last requested layer
            projections = {projection_name: build(projection.projection)
                           for projection_name, projection in cfg.paper.projections.items()}
            result = run_paper(cfg.pair.name, corpus.name, paper_views, labels, k, cfg.cluster.name, kmeans,
                               projections, projection_protocol(cfg.paper.projections), settings, faithfulness,
                               silence, finetuning_texts(settings.finetuning_transcripts, corpus),
                               tracking.lightning_logger(active.info.run_id), cfg.extract.device, cfg.seed)
        elif analysis == "layers":
            layer_stores = {view_name: stores[view.checkpoint] for view_name, view in views.items()}
            result = run_layers(cfg.pair.name, layer_stores, labels, k, kmeans, cfg.layers.cka_points, cfg.seed)
        else:
            view = cfg.model
            projected = None if cfg.reduce is None else Projected(cfg.reduce.name, build(cfg.reduce.projection))
            result = run_view(view.name, cfg.pair.name, stores[view.checkpoint],
                              view_arrays(view, checkpoints[view.checkpoint]), labels, finetuned.vocabulary, k,
                              kmeans, projected, faithfulness, OmegaConf.to_object(cfg.listen),
                              OmegaConf.to_object(cfg.atlas),
                              f"/get-artifact?run_uuid={active.info.run_id}&path=", cfg.seed)
        tracking.log_result(result)
        return result.headline
