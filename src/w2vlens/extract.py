"""One forward pass per batch gives every view of a checkpoint; results land in the store.

Utterances longer than `window_seconds` are run in overlapping windows (`plan_windows`) whose frames
are stitched by time, reading one window of audio at a time: memory follows the window size, not
the recording's length.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


def extract(
    checkpoint: Checkpoint,
    corpus: Corpus,
    cache_dir: Path,
    compute_dtype: torch.dtype,
    storage_dtype: str = "float32",
    batch_seconds: float = 120.0,
    window_seconds: float | None = 30.0,
    context_seconds: float = 1.0,
) -> tuple[EmbeddingStore, bool]:
    """Returns the store of `checkpoint` over `corpus` and whether it came from the cache.

    Utterances longer than `window_seconds` (None: none) are run in windows of that length with at
    least `context_seconds` of audio each side of the frames each window contributes.
    """
    key = store_key(checkpoint, corpus, compute_dtype, storage_dtype, window_seconds, context_seconds)
    final_path = Path(cache_dir) / "stores" / key
    if (final_path / "meta.json").is_file():
        log.info("cache hit: %s over %s -> %s", checkpoint.name, corpus.name, final_path)
        return EmbeddingStore(final_path), True
    log.info("cache miss: extracting %s over %s -> %s", checkpoint.name, corpus.name, final_path)
    durations = {utt.id: audio_duration(utt) for utt in corpus.utterances}
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
    long_ids = {uid for uid, seconds in durations.items() if window_seconds and seconds > window_seconds}
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
    frames: list[pd.DataFrame] = []
    rows: list[dict] = []

    def record(utt: Utterance, offset: int, count: int) -> None:
        if count <= 0:
            raise W2VLensError(f"{utt.audio}: audio too short for one model frame")
        frames.append(pd.DataFrame({
            "utterance": utt.id,
            "frame": np.arange(count),
            "start": np.arange(count) * meta["frame_seconds"],
            **utt.metadata,
        }))
        segment = {"segment_start": utt.start, "segment_end": utt.end} if utt.is_segment else {}
        rows.append({"id": utt.id, "audio": str(utt.audio), "text": utt.text, **utt.annotators, **utt.metadata,
                     **segment, "duration": durations[utt.id], "offset": offset, "n_frames": count})

    try:
        with StoreWriter(final_path, meta) as writer, torch.inference_mode(), tqdm(
            total=round(sum(durations.values())), unit="audio-s", desc=f"extract {checkpoint.name}"
        ) as progress:
            for batch in _batches(corpus.utterances, durations, batch_seconds, padded_batches, long_ids):
                if batch[0].id in long_ids:
                    offset = writer.meta["n_frames"]
                    for views in _windowed(checkpoint, batch[0], window, context, compute_dtype, cnn_outputs):
                        writer.append(views, storage_dtype)
                    record(batch[0], offset, writer.meta["n_frames"] - offset)
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
                    record(utt, writer.meta["n_frames"], count)
                    writer.append(_views(outputs, cnn, index, slice(0, count), checkpoint.is_ctc), storage_dtype)
                progress.update(round(sum(durations[u.id] for u in batch)))
            frame_table = pd.concat(frames, ignore_index=True)
            for column in corpus.metadata_columns:
                frame_table[column] = _numeric_if_possible(frame_table[column])
            store = writer.commit(frame_table, pd.DataFrame(rows))
    finally:
        hook.remove()
    return store, False
