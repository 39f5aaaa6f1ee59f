"""Extraction: a pipelined forward pass per batch keeps the views a run needs in the store.

Audio is read and resampled by loader threads ahead of the model; on a GPU, batches go up from
pinned memory and the kept views come back on a side stream, overlapping the next forward; a
writer thread appends them to the store in large sequential blocks. The batch plan (length-sorted
batches under `batch_seconds` of padded audio) is a function of the corpus and the settings alone,
so a resumed, sharded or extended extraction runs the same batches and stores the same numbers.

Utterances longer than `window_seconds` are run in overlapping windows (`plan_windows`) whose frames
are stitched by time, reading one window of audio at a time: memory follows the window size, not
the recording's length.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import queue
import shutil
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
import torch
from filelock import FileLock

from w2vlens.choices import STORAGE_DTYPES
from w2vlens.corpora.audio import audio_duration, audio_windows, load_audio, stream_audio
from w2vlens.corpora.corpus import Corpus, Utterance
from w2vlens.embeddings.models import Checkpoint
from w2vlens.embeddings.store import (
    STORE_VERSION,
    ArrayFile,
    EmbeddingStore,
    StoreDamaged,
    StoreWriter,
    add_arrays,
)
from w2vlens.errors import W2VLensError
from w2vlens.progress import Progress

log = logging.getLogger(__name__)

_PADDING_SENSITIVE = {"data2vec-audio"}  # model types whose frames change when a batch pads them
_FREE_SPACE_MARGIN = 64 << 20  # bytes left free after a merge, for tables and meta


def resolve_storage_dtype(storage_dtype: str, compute_dtype: torch.dtype) -> str:
    """`auto` stores float16 when the model computes in half precision, float32 otherwise."""
    if storage_dtype == "auto":
        return "float16" if compute_dtype in (torch.float16, torch.bfloat16) else "float32"
    if storage_dtype not in STORAGE_DTYPES:
        raise W2VLensError(f"extract.storage_dtype={storage_dtype!r}: use auto, {' or '.join(STORAGE_DTYPES)}")
    return storage_dtype


def checkpoint_arrays(checkpoint: Checkpoint) -> list[str]:
    """Every view one forward pass of `checkpoint` gives: cnn, each hidden state, and logits for CTC."""
    layers = [f"layer_{i:02d}" for i in range(checkpoint.num_layers + 1)]
    return ["cnn", *layers, *(["logits"] if checkpoint.is_ctc else [])]


def padded_batches(checkpoint: Checkpoint) -> bool:
    """Whether utterances may share a zero-padded batch without changing their frames.

    Group-norm CNNs (wav2vec2-base style) give different frames when zero-padded, so their feature
    extractors ask for no attention mask; data2vec-audio's stack of positional convolutions carries
    the padding into an utterance's last frames. Such models run one utterance at a time.
    """
    return (bool(getattr(checkpoint.feature_extractor, "return_attention_mask", False))
            and checkpoint.model.config.model_type not in _PADDING_SENSITIVE)


def store_key(checkpoint: Checkpoint, corpus: Corpus, compute_dtype: torch.dtype, storage_dtype: str,
              window_seconds: float | None = None, context_seconds: float = 0.0,
              batch_seconds: float | None = None) -> str:
    """Changes whenever the checkpoint, the audio or an option that alters stored values changes:
    the compute and storage dtypes, the windows and (for models run in padded batches) the batch
    plan. Transcripts, metadata, the kept layers, chunking and sharding are not part of it."""
    options = {
        "version": STORE_VERSION,
        "checkpoint": checkpoint.fingerprint,
        "corpus": corpus.fingerprint,
        "compute_dtype": str(compute_dtype),
        "storage_dtype": storage_dtype,
        "window": [window_seconds, context_seconds if window_seconds else None],
        "batch_seconds": batch_seconds if padded_batches(checkpoint) else None,
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


def plan_batches(utterances: list[Utterance], durations: dict[str, float], batch_seconds: float, padded: bool,
                 alone: set[str]) -> list[list[Utterance]]:
    """Length-sorted batches whose padded size stays under `batch_seconds` of audio; the utterances
    in `alone` (the windowed ones) get a batch each. A function of its arguments only, so every run
    over the same corpus with the same settings (resumed, sharded or extended) runs the same batches."""
    ordered = sorted(utterances, key=lambda u: durations[u.id])  # stable: ties keep corpus order
    batches: list[list[Utterance]] = []
    batch: list[Utterance] = []
    for utt in ordered:
        if batch and (not padded or utt.id in alone or batch[0].id in alone
                      or durations[utt.id] * (len(batch) + 1) > batch_seconds):
            batches.append(batch)
            batch = []
        batch.append(utt)
    if batch:
        batches.append(batch)
    return batches


@dataclass(frozen=True)
class Shard:
    """Shard `index` (0-based) of `count`: a contiguous run of the batch plan holding about 1/count of
    the corpus's audio. Whole batches, so sharding never changes a stored value."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise W2VLensError(f"extract.shard={self.index} must lie in 0..{self.count - 1} "
                               f"(extract.num_shards={self.count})")

    def select(self, batches: list[list[Utterance]], durations: dict[str, float]) -> list[list[Utterance]]:
        """The batches whose audio starts in this shard's share of the total duration."""
        total = sum(durations[u.id] for batch in batches for u in batch)
        chosen, elapsed = [], 0.0
        for batch in batches:
            if self.index * total <= elapsed * self.count < (self.index + 1) * total:
                chosen.append(batch)
            elapsed += sum(durations[u.id] for u in batch)
        return chosen


@dataclass
class _Prepared:
    """A batch ready for the model: padded input (pinned on CUDA) and each utterance's frame count;
    for a windowed utterance, no input (it is read window by window)."""

    batch: list[Utterance]
    inputs: torch.Tensor | None
    mask: torch.Tensor | None
    n_frames: list[int]


def _check_finite(audio: np.ndarray, utt: Utterance) -> np.ndarray:
    if not np.isfinite(audio).all():
        raise W2VLensError(f"{utt.audio}: audio of {utt.id!r} has non-finite samples (NaN or inf)")
    return audio


class _Loader:
    """Reads, checks and pads batches in worker threads, `depth` batches ahead of the model."""

    def __init__(self, checkpoint: Checkpoint, padded: bool, long_ids: set[str], workers: int, pin: bool) -> None:
        self.checkpoint, self.padded, self.long_ids, self.pin = checkpoint, padded, long_ids, pin
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="w2vlens-load")
        self.depth = max(1, workers) + 1

    def prepare(self, batch: list[Utterance]) -> _Prepared:
        if batch[0].id in self.long_ids:
            return _Prepared(batch, None, None, [])
        rate = self.checkpoint.sample_rate
        audio = [_check_finite(load_audio(utt, rate), utt) for utt in batch]
        inputs = self.checkpoint.feature_extractor(audio, sampling_rate=rate, padding=True, return_tensors="pt",
                                                   return_attention_mask=self.padded)
        lengths = torch.tensor([len(a) for a in audio])
        n_frames = self.checkpoint.model.base_model._get_feat_extract_output_lengths(lengths).tolist()
        for utt, count in zip(batch, n_frames, strict=True):
            if count <= 0:
                raise W2VLensError(f"{utt.audio}: audio too short for one model frame")
        values = inputs.input_values
        mask = inputs["attention_mask"] if self.padded else None
        if self.pin:
            values, mask = values.pin_memory(), (mask.pin_memory() if mask is not None else None)
        return _Prepared(batch, values, mask, n_frames)

    def __call__(self, batches: Iterable[list[Utterance]]) -> Iterator[_Prepared]:
        pending: deque[Future] = deque()
        try:
            for batch in batches:
                pending.append(self.pool.submit(self.prepare, batch))
                if len(pending) > self.depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            self.pool.shutdown(wait=True, cancel_futures=True)


class _WriterThread:
    """Runs write jobs in order in one background thread; a bounded queue keeps host memory flat.
    The first error stops the work and is raised in the caller at its next `put` or at `close`."""

    def __init__(self, depth: int) -> None:
        self.jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="w2vlens-write", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            if self.error is None:
                try:
                    job()
                except BaseException as error:  # handed to the caller thread
                    self.error = error

    def put(self, job: Callable[[], None]) -> None:
        if self.error is not None:
            raise self.error
        self.jobs.put(job)

    def close(self, raise_error: bool = True) -> None:
        self.jobs.put(None)
        self.thread.join()
        if raise_error and self.error is not None:
            raise self.error


class _ChunkWriter:
    """Writes extracted batches into committed chunks of about `chunk_seconds` of audio each.

    A chunk is a small store in the parts folder, published atomically after a whole batch: a crash
    or a kill loses at most the chunk being written, and a rerun skips the committed batches.
    """

    def __init__(self, parts: Path, meta: dict, storage_dtype: str, chunk_seconds: float) -> None:
        self.parts, self.meta, self.storage_dtype, self.chunk_seconds = parts, meta, storage_dtype, chunk_seconds
        self.writer: StoreWriter | None = None

    def __enter__(self) -> _ChunkWriter:
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, trace: TracebackType | None) -> None:
        if self.writer is not None and kind is not None:
            self.writer.__exit__(kind, value, trace)
        elif self.writer is not None:
            self._commit()

    def _open(self) -> StoreWriter:
        if self.writer is None:
            self.writer = StoreWriter(self.parts / f"chunk-{uuid.uuid4().hex}", self.meta)
            self.rows: list[dict] = []
            self.seconds = 0.0
        return self.writer

    @property
    def n_frames(self) -> int:
        """Frames in the open chunk so far: where the next utterance's frames start."""
        return self._open().meta["n_frames"]

    def write(self, arrays: dict[str, np.ndarray]) -> None:
        """Appends the same number of rows to every kept array."""
        writer = self._open()
        for name, rows in arrays.items():
            writer.write(name, rows, self.storage_dtype)
        writer.add_frames(len(next(iter(arrays.values()))))

    def record(self, utt: Utterance, duration: float, offset: int, count: int) -> None:
        """Adds the utterance-table row of an utterance whose frames were written."""
        segment = {"segment_start": utt.start, "segment_end": utt.end} if utt.is_segment else {}
        self.rows.append({"id": utt.id, "audio": str(utt.audio), **segment, "duration": duration,
                          "offset": offset, "n_frames": count})
        self.seconds += duration

    def end_batch(self) -> None:
        """Commits the chunk once it holds `chunk_seconds` of audio; called between batches only."""
        if self.writer is not None and self.seconds >= self.chunk_seconds:
            self._commit()

    def _commit(self) -> None:
        self.writer.commit(pd.DataFrame(self.rows))
        self.writer.__exit__(None, None, None)
        self.writer = None


class _Transfer:
    """Brings a batch's kept views to the host in the storage dtype, with a flag saying whether
    they are all finite. On CUDA the copy runs on a side stream into pinned memory, so it overlaps
    the next forward; `ready` waits for it."""

    def __init__(self, device: torch.device, storage_dtype: str) -> None:
        self.dtype = getattr(torch, storage_dtype)
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def __call__(self, views: dict[str, torch.Tensor]) -> Callable[[], tuple[dict[str, np.ndarray], bool]]:
        converted = {name: values.to(self.dtype) for name, values in views.items()}
        finite = torch.stack([torch.isfinite(values).all() for values in converted.values()]).all()
        if self.stream is None:
            return lambda: ({name: values.numpy() for name, values in converted.items()}, bool(finite))
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            host = {name: torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
                    for name, values in converted.items()}
            flag = torch.empty((), dtype=torch.bool, pin_memory=True)
            for name, values in converted.items():
                host[name].copy_(values, non_blocking=True)
                values.record_stream(self.stream)
            flag.copy_(finite, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.stream)

        def ready() -> tuple[dict[str, np.ndarray], bool]:
            done.synchronize()
            return {name: values.numpy() for name, values in host.items()}, bool(flag)

        return ready


def _batch_views(outputs: object, cnn: torch.Tensor, names: set[str]) -> dict[str, torch.Tensor]:
    """The kept views of a forward pass, each (batch, frames, dim), in a fixed order."""
    views = {"cnn": cnn} if "cnn" in names else {}
    if outputs.hidden_states is not None:
        views |= {f"layer_{i:02d}": h for i, h in enumerate(outputs.hidden_states) if f"layer_{i:02d}" in names}
    if "logits" in names:
        views["logits"] = outputs.logits
    return views


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
              names: set[str], cnn_outputs: list[torch.Tensor]) -> Iterator[dict[str, torch.Tensor]]:
    """The kept views of a long utterance, window by window, each window's share of frames in order.

    A first pass over the audio gives its length and, for models whose feature extractor normalises
    its input, the whole utterance's mean and variance: each window is normalised with those, so the
    model sees the same input as in one pass over the utterance.
    """
    model, sample_rate = checkpoint.model, checkpoint.sample_rate
    n_samples, total, squares = 0, 0.0, 0.0
    for block in stream_audio(utt, sample_rate):
        _check_finite(block, utt)
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
        outputs = model(values[None].to(device, compute_dtype), output_hidden_states=_needs_hidden(names))
        frames = slice(plan.keep_start - plan.first, plan.keep_stop - plan.first)
        views = _batch_views(outputs, cnn_outputs[0].transpose(1, 2), names)
        yield {name: values[:, frames] for name, values in views.items()}


def _needs_hidden(names: set[str]) -> bool:
    return any(name.startswith("layer_") for name in names)


def _write_batch(chunks: _ChunkWriter, batch: list[Utterance], durations: dict[str, float],
                 n_frames: list[int], ready: Callable[[], tuple[dict[str, np.ndarray], bool]]) -> None:
    """Writer-thread job: one block per array holding the batch's frames, then the utterance rows."""
    arrays, finite = ready()
    if not finite:
        raise W2VLensError(f"{', '.join(str(u.audio) for u in batch)}: the model's outputs are not finite "
                           "(NaN or inf) for this audio; nothing was stored")
    offset = chunks.n_frames
    chunks.write({name: np.concatenate([values[index, :count] for index, count in enumerate(n_frames)])
                  for name, values in arrays.items()})
    for utt, count in zip(batch, n_frames, strict=True):
        chunks.record(utt, durations[utt.id], offset, count)
        offset += count
    chunks.end_batch()


def _extract_batches(
    checkpoint: Checkpoint, batches: list[list[Utterance]], durations: dict[str, float], long_ids: set[str],
    parts: Path, meta: dict, names: set[str], compute_dtype: torch.dtype, storage_dtype: str,
    windows: tuple[int, int] | None, chunk_seconds: float, loader_workers: int,
) -> None:
    """Runs the model over `batches`, keeping the views in `names`, committing chunk by chunk into `parts`."""
    model = checkpoint.model
    device = next(model.parameters()).device
    padded = padded_batches(checkpoint)
    hidden = _needs_hidden(names)
    cnn_outputs: list[torch.Tensor] = []
    hook = model.base_model.feature_extractor.register_forward_hook(lambda _m, _i, out: cnn_outputs.append(out))
    loader = _Loader(checkpoint, padded, long_ids, loader_workers, pin=device.type == "cuda")
    transfer = _Transfer(device, storage_dtype)
    parts.mkdir(parents=True, exist_ok=True)
    writer = _WriterThread(depth=2)
    prepared_batches = loader(batches)
    try:
        with _ChunkWriter(parts, meta, storage_dtype, chunk_seconds) as chunks:
            try:
                with torch.inference_mode(), Progress(round(sum(durations[u.id] for b in batches for u in b)),
                                                      f"extract {checkpoint.name}", "audio-s") as progress:
                    for prepared in prepared_batches:
                        batch = prepared.batch
                        if prepared.inputs is None:
                            _run_windowed(checkpoint, batch[0], durations, windows, compute_dtype, names,
                                          cnn_outputs, transfer, writer, chunks)
                        else:
                            cnn_outputs.clear()
                            outputs = model(
                                prepared.inputs.to(device, compute_dtype, non_blocking=True),
                                attention_mask=(prepared.mask.to(device, non_blocking=True)
                                                if prepared.mask is not None else None),
                                output_hidden_states=hidden,
                            )
                            ready = transfer(_batch_views(outputs, cnn_outputs[0].transpose(1, 2), names))
                            del outputs
                            cnn_outputs.clear()
                            writer.put(lambda b=batch, n=prepared.n_frames, r=ready:
                                       _write_batch(chunks, b, durations, n, r))
                        progress.update(round(sum(durations[u.id] for u in batch)))
            finally:
                prepared_batches.close()  # stops the loader threads
                writer.close(raise_error=False)  # before the chunk writer closes what the thread writes to
            if writer.error is not None:
                raise writer.error
    finally:
        hook.remove()


def _run_windowed(checkpoint: Checkpoint, utt: Utterance, durations: dict[str, float], windows: tuple[int, int],
                  compute_dtype: torch.dtype, names: set[str], cnn_outputs: list[torch.Tensor],
                  transfer: _Transfer, writer: _WriterThread, chunks: _ChunkWriter) -> None:
    """Queues a long utterance's windows for the writer, then its utterance row."""
    start: list[int] = []
    writer.put(lambda: start.append(chunks.n_frames))
    for views in _windowed(checkpoint, utt, *windows, compute_dtype, names, cnn_outputs):
        ready = transfer(views)

        def write_window(r: Callable = ready) -> None:
            arrays, finite = r()
            if not finite:
                raise W2VLensError(f"{utt.audio}: the model's outputs are not finite (NaN or inf) for this audio; "
                                   "nothing was stored")
            chunks.write({name: values[0] for name, values in arrays.items()})

        writer.put(write_window)

    def finish() -> None:
        chunks.record(utt, durations[utt.id], start[0], chunks.n_frames - start[0])
        chunks.end_batch()

    writer.put(finish)


def _committed_chunks(parts: Path, names: set[str]) -> list[EmbeddingStore]:
    """The finished chunks of a parts folder that keep every array in `names`, in a fixed order.
    Their checksums are verified (a resume follows a crash or a kill); a damaged one is removed."""
    chunks = []
    for path in sorted(parts.glob("chunk-*")) if parts.is_dir() else []:
        if not (path / "meta.json").is_file():
            continue
        try:
            chunk = EmbeddingStore(path, verify=True)
        except StoreDamaged as error:
            log.warning("damaged chunk, extracting its utterances again: %s", error)
            shutil.rmtree(path, ignore_errors=True)
            continue
        if names <= chunk.array_names:
            chunks.append(chunk)
    return chunks


def _stored_ids(chunks: list[EmbeddingStore]) -> set[str]:
    return {uid for chunk in chunks for uid in chunk.utterances()["id"]}


def _check_free_space(folder: Path, needed: int, parts: Path) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed + _FREE_SPACE_MARGIN:
        raise W2VLensError(f"{folder}: {free / 1e6:.0f} MB free, merging the store needs {needed / 1e6:.0f} MB; "
                           f"free some space and rerun (the extracted parts in {parts} are kept)")


def _merge(parts: Path, final_path: Path, corpus: Corpus, names: set[str], meta: dict,
           existing: EmbeddingStore | None) -> EmbeddingStore:
    """Publishes the arrays `names` of the chunks in corpus order, as a new store or added to
    `existing`, then removes the parts. The order does not depend on how the work was split or
    interrupted. The caller holds the store's lock."""
    chunks = _committed_chunks(parts, names)
    where: dict[str, tuple[EmbeddingStore, dict]] = {}
    for chunk in chunks:
        for row in chunk.utterances().to_dict("records"):
            where.setdefault(row["id"], (chunk, row))  # a batch run twice (killed mid-commit): keep one copy
    rows, offset = [], 0
    for utt in corpus.utterances:
        chunk, row = where[utt.id]
        rows.append({**row, "offset": offset, "source": (chunk, row["offset"])})
        offset += row["n_frames"]
    specs = chunks[0].meta["arrays"]
    _check_free_space(final_path.parent, sum(offset * specs[n]["dim"] * np.dtype(specs[n]["dtype"]).itemsize
                                             for n in names), parts)

    def copy(name: str, write: Callable[[np.ndarray], None]) -> None:
        # Plain reads, not memory maps: mapped pages would count in the process's memory for the
        # whole merge, so its peak would grow with the store.
        row_bytes = specs[name]["dim"] * np.dtype(specs[name]["dtype"]).itemsize
        handles = {id(chunk): open(chunk.path / f"{name}.bin", "rb") for chunk in chunks}
        try:
            for row in rows:
                chunk, start = row["source"]
                handle = handles[id(chunk)]
                handle.seek(start * row_bytes)
                data = handle.read(row["n_frames"] * row_bytes)
                write(np.frombuffer(data, dtype=specs[name]["dtype"]).reshape(row["n_frames"], specs[name]["dim"]))
        finally:
            for handle in handles.values():
                handle.close()

    table = pd.DataFrame([{k: v for k, v in row.items() if k != "source"} for row in rows])
    if existing is not None:
        if not table["n_frames"].equals(existing.utterances()["n_frames"]):
            raise W2VLensError(f"{existing.path}: the new arrays' frame counts differ from the store's")
        files = {}
        for name in sorted(names):
            spec = specs[name]
            files[name] = ArrayFile(final_path / f".{name}.bin.{os.getpid()}.tmp", spec["dim"], spec["dtype"])
            copy(name, files[name].write)
        store = add_arrays(existing, files)
    else:
        with StoreWriter(final_path, meta) as writer:
            for name in sorted(names):
                copy(name, lambda rows_, n=name: writer.write(n, rows_, specs[n]["dtype"]))
            writer.add_frames(offset)
            store = writer.commit(table)
    shutil.rmtree(parts, ignore_errors=True)
    return EmbeddingStore(store.path, corpus)


def _open_store(path: Path, corpus: Corpus, verify: bool, repair: bool) -> EmbeddingStore | None:
    """The committed store at `path`, None if there is none; a damaged one is reported and, with
    `repair` (the caller holds its lock), removed so that it is extracted again."""
    if not (path / "meta.json").is_file():
        return None
    try:
        return EmbeddingStore(path, corpus, verify=verify)
    except StoreDamaged as error:
        if not repair:
            return None
        log.warning("damaged store %s (%s): extracting it again", path, error)
        shutil.rmtree(path, ignore_errors=True)
        return None


@contextmanager
def _cache_errors(folder: Path) -> Iterator[None]:
    """Turns a full disk or an unwritable cache into one line naming the folder."""
    try:
        yield
    except OSError as error:
        if isinstance(error, W2VLensError) or error.errno not in (errno.ENOSPC, errno.EROFS, errno.EACCES,
                                                                     errno.EPERM, errno.EDQUOT):
            raise
        reason = "disk full" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "not writable"
        raise W2VLensError(f"{folder}: embedding cache {reason} ({error.strerror}); free space or set cache_dir "
                           "(W2VLENS_CACHE) to a writable folder with room, then rerun") from None


def extract(
    checkpoint: Checkpoint,
    corpus: Corpus,
    cache_dir: Path,
    compute_dtype: torch.dtype,
    storage_dtype: str = "auto",
    batch_seconds: float = 120.0,
    window_seconds: float | None = 30.0,
    context_seconds: float = 1.0,
    shard: Shard | None = None,
    chunk_seconds: float = 600.0,
    arrays: Iterable[str] | None = None,
    verify: bool = False,
    loader_workers: int = 2,
) -> tuple[EmbeddingStore | None, bool]:
    """Returns the store of `checkpoint` over `corpus`, keeping at least `arrays` (None: every view),
    and whether it came from the cache; its tables carry `corpus`'s transcripts and metadata.

    A cached store that lacks some of `arrays` is extended: only the missing views are extracted and
    added. Utterances longer than `window_seconds` (None: none) are run in windows of that length
    with at least `context_seconds` of audio each side of the frames each window contributes. Work
    is saved in chunks of about `chunk_seconds` of audio, so a rerun after a crash or a kill extracts
    only what is missing. With `shard`, only that shard's batches are extracted; the store is None
    until every shard is done, and the job that completes the last shard merges it. A lock per store
    makes a concurrent run wait for, then reuse, this one's work.
    """
    storage_dtype = resolve_storage_dtype(storage_dtype, compute_dtype)
    available = checkpoint_arrays(checkpoint)
    wanted = set(available) if arrays is None else set(arrays)
    if wanted - set(available):
        raise W2VLensError(f"{checkpoint.name}: no view {sorted(wanted - set(available))} "
                           f"(it has {available[0]}, {available[1]}..{available[-1]})")
    padded = padded_batches(checkpoint)
    stride = math.prod(checkpoint.model.config.conv_stride)
    windows = None
    if window_seconds:
        windows = _window_samples(window_seconds, context_seconds, checkpoint.sample_rate, stride,
                                  receptive_field(checkpoint.model.config.conv_kernel,
                                                  checkpoint.model.config.conv_stride))
    key = store_key(checkpoint, corpus, compute_dtype, storage_dtype, window_seconds, context_seconds, batch_seconds)
    stores = Path(cache_dir) / "stores"
    final_path = stores / key
    store = _open_store(final_path, corpus, verify, repair=False)
    if store is not None and wanted <= store.array_names:
        log.info("cache hit: %s over %s -> %s", checkpoint.name, corpus.name, final_path)
        return store, True
    with _cache_errors(Path(cache_dir)):
        stores.mkdir(parents=True, exist_ok=True)
        (Path(cache_dir) / "locks").mkdir(exist_ok=True)

        def lock(name: str) -> FileLock:
            return FileLock(Path(cache_dir) / "locks" / f"{name}.lock")

        durations = {utt.id: audio_duration(utt) for utt in corpus.utterances}
        long_ids = {u.id for u in corpus.utterances if window_seconds and durations[u.id] > window_seconds}
        plan = plan_batches(corpus.utterances, durations, batch_seconds, padded, long_ids)
        meta = {"checkpoint": checkpoint.name, "corpus": corpus.name, "num_layers": checkpoint.num_layers,
                "vocabulary": checkpoint.vocabulary, "frame_seconds": stride / checkpoint.sample_rate,
                "compute_dtype": str(compute_dtype), "storage_dtype": storage_dtype,
                "batch_seconds": batch_seconds if padded else None, "window_seconds": window_seconds,
                "context_seconds": context_seconds}
        parts = final_path.with_name(key + ".parts")

        def run(batches: list[list[Utterance]], label: str) -> EmbeddingStore | None | bool:
            """Extracts what `batches` lack; returns a complete store, or True when it was already there."""
            existing = _open_store(final_path, corpus, verify, repair=True)
            if existing is not None and wanted <= existing.array_names:
                return True
            targets = wanted - (existing.array_names if existing is not None else set())
            stored = _stored_ids(_committed_chunks(parts, targets))
            pending = [batch for batch in batches if any(u.id not in stored for u in batch)]
            done = sum(len(batch) for batch in batches) - sum(len(batch) for batch in pending)
            if done:
                log.info("resuming%s: %d of %d utterances already extracted", label, done,
                         sum(len(batch) for batch in batches))
            if pending:
                action = f"extending {final_path} with {', '.join(sorted(targets))}" if existing is not None \
                    else f"extracting -> {final_path}"
                log.info("cache miss%s: %s over %s: %s", label, checkpoint.name, corpus.name, action)
                try:
                    _extract_batches(checkpoint, pending, durations, long_ids, parts, meta, targets, compute_dtype,
                                     storage_dtype, windows, chunk_seconds, loader_workers)
                except W2VLensError:
                    if shard is None:  # bad input: fixing it changes the key, so these parts would never be used
                        shutil.rmtree(parts, ignore_errors=True)
                    raise
            return existing

        if shard is None:
            with lock(key):
                existing = run(plan, "")
                if existing is True:
                    return EmbeddingStore(final_path, corpus), True
                return _merge(parts, final_path, corpus, wanted - _names(existing), meta, existing), False
        label = f" (shard {shard.index} of {shard.count})"
        with lock(f"{key}.shard-{shard.index}-of-{shard.count}"):
            existing = run(shard.select(plan, durations), label)
        if existing is True:
            return EmbeddingStore(final_path, corpus), True
        with lock(key):
            existing = _open_store(final_path, corpus, verify, repair=True)
            targets = wanted - _names(existing)
            if not targets:
                return existing, False
            missing = len(corpus.utterances) - len(_stored_ids(_committed_chunks(parts, targets)))
            if missing:
                log.info("%s over %s: %d utterances of other shards still to extract", checkpoint.name, corpus.name,
                         missing)
                return None, False
            return _merge(parts, final_path, corpus, targets, meta, existing), False


def _names(store: EmbeddingStore | None) -> set[str]:
    return store.array_names if store is not None else set()
