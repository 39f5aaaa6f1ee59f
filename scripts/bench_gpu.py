"""GPU benchmark in one command: extraction with a wav2vec2-large-sized model, the disk it writes
to, K-means and the exact kNN graph of the projections, at the paper's scale and larger.

    python scripts/bench_gpu.py --out bench_gpu.md          # a few minutes on one H100/H200
    python scripts/bench_gpu.py --smoke --out /tmp/smoke.md  # seconds, on the CPU too: checks the script

It builds everything it measures in `--workdir` (a temporary folder by default): a randomly
initialised CTC checkpoint of wav2vec2-large's geometry (24 layers, 1024 hidden, 16 heads, 4096
intermediate, a head over 32 characters, tokenizer saved), one hour of 16 kHz audio in files of
4-20 s (noise and tones) and a Gaussian mixture of frames like a CTC model's (one blank-like
component with 40% of the frames). It prints one Markdown table and writes it to `--out`, with the
same rows as JSON beside it (`--out` with the suffix .json):

- disk write speed of the work folder, dd-style (large blocks written, then fsync);
- the extraction rows of `scripts/bench_extract.py` (`extract_rows`: bare forward, bare forward
  plus host copy, `extract()` per storage dtype and layer selection, store GB per audio hour);
- K-means (k = 36, the project's defaults: on a GPU the torch backend's whole-data Lloyd loop)
  on 180,710 and 1,000,000 frames x 1024 against scikit-learn's KMeans on the same machine and
  the same data, with the ratio of the two objectives, and spherical K-means;
- the exact kNN graph t-SNE needs (90 neighbours of every frame, 180,710 x 1024).

Imports beyond numpy, torch and transformers are lazy: scikit-learn for the baseline and the kNN
row, and whatever `bench_extract.py` needs for its rows (w2vlens.embeddings.extract reads audio with
soundfile and soxr and writes its frame tables with pandas).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a bare checkout too

from w2vlens.analysis.cluster import KMeans  # noqa: E402  (numpy and torch only)

SAMPLE_RATE = 16_000
CHARACTERS = list("abcdefghijklmnopqrstuvwxyzåäö'")  # with <pad>, <unk> and | : a 33-way CTC head
COLUMNS = ("stage", "seconds", "audio_s_per_s", "ratio_to_bare", "store_gb_per_hour", "detail")


def large_checkpoint(folder: Path, smoke: bool) -> Path:
    """A random wav2vec2-large-sized CTC checkpoint with its processor, saved to `folder`."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    if (folder / "config.json").exists():
        return folder
    torch.manual_seed(0)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2} | {ch: 3 + i for i, ch in enumerate(CHARACTERS)}
    geometry = (dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
                if smoke else dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                   intermediate_size=4096))
    config = Wav2Vec2Config(vocab_size=len(vocab), pad_token_id=0, feat_extract_norm="layer",
                            do_stable_layer_norm=True, conv_bias=True, **geometry)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), pad_token="<pad>", unk_token="<unk>",
                                     word_delimiter_token="|")
    features = Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True, return_attention_mask=True)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def write_audio(folder: Path, total_seconds: float, seed: int = 0) -> Path:
    """16 kHz 16-bit WAV files of 4-20 s (a tone in noise) adding up to `total_seconds`, with a
    manifest.csv (column `audio`) listing them. Written with the standard library's `wave`."""
    manifest = folder / "manifest.csv"
    if manifest.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names, written = [], 0.0
    while written < total_seconds:
        seconds = float(min(rng.uniform(4.0, 20.0), max(total_seconds - written, 1.0)))
        time_axis = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 1000) * time_axis)
        signal = tone + 0.1 * rng.standard_normal(len(time_axis))
        name = f"utt{len(names):05d}.wav"
        with wave.open(str(folder / name), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())
        names.append(name)
        written += seconds
    manifest.write_text("audio\n" + "\n".join(names) + "\n")
    return folder


def disk_write_speed(folder: Path, gigabytes: float) -> dict[str, object]:
    """dd-style: `gigabytes` of random bytes in 64 MiB blocks, then fsync; GB/s of the whole."""
    block = np.random.default_rng(0).integers(0, 256, 64 << 20, dtype=np.uint8).tobytes()
    blocks = max(1, round(gigabytes * 1e9 / len(block)))
    path = folder / "dd.bin"
    start = time.perf_counter()
    with open(path, "wb") as out:
        for _ in range(blocks):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    seconds = time.perf_counter() - start
    path.unlink()
    size = blocks * len(block) / 1e9
    return {"stage": "disk write (dd-style, fsync)", "seconds": seconds,
            "detail": f"{size / seconds:.2f} GB/s: {size:.1f} GB to {folder}"}


def extraction_rows(checkpoint: Path, audio: Path, device: str, workdir: Path) -> list[dict[str, object]]:
    """The rows of scripts/bench_extract.py's `extract_rows`, or one row saying it is missing."""
    path = Path(__file__).with_name("bench_extract.py")
    if not path.exists():
        return [{"stage": "extract rows: scripts/bench_extract.py not found"}]
    spec = importlib.util.spec_from_file_location("bench_extract", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.extract_rows(checkpoint, audio, device, workdir)


def mixture(n: int, dim: int, components: int, device: torch.device, seed: int = 0) -> np.ndarray:
    """`n` float32 frames from `components` Gaussians, the first with 40% of them (the blank);
    drawn with torch on `device` (seconds for a million rows), returned on the host."""
    generator = torch.Generator(device=device).manual_seed(seed)
    centers = 0.6 * torch.randn(components, dim, generator=generator, device=device)
    weights = torch.full((components,), 0.6 / (components - 1), device=device)
    weights[0] = 0.4
    points = torch.empty(n, dim)
    for start in range(0, n, 100_000):
        rows = min(100_000, n - start)
        labels = torch.multinomial(weights, rows, replacement=True, generator=generator)
        block = centers[labels] + torch.randn(rows, dim, generator=generator, device=device)
        points[start : start + rows] = block.cpu()
    return points.numpy()


def timed(function: Callable[[], object]) -> tuple[float, object]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def kmeans_rows(points: np.ndarray, k: int, baseline: bool) -> list[dict[str, object]]:
    """Our K-means (project defaults) against scikit-learn's KMeans (one k-means++ start, 50
    iterations) on the same frames, and our spherical K-means."""
    n, dim = points.shape
    seconds, ours = timed(lambda: KMeans(k, max_points_per_centroid=256).fit(points))
    detail = f"{ours.backend_}/{ours.device_}"
    if baseline:
        try:
            from sklearn.cluster import KMeans as SklearnKMeans
        except ImportError:
            detail += "; scikit-learn not installed: no baseline"
        else:
            base_seconds, base = timed(lambda: SklearnKMeans(k, n_init=1, max_iter=50, random_state=0).fit(points))
            detail += (f"; scikit-learn {base_seconds:.1f} s ({base_seconds / seconds:.1f}x); "
                       f"inertia {ours.inertia_ / base.inertia_:.4f}x scikit-learn's")
    rows = [{"stage": f"k-means {n:,} x {dim}, k={k}", "seconds": seconds, "detail": detail}]
    seconds, spherical = timed(lambda: KMeans(k, spherical=True, max_points_per_centroid=256).fit(points))
    rows.append({"stage": f"spherical k-means {n:,} x {dim}, k={k}", "seconds": seconds,
                 "detail": f"{spherical.backend_}/{spherical.device_}"})
    return rows


def knn_row(points: np.ndarray, neighbours: int) -> dict[str, object]:
    """The exact kNN graph t-SNE's affinities need (3 x perplexity 30), on the raw frames."""
    try:
        from w2vlens.analysis.reduce import knn_graph
    except ImportError as error:
        return {"stage": f"exact kNN graph, k={neighbours}", "detail": f"not run: {error}"}
    seconds, _ = timed(lambda: knn_graph(points, neighbours, device="auto"))
    where = "torch/cuda" if torch.cuda.is_available() else "faiss/cpu"
    return {"stage": f"exact kNN graph {len(points):,} x {points.shape[1]}, k={neighbours}", "seconds": seconds,
            "detail": where}


def markdown(rows: list[dict[str, object]], heading: str) -> str:
    def cell(value: object) -> str:
        if value is None:
            return "–"
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    lines = [heading, "", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def machine() -> str:
    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU"
    return f"{card}, {os.cpu_count()} CPUs, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="Markdown table here, JSON beside it (.json)")
    parser.add_argument("--workdir", type=Path, help="checkpoint, audio and stores (kept); default: a temp dir")
    parser.add_argument("--smoke", action="store_true", help="tiny model, 20 s of audio, small K-means: seconds")
    parser.add_argument("--sizes", default="180710,1000000", help="comma-separated frame counts for K-means")
    parser.add_argument("--baseline-max-n", type=int, default=1_000_000, help="scikit-learn only up to this many")
    parser.add_argument("--disk-gb", type=float, default=4.0, help="GB written for the disk speed")
    parser.add_argument("--audio-seconds", type=float, default=3600.0)
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.disk_gb, args.audio_seconds, dim = "3000", 0.128, 20.0, 64
    else:
        dim = 1024
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        run(args, workdir, dim)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path, dim: int) -> None:
    """Builds the inputs in `workdir`, measures every row, prints and writes the table."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"machine: {machine()}; work folder {workdir}", flush=True)

    rows: list[dict[str, object]] = []
    started = time.perf_counter()
    checkpoint = large_checkpoint(workdir / "checkpoint", args.smoke)
    audio = write_audio(workdir / "audio", args.audio_seconds)
    print(f"checkpoint and {args.audio_seconds:.0f} s of audio ready in {time.perf_counter() - started:.0f} s",
          flush=True)
    rows.append(disk_write_speed(workdir, args.disk_gb))
    rows += extraction_rows(checkpoint, audio, device, workdir / "extract")
    write_table(rows, args.out, args.smoke)

    KMeans(4).fit(np.random.default_rng(0).normal(size=(4096, 8)).astype(np.float32))  # CUDA context, not timed
    sizes = [int(size) for size in args.sizes.split(",")]
    for n in sizes:
        points = mixture(n, dim, 36, torch.device(device))
        rows += kmeans_rows(points, 36, baseline=n <= args.baseline_max_n)
        if n == sizes[0]:
            rows.append(knn_row(points, min(90, n - 1)))
        del points
        table = write_table(rows, args.out, args.smoke)
    for row in rows:
        print(" | ".join(f"{key}={value}" for key, value in row.items()), flush=True)
    print("\n" + table)


def write_table(rows: list[dict[str, object]], out: Path, smoke: bool) -> str:
    """Writes the rows measured so far to `out` (Markdown, returned) and its .json twin, so that a
    run cut short by a time limit still leaves what it measured."""
    table = markdown(rows, f"GPU benchmark on {machine()}{' (smoke mode)' if smoke else ''}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine(), "smoke": smoke, "rows": rows},
                                                   indent=1, ensure_ascii=False))
    return table


if __name__ == "__main__":
    main()
