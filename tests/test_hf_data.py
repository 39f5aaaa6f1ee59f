"""Hugging Face datasets as corpora: saved, streamed, audiofolder; subsets, presets and bad input."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from datasets import Audio, ClassLabel, Dataset
from helpers import REPO_ROOT, app_overrides, compose_app

from w2vlens.app import run
from w2vlens.corpora.audio import load_audio
from w2vlens.corpora.hf import load_hf_corpus
from w2vlens.embeddings.store import EmbeddingStore
from w2vlens.errors import W2VLensError

TEXT = "tuuli on kova"
# (format, subtype, sample rate, channels) of the examples' embedded audio
FORMATS = [("FLAC", "PCM_16", 16000, 1), ("WAV", "PCM_16", 22050, 2), ("OGG", "VORBIS", 48000, 1),
           ("MP3", "MPEG_LAYER_III", 44100, 1), ("WAV", "FLOAT", 8000, 1), ("FLAC", "PCM_24", 32000, 2)]


def _encoded(index: int, file_format: str, subtype: str, rate: int, channels: int) -> bytes:
    t = np.arange(int((0.7 + 0.2 * index) * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * (150 + 30 * index) * t)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([tone] * channels, axis=1), rate, format=file_format, subtype=subtype)
    return buffer.getvalue()


def make_dataset() -> Dataset:
    """Six examples in six encodings, with a transcript column, a class label, a string, a column
    named like one the stores use (`id`) and a list column (not metadata)."""
    rows = {
        "audio": [{"bytes": _encoded(i, *spec), "path": f"clip{i}.{spec[0].lower()}"}
                  for i, spec in enumerate(FORMATS)],
        "sentence": [TEXT] * len(FORMATS),
        "gender": [i % 2 for i in range(len(FORMATS))],
        "speaker_id": [f"spk{i // 2}" for i in range(len(FORMATS))],
        "id": [100 + i for i in range(len(FORMATS))],
        "tokens": [[1, 2, 3]] * len(FORMATS),
    }
    return Dataset.from_dict(rows).cast_column("audio", Audio()).cast_column("gender", ClassLabel(names=["f", "m"]))


@pytest.fixture(scope="module")
def saved_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hf") / "saved"
    make_dataset().save_to_disk(str(path))
    return path


def test_saved_dataset_is_decoded_with_soundfile_into_the_cache(saved_dataset: Path, tmp_path: Path) -> None:
    corpus = load_hf_corpus(str(saved_dataset), text_column="sentence", cache_dir=tmp_path)
    assert corpus.name == "saved-test" and [u.id for u in corpus.utterances] == [f"{i:06d}" for i in range(6)]
    first = corpus.utterances[1]
    assert first.text == TEXT and first.metadata == {"gender": "m", "speaker_id": "spk0", "source_id": 101}
    assert first.audio.suffix == ".flac" and first.audio.is_relative_to(tmp_path / "corpora")
    for index, utt in enumerate(corpus.utterances):  # any format, rate and channel count -> mono 16 kHz
        audio = load_audio(utt, 16000)
        assert abs(len(audio) / 16000 - (0.7 + 0.2 * index)) < 0.06, FORMATS[index]
        assert 0.2 < np.abs(audio).max() < 0.35
    again = load_hf_corpus(str(saved_dataset), text_column="sentence", cache_dir=tmp_path)
    assert again.fingerprint == corpus.fingerprint  # written once, reused
    assert [p.name for p in (tmp_path / "corpora").iterdir()] == [first.audio.parent.parent.name]


def test_seeded_subset_is_reproducible(saved_dataset: Path, tmp_path: Path) -> None:
    def ids(**selection: object) -> list[str]:
        corpus = load_hf_corpus(str(saved_dataset), text_column=None, cache_dir=tmp_path, **selection)
        return [u.id for u in corpus.utterances]

    assert ids(max_utterances=3) == ["000000", "000001", "000002"]
    assert ids(max_utterances=3, seed=1) == ids(max_utterances=3, seed=1) != ids(max_utterances=3, seed=2)
    assert len(set(ids(max_utterances=3, seed=1))) == 3 and ids(max_utterances=3, seed=1) != ids(max_utterances=3)


def test_streamed_parquet_and_metadata_selection(tmp_path: Path) -> None:
    make_dataset().to_parquet(str(tmp_path / "data.parquet"))
    corpus = load_hf_corpus("parquet", data_files=str(tmp_path / "data.parquet"), split="train", streaming=True,
                            text_column="sentence", id_column="id", metadata_columns=["speaker_id"],
                            rename_columns={"speaker_id": "speaker"}, max_utterances=4, cache_dir=tmp_path)
    assert [u.id for u in corpus.utterances] == ["100", "101", "102", "103"]
    assert corpus.utterances[3].metadata == {"speaker": "spk1"}


def test_audiofolder_uses_the_files_in_place(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    (folder / "clips").mkdir(parents=True)
    for index in range(2):
        sf.write(folder / "clips" / f"a{index}.wav", np.zeros(8000, np.float32), 16000)
    pd.DataFrame({"file_name": ["clips/a0.wav", "clips/a1.wav"], "transcription": [TEXT, "hei"],
                  "gender": ["f", "m"]}).to_csv(folder / "metadata.csv", index=False)
    corpus = load_hf_corpus("audiofolder", data_dir=str(folder), text_column="transcription", cache_dir=tmp_path)
    assert [u.audio for u in corpus.utterances] == [(folder / "clips" / f"a{i}.wav").resolve() for i in range(2)]
    assert corpus.utterances[1].text == "hei" and corpus.utterances[1].metadata == {"gender": "m"}
    assert corpus.name == "folder-test"


def _cache_is_clean(cache: Path) -> bool:
    return not (cache / "corpora").exists() or list((cache / "corpora").iterdir()) == []


def test_missing_columns_and_unreadable_audio_are_named(saved_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(W2VLensError, match=r"saved \[test\]: no column 'text' \(columns: \['audio', 'sentence'"):
        load_hf_corpus(str(saved_dataset), cache_dir=tmp_path)
    broken = make_dataset().to_dict()
    broken["audio"][2] = {"bytes": b"not audio at all", "path": "clip2.ogg"}
    Dataset.from_dict(broken).cast_column("audio", Audio()).save_to_disk(str(tmp_path / "broken"))
    with pytest.raises(W2VLensError, match=r"broken \[test\] example 000002: unreadable audio"):
        load_hf_corpus(str(tmp_path / "broken"), text_column="sentence", cache_dir=tmp_path)
    assert _cache_is_clean(tmp_path)


def test_run_on_a_saved_dataset_keeps_metadata(tiny_pair: tuple[Path, Path], saved_dataset: Path, tmp_path: Path,
                                               tracking_dir: Path) -> None:
    data = ["data=hf", f"data.path={saved_dataset}", "data.text_column=sentence"]
    scores = run(compose_app(app_overrides(tiny_pair, data, tmp_path / "cache", tracking_dir)))
    assert 0 <= scores["ami"] <= 1
    corpus = load_hf_corpus(str(saved_dataset), text_column="sentence", cache_dir=tmp_path / "cache")
    frames = EmbeddingStore(next((tmp_path / "cache" / "stores").iterdir()), corpus).frames()
    assert set(frames["gender"]) == {"f", "m"} and "speaker_id" in frames and "tokens" not in frames


def test_cli_says_how_to_use_a_local_copy_of_an_unreachable_dataset(tiny_pair: tuple[Path, Path], tmp_path: Path,
                                                                   tracking_dir: Path) -> None:
    data = ["data=hf", "data.path=w2vlens-tests/no-such-dataset"]
    command = [sys.executable, "-m", "run", *app_overrides(tiny_pair, data, tmp_path / "cache", tracking_dir),
               f"hydra.run.dir={tmp_path / 'out'}"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)  # offline: conftest
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: w2vlens-tests/no-such-dataset: cannot load dataset (HF_HUB_OFFLINE=1")
    assert "data.path=<a folder written by Dataset.save_to_disk>" in last and "audiofolder" in last
    assert _cache_is_clean(tmp_path / "cache")


@pytest.mark.parametrize(("preset", "expected"), [
    ("data=fleurs_fi", {"path": "google/fleurs", "name": "fi_fi", "text_column": "transcription",
                        "revision": "refs/convert/parquet"}),
    ("data=common_voice_fi", {"path": "csv", "audio_column": "path", "text_column": "sentence",
                              "rename_columns": {"client_id": "speaker"}}),
    ("data=kaldi", {"_target_": "w2vlens.corpora.kaldi.load_kaldi_dir", "run_commands": False}),
    ("pair=paper", {"pretrained": "facebook/wav2vec2-large-100k-voxpopuli",
                    "finetuned": "GetmanY1/wav2vec2-large-uralic-voxpopuli-v2-100h"}),
    ("pair=xlsr", {"pretrained": "facebook/wav2vec2-xls-r-300m",
                   "finetuned": "Finnish-NLP/wav2vec2-xlsr-300m-finnish"}),
])
def test_presets_compose(preset: str, expected: dict) -> None:
    cfg = compose_app([preset])
    group = cfg[preset.split("=")[0]]
    assert {key: group[key] for key in expected} == expected
    assert cfg.extract.window_seconds == 30 and cfg.extract.context_seconds == 1.0
