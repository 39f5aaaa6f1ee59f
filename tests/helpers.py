"""Shared test helpers: tiny random wav2vec2 checkpoints, tiny corpora, the app's config and its MLflow
runs. Imported by the tests (`from helpers import ...`); conftest.py turns some into fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from transformers import (
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2ForPreTraining,
    Wav2Vec2Processor,
)

from w2vlens.config import register_resolvers

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


def write_long_recording(path: Path, seconds: float = 180.0, sample_rate: int = 16000, seed: int = 0) -> Path:
    """A gliding tone with noise and a pause every 10 s: long enough to need several extraction windows."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = 0.3 * np.sin(2 * np.pi * (150 + 50 * np.sin(2 * np.pi * 0.3 * t)) * t) * (t % 10 < 8.5)
    audio += 0.05 * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.astype(np.float32), sample_rate, subtype="PCM_16")
    return path


def app_overrides(pair: tuple[Path, Path], data: list[str], cache: Path, tracking: Path) -> list[str]:
    """Overrides that run the app on the `data` overrides with `pair` and a quick K-means, with the
    embedding cache in `cache` and the MLflow store in `tracking`."""
    return [*data, "pair=custom", f"pair.pretrained={pair[0]}", f"pair.finetuned={pair[1]}", f"cache_dir={cache}",
            f"tracking.dir={tracking}", "cluster.estimator.n_init=1", "cluster.estimator.max_iter=10"]


def compose_app(overrides: list[str]) -> DictConfig:
    """The app's config with `overrides`, as `python -m run` composes it."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)




def overrides_for(pair: tuple[Path, Path], manifest: Path, work: Path) -> list[str]:
    """Overrides that run the app on a manifest corpus with `pair`, caching and logging under `work`."""
    return [
        "data=manifest", f"data.path={manifest}", "pair=custom", f"pair.pretrained={pair[0]}",
        f"pair.finetuned={pair[1]}", f"cache_dir={work / 'cache'}", f"tracking.dir={work / 'mlruns'}",
    ]


def runs(work: Path) -> pd.DataFrame:
    """The runs logged under `work`/mlruns."""
    from w2vlens.tracking import tracking_uri

    mlflow.set_tracking_uri(tracking_uri(work / "mlruns"))
    return mlflow.search_runs(experiment_names=["w2vlens"])
