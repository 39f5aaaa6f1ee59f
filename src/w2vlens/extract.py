"""One forward pass per batch gives every view of a checkpoint; results land in the store.

Utterances longer than `window_seconds` are run in overlapping windows (`plan_windows`) whose frames
are stitched by time, reading one window of audio at a time: memory follows the window size, not
the recording's length.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from w2vlens.audio import audio_duration, audio_windows, load_audio, stream_audio
from w2vlens.data import Corpus, Utterance
from w2vlens.errors import W2VLensError
from w2vlens.models import Checkpoint
from w2vlens.store import STORE_VERSION, EmbeddingStore, StoreWriter

log = logging.getLogger(__name__)

_PADDING_SENSITIVE = {"data2vec-audio"}  # model types whose frames change when a batch pads them


def store_key(checkpoint: Checkpoint, corpus: Corpus, compute_dtype: torch.dtype, storage_dtype: str,
              window_seconds: float | None = None, context_seconds: float = 0.0) -> str:
    """Changes whenever the checkpoint, the audio or an option that alters values changes."""
    options = {
        "version": STORE_VERSION,
        "checkpoint": checkpoint.fingerprint,
        "corpus": corpus.fingerprint,
        "compute_dtype": str(compute_dtype),
        "storage_dtype": storage_dtype,
        "window": [window_seconds, context_seconds if window_seconds else None],
    }
    return hashlib.sha1(json.dumps(options, sort_keys=True).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Window:
    """Samples [start, stop) of an utterance at the model's rate. The window's model frames are the
    utterance's frames `first`, `first + 1`, ...; it contributes frames [keep_start, keep_stop)."""

    start: int
    stop: int
    first: int
    keep_start: int
    keep_stop: int


def receptive_field(conv_kernel: list[int], conv_stride: list[int]) -> int:
    """Samples one output frame of the CNN feature encoder sees."""
    receptive = 1
    for kernel, stride in zip(reversed(conv_kernel), reversed(conv_stride), strict=True):
        receptive = (receptive - 1) * stride + kernel
    return receptive


def plan_windows(n_samples: int, window: int, context: int, stride: int, receptive: int) -> list[Window]:
    """Overlapping windows over an utterance of `n_samples`, and the frames each contributes.

    Windows are `window` samples long and start every `window - 2 * context` samples; `window` and
    `context` are multiples of the frame `stride`, so a window's frames are the utterance's frames
    shifted by a whole number. The last window starts late enough to end with the utterance (it is
    up to one stride longer). Each frame (covering `receptive` samples) is taken from the window where
    it lies furthest from an edge, i.e. on its side of the midpoint of the two windows' overlap: every
    frame appears exactly once, with at least `context` samples around it in its window except at
    the utterance's own edges. Needs 2 * context >= receptive, so that frames at the midpoint exist in both.
    """
    hop = window - 2 * context
    starts = [0]
    while n_samples - starts[-1] >= window + stride:
        starts.append(min(starts[-1] + hop, (n_samples - window) // stride * stride))
    stops = [start + window for start in starts[:-1]] + [n_samples]
    # The first frame whose centre (i * stride + receptive / 2) lies past the midpoint of the overlap.
    boundaries = [-((receptive - start - stop) // (2 * stride)) for start, stop in zip(starts[1:], stops, strict=False)]
    keeps = [0, *boundaries, (n_samples - receptive) // stride + 1]
    return [Window(start, stop, start // stride, keep_start, keep_stop)
            for start, stop, keep_start, keep_stop in zip(starts, stops, keeps[:-1], keeps[1:], strict=True)]


def _batches(
    utterances: list[Utterance], durations: dict[str, float], batch_seconds: float, padded_batches: bool,
    alone: set[str],
) -> Iterator[list[Utterance]]:
    """Length-sorted batches whose padded size stays under `batch_seconds` of audio; the
    utterances in `alone` (the windowed ones) get a batch each."""
    ordered = sorted(utterances, key=lambda u: durations[u.id])
    batch: list[Utterance] = []
    for utt in ordered:
        if batch and (not padded_batches or utt.id in alone or batch[0].id in alone
                      or durations[utt.id] * (len(batch) + 1) > batch_seconds):
            yield batch
            batch = []
        batch.append(utt)
    if batch:
        yield batch


def _views(outputs: object, cnn: torch.Tensor, index: int, frames: slice, is_ctc: bool) -> dict[str, np.ndarray]:
    """Every view of one batch item's `frames`: CNN output, each hidden state and the logits."""
    views = {"cnn": cnn[index, frames]}
    views |= {f"layer_{i:02d}": h[index, frames] for i, h in enumerate(outputs.hidden_states)}
    if is_ctc:
        views["logits"] = outputs.logits[index, frames]
    return {name: values.float().cpu().numpy() for name, values in views.items()}


def _window_samples(window_seconds: float, context_seconds: float, sample_rate: int, stride: int,
                    receptive: int) -> tuple[int, int]:
    """The window and context in samples, rounded to whole frames, checked."""
    window = round(window_seconds * sample_rate / stride) * stride
    context = round(context_seconds * sample_rate / stride) * stride
    if window <= 2 * context:
        raise W2VLensError(f"extract.window_seconds={window_seconds} must exceed twice "
                           f"extract.context_seconds={context_seconds}")
    if 2 * context < receptive:
        raise W2VLensError(f"extract.context_seconds={context_seconds} is too small: the overlap of two windows "
                           f"must hold one model frame ({receptive / sample_rate:.3f} s)")
    return window, context


def _windowed(checkpoint: Checkpoint, utt: Utterance, window: int, context: int, compute_dtype: torch.dtype,
              cnn_outputs: list[torch.Tensor]) -> Iterator[dict[str, np.ndarray]]:
    """Every view of a long utterance, window by window, each window's share of frames in order.

    A first pass over the audio gives its length and, for models whose feature extractor normalises
    its input, the whole utterance's mean and variance: each window is normalised with those, so the
    model sees the same input as in one pass over the utterance.
    """
    model, sample_rate = checkpoint.model, checkpoint.sample_rate
    n_samples, total, squares = 0, 0.0, 0.0
    for block in stream_audio(utt, sample_rate):
        n_samples += len(block)
        total += float(block.sum(dtype=np.float64))
        squares += float(np.square(block, dtype=np.float64).sum())
    mean, scale = 0.0, 1.0
    if getattr(checkpoint.feature_extractor, "do_normalize", False):
        mean = total / n_samples
        scale = 1.0 / math.sqrt(max(squares / n_samples - mean**2, 0.0) + 1e-7)  # as the feature extractor does
    stride = math.prod(model.config.conv_stride)
    windows = plan_windows(n_samples, window, context, stride,
                           receptive_field(model.config.conv_kernel, model.config.conv_stride))
    device = next(model.parameters()).device
    for plan, audio in zip(windows, audio_windows(utt, sample_rate, [(w.start, w.stop) for w in windows]),
                           strict=True):
        cnn_outputs.clear()
        values = torch.from_numpy((audio - np.float32(mean)) * np.float32(scale))
        outputs = model(values[None].to(device, compute_dtype), output_hidden_states=True)
        frames = slice(plan.keep_start - plan.first, plan.keep_stop - plan.first)
        yield _views(outputs, cnn_outputs[0].transpose(1, 2), 0, frames, checkpoint.is_ctc)


def _numeric_if_possible(column: pd.Series) -> pd.Series:
    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        return column


def _frame_table(parts: list[pd.DataFrame], metadata_columns: list[str]) -> pd.DataFrame:
    """The frame tables of several utterances as one, metadata columns numeric where they can be."""
    table = pd.concat(parts, ignore_index=True)
    for column in metadata_columns:
        table[column] = _numeric_if_possible(table[column])
    return table


@dataclass(frozen=True)
class Shard:
    """Shard `index` (0-based) of `count`: a contiguous run of the corpus holding about 1/count of its audio."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise W2VLensError(f"data.shard={self.index} must lie in 0..{self.count - 1} "
                               f"(data.num_shards={self.count})")

    def select(self, utterances: list[Utterance], durations: dict[str, float]) -> list[Utterance]:
        """The utterances whose audio starts in this shard's share of the corpus's total duration."""
        total = sum(durations.values())
        chosen, elapsed = [], 0.0
        for utt in utterances:
            if self.index * total <= elapsed * self.count < (self.index + 1) * total:
                chosen.append(utt)
            elapsed += durations[utt.id]
        return chosen


class _ChunkWriter:
    """Writes extracted utterances into committed chunks of about `chunk_seconds` of audio each.

    A chunk is a small store in the parts folder, published atomically: a crash or a kill loses at
    most the chunk being written, and a rerun skips every utterance of the committed ones.
    """

    def __init__(self, parts: Path, meta: dict, storage_dtype: str, chunk_seconds: float,
                 metadata_columns: list[str]) -> None:
        self.parts, self.meta, self.storage_dtype = parts, meta, storage_dtype
        self.chunk_seconds, self.metadata_columns = chunk_seconds, metadata_columns
        self.writer: StoreWriter | None = None

    def __enter__(self) -> _ChunkWriter:
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, trace: TracebackType | None) -> None:
        if self.writer is not None and kind is not None:
            self.writer.__exit__(kind, value, trace)
        elif self.writer is not None:
            self._commit()

    def _open(self) -> StoreWriter:
        """The open chunk's writer; a fresh chunk is opened when none is."""
        if self.writer is None:
            self.writer = StoreWriter(self.parts / f"chunk-{uuid.uuid4().hex}", self.meta)
            self.frames: list[pd.DataFrame] = []
            self.rows: list[dict] = []
            self.seconds = 0.0
        return self.writer

    @property
    def n_frames(self) -> int:
        """Frames in the open chunk so far: where the next utterance's frames start."""
        return self._open().meta["n_frames"]

    def append(self, views: dict[str, np.ndarray]) -> None:
        self._open().append(views, self.storage_dtype)

    def record(self, utt: Utterance, duration: float, offset: int, count: int) -> None:
        """Adds the frame-table and utterance-table rows of an utterance whose frames were appended."""
        if count <= 0:
            raise W2VLensError(f"{utt.audio}: audio too short for one model frame")
        frame_seconds = self.meta["frame_seconds"]
        self.frames.append(pd.DataFrame({"utterance": utt.id, "frame": np.arange(count),
                                         "start": np.arange(count) * frame_seconds, **utt.metadata}))
        segment = {"segment_start": utt.start, "segment_end": utt.end} if utt.is_segment else {}
        self.rows.append({"id": utt.id, "audio": str(utt.audio), "text": utt.text, **utt.annotators, **utt.metadata,
                          **segment, "duration": duration, "offset": offset, "n_frames": count})
        self.seconds += duration
        if self.seconds >= self.chunk_seconds:
            self._commit()

    def _commit(self) -> None:
        self.writer.commit(_frame_table(self.frames, self.metadata_columns), pd.DataFrame(self.rows))
        self.writer.__exit__(None, None, None)
        self.writer = None


def _committed_chunks(parts: Path) -> list[EmbeddingStore]:
    """The finished chunks of a parts folder, in a fixed order."""
    if not parts.is_dir():
        return []
    return [EmbeddingStore(path) for path in sorted(parts.glob("chunk-*")) if (path / "meta.json").is_file()]


def _stored_ids(parts: Path) -> set[str]:
    return {uid for chunk in _committed_chunks(parts) for uid in chunk.utterances()["id"]}


def _merge(parts: Path, final_path: Path, corpus: Corpus, storage_dtype: str) -> EmbeddingStore:
    """Publishes the chunks as one store, utterances in corpus order, then removes the parts.

    The order does not depend on how the work was split or interrupted, so a sharded or resumed
    extraction gives the same store as one uninterrupted pass. An advisory lock on a file in the
    parts folder makes two shard jobs that finish together merge once.
    """
    try:
        lock = open(parts / ".merge.lock", "w")
    except FileNotFoundError:  # another job merged and removed the parts meanwhile
        return EmbeddingStore(final_path)
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final_path / "meta.json").is_file():
            return EmbeddingStore(final_path)
        chunks = _committed_chunks(parts)
        frame_tables = [chunk.frames() for chunk in chunks]
        where: dict[str, tuple[int, dict]] = {}
        for number, chunk in enumerate(chunks):
            for row in chunk.utterances().to_dict("records"):
                where.setdefault(row["id"], (number, row))  # a shard run twice at once: keep one copy
        frames, rows = [], []
        with StoreWriter(final_path, chunks[0].meta) as writer:  # the writer resets arrays and counts
            for utt in corpus.utterances:
                number, row = where[utt.id]
                chunk, span = chunks[number], slice(row["offset"], row["offset"] + row["n_frames"])
                rows.append({**row, "offset": writer.meta["n_frames"]})
                frames.append(frame_tables[number].iloc[span])
                writer.append({name: chunk.array(name)[span] for name in chunk.meta["arrays"]}, storage_dtype)
            store = writer.commit(_frame_table(frames, corpus.metadata_columns), pd.DataFrame(rows))
        shutil.rmtree(parts, ignore_errors=True)
    return store


def extract(
    checkpoint: Checkpoint,
    corpus: Corpus,
    cache_dir: Path,
    compute_dtype: torch.dtype,
    storage_dtype: str = "float32",
    batch_seconds: float = 120.0,
    window_seconds: float | None = 30.0,
    context_seconds: float = 1.0,
    shard: Shard | None = None,
    chunk_seconds: float = 600.0,
) -> tuple[EmbeddingStore | None, bool]:
    """Returns the store of `checkpoint` over `corpus` and whether it came from the cache.

    Utterances longer than `window_seconds` (None: none) are run in windows of that length with at
    least `context_seconds` of audio each side of the frames each window contributes. Work is saved
    in chunks of about `chunk_seconds` of audio, so a rerun after a crash or a kill extracts only what
    is missing. With `shard`, only that shard's utterances are extracted; the store is None until
    every shard is done, and the job that completes the last shard merges it.
    """
    key = store_key(checkpoint, corpus, compute_dtype, storage_dtype, window_seconds, context_seconds)
    final_path = Path(cache_dir) / "stores" / key
    if (final_path / "meta.json").is_file():
        log.info("cache hit: %s over %s -> %s", checkpoint.name, corpus.name, final_path)
        return EmbeddingStore(final_path), True
    parts = final_path.with_name(key + ".parts")
    durations = {utt.id: audio_duration(utt) for utt in corpus.utterances}
    wanted = corpus.utterances if shard is None else shard.select(corpus.utterances, durations)
    stored = _stored_ids(parts)
    pending = [utt for utt in wanted if utt.id not in stored]
    part_name = "" if shard is None else f" (shard {shard.index} of {shard.count})"
    if len(pending) < len(wanted):
        log.info("resuming%s: %d of %d utterances already extracted", part_name, len(wanted) - len(pending),
                 len(wanted))
    if pending:
        log.info("cache miss%s: extracting %s over %s -> %s", part_name, checkpoint.name, corpus.name, final_path)
        try:
            _extract_chunks(checkpoint, corpus, pending, durations, parts, compute_dtype, storage_dtype,
                            batch_seconds, window_seconds, context_seconds, chunk_seconds)
        except W2VLensError:
            if shard is None:  # bad input: fixing it changes the key, so these parts would never be used
                shutil.rmtree(parts, ignore_errors=True)
            raise
    missing = 0 if shard is None else len(corpus.utterances) - len(_stored_ids(parts))  # other jobs' shards
    if missing:
        log.info("%s over %s: %d utterances of other shards still to extract", checkpoint.name, corpus.name, missing)
        return None, False
    return _merge(parts, final_path, corpus, storage_dtype), False


def _extract_chunks(
    checkpoint: Checkpoint, corpus: Corpus, utterances: list[Utterance], durations: dict[str, float], parts: Path,
    compute_dtype: torch.dtype, storage_dtype: str, batch_seconds: float, window_seconds: float | None,
    context_seconds: float, chunk_seconds: float,
) -> None:
    """Runs the model over `utterances` and commits their views chunk by chunk into `parts`."""
    model = checkpoint.model
    base = model.base_model
    device = next(model.parameters()).device
    # Group-norm CNNs (wav2vec2-base style) give different frames when zero-padded, so their
    # feature extractors ask for no attention mask; data2vec-audio's stack of positional convolutions
    # carries the padding into an utterance's last frames. Such models run one utterance at a time.
    padded_batches = (bool(getattr(checkpoint.feature_extractor, "return_attention_mask", False))
                      and model.config.model_type not in _PADDING_SENSITIVE)
    stride = math.prod(model.config.conv_stride)
    if window_seconds:
        window, context = _window_samples(window_seconds, context_seconds, checkpoint.sample_rate, stride,
                                          receptive_field(model.config.conv_kernel, model.config.conv_stride))
    long_ids = {utt.id for utt in utterances if window_seconds and durations[utt.id] > window_seconds}
    cnn_outputs: list[torch.Tensor] = []
    hook = base.feature_extractor.register_forward_hook(lambda _m, _i, out: cnn_outputs.append(out))
    meta = {
        "checkpoint": checkpoint.name,
        "corpus": corpus.name,
        "num_layers": checkpoint.num_layers,
        "vocabulary": checkpoint.vocabulary,
        "frame_seconds": stride / checkpoint.sample_rate,
        "compute_dtype": str(compute_dtype),
        "window_seconds": window_seconds,
        "context_seconds": context_seconds,
    }
    parts.mkdir(parents=True, exist_ok=True)
    try:
        with _ChunkWriter(parts, meta, storage_dtype, chunk_seconds, corpus.metadata_columns) as chunks, \
                torch.inference_mode(), tqdm(total=round(sum(durations[u.id] for u in utterances)), unit="audio-s",
                                             desc=f"extract {checkpoint.name}") as progress:
            for batch in _batches(utterances, durations, batch_seconds, padded_batches, long_ids):
                if batch[0].id in long_ids:
                    offset = chunks.n_frames
                    for views in _windowed(checkpoint, batch[0], window, context, compute_dtype, cnn_outputs):
                        chunks.append(views)
                    chunks.record(batch[0], durations[batch[0].id], offset, chunks.n_frames - offset)
                    progress.update(round(durations[batch[0].id]))
                    continue
                audio = [load_audio(utt, checkpoint.sample_rate) for utt in batch]
                inputs = checkpoint.feature_extractor(
                    audio, sampling_rate=checkpoint.sample_rate, padding=True, return_tensors="pt",
                    return_attention_mask=padded_batches,
                )
                cnn_outputs.clear()
                outputs = model(
                    inputs.input_values.to(device, compute_dtype),
                    attention_mask=inputs["attention_mask"].to(device) if padded_batches else None,
                    output_hidden_states=True,
                )
                n_frames = base._get_feat_extract_output_lengths(torch.tensor([len(a) for a in audio])).tolist()
                cnn = cnn_outputs[0].transpose(1, 2)
                for index, (utt, count) in enumerate(zip(batch, n_frames, strict=True)):
                    offset = chunks.n_frames
                    if count > 0:
                        chunks.append(_views(outputs, cnn, index, slice(0, count), checkpoint.is_ctc))
                    chunks.record(utt, durations[utt.id], offset, count)
                progress.update(round(sum(durations[u.id] for u in batch)))
    finally:
        hook.remove()
