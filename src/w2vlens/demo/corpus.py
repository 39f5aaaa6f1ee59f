"""The embedded demo corpus: synthetic Finnish speech made with eSpeak NG, built and cached.

Each utterance is 1-3 phrases synthesised by one of ten speakers (eSpeak voice variants with
their own rate and pitch), with pauses of known length before, between and after the phrases,
and background noise at a recorded SNR. The test split also carries four simulated annotators'
transcripts. Everything follows from the seed, so a rebuild gives the same corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr
from tqdm import tqdm

from w2vlens.demo.annotators import PROFILES, annotate
from w2vlens.demo.espeak import EspeakSynthesizer
from w2vlens.demo.sentences import make_utterance

CORPUS_VERSION = 1
SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Speaker:
    """An eSpeak NG voice variant with the rate (words/min) and pitch (0-99) of one speaker."""

    name: str
    variant: str
    gender: str
    rate: int
    pitch: int


SPEAKERS = [
    Speaker("spk01", "m1", "male", 155, 40),
    Speaker("spk02", "m3", "male", 175, 30),
    Speaker("spk03", "m6", "male", 140, 50),
    Speaker("spk04", "m2", "male", 165, 45),
    Speaker("spk05", "m7", "male", 150, 35),
    Speaker("spk06", "f1", "female", 160, 60),
    Speaker("spk07", "f2", "female", 145, 70),
    Speaker("spk08", "f3", "female", 170, 55),
    Speaker("spk09", "f4", "female", 155, 65),
    Speaker("spk10", "f5", "female", 180, 75),
]


@dataclass(frozen=True)
class DemoCorpus:
    """Paths of a built demo corpus: one manifest per split, audio paths relative to them."""

    root: Path

    @property
    def train_manifest(self) -> Path:
        return self.root / "train.tsv"

    @property
    def test_manifest(self) -> Path:
        return self.root / "test.tsv"


def _noise(kind: str, length: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(length)
    if kind == "white":
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(length, d=1.0 / SAMPLE_RATE)
    freqs[0] = freqs[1]
    exponent = 0.5 if kind == "pink" else 1.0  # brown noise falls off twice as fast
    return np.fft.irfft(spectrum / freqs**exponent, n=length)


def _render(phrases: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, list[list[float]]]:
    """Joins phrase audio with random pauses; returns audio and the pause intervals (s)."""
    pieces: list[np.ndarray] = []
    pauses: list[list[float]] = []
    cursor = 0
    for index, phrase in enumerate(phrases + [None]):
        low, high = (0.25, 0.6) if index in (0, len(phrases)) else (0.3, 0.8)
        gap = int(rng.uniform(low, high) * SAMPLE_RATE)
        pauses.append([cursor / SAMPLE_RATE, (cursor + gap) / SAMPLE_RATE])
        pieces.append(np.zeros(gap, dtype=np.float32))
        cursor += gap
        if phrase is not None:
            pieces.append(phrase)
            cursor += len(phrase)
    return np.concatenate(pieces), pauses


def _utterance(uid: str, split: str, rng: random.Random, out_dir: Path) -> dict[str, object]:
    synth = EspeakSynthesizer()
    speaker = rng.choice(SPEAKERS)
    phrases = make_utterance(rng)
    audio_rng = np.random.default_rng(rng.getrandbits(32))
    voiced = [
        soxr.resample(
            synth.synthesize(p, f"fi+{speaker.variant}", speaker.rate, speaker.pitch),
            synth.sample_rate,
            SAMPLE_RATE,
        ).astype(np.float32)
        for p in phrases
    ]
    speech, pauses = _render(voiced, audio_rng)
    snr_db = round(float(audio_rng.uniform(10.0, 40.0)), 1)
    noise_kind = str(audio_rng.choice(["white", "pink", "brown"]))
    noise = _noise(noise_kind, len(speech), audio_rng)
    speech_power = float(np.mean(np.concatenate(voiced) ** 2))
    noise *= np.sqrt(speech_power / (10 ** (snr_db / 10)) / np.mean(noise**2))
    mixed = speech + noise.astype(np.float32)
    mixed *= 0.9 / max(1e-6, float(np.abs(mixed).max()))
    relative = Path("audio") / split / f"{uid}.wav"
    sf.write(out_dir / relative, mixed, SAMPLE_RATE, subtype="PCM_16")
    text = " ".join(phrases)
    row: dict[str, object] = {
        "id": uid,
        "audio": str(relative),
        "text": text,
        "speaker": speaker.name,
        "gender": speaker.gender,
        "snr_db": snr_db,
        "noise": noise_kind,
        "duration": round(len(mixed) / SAMPLE_RATE, 3),
        "pauses": json.dumps([[round(a, 3), round(b, 3)] for a, b in pauses]),
    }
    if split == "test":
        for name, profile in PROFILES.items():
            row[name] = annotate(text, profile, rng)
    return row


def build_demo_corpus(cache_dir: Path, seed: int = 0, n_train: int = 1500, n_test: int = 200) -> DemoCorpus:
    """Builds the corpus once per (version, seed, sizes) under `cache_dir`, atomically."""
    key = hashlib.sha1(f"{CORPUS_VERSION}-{seed}-{n_train}-{n_test}".encode()).hexdigest()[:12]
    final = Path(cache_dir) / "demo-corpus" / key
    if (final / "test.tsv").exists():
        return DemoCorpus(final)
    staging = final.with_name(f".{key}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for split, count in (("train", n_train), ("test", n_test)):
            (staging / "audio" / split).mkdir(parents=True)
            rng = random.Random(f"{seed}-{split}")
            rows = [
                _utterance(f"{split}-{index:05d}", split, rng, staging)
                for index in tqdm(range(count), desc=f"demo corpus: {split}", unit="utt")
            ]
            pd.DataFrame(rows).to_csv(staging / f"{split}.tsv", sep="\t", index=False)
        try:
            staging.rename(final)
        except OSError:  # another process finished the same corpus first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DemoCorpus(final)
