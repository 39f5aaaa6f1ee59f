"""Extraction: one pass gives every view, batching does not change values, the cache is atomic."""

from pathlib import Path

import numpy as np
import pytest
import torch

from w2vlens.corpora.audio import load_audio
from w2vlens.corpora.corpus import load_manifest
from w2vlens.embeddings import extract as extract_module
from w2vlens.embeddings.extract import extract
from w2vlens.embeddings.models import load_checkpoint
from w2vlens.errors import W2VLensError
from w2vlens.labelling.names import BLANK_LABEL

CPU = torch.device("cpu")


def test_store_holds_every_view_with_matching_frames(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                                      tmp_path: Path) -> None:
    checkpoint = load_checkpoint(str(tiny_pair[1]), require_ctc=True, device=CPU, dtype=torch.float32)
    corpus = load_manifest(corpus_manifest)
    store, hit = extract(checkpoint, corpus, tmp_path, torch.float32)
    assert not hit
    assert set(store.meta["arrays"]) == {"cnn", "logits"} | {f"layer_{i:02d}" for i in range(3)}
    frames = store.frames()
    utterances = store.utterances().set_index("id")
    # 20 ms frames: a 0.6 s utterance gives 29 frames with wav2vec2's receptive field
    assert utterances.loc["u0", "n_frames"] == 29
    assert len(frames) == store.n_frames == utterances["n_frames"].sum()
    assert store.array("cnn").shape == (store.n_frames, 16)
    assert store.array("layer_02").shape == (store.n_frames, 32)
    assert store.array("logits").shape == (store.n_frames, 32)
    assert store.layer_name(-1) == "layer_02"
    assert store.vocabulary[0] == BLANK_LABEL and store.vocabulary[2] == "|"
    assert set(frames.columns) >= {"utterance", "frame", "start", "speaker"}
    u3 = frames[frames.utterance == "u3"]
    assert np.allclose(np.diff(u3.start), 0.02)


def test_batched_extraction_matches_one_utterance_at_a_time(tiny_pair: tuple[Path, Path],
                                                            corpus_manifest: Path, tmp_path: Path) -> None:
    checkpoint = load_checkpoint(str(tiny_pair[1]), require_ctc=True, device=CPU, dtype=torch.float32)
    corpus = load_manifest(corpus_manifest)
    store, _ = extract(checkpoint, corpus, tmp_path, torch.float32, batch_seconds=100)
    offsets = store.utterances().set_index("id")
    for utt in corpus.utterances:
        audio = load_audio(utt.audio, 16000)
        inputs = checkpoint.feature_extractor(audio, sampling_rate=16000, return_tensors="pt")
        with torch.inference_mode():
            single = checkpoint.model(inputs.input_values, output_hidden_states=True)
        start = offsets.loc[utt.id, "offset"]
        rows = slice(start, start + offsets.loc[utt.id, "n_frames"])
        assert np.allclose(store.array("layer_02")[rows], single.hidden_states[-1][0].numpy(), atol=1e-4)
        assert np.allclose(store.array("logits")[rows], single.logits[0].numpy(), atol=1e-4)


def test_second_extraction_is_a_cache_hit(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                          tmp_path: Path) -> None:
    checkpoint = load_checkpoint(str(tiny_pair[0]), require_ctc=False, device=CPU, dtype=torch.float32)
    corpus = load_manifest(corpus_manifest)
    first, hit_first = extract(checkpoint, corpus, tmp_path, torch.float32)
    second, hit_second = extract(checkpoint, corpus, tmp_path, torch.float32)
    assert (hit_first, hit_second) == (False, True)
    assert first.path == second.path
    assert "logits" not in second.meta["arrays"] and second.vocabulary is None


def test_failure_midway_leaves_no_cache_entry(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = load_checkpoint(str(tiny_pair[1]), require_ctc=True, device=CPU, dtype=torch.float32)
    corpus = load_manifest(corpus_manifest)
    calls = []

    def fail_on_fourth(path: Path, sample_rate: int) -> np.ndarray:
        calls.append(path)
        if len(calls) == 4:
            raise W2VLensError(f"{path}: unreadable audio (simulated)")
        return load_audio(path, sample_rate)

    monkeypatch.setattr(extract_module, "load_audio", fail_on_fourth)
    with pytest.raises(W2VLensError, match="simulated"):
        extract(checkpoint, corpus, tmp_path, torch.float32, batch_seconds=1)
    assert list((tmp_path / "stores").iterdir()) == []
