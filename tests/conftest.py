"""Fixtures: tiny random wav2vec2 checkpoints and tiny corpora, made in temp dirs, offline."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from transformers import (
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2ForPreTraining,
    Wav2Vec2Processor,
)

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

ALPHABET = "abcdefghijklmnopqrstuvwxyzåäö"
REPO_ROOT = Path(__file__).resolve().parents[1]


def tiny_config(**overrides: object) -> Wav2Vec2Config:
    settings = dict(
        vocab_size=3 + len(ALPHABET), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        feat_extract_norm="layer", do_stable_layer_norm=True, codevector_dim=16, proj_codevector_dim=16,
        num_codevectors_per_group=8, pad_token_id=0,
    )
    return Wav2Vec2Config(**(settings | overrides))


def save_tiny_pair(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """A random pre-trained checkpoint (no CTC head, no tokenizer) and a random CTC one."""
    torch.manual_seed(seed)
    feature_extractor = Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=True)
    pretrained_dir, finetuned_dir = root / "pretrained", root / "finetuned"
    Wav2Vec2ForPreTraining(tiny_config()).save_pretrained(pretrained_dir)
    feature_extractor.save_pretrained(pretrained_dir)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2} | {ch: 3 + i for i, ch in enumerate(ALPHABET)}
    (root / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = Wav2Vec2CTCTokenizer(str(root / "vocab.json"), pad_token="<pad>", unk_token="<unk>",
                                     word_delimiter_token="|")
    Wav2Vec2ForCTC(tiny_config()).save_pretrained(finetuned_dir)
    Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(finetuned_dir)
    return pretrained_dir, finetuned_dir


def write_corpus(root: Path, n: int = 6, sample_rate: int = 16000, seed: int = 0) -> Path:
    """`n` short noisy tone utterances and a TSV manifest with text and metadata."""
    rng = np.random.default_rng(seed)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(n):
        seconds = 0.6 + 0.3 * index
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        audio = 0.3 * np.sin(2 * np.pi * (150 + 40 * index) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(root / "wav" / f"u{index}.wav", audio.astype(np.float32), sample_rate)
        rows.append({"id": f"u{index}", "audio": f"wav/u{index}.wav", "text": "tuuli on kova",
                     "speaker": f"s{index % 2}", "annotator_1": "tuuli on kova"})
    manifest = root / "manifest.tsv"
    pd.DataFrame(rows).to_csv(manifest, sep="\t", index=False)
    return manifest


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return save_tiny_pair(tmp_path_factory.mktemp("pair"))


@pytest.fixture()
def corpus_manifest(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")
