"""Kaldi data directories: recordings, segments, transcripts and utt2*/spk2* metadata, and bad input."""

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import REPO_ROOT, app_overrides

from w2vlens.corpora.audio import load_audio
from w2vlens.corpora.kaldi import load_kaldi_dir
from w2vlens.embeddings.store import EmbeddingStore
from w2vlens.errors import W2VLensError
from w2vlens.figures import projection_panels

TEXT = "tuuli on kova"


def write_kaldi_dir(root: Path, long_recording: Path) -> Path:
    """A data dir over four recordings in four formats: the 3-minute wav cut by `segments` (one segment
    of 42 s, longer than an extraction window, one running 0.3 s past the end), 44.1 kHz stereo 24-bit
    FLAC, 22.05 kHz OGG Vorbis and 48 kHz MP3; with text, speakers, genders, ages, an accent per speaker."""
    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True)
    for name, rate, channels, subtype in (("b.flac", 44100, 2, "PCM_24"), ("c.ogg", 22050, 1, "VORBIS"),
                                          ("d.mp3", 48000, 1, "MPEG_LAYER_III")):
        t = np.arange(int(1.6 * rate)) / rate
        tone = 0.3 * np.sin(2 * np.pi * 200 * t) + 0.02 * rng.standard_normal(len(t))
        sf.write(root / "audio" / name, np.stack([tone] * channels, axis=1), rate, subtype=subtype)
    files = {"long": str(long_recording), "b": "audio/b.flac", "c": "audio/c.ogg", "d": "audio/d.mp3"}
    segments = {"long-1": "long 0.0 12.5", "long-2": "long 12.5 54.5", "long-3": "long 60 75.25",
                "long-4": "long 170 180.3", "b-1": "b 0 -1", "c-1": "c 0.2 1.4", "d-1": "d 0 -1"}
    speakers = {"long-1": "s1", "long-2": "s1", "long-3": "s2", "long-4": "s2", "b-1": "s3", "c-1": "s3", "d-1": "s4"}
    tables = {
        "wav.scp": files,
        "segments": segments,
        "text": {uid: TEXT for uid in segments} | {"ghost-1": TEXT},
        "utt2spk": speakers,
        "utt2gender": {uid: "f" if spk in {"s1", "s3"} else "m" for uid, spk in speakers.items()},
        "utt2age": {uid: str(20 + 10 * int(spk[1])) for uid, spk in speakers.items()},
        "spk2accent": {"s1": "savo", "s2": "häme", "s3": "savo", "s4": "karjala"},
        "spk2utt": {spk: " ".join(u for u, s in speakers.items() if s == spk) for spk in set(speakers.values())},
    }
    for name, table in tables.items():
        (root / name).write_text("".join(f"{key} {value}\n" for key, value in sorted(table.items())))
    return root


@pytest.fixture()
def kaldi_dir(tmp_path: Path, long_recording: Path) -> Path:
    return write_kaldi_dir(tmp_path / "data" / "test", long_recording)


def test_kaldi_dir_reads_segments_text_and_metadata(kaldi_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        corpus = load_kaldi_dir(kaldi_dir)
    by_id = {utt.id: utt for utt in corpus.utterances}
    assert corpus.name == "test" and sorted(by_id) == ["b-1", "c-1", "d-1", "long-1", "long-2", "long-3", "long-4"]
    assert (by_id["long-2"].start, by_id["long-2"].end) == (12.5, 54.5)
    assert (by_id["long-4"].start, by_id["long-4"].end) == (170, None)  # 0.3 s past the end: cut at the end
    assert (by_id["b-1"].start, by_id["b-1"].end) == (0, None) and not by_id["b-1"].is_segment
    assert by_id["c-1"].audio == (kaldi_dir / "audio" / "c.ogg").resolve() and by_id["c-1"].text == TEXT
    assert by_id["long-3"].metadata == {"recording": "long", "speaker": "s2", "gender": "m", "age": "40",
                                        "accent": "häme"}
    assert corpus.metadata_columns == ["accent", "age", "gender", "recording", "speaker"]
    assert "1 transcripts of utterances without audio were skipped (ghost-1)" in caplog.text


def test_segments_read_only_their_slice_in_any_format(kaldi_dir: Path) -> None:
    by_id = {utt.id: utt for utt in load_kaldi_dir(kaldi_dir).utterances}
    whole = load_audio(by_id["long-1"].audio, 16000)
    assert np.array_equal(load_audio(by_id["long-3"], 16000), whole[60 * 16000 : int(75.25 * 16000)])
    assert len(load_audio(by_id["long-4"], 16000)) == 10 * 16000
    for uid, seconds in (("b-1", 1.6), ("c-1", 1.2), ("d-1", 1.6)):  # stereo 24-bit FLAC, OGG, MP3
        audio = load_audio(by_id[uid], 16000)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(len(audio) / 16000 - seconds) < 0.06, uid  # mp3 decoders may add a frame of padding


def _edit(kaldi_dir: Path, name: str, line: str, replace: str | None = None) -> None:
    path = kaldi_dir / name
    lines = path.read_text().splitlines()
    lines = [line if replace and entry.startswith(replace) else entry for entry in lines]
    path.write_text("\n".join(lines if replace else [*lines, line]) + "\n")


@pytest.mark.parametrize(("name", "line", "replace", "message"), [
    ("wav.scp", "c", "c ", r"wav.scp: line 2: recording 'c' has no path"),
    ("wav.scp", "c sox audio/c.ogg -t wav - |", "c ", r"recording 'c' is a piped command .* data.run_commands=true"),
    ("wav.scp", "c audio/nowhere.wav", "c ", r"recording 'c': audio file not found: .*audio/nowhere.wav"),
    ("wav.scp", "c /data/raw.ark:1234", "c ", r"recording 'c': archive offsets .* are not supported"),
    ("segments", "c-1 c 0.2", "c-1 ", r"segments: line 2: expected '<utterance-id> <recording-id> <start> <end>'"),
])
def test_bad_tables_are_one_line_errors(kaldi_dir: Path, name: str, line: str, replace: str, message: str) -> None:
    _edit(kaldi_dir, name, line, replace)
    with pytest.raises(W2VLensError, match=message) as error:
        load_kaldi_dir(kaldi_dir)
    assert "\n" not in str(error.value)


def test_unreadable_recording_is_named(kaldi_dir: Path) -> None:
    (kaldi_dir / "audio" / "c.ogg").write_bytes(b"not audio")
    with pytest.raises(W2VLensError, match=r"audio/c\.ogg: unreadable audio"):
        load_kaldi_dir(kaldi_dir)


def test_segments_past_the_end_or_without_recording_are_skipped(kaldi_dir: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    _edit(kaldi_dir, "segments", "long-5 long 175 190")
    _edit(kaldi_dir, "segments", "x-1 x 0 1")
    with caplog.at_level(logging.WARNING):
        ids = [utt.id for utt in load_kaldi_dir(kaldi_dir).utterances]
    assert "long-5" not in ids and "x-1" not in ids and len(ids) == 7
    assert "1 segments past the end of their recording (by more than 0.5 s) were skipped (long-5 (175-190 s of " \
           "180.00 s))" in caplog.text
    assert "1 segments whose recording is not in wav.scp were skipped (x-1)" in caplog.text


def test_piped_commands_run_once_when_asked(kaldi_dir: Path, tmp_path: Path) -> None:
    _edit(kaldi_dir, "wav.scp", "c cat audio/c.ogg |", "c ")
    first = {u.id: u for u in load_kaldi_dir(kaldi_dir, run_commands=True, cache_dir=tmp_path / "cache").utterances}
    assert first["c-1"].audio.parent == tmp_path / "cache" / "kaldi-pipes" and first["c-1"].audio.suffix == ".flac"
    original = load_audio(kaldi_dir / "audio" / "c.ogg", 16000)
    assert np.abs(load_audio(first["c-1"].audio, 16000) - original).max() < 1e-5
    stamp = first["c-1"].audio.stat().st_mtime_ns
    second = {u.id: u for u in load_kaldi_dir(kaldi_dir, run_commands=True, cache_dir=tmp_path / "cache").utterances}
    assert second["c-1"].audio == first["c-1"].audio and second["c-1"].audio.stat().st_mtime_ns == stamp
    _edit(kaldi_dir, "wav.scp", "c cat audio/missing.ogg |", "c ")
    with pytest.raises(W2VLensError, match=r"recording 'c': command failed \(exit 1\): .*missing.ogg"):
        load_kaldi_dir(kaldi_dir, run_commands=True, cache_dir=tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache" / "kaldi-pipes").iterdir()] == [first["c-1"].audio.name]


def test_cli_on_a_kaldi_dir_windows_long_segments_and_keeps_metadata(tiny_pair: tuple[Path, Path], kaldi_dir: Path,
                                                                      tmp_path: Path, tracking_dir: Path) -> None:
    overrides = app_overrides(tiny_pair, ["data=kaldi", f"data.path={kaldi_dir}"], tmp_path / "cache", tracking_dir)
    result = subprocess.run([sys.executable, "-m", "run", *overrides, f"hydra.run.dir={tmp_path / 'out'}"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    store = EmbeddingStore(next((tmp_path / "cache" / "stores").iterdir()), load_kaldi_dir(kaldi_dir))
    utterances = store.utterances().set_index("id")
    assert utterances.loc["long-2", "n_frames"] == 2099  # 42 s in 30 s windows: 20 ms frames, each once
    assert utterances.loc["long-2", "segment_start"] == 12.5
    frames = store.frames()
    assert {"speaker", "gender", "age", "accent", "recording"} <= set(frames.columns)
    assert frames["age"].dtype.kind == "i"  # numeric metadata stays numeric
    coords = np.random.default_rng(0).standard_normal((len(frames), 2))
    figure = projection_panels({"finetuned": coords}, frames["gender"].to_numpy(), title="by gender")
    assert {text.get_text() for text in figure.legends[0].get_texts()} == {"f", "m"}
