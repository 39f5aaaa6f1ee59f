"""Loading wav2vec2-family checkpoints (hub id or local folder) through the Auto classes.

Every family with wav2vec2's CNN feature encoder and Transformer works the same way: wav2vec2 (both
layer-norm variants), XLS-R, HuBERT, WavLM and data2vec-audio, with a CTC head or without one.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForCTC,
    AutoTokenizer,
    PreTrainedModel,
    Wav2Vec2FeatureExtractor,
)
from transformers.utils import logging as transformers_logging

from w2vlens.choices import COMPUTE_DTYPES
from w2vlens.errors import W2VLensError
from w2vlens.labelling.names import BLANK_LABEL

log = logging.getLogger(__name__)



@dataclass
class Checkpoint:
    """A loaded model with its feature extractor, its CTC vocabulary and a cache fingerprint."""

    name: str
    model: PreTrainedModel
    feature_extractor: object
    vocabulary: list[str] | None  # CTC output labels by id; None without a CTC head
    fingerprint: str

    @property
    def sample_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    @property
    def is_ctc(self) -> bool:
        return self.vocabulary is not None

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)


_DTYPES = {name: getattr(torch, name) for name in COMPUTE_DTYPES}


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then the CPU; a named device must exist here."""
    if device != "auto":
        try:
            chosen = torch.device(device)
        except RuntimeError:
            raise W2VLensError(f"extract.device={device!r}: use auto, cpu, cuda, cuda:N or mps") from None
        if chosen.type == "cuda" and (not torch.cuda.is_available()
                                      or (chosen.index or 0) >= torch.cuda.device_count()):
            raise W2VLensError(f"extract.device={device}: no such CUDA GPU on this machine "
                               f"({torch.cuda.device_count()} visible); use extract.device=auto or cpu")
        if chosen.type == "mps" and not torch.backends.mps.is_available():
            raise W2VLensError(f"extract.device={device}: Apple MPS is not available here; use auto or cpu")
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto` is bf16 on GPUs that support it, fp16 on other GPUs, fp32 on the CPU."""
    if dtype != "auto":
        if dtype not in _DTYPES:
            raise W2VLensError(f"extract.dtype={dtype!r}: use auto, {', '.join(_DTYPES)}")
        return _DTYPES[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16 if device.type == "mps" else torch.float32


def _is_local(name: str) -> bool:
    return Path(name).expanduser().exists() or name.startswith((".", "/", "~")) or name.count("/") > 1


def _fingerprint(name: str, config: object) -> str:
    if _is_local(name):
        folder = Path(name).expanduser().resolve()
        parts = [str(folder)] + [
            f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in sorted(folder.iterdir()) if f.is_file()
        ]
    else:
        parts = [name, str(getattr(config, "_commit_hash", None))]
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def _load_config(name: str) -> object:
    if _is_local(name):
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise W2VLensError(f"{name}: checkpoint folder does not exist")
        if not (folder / "config.json").is_file():
            raise W2VLensError(f"{name}: not a Hugging Face checkpoint folder (no config.json)")
    try:
        return AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        hint = ""
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            hint = (" (HF_HUB_OFFLINE=1 and it is not in the local Hugging Face cache: run once with "
                    f"HF_HUB_OFFLINE=0 to download it, or `hf download {name} --local-dir DIR` and pass DIR, "
                    "a local folder, instead of the hub id)")
        raise W2VLensError(f"{name}: cannot load checkpoint{hint}: {str(error).splitlines()[0]}") from None


def _feature_extractor(name: str, config: object) -> object:
    """The checkpoint's feature extractor; for pre-training checkpoints published without one, the
    wav2vec2 convention: layer-norm CNNs were trained on normalised input with attention masks,
    group-norm ones on raw input without (a model without `feat_extract_norm` uses layer norm)."""
    try:
        return AutoFeatureExtractor.from_pretrained(name)
    except OSError:
        layer_norm = getattr(config, "feat_extract_norm", "layer") == "layer"
        log.warning("%s: no preprocessor_config.json; using 16 kHz input, do_normalize=%s", name, layer_norm)
        return Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=layer_norm, return_attention_mask=layer_norm)


def ctc_vocabulary(tokenizer: object, vocab_size: int) -> list[str]:
    """Label names by CTC output id; the pad token is the CTC blank, named 'blank'."""
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    labels = [by_id.get(index, f"<{index}>") for index in range(vocab_size)]
    labels[tokenizer.pad_token_id] = BLANK_LABEL
    return labels


def _ctc_labels(name: str, vocab_size: int) -> list[str]:
    """The CTC output labels from the checkpoint's tokenizer; without one its outputs have no names."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token (the CTC blank)")
        return ctc_vocabulary(tokenizer, vocab_size)
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise W2VLensError(f"{name}: CTC checkpoint without a usable tokenizer (vocab.json and tokenizer_config.json "
                           f"name its outputs): {str(error).splitlines()[0]}") from None


def load_checkpoint(name: str, require_ctc: bool, device: torch.device, dtype: torch.dtype) -> Checkpoint:
    """Loads `name` for inference; with `require_ctc` it must carry a CTC head and tokenizer."""
    config = _load_config(name)
    architectures = getattr(config, "architectures", None) or []
    has_ctc = any(arch.endswith("ForCTC") for arch in architectures)
    if require_ctc and not has_ctc:
        raise W2VLensError(
            f"{name}: not a CTC model (architectures: {architectures or 'none'}); "
            "the fine-tuned side of a pair needs a CTC head"
        )
    try:
        if has_ctc:
            model = AutoModelForCTC.from_pretrained(name, dtype=dtype)
        else:
            # A pre-training checkpoint's quantizer and projection heads are expected leftovers:
            # silence transformers' load report about them.
            verbosity = transformers_logging.get_verbosity()
            transformers_logging.set_verbosity_error()
            try:
                model = AutoModel.from_pretrained(name, dtype=dtype)
            finally:
                transformers_logging.set_verbosity(verbosity)
        feature_extractor = _feature_extractor(name, config)
    except (OSError, ValueError) as error:
        raise W2VLensError(f"{name}: cannot load checkpoint: {str(error).splitlines()[0]}") from None
    vocabulary = _ctc_labels(name, config.vocab_size) if has_ctc else None
    model.eval().to(device)
    return Checkpoint(name, model, feature_extractor, vocabulary, _fingerprint(name, config))
