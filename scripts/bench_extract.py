"""Benchmark of `extract()` against the bare model forward over the same batches, in one run.

Writes synthetic audio files (4-20 s noisy tones), then times, on the same device:
- the bare forward: the model over the extractor's batch plan, audio already decoded and padded,
  hidden states computed but never copied to the host;
- `extract()` keeping the paper's views (CNN output, last layer, logits), in the default storage
  dtype (float16 for half-precision compute, else float32) and in the other one;
- `extract()` keeping every view (CNN, every hidden state, logits).
Each row gives audio seconds per second, the ratio to the bare forward, and the store's size per
hour of audio. On the CPU it also measures the peak host memory of extraction over a short corpus
and one 6x longer, each in a fresh process, and that of the bare forward over the same batches.

    python scripts/bench_extract.py                         # demo pair, CPU, 10 minutes of audio
    python scripts/bench_extract.py --seconds 1200 --device cuda
    python scripts/bench_extract.py --seconds 0             # only the peak-memory rows

`extract_rows(checkpoint_dir, audio_dir, device, workdir)` gives the rows for any checkpoint and
folder of audio; `scripts/bench_gpu.py` calls it with a wav2vec2-large-sized model on a GPU.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from w2vlens.corpora.audio import audio_duration, load_audio
from w2vlens.corpora.corpus import Corpus, Utterance
from w2vlens.embeddings.extract import extract, padded_batches, plan_batches, resolve_storage_dtype
from w2vlens.embeddings.models import load_checkpoint, resolve_device, resolve_dtype
from w2vlens.paths import DEMO_PAIR_DIR

BATCH_SECONDS = 120.0
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}


def write_audio(folder: Path, seconds: float, seed: int = 0, sample_rate: int = 16000) -> Path:
    """Files of 4-20 s (noisy gliding tones) adding up to about `seconds`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total, index = 0.0, 0
    while total < seconds:
        length = float(rng.uniform(4.0, 20.0))
        t = np.arange(int(length * sample_rate)) / sample_rate
        tone = 0.3 * np.sin(2 * np.pi * (150 + 80 * np.sin(2 * np.pi * 0.2 * t + index)) * t)
        audio = tone + 0.05 * rng.standard_normal(len(t))
        sf.write(folder / f"u{index:05d}.wav", audio.astype(np.float32), sample_rate, subtype="PCM_16")
        total += length
        index += 1
    return folder


def audio_corpus(audio_dir: Path) -> Corpus:
    files = sorted(p for p in Path(audio_dir).iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    return Corpus(Path(audio_dir).name, [Utterance(p.stem, p) for p in files])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def padded_inputs(checkpoint: object, corpus: Corpus) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """The model inputs (values, attention mask) of the extractor's batch plan, batch by batch."""
    durations = {u.id: audio_duration(u) for u in corpus.utterances}
    padded = padded_batches(checkpoint)
    for batch in plan_batches(corpus.utterances, durations, BATCH_SECONDS, padded, set()):
        audio = [load_audio(u, checkpoint.sample_rate) for u in batch]
        inputs = checkpoint.feature_extractor(audio, sampling_rate=checkpoint.sample_rate, padding=True,
                                              return_tensors="pt", return_attention_mask=padded)
        yield inputs.input_values, inputs["attention_mask"] if padded else None


def forward(checkpoint: object, values: torch.Tensor, mask: torch.Tensor | None, device: torch.device,
            dtype: torch.dtype) -> None:
    """One forward pass with every hidden state, whose outputs are dropped."""
    with torch.inference_mode():
        checkpoint.model(values.to(device, dtype), attention_mask=None if mask is None else mask.to(device),
                         output_hidden_states=True)


def bare_forward(checkpoint: object, corpus: Corpus, device: torch.device, dtype: torch.dtype) -> float:
    """Seconds of the model alone over the extractor's batches: inputs decoded and padded beforehand."""
    prepared = list(padded_inputs(checkpoint, corpus))
    forward(checkpoint, *prepared[0], device, dtype)  # warm-up: kernels, allocator
    _sync(device)
    start = time.perf_counter()
    for values, mask in prepared:
        forward(checkpoint, values, mask, device, dtype)
    _sync(device)
    return time.perf_counter() - start


def _store_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def extract_rows(checkpoint_dir: Path, audio_dir: Path, device: str, workdir: Path, repeats: int = 1) -> list[dict]:
    """Rows (stage, seconds, audio_s_per_s, ratio_to_bare, store_gb_per_hour, detail) for the bare
    forward and `extract()` with the paper's views (default and other storage dtype) and with every
    view, for the CTC checkpoint in `checkpoint_dir` over the audio files in `audio_dir`. Each time
    is the best of `repeats` (the stages take turns, so a busy machine slows them alike)."""
    torch_device = resolve_device(device)
    dtype = resolve_dtype("auto", torch_device)
    checkpoint = load_checkpoint(str(checkpoint_dir), require_ctc=True, device=torch_device, dtype=dtype)
    corpus = audio_corpus(audio_dir)
    hours = sum(audio_duration(u) for u in corpus.utterances) / 3600
    default_storage = resolve_storage_dtype("auto", dtype)
    other_storage = "float32" if default_storage == "float16" else "float16"
    paper = ["cnn", f"layer_{checkpoint.num_layers:02d}", "logits"]
    runs = [("extract, paper views", paper, default_storage), ("extract, paper views", paper, other_storage),
            ("extract, all views", None, default_storage)]
    bare, times, stores = float("inf"), [float("inf")] * len(runs), [None] * len(runs)
    for repeat in range(repeats):
        bare = min(bare, bare_forward(checkpoint, corpus, torch_device, dtype))
        for number, (_, arrays, storage) in enumerate(runs):
            cache = Path(workdir) / f"extract-cache-{number}-{repeat}"
            _sync(torch_device)
            start = time.perf_counter()
            stores[number], _ = extract(checkpoint, corpus, cache, dtype, storage_dtype=storage,
                                        batch_seconds=BATCH_SECONDS, arrays=arrays)
            _sync(torch_device)
            times[number] = min(times[number], time.perf_counter() - start)
            if repeat + 1 < repeats:
                shutil.rmtree(cache)
    rows = [{"stage": "bare forward", "seconds": bare, "audio_s_per_s": hours * 3600 / bare, "ratio_to_bare": 1.0,
             "store_gb_per_hour": None, "detail": f"{dtype}, {len(corpus.utterances)} files, {hours * 60:.1f} min"}]
    for (stage, _, storage), seconds, store in zip(runs, times, stores, strict=True):
        rows.append({"stage": stage, "seconds": seconds, "audio_s_per_s": hours * 3600 / seconds,
                     "ratio_to_bare": bare / seconds, "store_gb_per_hour": _store_bytes(store.path) / 1e9 / hours,
                     "detail": f"{storage} storage, {len(store.array_names)} arrays"})
    return rows


_PEAK_RSS = """
import re, sys, torch
from pathlib import Path
sys.path.insert(0, sys.argv[5])
from bench_extract import audio_corpus, forward, padded_inputs
from w2vlens.embeddings.extract import extract
from w2vlens.embeddings.models import load_checkpoint
checkpoint = load_checkpoint(sys.argv[2], True, torch.device("cpu"), torch.float32)
corpus = audio_corpus(Path(sys.argv[3]))
before = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
if sys.argv[1] == "extract":
    extract(checkpoint, corpus, Path(sys.argv[4]), torch.float32, arrays=None)
else:
    for values, mask in padded_inputs(checkpoint, corpus):
        forward(checkpoint, values, mask, torch.device("cpu"), torch.float32)
after = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
print(before, after)
"""


def peak_memory_rows(checkpoint_dir: Path, workdir: Path, short_seconds: float) -> list[dict]:
    """Peak host memory (VmHWM, MiB) of a fresh process extracting every view over a short corpus and
    one 6x longer, and of one running the bare forward over the same batches (streamed, nothing
    kept): what the model's own allocations add as the corpus grows."""
    rows = []
    for scale in (1, 6):
        audio = write_audio(workdir / f"rss-audio-{scale}", short_seconds * scale, seed=scale)
        for mode in ("extract", "bare forward"):
            result = subprocess.run([sys.executable, "-c", _PEAK_RSS, mode, str(checkpoint_dir), str(audio),
                                     str(workdir / f"rss-cache-{scale}"), str(Path(__file__).parent)],
                                    capture_output=True, text=True, check=True)
            before, after = (int(kb) / 1024 for kb in result.stdout.split()[-2:])
            rows.append({"stage": f"peak host memory, {mode}, {scale}x corpus", "seconds": None,
                         "audio_s_per_s": None, "ratio_to_bare": None, "store_gb_per_hour": None,
                         "detail": f"{short_seconds * scale / 60:.1f} min of audio: {after:.0f} MiB "
                                   f"({before:.0f} MiB before)"})
    return rows


def markdown(rows: list[dict]) -> str:
    def cell(value: object, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    lines = ["| stage | seconds | audio-s/s | ratio to bare | store GB per audio hour | detail |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['stage']} | {cell(row['seconds'], '.2f')} | {cell(row['audio_s_per_s'], '.0f')} | "
                     f"{cell(row['ratio_to_bare'], '.0%')} | {cell(row['store_gb_per_hour'], '.3f')} | "
                     f"{row['detail']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEMO_PAIR_DIR / "finetuned")
    parser.add_argument("--seconds", type=float, default=600.0,
                        help="audio of the timed rows, in seconds; 0 skips them")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many timings per stage")
    parser.add_argument("--memory-seconds", type=float, default=600.0,
                        help="the short corpus of the peak-memory rows (the long one is 6x); 0 skips them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        rows = []
        if args.seconds:
            audio = write_audio(workdir / "audio", args.seconds)
            rows += extract_rows(args.checkpoint, audio, args.device, workdir, args.repeats)
        if args.memory_seconds and Path("/proc/self/status").is_file():
            rows += peak_memory_rows(args.checkpoint, workdir, args.memory_seconds)
    print(f"threads: torch {torch.get_num_threads()}, machine {re.sub(' +', ' ', _cpu_name())}")
    print(markdown(rows))


def _cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    if info.is_file():
        match = re.search(r"model name\s*:\s*(.+)", info.read_text())
        if match:
            return match.group(1)
    return "unknown"


if __name__ == "__main__":
    main()
