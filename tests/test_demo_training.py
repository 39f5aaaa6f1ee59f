"""The demo pair: the committed checkpoints load like hub ones and transcribe fresh synthetic
speech; the training code, on a tiny model and a handful of clips, learns and is reproducible."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402
import logging  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soxr  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModel, AutoModelForCTC, AutoProcessor, Wav2Vec2ForPreTraining  # noqa: E402

from w2vlens.demo.corpus import SAMPLE_RATE, SPEAKERS  # noqa: E402
from w2vlens.demo.espeak import EspeakSynthesizer  # noqa: E402
from w2vlens.demo.sentences import FINNISH_ALPHABET  # noqa: E402
from w2vlens.demo.training import (  # noqa: E402
    VOCABULARY,
    FinetuneSettings,
    PretrainModule,
    PretrainSettings,
    Utterance,
    _BatchDataset,
    demo_config,
    edit_distance,
    evaluate_cer,
    finetune,
    init_filterbank_encoder,
    make_feature_extractor,
    pretrain,
    seed_everything,
)
from w2vlens.paths import DEMO_PAIR_DIR  # noqa: E402

TINY = dict(
    conv_dim=(16, 16),
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    num_conv_pos_embeddings=8,
    num_conv_pos_embedding_groups=4,
    num_codevectors_per_group=8,
    codevector_dim=16,
    proj_codevector_dim=16,
    num_negatives=5,
)
PRE = PretrainSettings(epochs=2, batch_seconds=3.0, mask_length=4)
FINE = FinetuneSettings(epochs=2, batch_seconds=3.0)


@pytest.fixture(autouse=True)
def _quiet() -> None:
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")


def _clips() -> list[Utterance]:
    """Six chirps in noise, 0.6-1.1 s, each with a short transcript."""
    rng = np.random.default_rng(0)
    clips = []
    for i, text in enumerate(["äiti", "isä ja", "öö", "kissa", "sauna on", "yö"]):
        t = np.arange(int((0.6 + 0.1 * i) * 16_000)) / 16_000
        audio = np.sin(2 * np.pi * (200 + 100 * i) * t * (1 + t)) + 0.1 * rng.standard_normal(len(t))
        clips.append(Utterance(audio.astype(np.float32), text))
    return clips


@pytest.mark.slow  # trains the demo model for a few steps; `make demo` tooling, run by CI
def test_contrastive_loss_decreases_on_a_fixed_batch() -> None:
    seed_everything(0)
    module = PretrainModule(demo_config(**TINY), PRE, total_steps=20)
    batch = _BatchDataset(_clips(), 10.0, make_feature_extractor())[0]
    optimizer = torch.optim.AdamW(module.parameters(), lr=3e-3)
    for _ in range(20):
        np.random.seed(1)  # the same masks and negatives every step
        torch.manual_seed(1)  # and the same Gumbel noise
        module.training_step(batch, 0).backward()
        optimizer.step()
        optimizer.zero_grad()
    contrastive = [point[2] for point in module.curve]
    assert all(np.isfinite(contrastive))
    assert np.mean(contrastive[-3:]) < np.mean(contrastive[:3]) - 0.1


@pytest.mark.slow  # trains a tiny pair twice; `make demo` tooling, run by CI
def test_pair_is_reproducible_and_loads_like_a_hub_checkpoint(tmp_path: Path) -> None:
    clips = _clips()
    weights = []
    for run in ("a", "b"):
        pretrained, finetuned = tmp_path / run / "pretrained", tmp_path / run / "finetuned"
        pre = pretrain(clips, demo_config(**TINY), PRE, pretrained, seed=3)
        fine = finetune(clips, pretrained, FINE, finetuned, seed=3)
        batches = len(_BatchDataset(clips, 3.0, make_feature_extractor()))  # 3 of at most 3 s of audio
        assert pre.steps == fine.steps == 2 * batches
        assert all(np.isfinite(point[1]) for point in pre.loss_curve + fine.loss_curve)
        weights.append((load_file(pretrained / "model.safetensors"), load_file(finetuned / "model.safetensors")))
    for first, second in zip(*weights, strict=True):
        assert first.keys() == second.keys()
        assert all(torch.equal(first[key], second[key]) for key in first)
    pre_weights, fine_weights = weights[0]
    cnn = [key for key in fine_weights if key.startswith("wav2vec2.feature_extractor.")]
    assert cnn and all(torch.equal(pre_weights[key], fine_weights[key]) for key in cnn)  # frozen

    assert (pretrained / "preprocessor_config.json").exists()
    assert not (pretrained / "vocab.json").exists()
    model = AutoModelForCTC.from_pretrained(finetuned, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(finetuned)
    vocab = processor.tokenizer.get_vocab()
    assert len(processor.tokenizer) == model.config.vocab_size == 32
    assert [vocab[t] for t in ("<pad>", "<unk>", "|")] == [0, 1, 2]
    assert [vocab[c] for c in FINNISH_ALPHABET] == list(range(3, 32))
    assert model.config.pad_token_id == 0 and model.config.ctc_zero_infinity
    assert processor.feature_extractor.do_normalize and processor.feature_extractor.return_attention_mask
    assert evaluate_cer(finetuned, clips[:2]).cer >= 0.0


def test_committed_pair_loads_like_hub_checkpoints_and_transcribes_new_speech() -> None:
    folders = {side: DEMO_PAIR_DIR / side for side in ("pretrained", "finetuned")}
    assert sum(f.stat().st_size for f in DEMO_PAIR_DIR.rglob("*") if f.is_file()) <= 10 * 2**20
    pretrained = AutoModel.from_pretrained(folders["pretrained"], dtype=torch.float32)
    finetuned = AutoModelForCTC.from_pretrained(folders["finetuned"], dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(folders["finetuned"])
    vocab = processor.tokenizer.get_vocab()
    assert sorted(vocab, key=vocab.get) == VOCABULARY
    cnn = pretrained.feature_extractor.state_dict()
    assert all(torch.equal(value, finetuned.wav2vec2.feature_extractor.state_dict()[key])
               for key, value in cnn.items())  # the CNN was frozen during fine-tuning
    report = json.loads((DEMO_PAIR_DIR / "report.json").read_text())
    assert report["test_cer"] <= 0.15

    # Sentences outside the generator's word lists, by two of the demo's voices.
    synth = EspeakSynthesizer()
    utterances = []
    for text, speaker in zip(["sauna on lämmin", "mökki on järven rannalla"], (SPEAKERS[0], SPEAKERS[5]), strict=True):
        audio = synth.synthesize(text, f"fi+{speaker.variant}", speaker.rate, speaker.pitch, speaker.pitch_range)
        audio = soxr.resample(np.pad(audio, 4000), synth.sample_rate, SAMPLE_RATE).astype(np.float32)
        utterances.append(Utterance(audio, text))
    result = evaluate_cer(folders["finetuned"], utterances)
    assert result.cer < 0.35, result.hypotheses


def test_filterbank_initialisation_tunes_the_first_layer_to_mel_spaced_bands() -> None:
    model = PretrainModule(demo_config(), PRE, total_steps=1).model
    first = model.wav2vec2.feature_extractor.conv_layers[0].conv.weight.detach()[:, 0].numpy()
    spectrum = np.abs(np.fft.rfft(first, n=4096, axis=1))
    peaks = np.fft.rfftfreq(4096, 1 / SAMPLE_RATE)[spectrum.argmax(axis=1)]
    cosine_peaks = peaks[0::2]
    assert np.all(np.diff(cosine_peaks) > 0) and 60 < cosine_peaks[0] < 200 and 6500 < cosine_peaks[-1] < 8000
    assert np.allclose(peaks[0::2], peaks[1::2], rtol=0.05, atol=20)  # quadrature pairs share a band
    with pytest.raises(ValueError, match="conv_dim"):
        init_filterbank_encoder(Wav2Vec2ForPreTraining(demo_config(conv_dim=(32, 64))))


def test_edit_distance() -> None:
    assert edit_distance("kissa", "kisa") == 1
    assert edit_distance("", "ab") == 2
    assert edit_distance("ab c", "ab c") == 0
