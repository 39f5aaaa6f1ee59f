"""Cluster montages: their length and rate, determinism from the seed, and the page listing clusters."""

from pathlib import Path

import numpy as np
import soundfile as sf

from w2vlens.listen import cluster_montages, clusters_page, write_montages

RATE = 16000
FRAME = 0.02


def ramp_reader(lengths: list[float]):
    """Utterance u's audio is the constant u + 1 (scaled), so every clip tells where it came from."""
    def read(index: int, start: float, end: float) -> np.ndarray:
        stop = min(end, lengths[index])
        return np.full(max(0, round(stop * RATE) - round(start * RATE)), (index + 1) / 10, np.float32)
    return read


def corpus(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[float]]:
    counts = [50, 80, 30]  # frames per utterance
    clusters = np.random.default_rng(seed).integers(0, 4, sum(counts))
    clusters[:3] = 9  # a small cluster of the first three frames, at the very start of the audio
    return clusters, np.cumsum([0] + counts[:-1]), [n * FRAME for n in counts]


def test_montage_length_and_sample_rate(tmp_path: Path) -> None:
    clusters, offsets, lengths = corpus()
    montages = cluster_montages(clusters, offsets, ramp_reader(lengths), FRAME, seed=0, n_frames=12,
                                context=0.15, gap=0.25, sample_rate=RATE)
    assert sorted(montages) == sorted(np.unique(clusters).tolist())
    clip, gap = round(0.3 * RATE), round(0.25 * RATE)
    assert len(montages[0]) == 12 * clip + 11 * gap  # every clip full length, even at utterance edges
    assert len(montages[9]) == 3 * clip + 2 * gap  # a small cluster plays all its frames
    assert np.all(montages[9][: round(0.1 * RATE)] == 0)  # before the first frame's audio: zero padding
    assert np.abs(montages[0]).max() <= 0.9 + 1e-6
    paths = write_montages(montages, tmp_path, RATE)
    assert paths[9] == "audio/cluster_09.wav"
    audio, rate = sf.read(tmp_path / paths[0])
    assert rate == RATE and len(audio) == len(montages[0])


def test_montages_are_fixed_by_the_seed() -> None:
    clusters, offsets, lengths = corpus()
    first = cluster_montages(clusters, offsets, ramp_reader(lengths), FRAME, seed=3)
    again = cluster_montages(clusters, offsets, ramp_reader(lengths), FRAME, seed=3)
    other = cluster_montages(clusters, offsets, ramp_reader(lengths), FRAME, seed=4)
    assert all(np.array_equal(first[c], again[c]) for c in first)
    assert any(not np.array_equal(first[c], other[c]) for c in first)


def test_page_names_every_cluster_with_its_majority_label_and_player() -> None:
    clusters = np.array([0, 0, 0, 1, 1, 12])
    labels = np.array(["a", "a", "o", "silence", "silence", "ä"])
    page = clusters_page(clusters, labels, {0: "audio/cluster_00.wav", 1: "audio/cluster_01.wav",
                                            12: "audio/cluster_12.wav"}, "demo finetuned", 12, 0.15)
    rows = page.split("<tr>")[2:]
    assert [row.split("</td>")[0] for row in rows] == ["<td>0", "<td>1", "<td>12"]
    assert "<b>a</b> 67%" in rows[0] and "<b>silence</b> 100%" in rows[1] and "<b>ä</b>" in rows[2]
    assert all(f'src="audio/cluster_{c:02d}.wav"' in page for c in (0, 1, 12))
    served = clusters_page(clusters, labels, {0: "audio/cluster_00.wav"}, "t", 12, 0.15,
                           "/get-artifact?run_uuid=r&path=")
    assert 'src="audio/cluster_00.wav" data-served="/get-artifact?run_uuid=r&amp;path=audio/cluster_00.wav"' in served
