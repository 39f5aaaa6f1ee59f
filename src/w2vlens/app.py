"""The entry point's wiring: reads the Hydra config, builds the views, the pair, the corpus, the
estimators and the pipeline that `analysis` chooses (conf/analysis/), runs the load-extract-label
stage (`w2vlens.pipelines.inputs`) and the pipeline, and hands their results to the tracker. Only
this module reads the config; stages and pipelines get plain values."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from w2vlens import tracking
from w2vlens.analysis.cluster import resolve_k
from w2vlens.corpora.corpus import Corpus
from w2vlens.embeddings.views import View, layer_tag, needed_arrays, shard_views
from w2vlens.errors import W2VLensError
from w2vlens.pipelines.inputs import check_transcripts, extract_shard, load_pair, prepare_inputs
from w2vlens.ui import run_url
from w2vlens.validation import check_config

log = logging.getLogger("w2vlens")


def build(config: DictConfig, **kwargs: object) -> object:
    """`hydra.utils.instantiate`, letting a stage's W2VLensError through unwrapped."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, W2VLensError):
            raise error.__cause__ from None
        raise


def read_views(cfg: DictConfig) -> list[View]:
    """The views the analysis reads; a shard job, which cannot know the later analysis, also keeps
    the CNN and `layer` of both checkpoints."""
    views = [View.parse(**OmegaConf.to_container(view, resolve=True)) for view in cfg.analysis.views]
    return views + (shard_views(cfg.layer) if cfg.extract.shard is not None else [])


def run(cfg: DictConfig) -> dict[str, float]:
    """One job: load, extract and label, then run the analysis's pipeline: one view (the default),
    every layer of both models (`experiment=layers`) or the paper's whole analysis
    (`experiment=paper`). Returns the headline metrics. An `extract.shard` job only extracts its
    shard, for both checkpoints of the pair, and returns none."""
    check_config(cfg)  # every value, before any work (run.py has checked already; library callers too)
    experiment_id = tracking.configure(cfg.tracking.dir, cfg.tracking.experiment)
    views = read_views(cfg)
    pair = load_pair(cfg.pair.name, cfg.pair.finetuned, cfg.pair.pretrained, {view.side for view in views},
                     cfg.extract.device, cfg.extract.dtype)
    needed = needed_arrays(views, pair.checkpoints, cfg.extract.layers)  # layer indices checked, before data work
    corpus: Corpus = build(cfg.data)
    check_transcripts(corpus, pair.vocabulary)
    extraction, cache_dir = OmegaConf.to_object(cfg.extract), Path(cfg.cache_dir)
    if cfg.extract.shard is not None:
        extract_shard(pair, corpus, needed, extraction, cache_dir)
        return {}
    k = resolve_k(cfg.cluster.k, pair.vocabulary, cfg.cluster.k_scale)
    tags = {"pair": cfg.pair.name, "data": corpus.name, "git_commit": tracking.git_commit(),
            "layer": layer_tag(views, pair.checkpoints), **cfg.analysis.tags}
    if cfg.reduce is not None:
        tags["reduce"] = cfg.reduce.name
    pipeline, settings = build(cfg.analysis.pipeline), build(cfg.analysis.settings, _convert_="object")
    kmeans = partial(build, cfg.cluster.estimator)
    output_dir = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None
    # The run starts before extraction, so that its duration includes it.
    with tracking.start_run(experiment_id, tracking.run_name(tags, k, len(views)), tags) as active:
        tracking.log_config(cfg, output_dir, as_written=("analysis",))
        run_id = active.info.run_id
        inputs, prepared = prepare_inputs(pair, corpus, views, needed, extraction, cache_dir, cfg.silence.min_frames,
                                          k, served_at=tracking.artifacts_served_at(run_id),
                                          training_logger=partial(tracking.lightning_logger, run_id))
        tracking.log_result(prepared)
        result = pipeline(inputs, kmeans, settings, cfg.seed)
        tracking.log_result(result)
    log.info("run %r (%s): %s", active.info.run_name, run_id, run_url(experiment_id, run_id))
    return result.headline
