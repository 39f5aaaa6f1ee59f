"""Every wav2vec2-family model, with and without a CTC head, gives the same views the same way."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import ALPHABET, tiny_config
from transformers import (
    Data2VecAudioConfig,
    Data2VecAudioForCTC,
    Data2VecAudioModel,
    HubertConfig,
    HubertForCTC,
    HubertModel,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2ForPreTraining,
    WavLMConfig,
    WavLMForCTC,
    WavLMModel,
)

from w2vlens.corpora.audio import load_audio
from w2vlens.corpora.corpus import Corpus, Utterance
from w2vlens.embeddings.extract import extract
from w2vlens.embeddings.models import load_checkpoint
from w2vlens.errors import W2VLensError
from w2vlens.labelling.names import BLANK_LABEL

CPU = torch.device("cpu")
TINY = dict(vocab_size=3 + len(ALPHABET), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, conv_dim=(16,) * 7, pad_token_id=0)
# name: (config, pre-trained model class, CTC model class); XLS-R is wav2vec2 with the stable layer norm.
FAMILIES = {
    "wav2vec2-xlsr-stable-layer-norm": (tiny_config(), Wav2Vec2ForPreTraining, Wav2Vec2ForCTC),
    "wav2vec2-base-group-norm": (tiny_config(feat_extract_norm="group", do_stable_layer_norm=False),
                                 Wav2Vec2ForPreTraining, Wav2Vec2ForCTC),
    "hubert": (HubertConfig(**TINY, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                            feat_extract_norm="group"), HubertModel, HubertForCTC),
    "wavlm": (WavLMConfig(**TINY, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                          feat_extract_norm="layer", do_stable_layer_norm=True), WavLMModel, WavLMForCTC),
    "data2vec-audio": (Data2VecAudioConfig(**TINY, num_conv_pos_embeddings=2, conv_pos_kernel_size=5,
                                           num_conv_pos_embedding_groups=4), Data2VecAudioModel, Data2VecAudioForCTC),
}


def save_family(root: Path, family: str) -> tuple[Path, Path]:
    """A random pre-trained checkpoint (no head, no tokenizer) and a random CTC one of `family`, with
    the feature extractor its kind ships with (layer-norm CNNs normalise input and take attention masks)."""
    config, base_class, ctc_class = FAMILIES[family]
    layer_norm = getattr(config, "feat_extract_norm", "layer") == "layer"
    extractor = Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=layer_norm, return_attention_mask=layer_norm)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2} | {ch: 3 + i for i, ch in enumerate(ALPHABET)}
    root.mkdir(parents=True, exist_ok=True)
    (root / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = Wav2Vec2CTCTokenizer(str(root / "vocab.json"), pad_token="<pad>", unk_token="<unk>",
                                     word_delimiter_token="|")
    torch.manual_seed(0)
    folders = root / "pretrained", root / "finetuned"
    for folder, model_class in zip(folders, (base_class, ctc_class), strict=True):
        model_class(config).save_pretrained(folder)
        extractor.save_pretrained(folder)
    tokenizer.save_pretrained(folders[1])
    return folders


def _corpus(root: Path, seconds: list[float]) -> Corpus:
    rng = np.random.default_rng(1)
    utterances = []
    for index, length in enumerate(seconds):
        t = np.arange(int(length * 16000)) / 16000
        audio = 0.3 * np.sin(2 * np.pi * (120 + 60 * index) * t) + 0.05 * rng.standard_normal(len(t))
        path = root / f"u{index}.wav"
        sf.write(path, audio.astype(np.float32), 16000)
        utterances.append(Utterance(f"u{index}", path))
    return Corpus("tones", utterances)


def _single_pass(checkpoint: object, audio: np.ndarray) -> dict[str, np.ndarray]:
    cnn = []
    hook = checkpoint.model.base_model.feature_extractor.register_forward_hook(lambda _m, _i, out: cnn.append(out))
    inputs = checkpoint.feature_extractor(audio, sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        outputs = checkpoint.model(inputs.input_values, output_hidden_states=True)
    hook.remove()
    views = {"cnn": cnn[0][0].T.numpy()} | {f"layer_{i:02d}": h[0].numpy() for i, h in enumerate(outputs.hidden_states)}
    return views | ({"logits": outputs.logits[0].numpy()} if checkpoint.is_ctc else {})


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_gives_every_view_batched_and_windowed(family: str, tmp_path: Path) -> None:
    pretrained_dir, finetuned_dir = save_family(tmp_path / "pair", family)
    corpus = _corpus(tmp_path, [0.6, 0.9, 3.0])  # the 3 s utterance runs in 1 s windows below
    for folder, ctc in ((pretrained_dir, False), (finetuned_dir, True)):
        checkpoint = load_checkpoint(str(folder), require_ctc=ctc, device=CPU, dtype=torch.float32)
        assert checkpoint.is_ctc == ctc
        store, _ = extract(checkpoint, corpus, tmp_path / "cache", torch.float32, batch_seconds=10,
                           window_seconds=1.0, context_seconds=0.25)
        expected = {"cnn", "layer_00", "layer_01", "layer_02"} | ({"logits"} if ctc else set())
        assert set(store.meta["arrays"]) == expected
        assert store.vocabulary is None if not ctc else store.vocabulary[0] == BLANK_LABEL
        offsets = store.utterances().set_index("id")
        for utt in corpus.utterances:
            reference = _single_pass(checkpoint, load_audio(utt, 16000))
            rows = slice(offsets.loc[utt.id, "offset"], offsets.loc[utt.id, "offset"] + offsets.loc[utt.id, "n_frames"])
            assert offsets.loc[utt.id, "n_frames"] == len(reference["cnn"])
            windowed = utt.id == "u2"
            for name, values in reference.items():
                if windowed and name != "cnn":
                    continue  # attention over a window differs from attention over the whole utterance
                if windowed and getattr(checkpoint.model.config, "feat_extract_norm", "layer") == "group":
                    continue  # a group-norm CNN normalises over its whole input: a window's statistics differ
                assert np.allclose(store.array(name)[rows], values, atol=1e-4), (family, utt.id, name)


def test_checkpoint_without_preprocessor_config_gets_its_kinds_defaults(tmp_path: Path) -> None:
    for family in ("wav2vec2-xlsr-stable-layer-norm", "hubert"):
        pretrained_dir, _ = save_family(tmp_path / family, family)
        (pretrained_dir / "preprocessor_config.json").unlink()
        checkpoint = load_checkpoint(str(pretrained_dir), require_ctc=False, device=CPU, dtype=torch.float32)
        assert checkpoint.feature_extractor.do_normalize == (family != "hubert")
        assert checkpoint.sample_rate == 16000


def test_unreachable_hub_id_says_how_to_use_a_local_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(W2VLensError) as error:
        load_checkpoint("w2vlens-tests/no-such-model", require_ctc=True, device=CPU, dtype=torch.float32)
    message = str(error.value)
    assert message.startswith("w2vlens-tests/no-such-model: cannot load checkpoint (HF_HUB_OFFLINE=1")
    assert "local folder" in message and "hf download w2vlens-tests/no-such-model --local-dir DIR" in message
    assert "\n" not in message
