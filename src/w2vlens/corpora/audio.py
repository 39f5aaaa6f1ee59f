"""Audio loading: any file libsndfile reads (wav, flac, ogg, mp3, ...), any sample rate, int or float PCM,
as mono float32 at the model's sample rate; an utterance may be a segment of a longer recording.

Everything reads through `stream_audio`, block by block with soxr's streaming resampler (whose output
equals a one-shot resample), so a long recording can be read a window at a time in bounded memory.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from w2vlens.corpora.corpus import Utterance
from w2vlens.errors import W2VLensError

AudioSource = Path | Utterance  # a whole file, or an utterance (which may be a segment of its file)
BLOCK_SECONDS = 10.0


def _span(source: AudioSource) -> tuple[Path, float, float | None, str]:
    """File, start and end seconds, and the label errors name it by."""
    if isinstance(source, Utterance):
        if not source.is_segment:
            return source.audio, 0.0, None, str(source.audio)
        end = "end" if source.end is None else f"{source.end:.2f} s"
        label = f"{source.audio} (utterance {source.id}, {source.start:.2f}-{end})"
        return source.audio, source.start, source.end, label
    return Path(source), 0.0, None, str(source)


def _info(path: Path, label: str) -> sf._SoundFileInfo:
    if not path.is_file():
        raise W2VLensError(f"{label}: audio file not found")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise W2VLensError(f"{label}: unreadable audio ({error})") from None
    if info.frames == 0:
        raise W2VLensError(f"{label}: audio file is empty (0 samples)")
    return info


def _sample_range(source: AudioSource) -> tuple[Path, sf._SoundFileInfo, int, int, str]:
    """The file, its header and the [first, last) sample range of `source` at the file's rate."""
    path, start, end, label = _span(source)
    info = _info(path, label)
    first = round(start * info.samplerate)
    last = info.frames if end is None else min(round(end * info.samplerate), info.frames)
    if first >= last:
        raise W2VLensError(f"{label}: segment lies outside the recording ({info.frames / info.samplerate:.2f} s)")
    return path, info, first, last, label


def audio_duration(source: AudioSource) -> float:
    """Duration in seconds from the header alone; raises W2VLensError for bad files."""
    _, info, first, last, _ = _sample_range(source)
    return (last - first) / info.samplerate


def stream_audio(source: AudioSource, sample_rate: int, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Mono float32 blocks of `source` at `sample_rate`, read and resampled one block at a time."""
    path, info, first, last, label = _sample_range(source)
    blocksize = max(1, round(block_seconds * info.samplerate))
    resampler = soxr.ResampleStream(info.samplerate, sample_rate, 1, dtype="float32") \
        if info.samplerate != sample_rate else None
    try:
        with sf.SoundFile(str(path)) as handle:
            if first:
                handle.seek(first)
            remaining = last - first
            while remaining > 0:
                block = handle.read(min(blocksize, remaining), dtype="float32", always_2d=True)
                # A header may promise more samples than the file holds: stop at what is there.
                remaining = remaining - len(block) if len(block) else 0
                mono = block.mean(axis=1, dtype=np.float32)
                yield resampler.resample_chunk(mono, last=remaining == 0) if resampler else mono
    except (sf.LibsndfileError, RuntimeError) as error:
        raise W2VLensError(f"{label}: unreadable audio ({error})") from None


def load_audio(source: AudioSource, sample_rate: int) -> np.ndarray:
    """All of `source` (a file, or an utterance's segment of one) as mono float32 at `sample_rate`."""
    audio = np.concatenate(list(stream_audio(source, sample_rate)))
    if len(audio) == 0:
        raise W2VLensError(f"{_span(source)[3]}: audio file is empty (0 samples)")
    return audio


def audio_windows(source: AudioSource, sample_rate: int, spans: Iterable[tuple[int, int]]) -> Iterator[np.ndarray]:
    """The samples [start, stop) at `sample_rate` of each span, reading the file once, in order.

    Spans come in order and overlap or touch (each starts at or after the previous start and at or
    before the previous stop); memory holds one span and one block, whatever the recording's length.
    """
    blocks = stream_audio(source, sample_rate)
    buffer, buffer_start = np.zeros(0, np.float32), 0
    for start, stop in spans:
        pieces, held = [buffer[start - buffer_start :]], buffer_start + len(buffer)
        while held < stop:
            block = next(blocks, None)
            if block is None:
                raise W2VLensError(f"{_span(source)[3]}: audio ended at sample {held}, before {stop}")
            pieces.append(block)
            held += len(block)
        buffer, buffer_start = np.concatenate(pieces), start
        yield buffer[: stop - start]


def decode_audio(data: bytes, label: str) -> tuple[np.ndarray, int]:
    """Encoded audio bytes (any format libsndfile reads) as mono float32 at their own rate."""
    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise W2VLensError(f"{label}: unreadable audio ({error})") from None
    if len(audio) == 0:
        raise W2VLensError(f"{label}: audio is empty (0 samples)")
    return audio.mean(axis=1, dtype=np.float32), int(rate)


def write_flac(path: Path, blocks: Iterable[np.ndarray], sample_rate: int) -> None:
    """Writes mono float blocks to `path` as 24-bit FLAC under a temporary name, renamed when complete.

    24 bits hold 16- and 24-bit sources losslessly; floats are clipped to [-1, 1] first, since
    libsndfile wraps (not clips) out-of-range floats when it writes integers.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with sf.SoundFile(str(temp), "w", samplerate=sample_rate, channels=1, format="FLAC", subtype="PCM_24") as out:
            for block in blocks:
                out.write(np.clip(block, -1.0, 1.0))
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)


def transcode_to_flac(source: Path, target: Path) -> None:
    """Keeps any file libsndfile reads as mono 24-bit FLAC at its own sample rate, block by block."""
    rate = _info(source, str(source)).samplerate
    write_flac(target, stream_audio(source, rate), rate)
