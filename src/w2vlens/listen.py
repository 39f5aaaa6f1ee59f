"""Listening to clusters: for each cluster a short montage of random member frames, each heard
with some context around it and separated by silence, and an HTML page with a player per cluster.

A speech researcher hears at once whether a cluster holds one sound, a sound in some context, or
a speaker; the picks are random but fixed by the seed.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import soundfile as sf

from w2vlens.corpora.audio import load_audio
from w2vlens.corpora.corpus import Utterance

SAMPLE_RATE = 16000
FADE_SECONDS = 0.005  # a short fade in and out, so the cuts do not click
# In MLflow's viewer (a blob: URL) the players read from the server that sent the page.
_FROM_SERVER = ("if (location.protocol === 'blob:') { const server = new URL(location.href.slice(5)).origin; "
                "for (const audio of document.querySelectorAll('audio[data-served]')) "
                "audio.src = server + audio.dataset.served; }")
AudioReader = Callable[[int, float, float], np.ndarray]  # (utterance index, start s, end s) -> samples


def pick_frames(clusters: np.ndarray, n_frames: int, seed: int) -> dict[int, np.ndarray]:
    """Up to `n_frames` random frames of each cluster, in corpus order."""
    rng = np.random.default_rng(seed)
    picks = {}
    for cluster in np.unique(clusters):
        members = np.flatnonzero(clusters == cluster)
        picks[int(cluster)] = np.sort(rng.choice(members, min(n_frames, len(members)), replace=False))
    return picks


def cluster_montages(clusters: np.ndarray, offsets: np.ndarray, read: AudioReader, frame_seconds: float, seed: int,
                     n_frames: int = 12, context: float = 0.15, gap: float = 0.25,
                     sample_rate: int = SAMPLE_RATE) -> dict[int, np.ndarray]:
    """Each cluster's montage: `n_frames` random frames (fewer if it is smaller), each the
    `context` seconds either side of the frame's centre (zero-padded at the utterance's edges, so
    every clip has the same length), `gap` seconds of silence between clips.

    `offsets` are the utterances' first frames in the corpus (the store's `offset` column, sorted);
    `read(u, start, end)` gives utterance u's samples from `start` to `end` seconds, clipped to it.
    """
    clip_length, gap_length = round(2 * context * sample_rate), round(gap * sample_rate)
    fade = np.minimum(1.0, np.minimum(np.arange(clip_length) + 1, np.arange(clip_length)[::-1] + 1)
                      / max(1, round(FADE_SECONDS * sample_rate))).astype(np.float32)
    montages = {}
    for cluster, frames in pick_frames(clusters, n_frames, seed).items():
        pieces = []
        for frame in frames:
            utterance = int(np.searchsorted(offsets, frame, side="right") - 1)
            centre = (frame - offsets[utterance] + 0.5) * frame_seconds
            start = centre - context
            samples = read(utterance, max(0.0, start), start + 2 * context)[:clip_length]
            lead = min(clip_length - len(samples), round(max(0.0, -start) * sample_rate))
            clip = np.zeros(clip_length, np.float32)
            clip[lead : lead + len(samples)] = samples
            pieces += [clip * fade, np.zeros(gap_length, np.float32)]
        montage = np.concatenate(pieces[:-1])
        peak = np.abs(montage).max()
        montages[cluster] = montage * (0.9 / peak) if peak > 0 else montage
    return montages


def utterance_reader(utterances: pd.DataFrame, sample_rate: int = SAMPLE_RATE) -> AudioReader:
    """Reads from the corpus audio of a store's utterance table (its `audio` and segment bounds),
    each utterance decoded once."""
    rows = utterances.to_dict("records")

    @lru_cache(maxsize=64)
    def samples(index: int) -> np.ndarray:
        row = rows[index]
        end = row.get("segment_end")
        utterance = Utterance(id=str(row["id"]), audio=Path(row["audio"]), start=float(row.get("segment_start") or 0.0),
                              end=None if end is None or pd.isna(end) else float(end))
        return load_audio(utterance, sample_rate)

    def read(index: int, start: float, end: float) -> np.ndarray:
        return samples(index)[round(start * sample_rate) : round(end * sample_rate)]

    return read


def montage_path(cluster: int, width: int = 2) -> str:
    """`audio/cluster_07.wav`: the montage's path, relative to the page."""
    return f"audio/cluster_{cluster:0{width}d}.wav"


def write_montages(montages: Mapping[int, np.ndarray], folder: Path, sample_rate: int = SAMPLE_RATE) -> dict[int, str]:
    """Writes each montage as 16-bit WAV under `folder/audio/`; returns their relative paths."""
    width = max(2, len(str(max(montages, default=0))))
    paths = {cluster: montage_path(cluster, width) for cluster in montages}
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    for cluster, montage in montages.items():
        sf.write(folder / paths[cluster], montage, sample_rate, subtype="PCM_16")
    return paths


def clusters_page(clusters: np.ndarray, labels: np.ndarray, audio: Mapping[int, str], title: str,
                  n_frames: int, context: float, served_at: str | None = None, top: int = 3) -> str:
    """An HTML page: one row per cluster with its size, its most frequent labels with their shares,
    and a player for its montage at its relative `audio` path (the page downloaded with its audio
    folder). MLflow's artifact viewer shows the page from a blob: URL, where relative paths resolve
    nowhere: there a script points the players at `served_at` + path on the server that sent it
    (MLflow's `/get-artifact?run_uuid=...&path=`)."""
    table = pd.crosstab(pd.Series(clusters, name="cluster"), pd.Series(np.asarray(labels).astype(str), name="label"))
    rows = []
    for cluster, counts in table.iterrows():
        size = int(counts.sum())
        majority = ", ".join(f"<b>{html.escape(str(label))}</b> {_share(count / size)}"
                             for label, count in counts.sort_values(ascending=False).head(top).items() if count)
        player = ""
        if int(cluster) in audio:
            served = f' data-served="{html.escape(served_at + quote(audio[int(cluster)]))}"' if served_at else ""
            player = f'<audio controls preload="metadata" src="{html.escape(audio[int(cluster)])}"{served}></audio>'
        rows.append(f"<tr><td>{int(cluster)}</td><td>{size:,}</td><td>{majority}</td><td>{player}</td></tr>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
            f"<p>Each player: {n_frames} random frames of the cluster, each with {context * 1000:.0f} ms of "
            "audio either side, separated by short silences.</p>\n"
            "<table><tr><th>cluster</th><th>frames</th><th>most frequent labels</th><th>listen</th></tr>\n"
            + "\n".join(rows) + f"\n</table>\n<script>{_FROM_SERVER}</script></body></html>\n")


def _share(share: float) -> str:
    return f"{share:.0%}" if share >= 0.005 else "&lt;1%"
