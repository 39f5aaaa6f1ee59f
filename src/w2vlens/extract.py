"""One forward pass per batch gives every view of a checkpoint; results land in the store."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from w2vlens.audio import audio_duration, load_audio
from w2vlens.data import Corpus, Utterance
from w2vlens.errors import W2VLensError
from w2vlens.models import Checkpoint
from w2vlens.store import STORE_VERSION, EmbeddingStore, StoreWriter

log = logging.getLogger(__name__)


def store_key(checkpoint: Checkpoint, corpus: Corpus, compute_dtype: torch.dtype, storage_dtype: str) -> str:
    """Changes whenever the checkpoint, the audio or an option that alters values changes."""
    options = {
        "version": STORE_VERSION,
        "checkpoint": checkpoint.fingerprint,
        "corpus": corpus.fingerprint,
        "compute_dtype": str(compute_dtype),
        "storage_dtype": storage_dtype,
    }
    return hashlib.sha1(json.dumps(options, sort_keys=True).encode()).hexdigest()[:20]


def _batches(
    utterances: list[Utterance], durations: dict[str, float], batch_seconds: float, padded_batches: bool
) -> Iterator[list[Utterance]]:
    """Length-sorted batches whose padded size stays under `batch_seconds` of audio."""
    ordered = sorted(utterances, key=lambda u: durations[u.id])
    batch: list[Utterance] = []
    for utt in ordered:
        if batch and (not padded_batches or durations[utt.id] * (len(batch) + 1) > batch_seconds):
            yield batch
            batch = []
        batch.append(utt)
    if batch:
        yield batch


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
) -> tuple[EmbeddingStore, bool]:
    """Returns the store of `checkpoint` over `corpus` and whether it came from the cache."""
    final_path = Path(cache_dir) / "stores" / store_key(checkpoint, corpus, compute_dtype, storage_dtype)
    if (final_path / "meta.json").is_file():
        log.info("cache hit: %s over %s -> %s", checkpoint.name, corpus.name, final_path)
        return EmbeddingStore(final_path), True
    log.info("cache miss: extracting %s over %s -> %s", checkpoint.name, corpus.name, final_path)
    durations = {utt.id: audio_duration(utt.audio) for utt in corpus.utterances}
    model = checkpoint.model
    base = model.base_model
    device = next(model.parameters()).device
    # Group-norm CNNs (wav2vec2-base style) give different frames when zero-padded, so their
    # feature extractors ask for no attention mask; such models are run one utterance at a time.
    padded_batches = bool(getattr(checkpoint.feature_extractor, "return_attention_mask", False))
    cnn_outputs: list[torch.Tensor] = []
    hook = base.feature_extractor.register_forward_hook(lambda _m, _i, out: cnn_outputs.append(out))
    meta = {
        "checkpoint": checkpoint.name,
        "corpus": corpus.name,
        "num_layers": checkpoint.num_layers,
        "vocabulary": checkpoint.vocabulary,
        "frame_seconds": math.prod(model.config.conv_stride) / checkpoint.sample_rate,
        "compute_dtype": str(compute_dtype),
    }
    frames: list[pd.DataFrame] = []
    rows: list[dict] = []
    try:
        with StoreWriter(final_path, meta) as writer, torch.inference_mode(), tqdm(
            total=round(sum(durations.values())), unit="audio-s", desc=f"extract {checkpoint.name}"
        ) as progress:
            for batch in _batches(corpus.utterances, durations, batch_seconds, padded_batches):
                audio = [load_audio(utt.audio, checkpoint.sample_rate) for utt in batch]
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
                    if count <= 0:
                        raise W2VLensError(f"{utt.audio}: audio too short for one model frame")
                    views = {"cnn": cnn[index, :count]}
                    views |= {f"layer_{i:02d}": h[index, :count] for i, h in enumerate(outputs.hidden_states)}
                    if checkpoint.is_ctc:
                        views["logits"] = outputs.logits[index, :count]
                    offset = writer.meta["n_frames"]
                    writer.append({k: v.float().cpu().numpy() for k, v in views.items()}, storage_dtype)
                    frames.append(pd.DataFrame({
                        "utterance": utt.id,
                        "frame": np.arange(count),
                        "start": np.arange(count) * meta["frame_seconds"],
                        **utt.metadata,
                    }))
                    rows.append({"id": utt.id, "audio": str(utt.audio), "text": utt.text, **utt.annotators,
                                 **utt.metadata, "duration": durations[utt.id], "offset": offset,
                                 "n_frames": count})
                progress.update(round(sum(durations[u.id] for u in batch)))
            frame_table = pd.concat(frames, ignore_index=True)
            for column in corpus.metadata_columns:
                frame_table[column] = _numeric_if_possible(frame_table[column])
            store = writer.commit(frame_table, pd.DataFrame(rows))
    finally:
        hook.remove()
    return store, False
