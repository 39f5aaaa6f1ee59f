"""Long recordings: windows that stitch every frame exactly once and match one pass away from their edges."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO_ROOT, write_long_recording

from w2vlens.corpora.audio import audio_windows, load_audio
from w2vlens.corpora.corpus import Corpus, Utterance, load_manifest
from w2vlens.embeddings import extract as extract_module
from w2vlens.embeddings.extract import Window, extract, plan_windows
from w2vlens.embeddings.models import load_checkpoint
from w2vlens.errors import W2VLensError
from w2vlens.labelling.frames import label_frames

CPU = torch.device("cpu")
STRIDE, FIELD = 320, 400  # wav2vec2's frame stride and receptive field in samples


def _margin(frames: np.ndarray, window: Window) -> np.ndarray:
    """Samples between each frame's receptive field and the nearer edge of `window`."""
    return np.minimum(frames * STRIDE - window.start, window.stop - frames * STRIDE - FIELD)


@pytest.mark.parametrize("n_samples", [48_000 + 320, 48_000 + 639, 48_000 + 640, 160_000, 1_234_567])
def test_windows_take_every_frame_once_from_its_most_central_window(n_samples: int) -> None:
    window, context = 48_000, 8_000  # 3 s windows, 0.5 s context
    windows = plan_windows(n_samples, window, context, STRIDE, FIELD)
    n_frames = (n_samples - FIELD) // STRIDE + 1
    kept = np.concatenate([np.arange(w.keep_start, w.keep_stop) for w in windows])
    assert np.array_equal(kept, np.arange(n_frames))
    assert windows[-1].stop == n_samples
    assert all(w.stop - w.start == window for w in windows[:-1]) and window <= windows[-1].stop - windows[-1].start
    for w in windows:
        assert w.start % STRIDE == 0 and w.first == w.start // STRIDE
        assert w.first <= w.keep_start and w.keep_stop <= w.first + (w.stop - w.start - FIELD) // STRIDE + 1
        frames = np.arange(w.keep_start, w.keep_stop)
        # each frame's distance from the edges of its window is the largest any window gives it
        margin = _margin(frames, w)
        assert np.all(margin >= np.max([_margin(frames, v) for v in windows], axis=0))
        inner = (frames * STRIDE > context) & (frames * STRIDE + FIELD < n_samples - context)
        assert np.all(margin[inner] >= context - STRIDE)


def test_audio_windows_are_slices_of_the_recording(long_recording: Path) -> None:
    whole = load_audio(long_recording, 16000)
    spans = [(0, 500_000), (400_000, 900_000), (850_000, len(whole))]
    for (start, stop), window in zip(spans, audio_windows(long_recording, 16000, spans), strict=True):
        assert np.array_equal(window, whole[start:stop])


def test_three_minute_file_matches_one_pass(tiny_pair: tuple[Path, Path], long_recording: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = load_checkpoint(str(tiny_pair[1]), require_ctc=True, device=CPU, dtype=torch.float32)
    # the windowed path reads a window of audio at a time, never the whole file
    monkeypatch.setattr(extract_module, "load_audio", lambda *_: pytest.fail("whole file loaded"))
    store, _ = extract(checkpoint, Corpus("long", [Utterance("long", long_recording)]), tmp_path, torch.float32,
                       window_seconds=30, context_seconds=1.0)
    monkeypatch.undo()

    audio = load_audio(long_recording, 16000)
    inputs = checkpoint.feature_extractor(audio, sampling_rate=16000, return_tensors="pt")
    cnn = []
    hook = checkpoint.model.base_model.feature_extractor.register_forward_hook(lambda _m, _i, out: cnn.append(out))
    with torch.inference_mode():
        single = checkpoint.model(inputs.input_values, output_hidden_states=True)
    hook.remove()
    reference = {"cnn": cnn[0][0].T, "logits": single.logits[0]}
    reference |= {f"layer_{i:02d}": h[0] for i, h in enumerate(single.hidden_states)}

    assert store.n_frames == len(reference["cnn"]) == 8999  # 180 s of 20 ms frames
    assert np.array_equal(store.frames()["frame"], np.arange(8999))
    differences = {name: float(np.abs(store.array(name) - values.numpy()).max()) for name, values in reference.items()}
    print("max abs difference, windowed vs one pass:", json.dumps(differences))
    # The CNN and the Transformer input are local: equal. Attention sees the window, not the whole file.
    assert differences["cnn"] < 1e-4 and differences["layer_00"] < 1e-4
    assert max(differences.values()) < 1e-2
    agreement = (store.array("logits").argmax(1) == reference["logits"].numpy().argmax(1)).mean()
    assert agreement > 0.99
    labels = label_frames(store.array("logits"), store.utterances(), store.vocabulary, 10)
    assert len(labels.pseudo) == 8999


def test_window_options_are_checked(tiny_pair: tuple[Path, Path], corpus_manifest: Path, tmp_path: Path) -> None:
    checkpoint = load_checkpoint(str(tiny_pair[1]), require_ctc=True, device=CPU, dtype=torch.float32)
    corpus = load_manifest(corpus_manifest)
    with pytest.raises(W2VLensError, match="context_seconds=0.005 is too small"):
        extract(checkpoint, corpus, tmp_path, torch.float32, window_seconds=30, context_seconds=0.005)
    with pytest.raises(W2VLensError, match="window_seconds=2 must exceed twice"):
        extract(checkpoint, corpus, tmp_path, torch.float32, window_seconds=2, context_seconds=1.0)
    assert not (tmp_path / "stores").exists() or list((tmp_path / "stores").iterdir()) == []


# Peak RSS from VmHWM: getrusage's ru_maxrss would carry the forking pytest process's peak across exec.
_PEAK_RSS = """
import re, sys, torch
from pathlib import Path
from w2vlens.corpora.corpus import Corpus, Utterance
from w2vlens.embeddings.extract import extract
from w2vlens.embeddings.models import load_checkpoint
def peak():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
checkpoint = load_checkpoint(sys.argv[2], True, torch.device("cpu"), torch.float32)
before = peak()
extract(checkpoint, Corpus("c", [Utterance("u", Path(sys.argv[1]))]), Path(sys.argv[3]), torch.float32)
print(before, peak())
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the peak RSS from /proc")
def test_peak_memory_follows_the_window_not_the_file(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    peaks = {}
    for minutes in (1, 10):
        audio = write_long_recording(tmp_path / f"{minutes}.wav", seconds=60 * minutes)
        result = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(audio), str(tiny_pair[1]),
                                 str(tmp_path / f"cache{minutes}")], cwd=REPO_ROOT, capture_output=True, text=True,
                                check=True)
        peaks[minutes] = [int(kb) // 1024 for kb in result.stdout.split()[-2:]]
    print("peak RSS MiB (before extraction, after) for 1 and 10 minutes:", peaks)
    # the 10-minute file's 60 MB of samples would show; a window's worth of growth must not exceed ~40 MiB
    assert peaks[10][1] - peaks[1][1] < 40
