"""Manifests and audio: what users feed in, and the errors they get for bad input."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from w2vlens.corpora.audio import load_audio
from w2vlens.corpora.corpus import load_manifest
from w2vlens.corpora.text import characters_outside, normalize_text
from w2vlens.errors import W2VLensError


def test_tsv_manifest_keeps_text_annotators_and_metadata(corpus_manifest: Path) -> None:
    corpus = load_manifest(corpus_manifest)
    first = corpus.utterances[0]
    assert len(corpus.utterances) == 6
    assert first.id == "u0" and first.text == "tuuli on kova"
    assert first.audio == (corpus_manifest.parent / "wav" / "u0.wav").resolve()
    assert first.annotators == {"annotator_1": "tuuli on kova"}
    assert first.metadata == {"speaker": "s0"}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_csv_and_jsonl_manifests_read_the_same(corpus_manifest: Path, suffix: str) -> None:
    table = pd.read_csv(corpus_manifest, sep="\t")
    other = corpus_manifest.with_suffix(suffix)
    if suffix == ".csv":
        table.to_csv(other, index=False)
    else:
        table.to_json(other, orient="records", lines=True, force_ascii=False)
    assert load_manifest(other).utterances == load_manifest(corpus_manifest).utterances


def test_ids_default_to_file_stems(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000)
    (tmp_path / "m.csv").write_text("audio,gender\na.wav,f\n")
    assert load_manifest(tmp_path / "m.csv").utterances[0].id == "a"


def test_missing_audio_is_named(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("audio\nmissing.wav\n")
    with pytest.raises(W2VLensError, match="missing.wav"):
        load_manifest(tmp_path / "m.csv")


def test_manifest_without_audio_column(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("path\nx.wav\n")
    with pytest.raises(W2VLensError, match="no 'audio' column"):
        load_manifest(tmp_path / "m.csv")


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000)
    (tmp_path / "m.csv").write_text("id,audio\nx,a.wav\nx,a.wav\n")
    with pytest.raises(W2VLensError, match="'x' appears more than once"):
        load_manifest(tmp_path / "m.csv")


def test_stereo_44k_becomes_mono_16k(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    left = np.sin(2 * np.pi * 220 * t)
    sf.write(tmp_path / "s.flac", np.stack([left, left], axis=1), 44100)
    audio = load_audio(tmp_path / "s.flac", 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 16000) <= 1
    assert np.abs(audio).max() == pytest.approx(1.0, abs=0.02)


def test_empty_and_unreadable_audio_are_named(tmp_path: Path) -> None:
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(W2VLensError, match=r"empty\.wav: audio file is empty"):
        load_audio(tmp_path / "empty.wav", 16000)
    with pytest.raises(W2VLensError, match=r"junk\.wav: unreadable audio"):
        load_audio(tmp_path / "junk.wav", 16000)


def test_normalisation_and_out_of_vocabulary_characters() -> None:
    assert normalize_text("  Hyvää   HUOMENTA, Åsa!  ") == "hyvää huomenta åsa"
    assert characters_outside("tuuli ü", set("tuli|")) == ["ü"]
