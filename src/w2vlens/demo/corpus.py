"""The embedded demo corpus: synthetic Finnish speech made with eSpeak NG, built and cached.

Each utterance is 1-3 phrases synthesised by one of ten speakers (eSpeak voice variants with
their own rate and pitch), with pauses of known length before, between and after the phrases,
and background noise at a recorded SNR. The test split also carries four simulated annotators'
transcripts. Everything follows from the seed, so a rebuild gives the same corpus.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import shutil
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr
from tqdm import tqdm

from w2vlens.demo.annotators import PROFILES, annotate
from w2vlens.demo.espeak import EspeakSynthesizer
from w2vlens.demo.sentences import make_utterance

CORPUS_VERSION = 4
SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Speaker:
    """An eSpeak NG voice variant with the rate (words/min), pitch and pitch range (0-99) of one
    speaker."""

    name: str
    variant: str
    gender: str
    rate: int
    pitch: int
    pitch_range: int


# Voice variants whose first synthesis in a fresh process is reproducible (f2, f3 and f5, for
# one, are not), with each speaker's own rate, pitch and pitch range.
SPEAKERS = [
    Speaker("spk01", "m1", "male", 155, 35, 50),
    Speaker("spk02", "m3", "male", 175, 25, 40),
    Speaker("spk03", "m6", "male", 140, 45, 60),
    Speaker("spk04", "klatt6", "male", 165, 40, 70),
    Speaker("spk05", "m7", "male", 185, 50, 30),
    Speaker("spk06", "f1", "female", 160, 80, 60),
    Speaker("spk07", "klatt", "female", 145, 85, 70),
    Speaker("spk08", "klatt5", "female", 170, 75, 50),
    Speaker("spk09", "klatt6", "female", 155, 90, 80),
    Speaker("spk10", "klatt3", "female", 180, 70, 40),
]


SPLIT_SIZES = {"train": 1500, "test": 200}


@dataclass(frozen=True)
class DemoCorpus:
    """Manifests of the built demo splits, audio paths relative to them."""

    train_manifest: Path
    test_manifest: Path


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


@dataclass(frozen=True)
class _Plan:
    """Everything random about one utterance, drawn in order from the split's seeded stream."""

    uid: str
    split: str
    speaker: Speaker
    phrases: list[str]
    audio_seed: int
    annotations: dict[str, str]


def _plan(uid: str, split: str, rng: random.Random) -> _Plan:
    speaker = rng.choice(SPEAKERS)
    phrases = make_utterance(rng)
    audio_seed = rng.getrandbits(32)
    text = " ".join(phrases)
    annotations = {name: annotate(text, profile, rng) for name, profile in PROFILES.items()} if split == "test" else {}
    return _Plan(uid, split, speaker, phrases, audio_seed, annotations)


def _render_utterance(out_dir: Path, plan: _Plan) -> dict[str, object]:
    """Synthesises, mixes and writes one utterance; runs in a fresh worker process."""
    synth = EspeakSynthesizer()
    speaker = plan.speaker
    audio_rng = np.random.default_rng(plan.audio_seed)
    voiced = [
        soxr.resample(
            synth.synthesize(p, f"fi+{speaker.variant}", speaker.rate, speaker.pitch, speaker.pitch_range),
            synth.sample_rate,
            SAMPLE_RATE,
        ).astype(np.float32)
        for p in plan.phrases
    ]
    speech, pauses = _render(voiced, audio_rng)
    snr_db = round(float(audio_rng.uniform(10.0, 40.0)), 1)
    noise_kind = str(audio_rng.choice(["white", "pink", "brown"]))
    noise = _noise(noise_kind, len(speech), audio_rng)
    speech_power = float(np.mean(np.concatenate(voiced) ** 2))
    noise *= np.sqrt(speech_power / (10 ** (snr_db / 10)) / np.mean(noise**2))
    mixed = speech + noise.astype(np.float32)
    mixed *= 0.9 / max(1e-6, float(np.abs(mixed).max()))
    relative = Path("audio") / plan.split / f"{plan.uid}.wav"
    sf.write(out_dir / relative, mixed, SAMPLE_RATE, subtype="PCM_16")
    return {
        "id": plan.uid,
        "audio": str(relative),
        "text": " ".join(plan.phrases),
        "speaker": speaker.name,
        "gender": speaker.gender,
        "snr_db": snr_db,
        "noise": noise_kind,
        "duration": round(len(mixed) / SAMPLE_RATE, 3),
        "pauses": json.dumps([[round(a, 3), round(b, 3)] for a, b in pauses]),
        **plan.annotations,
    }


def _build_split(staging: Path, split: str, count: int, seed: int) -> None:
    (staging / "audio" / split).mkdir(parents=True)
    rng = random.Random(f"{seed}-{split}")
    plans = [_plan(f"{split}-{index:05d}", split, rng) for index in range(count)]
    # libespeak-ng carries state from one synthesis into the next, so the same text comes out
    # slightly differently depending on what came before. Each utterance is therefore made by
    # a process of its own, forked from a server that never synthesised anything.
    # Each child re-runs the parent's main module; under `python -m run` that module imports the
    # whole app (seconds per utterance), unless the server has imported it already.
    context = multiprocessing.get_context("forkserver")
    main_spec = getattr(sys.modules["__main__"], "__spec__", None)
    context.set_forkserver_preload([__name__] + ([main_spec.name] if main_spec is not None else []))
    with context.Pool(2, maxtasksperchild=1) as pool:
        rows = list(tqdm(pool.imap(partial(_render_utterance, staging), plans), total=count,
                         desc=f"demo corpus: {split}", unit="utt", mininterval=5))
    pd.DataFrame(rows).to_csv(staging / f"{split}.tsv", sep="\t", index=False)


def build_demo_split(cache_dir: Path, split: str, seed: int = 0, count: int | None = None) -> Path:
    """Builds one split once per (version, seed, split, size) under `cache_dir`, atomically, and
    returns its manifest. Splits draw from their own seeded streams, so building one alone gives
    the same audio as building both: a run reads only the test split and never waits for train."""
    count = SPLIT_SIZES[split] if count is None else count
    key = hashlib.sha1(f"{CORPUS_VERSION}-{seed}-{split}-{count}".encode()).hexdigest()[:12]
    final = Path(cache_dir) / "demo-corpus" / f"{split}-{key}"
    manifest = final / f"{split}.tsv"
    if manifest.exists():
        return manifest
    staging = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _build_split(staging, split, count, seed)
        try:
            staging.rename(final)
        except OSError:  # another process finished the same split first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def build_demo_corpus(cache_dir: Path, seed: int = 0, n_train: int = SPLIT_SIZES["train"],
                      n_test: int = SPLIT_SIZES["test"]) -> DemoCorpus:
    """Both splits (the demo pair's training needs both)."""
    return DemoCorpus(build_demo_split(cache_dir, "train", seed, n_train),
                      build_demo_split(cache_dir, "test", seed, n_test))
