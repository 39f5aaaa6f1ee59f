"""The stage every pipeline starts from: load the pair's checkpoints, extract (or reuse, or extend)
each one's store with the arrays the run's views read, then label the frames with the fine-tuned
model and score the silence split. What it measures (extraction time, cache hits, frames, skipped
alignments, the silence scores) comes back in a `Result` for the tracker, beside the `Inputs`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from w2vlens.config import ExtractConfig
from w2vlens.corpora.corpus import Corpus
from w2vlens.corpora.text import characters_outside, normalize_text
from w2vlens.embeddings.extract import Shard, extract, resolve_storage_dtype
from w2vlens.embeddings.models import Checkpoint, load_checkpoint, resolve_device, resolve_dtype
from w2vlens.embeddings.store import EmbeddingStore
from w2vlens.embeddings.views import SIDES, View
from w2vlens.errors import W2VLensError
from w2vlens.labelling.frames import FrameLabels, label_frames, silence_scores
from w2vlens.result import Result

if TYPE_CHECKING:
    from pytorch_lightning.loggers import Logger

log = logging.getLogger("w2vlens")


@dataclass
class Pair:
    """The pair's loaded checkpoints by side (`finetuned`, and `pretrained` when a view reads it) and
    the dtype they compute in, resolved once from the settings."""

    name: str
    checkpoints: dict[str, Checkpoint]
    dtype: torch.dtype

    @property
    def vocabulary(self) -> list[str]:
        """The fine-tuned model's CTC outputs: the frame labels' names."""
        return self.checkpoints["finetuned"].vocabulary


@dataclass
class Inputs:
    """What a pipeline reads: the pair's stores by side, the views (by name) with the arrays each
    reads, the fine-tuned model's frame labels, the silence split's scores (None without known
    pauses) and k. `served_at` is the URL prefix under which the run's artifacts are served and
    `training_logger` makes a Lightning logger for the curves of a model a pipeline trains (both
    from the tracker; the logger on demand, since Lightning takes seconds to import)."""

    pair: str
    corpus: Corpus
    stores: dict[str, EmbeddingStore]
    views: dict[str, View]
    arrays: dict[str, list[tuple[str, int | None]]]
    labels: FrameLabels
    silence: dict[str, float] | None
    k: int
    served_at: str = ""
    training_logger: Callable[[], Logger] | None = None

    @property
    def finetuned(self) -> EmbeddingStore:
        return self.stores["finetuned"]

    def store(self, view: str) -> EmbeddingStore:
        """The store of the checkpoint `view` is read from."""
        return self.stores[self.views[view].side]


def load_pair(name: str, finetuned: str, pretrained: str, sides: Iterable[str], device: str, dtype: str) -> Pair:
    """The checkpoints of `sides` (the fine-tuned one always: its logits label the frames) on
    `device` in `dtype` (`auto` resolved here), loaded before any data work so that a bad one fails
    first."""
    on = resolve_device(device)
    computed = resolve_dtype(dtype, on)
    checkpoints = {"finetuned": load_checkpoint(finetuned, require_ctc=True, device=on, dtype=computed)}
    if "pretrained" in sides:
        checkpoints["pretrained"] = load_checkpoint(pretrained, require_ctc=False, device=on, dtype=computed)
    return Pair(name, checkpoints, computed)


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


def extract_stores(pair: Pair, corpus: Corpus, needed: dict[str, set[str]], settings: ExtractConfig,
                   cache_dir: Path) -> tuple[dict[str, EmbeddingStore | None], dict[str, bool]]:
    """Extracts (or reuses, or extends) each checkpoint's store with the `needed` arrays. Returns
    the stores (joined with the corpus's transcripts and metadata) and which were cache hits. With
    `settings.shard` set, only that shard is extracted, and a store is None until all are."""
    shard = None if settings.shard is None else Shard(settings.shard, settings.num_shards)
    stores, hits = {}, {}
    for side in SIDES:
        if side in pair.checkpoints:
            stores[side], hits[side] = extract(
                pair.checkpoints[side], corpus, arrays=needed[side], cache_dir=cache_dir, compute_dtype=pair.dtype,
                storage_dtype=resolve_storage_dtype(settings.storage_dtype, pair.dtype),
                batch_seconds=settings.batch_seconds, window_seconds=settings.window_seconds,
                context_seconds=settings.context_seconds, chunk_seconds=settings.chunk_seconds, shard=shard,
                verify=settings.verify, loader_workers=settings.loader_workers)
    if "pretrained" in stores and shard is None:
        pretrained, finetuned = stores["pretrained"], stores["finetuned"]
        names = {side: checkpoint.name for side, checkpoint in pair.checkpoints.items()}
        if pretrained.n_frames != finetuned.n_frames:
            raise W2VLensError(
                f"pair {pair.name}: {names['pretrained']} gives {pretrained.n_frames} frames but "
                f"{names['finetuned']} gives {finetuned.n_frames}; a pair needs the same CNN frame rate"
            )
        if not pretrained.utterances()["id"].equals(finetuned.utterances()["id"]):
            raise W2VLensError(f"pair {pair.name}: the two stores hold the utterances in different orders")
    return stores, hits


def extract_shard(pair: Pair, corpus: Corpus, needed: dict[str, set[str]], settings: ExtractConfig,
                  cache_dir: Path) -> None:
    """A shard job: extracts its shard of both stores and says which still wait for other shards."""
    stores, _ = extract_stores(pair, corpus, needed, settings, cache_dir)
    waiting = [side for side, store in stores.items() if store is None]
    log.info("extract.shard=%s of %s extracted; %s", settings.shard, settings.num_shards,
             f"waiting for other shards: {', '.join(waiting)}" if waiting else "every store is complete")


def label_inputs(pair: Pair, corpus: Corpus, views: Sequence[View], stores: dict[str, EmbeddingStore],
                 min_silence_frames: int, k: int, served_at: str = "",
                 training_logger: Callable[[], Logger] | None = None) -> tuple[Inputs, Result]:
    """Labels every frame of the extracted `stores` (`label_frames`, with silence runs of at least
    `min_silence_frames`) and scores the silence split against known pauses: the pipeline's inputs,
    and the stage's metrics as a Result."""
    finetuned = stores["finetuned"]
    utterances = finetuned.utterances()
    labels = label_frames(finetuned.array("logits"), utterances, finetuned.vocabulary, min_silence_frames)
    result = Result(metrics={"frames": finetuned.n_frames, "utterances": len(corpus.utterances), "k": k,
                             "alignment_skipped": len(labels.skipped)})
    silence = silence_scores(labels.classes, utterances, finetuned.meta["frame_seconds"])
    if silence is not None:
        result.metrics |= {f"silence_{metric}": value for metric, value in silence.items()}
        log.info("silence split vs known pauses: %s", ", ".join(f"{m}={v:.3f}" for m, v in silence.items()))
    arrays = {view.name: view.arrays(pair.checkpoints[view.side]) for view in views}
    inputs = Inputs(pair.name, corpus, stores, {view.name: view for view in views}, arrays, labels, silence, k,
                    served_at, training_logger)
    return inputs, result


def prepare_inputs(pair: Pair, corpus: Corpus, views: Sequence[View], needed: dict[str, set[str]],
                   settings: ExtractConfig, cache_dir: Path, min_silence_frames: int, k: int,
                   served_at: str = "", training_logger: Callable[[], Logger] | None = None
                   ) -> tuple[Inputs, Result]:
    """The whole stage: `extract_stores`, then `label_inputs`; the metrics add the extraction's
    seconds and each store's cache hit."""
    started = time.perf_counter()
    stores, hits = extract_stores(pair, corpus, needed, settings, cache_dir)
    extracted = {"extract_seconds": time.perf_counter() - started} | {f"cache_hit_{side}": float(hit)
                                                                       for side, hit in hits.items()}
    inputs, result = label_inputs(pair, corpus, views, stores, min_silence_frames, k, served_at, training_logger)
    result.metrics = extracted | result.metrics
    return inputs, result
