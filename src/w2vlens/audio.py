"""Audio loading: any file libsndfile reads, as mono float32 at the model's sample rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from w2vlens.errors import W2VLensError


def audio_duration(path: Path) -> float:
    """Duration in seconds from the header alone; raises W2VLensError for bad files."""
    info = _info(path)
    return info.frames / info.samplerate


def _info(path: Path) -> sf._SoundFileInfo:
    if not path.is_file():
        raise W2VLensError(f"{path}: audio file not found")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise W2VLensError(f"{path}: unreadable audio ({error})") from None
    if info.frames == 0:
        raise W2VLensError(f"{path}: audio file is empty (0 samples)")
    return info


def load_audio(path: Path, sample_rate: int) -> np.ndarray:
    """Reads `path`, averages channels to mono and resamples to `sample_rate` with soxr."""
    _info(path)
    try:
        audio, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise W2VLensError(f"{path}: unreadable audio ({error})") from None
    mono = audio.mean(axis=1)
    if file_rate != sample_rate:
        mono = soxr.resample(mono, file_rate, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)
