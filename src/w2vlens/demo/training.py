"""Trains the embedded demo model pair: a small wav2vec2, pre-trained and then fine-tuned.

The pair mirrors the recipe the tool is meant to study (Grósz et al.): a wav2vec2 model with
stable layer norm is first pre-trained with wav2vec2's own self-supervised objective (masked
time steps, Gumbel-softmax quantizer with an annealed temperature, contrastive plus diversity
loss), saved, and then fine-tuned from that checkpoint with CTC on characters while the CNN
feature encoder stays frozen. Both phases are Lightning modules on the CPU. Everything follows
from one seed, with deterministic kernels, a fixed thread count and a fixed data order, so a
rebuild on the same machine gives bit-identical weights.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset
from transformers import (
    AutoModelForCTC,
    AutoProcessor,
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2ForPreTraining,
    Wav2Vec2Processor,
)
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

from w2vlens.corpora.text import normalize_text
from w2vlens.demo.corpus import SAMPLE_RATE, build_demo_corpus
from w2vlens.demo.sentences import FINNISH_ALPHABET
from w2vlens.labelling.names import WORD_DELIMITER

logger = logging.getLogger(__name__)

NUM_THREADS = 2
FILTERBANK_BANDS = 32
PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"
VOCABULARY = [PAD_TOKEN, UNK_TOKEN, WORD_DELIMITER, *FINNISH_ALPHABET]  # <pad> doubles as the CTC blank


@dataclass(frozen=True)
class Utterance:
    """Raw 16 kHz mono audio and its normalised transcript."""

    audio: np.ndarray
    text: str

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass(frozen=True)
class PretrainSettings:
    """Optimisation and masking for the self-supervised phase (wav2vec2 defaults, scaled down)."""

    epochs: int = 3
    batch_seconds: float = 48.0  # padded audio per batch
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    gradient_clip: float = 1.0
    mask_prob: float = 0.65
    mask_length: int = 10
    max_gumbel_temperature: float = 2.0
    min_gumbel_temperature: float = 0.5


@dataclass(frozen=True)
class FinetuneSettings:
    """Optimisation and SpecAugment-style time masking for CTC fine-tuning."""

    epochs: int = 10
    batch_seconds: float = 48.0
    learning_rate: float = 2e-3
    warmup_fraction: float = 0.1
    weight_decay: float = 0.0
    gradient_clip: float = 1.0
    mask_time_prob: float = 0.05


@dataclass(frozen=True)
class PhaseResult:
    """What one training phase did: steps, epochs, its loss curve and its wall-clock time."""

    steps: int
    epochs: int
    loss_curve: list[tuple[float, ...]]
    seconds: float


@dataclass(frozen=True)
class CerResult:
    """Greedy character error rate over a test set, with the decodes it came from."""

    cer: float
    references: list[str]
    hypotheses: list[str]


def demo_config(**overrides: object) -> Wav2Vec2Config:
    """The demo architecture: wav2vec2-large's stable layer norm, shrunk to train on 2 CPU cores.

    A two-layer CNN (a 25 ms filterbank layer at a 5 ms hop, then 4x pooling to wav2vec2's 20 ms
    frames; see `init_filterbank_encoder`), four transformer layers of width 192, a small
    positional conv and a 2x64-entry quantizer. Dropout and LayerDrop are off: the runs are
    short and the model is small.
    """
    settings: dict[str, object] = dict(
        vocab_size=len(VOCABULARY),
        pad_token_id=0,
        hidden_size=192,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=768,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_dim=(2 * FILTERBANK_BANDS, 2 * FILTERBANK_BANDS),
        conv_kernel=(400, 4),
        conv_stride=(80, 4),
        conv_bias=True,
        num_conv_pos_embeddings=32,
        num_conv_pos_embedding_groups=16,
        num_codevector_groups=2,
        num_codevectors_per_group=64,
        codevector_dim=64,
        proj_codevector_dim=64,
        num_negatives=20,
        diversity_loss_weight=0.1,
        hidden_dropout=0.0,
        activation_dropout=0.0,
        attention_dropout=0.0,
        feat_proj_dropout=0.0,
        feat_quantizer_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.05,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
    )
    settings.update(overrides)
    return Wav2Vec2Config(**settings)


def init_filterbank_encoder(model: Wav2Vec2ForPreTraining, low_hz: float = 80.0, high_hz: float = 7600.0) -> None:
    """Starts the two-layer CNN as a mel-spaced Gabor filterbank followed by envelope pooling.

    wav2vec2 learns a filterbank-like first layer from thousands of hours of audio; a run of a
    few CPU minutes cannot, and a randomly initialised narrow CNN keeps too little spectral
    detail for CTC to leave the all-blank plateau (measured on the demo corpus: CTC loss flat at
    2.9 after 350 steps on random-CNN frames, falling below 1.7 from this initialisation after
    pre-training). Written by hand because no library initialises a wav2vec2 CNN this way.

    Layer 1 holds a cosine and a sine Gabor filter per mel-spaced band (Gaussian windows whose
    bandwidth matches the band's, at most the 25 ms kernel), so that its GELU outputs, summed over
    a quadrature pair, follow the band's amplitude envelope. Layer 2 pools each pair over its four
    time steps into the band envelope (first half of its channels) and the envelope's slope
    (second half). Pre-training then trains every weight as usual.
    """
    first, second = model.wav2vec2.feature_extractor.conv_layers
    bands, kernel = first.conv.out_channels // 2, first.conv.kernel_size[0]
    if second.conv.out_channels != 2 * bands or second.conv.in_channels != 2 * bands:
        raise ValueError("the filterbank initialisation needs conv_dim = (2 x bands, 2 x bands)")

    def mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    edges = 700.0 * (10 ** (np.linspace(mel(np.array(low_hz)), mel(np.array(high_hz)), bands + 2) / 2595.0) - 1.0)
    centres, half_widths = edges[1:-1], (edges[2:] - edges[:-2]) / 2
    t = (np.arange(kernel) - (kernel - 1) / 2) / SAMPLE_RATE
    sigma_t = np.minimum(2.355 / (2 * np.pi * half_widths), kernel / SAMPLE_RATE / 6)  # FWHM = band width
    window = np.exp(-0.5 * (t[None, :] / sigma_t[:, None]) ** 2)
    phase = 2 * np.pi * centres[:, None] * t[None, :]
    filters = np.empty((2 * bands, kernel))
    filters[0::2], filters[1::2] = window * np.cos(phase), window * np.sin(phase)
    filters /= np.linalg.norm(filters, axis=1, keepdims=True)

    taps = second.conv.kernel_size[0]
    level, slope = torch.ones(taps), torch.linspace(-1.0, 1.0, taps)
    pooling = torch.zeros_like(second.conv.weight)
    for band in range(bands):
        pooling[band, 2 * band : 2 * band + 2] = level
        pooling[bands + band, 2 * band : 2 * band + 2] = slope
    with torch.no_grad():
        first.conv.weight.copy_(torch.from_numpy(filters).float().unsqueeze(1))
        second.conv.weight.copy_(pooling)
        for layer in (first, second):
            if layer.conv.bias is not None:
                layer.conv.bias.zero_()
        second.layer_norm.bias.fill_(1.0)  # GELU then passes the normalised envelopes nearly linearly


def make_feature_extractor() -> Wav2Vec2FeatureExtractor:
    """Per-utterance zero-mean unit-variance normalisation, zero padding, attention masks."""
    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )


def make_tokenizer(work_dir: Path) -> Wav2Vec2CTCTokenizer:
    """The character tokenizer: <pad> (blank) = 0, <unk> = 1, | = 2, then the Finnish letters."""
    vocab_file = work_dir / "vocab.json"
    vocab_file.write_text(json.dumps({token: i for i, token in enumerate(VOCABULARY)}, ensure_ascii=False))
    return Wav2Vec2CTCTokenizer(
        str(vocab_file),
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        word_delimiter_token=WORD_DELIMITER,
        bos_token=None,
        eos_token=None,
        do_lower_case=False,
    )


def load_utterances(manifest: Path) -> list[Utterance]:
    """Reads a corpus manifest (audio paths relative to it) into memory, in manifest order."""
    table = pd.read_csv(manifest, sep="\t", keep_default_na=False)
    utterances = []
    for path, text in zip(table["audio"], table["text"], strict=True):
        audio, rate = sf.read(manifest.parent / path, dtype="float32")
        if rate != SAMPLE_RATE or audio.ndim != 1:
            raise ValueError(f"{path}: expected 16 kHz mono audio")
        utterances.append(Utterance(audio, normalize_text(text)))
    return utterances


def seed_everything(seed: int) -> None:
    """Seeds every generator training touches and pins threads and kernels for bit-identical runs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(NUM_THREADS)
    torch.use_deterministic_algorithms(True)


def length_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Groups indices of similar length so that batch size x longest item stays within `budget`.

    Sorting by length (ties by index) keeps padding small and the grouping deterministic.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and (len(current) + 1) * lengths[index] > budget:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


class _BatchDataset(Dataset):
    """Precomputed length-bucketed batches, padded and normalised by the feature extractor itself."""

    def __init__(
        self,
        utterances: Sequence[Utterance],
        batch_seconds: float,
        feature_extractor: Wav2Vec2FeatureExtractor,
        tokenizer: Wav2Vec2CTCTokenizer | None = None,
    ) -> None:
        self.utterances = utterances
        self.batches = length_batches([len(u.audio) for u in utterances], int(batch_seconds * SAMPLE_RATE))
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        items = [self.utterances[i] for i in self.batches[index]]
        batch = self.feature_extractor(
            [u.audio for u in items], sampling_rate=SAMPLE_RATE, padding=True, return_tensors="pt"
        )
        features = {"input_values": batch["input_values"], "attention_mask": batch["attention_mask"]}
        if self.tokenizer is not None:
            labels = self.tokenizer([u.text for u in items], padding=True, return_tensors="pt")
            features["labels"] = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
        return features


def _loader(dataset: _BatchDataset, seed: int) -> DataLoader:
    """Batches in a seeded random order that changes every epoch; batches stay fixed."""
    return DataLoader(dataset, batch_size=None, shuffle=True, generator=torch.Generator().manual_seed(seed))


def _warmup_linear_decay(optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float) -> dict:
    """Linear warm-up to the peak learning rate, then linear decay to zero, stepped per batch."""
    warmup = max(1, round(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "interval": "step"}


def _trainer(epochs: int, gradient_clip: float) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        gradient_clip_val=gradient_clip,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
    )


class _EpochLogging(pl.LightningModule):
    """Logs the mean loss of each epoch, so a long build shows that it is moving."""

    curve: list[tuple[float, ...]]

    def on_train_epoch_start(self) -> None:
        self._epoch_start = (len(self.curve), time.perf_counter())

    def on_train_epoch_end(self) -> None:
        first, started = self._epoch_start
        losses = [point[1] for point in self.curve[first:]]
        logger.info(
            "%s epoch %d: %d steps, mean loss %.4f, %.0f s",
            type(self).__name__, self.current_epoch + 1, len(losses), float(np.mean(losses)),
            time.perf_counter() - started,
        )


class PretrainModule(_EpochLogging):
    """wav2vec2's self-supervised objective, as in the Hugging Face pre-training example.

    Each batch gets fresh span masks (only over real frames) and negatives drawn from the masked
    frames of the same utterance; the loss is divided by the number of masked frames, and the
    Gumbel temperature decays exponentially from its maximum to its minimum over the run.
    """

    def __init__(self, config: Wav2Vec2Config, settings: PretrainSettings, total_steps: int) -> None:
        super().__init__()
        self.model = Wav2Vec2ForPreTraining(config).train()
        init_filterbank_encoder(self.model)
        self.settings = settings
        self.total_steps = total_steps
        self.curve = []

    def gumbel_temperature(self, step: int) -> float:
        s = self.settings
        progress = min(1.0, step / max(1, self.total_steps - 1))
        return s.max_gumbel_temperature * (s.min_gumbel_temperature / s.max_gumbel_temperature) ** progress

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.model.set_gumbel_temperature(self.gumbel_temperature(self.global_step))
        input_values, attention_mask = batch["input_values"], batch["attention_mask"]
        frames = int(self.model._get_feat_extract_output_lengths(input_values.shape[1]))
        frame_mask = self.model._get_feature_vector_attention_mask(frames, attention_mask)
        shape = (input_values.shape[0], frames)
        masked = _compute_mask_indices(
            shape, self.settings.mask_prob, self.settings.mask_length, attention_mask=frame_mask, min_masks=2
        )
        negatives = _sample_negative_indices(shape, self.model.config.num_negatives, mask_time_indices=masked)
        output = self.model(
            input_values,
            attention_mask=attention_mask,
            mask_time_indices=torch.from_numpy(masked),
            sampled_negative_indices=torch.from_numpy(negatives).long(),
        )
        count = float(masked.sum())
        loss = output.loss / count
        self.curve.append(
            (self.global_step, loss.item(), output.contrastive_loss.item() / count,
             output.diversity_loss.item() / count)
        )
        return loss

    def configure_optimizers(self) -> dict:
        s = self.settings
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=s.learning_rate, betas=(0.9, 0.98), eps=1e-6, weight_decay=s.weight_decay
        )
        scheduler = _warmup_linear_decay(optimizer, self.total_steps, s.warmup_fraction)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


class FinetuneModule(_EpochLogging):
    """CTC fine-tuning of a pre-trained checkpoint with its CNN feature encoder frozen."""

    def __init__(self, pretrained_dir: Path, settings: FinetuneSettings, total_steps: int) -> None:
        super().__init__()
        self.model = Wav2Vec2ForCTC.from_pretrained(
            pretrained_dir,
            dtype=torch.float32,
            vocab_size=len(VOCABULARY),
            pad_token_id=0,
            ctc_loss_reduction="mean",
            ctc_zero_infinity=True,
            mask_time_prob=settings.mask_time_prob,
        )
        self.model.freeze_feature_encoder()
        self.model.train()  # from_pretrained returns it in eval mode, which Lightning keeps
        self.settings = settings
        self.total_steps = total_steps
        self.curve = []

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.model(**batch).loss
        self.curve.append((self.global_step, loss.item()))
        return loss

    def configure_optimizers(self) -> dict:
        s = self.settings
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            trainable, lr=s.learning_rate, betas=(0.9, 0.98), eps=1e-8, weight_decay=s.weight_decay
        )
        scheduler = _warmup_linear_decay(optimizer, self.total_steps, s.warmup_fraction)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def pretrain(
    utterances: Sequence[Utterance], config: Wav2Vec2Config, settings: PretrainSettings, out_dir: Path, seed: int
) -> PhaseResult:
    """Pre-trains a fresh model on unlabelled audio and saves it like a hub pre-trained checkpoint.

    The folder gets the model (float16 weights, to keep the embedded pair small) and the feature
    extractor's preprocessor_config.json, and no tokenizer.
    """
    started = time.perf_counter()
    seed_everything(seed)
    dataset = _BatchDataset(utterances, settings.batch_seconds, make_feature_extractor())
    module = PretrainModule(config, settings, total_steps=settings.epochs * len(dataset))
    _trainer(settings.epochs, settings.gradient_clip).fit(module, _loader(dataset, seed))
    out_dir.mkdir(parents=True, exist_ok=True)
    module.model.half().save_pretrained(out_dir)
    make_feature_extractor().save_pretrained(out_dir)
    return PhaseResult(module.global_step, settings.epochs, module.curve, time.perf_counter() - started)


def finetune(
    utterances: Sequence[Utterance], pretrained_dir: Path, settings: FinetuneSettings, out_dir: Path, seed: int
) -> PhaseResult:
    """Fine-tunes the saved pre-trained checkpoint with CTC on characters, CNN frozen.

    Saves the model (float16 weights) with a Wav2Vec2Processor, so that AutoModelForCTC and
    AutoProcessor load the folder exactly as they load a fine-tuned hub checkpoint.
    """
    started = time.perf_counter()
    seed_everything(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    processor = Wav2Vec2Processor(feature_extractor=make_feature_extractor(), tokenizer=make_tokenizer(out_dir))
    dataset = _BatchDataset(utterances, settings.batch_seconds, processor.feature_extractor, processor.tokenizer)
    module = FinetuneModule(pretrained_dir, settings, total_steps=settings.epochs * len(dataset))
    _trainer(settings.epochs, settings.gradient_clip).fit(module, _loader(dataset, seed))
    module.model.half().save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return PhaseResult(module.global_step, settings.epochs, module.curve, time.perf_counter() - started)


def edit_distance(reference: str, hypothesis: str) -> int:
    """Levenshtein distance between two strings, character by character."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_char in enumerate(reference, start=1):
        current = [i]
        for j, hyp_char in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_char != hyp_char)))
        previous = current
    return previous[-1]


@torch.no_grad()
def evaluate_cer(model_dir: Path, utterances: Sequence[Utterance]) -> CerResult:
    """Greedy CTC decoding of each utterance alone, loaded the way a user loads a hub checkpoint.

    CER is the summed character edit distance (spaces count) over the summed reference length.
    """
    torch.set_num_threads(NUM_THREADS)
    model = AutoModelForCTC.from_pretrained(model_dir, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    hypotheses = []
    for utterance in utterances:
        inputs = processor(utterance.audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        logits = model(inputs.input_values, attention_mask=inputs.attention_mask).logits
        hypotheses.append(normalize_text(processor.batch_decode(logits.argmax(-1))[0]))
    references = [u.text for u in utterances]
    errors = sum(edit_distance(r, h) for r, h in zip(references, hypotheses, strict=True))
    return CerResult(errors / max(1, sum(len(r) for r in references)), references, hypotheses)


def plot_curves(pretraining: PhaseResult, finetuning: PhaseResult, path: Path) -> None:
    """Pre-training losses (total, contrastive, diversity) above, the CTC loss below."""
    import matplotlib.pyplot as plt

    def smooth(values: np.ndarray, width: int = 15) -> np.ndarray:
        width = max(1, min(width, len(values)))
        padded = np.pad(values, (width // 2, width - 1 - width // 2), mode="edge")
        return np.convolve(padded, np.ones(width) / width, mode="valid")

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), constrained_layout=True)
    pre = np.array(pretraining.loss_curve, dtype=float)
    for column, label in ((1, "total"), (2, "contrastive"), (3, "diversity")):
        top.plot(pre[:, 0], pre[:, column], alpha=0.25)
        top.plot(pre[:, 0], smooth(pre[:, column]), color=top.lines[-1].get_color(), label=label)
    top.set(title="wav2vec2 self-supervised pre-training", xlabel="step", ylabel="loss per masked frame")
    top.legend()
    fine = np.array(finetuning.loss_curve, dtype=float)
    bottom.plot(fine[:, 0], fine[:, 1], alpha=0.25, color="C3")
    bottom.plot(fine[:, 0], smooth(fine[:, 1]), color="C3", label="CTC")
    bottom.set(title="CTC fine-tuning, CNN feature encoder frozen", xlabel="step", ylabel="CTC loss", yscale="log")
    bottom.legend()
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def build_demo_pair(
    out_dir: Path,
    cache_dir: Path,
    seed: int = 0,
    figure: Path | None = None,
    config: Wav2Vec2Config | None = None,
    pretrain_settings: PretrainSettings = PretrainSettings(),
    finetune_settings: FinetuneSettings = FinetuneSettings(),
) -> dict[str, object]:
    """Builds the demo corpus (cached), trains both models into `out_dir` and writes report.json.

    Returns the report; `figure`, if given, gets the plot of both loss curves.
    """
    config = config or demo_config()
    corpus = build_demo_corpus(cache_dir)
    started = time.perf_counter()
    train = load_utterances(corpus.train_manifest)
    test = load_utterances(corpus.test_manifest)
    loading = time.perf_counter() - started
    logger.info("loaded %d train and %d test utterances in %.0f s", len(train), len(test), loading)

    pretrained_dir, finetuned_dir = out_dir / "pretrained", out_dir / "finetuned"
    pre = pretrain(train, config, pretrain_settings, pretrained_dir, seed)
    logger.info("pre-training: %d steps in %.0f s", pre.steps, pre.seconds)
    fine = finetune(train, pretrained_dir, finetune_settings, finetuned_dir, seed)
    logger.info("fine-tuning: %d steps in %.0f s", fine.steps, fine.seconds)
    started = time.perf_counter()
    result = evaluate_cer(finetuned_dir, test)
    evaluation = time.perf_counter() - started
    logger.info("test CER %.2f%% (%.0f s)", 100 * result.cer, evaluation)

    ctc = Wav2Vec2ForCTC(config)
    report: dict[str, object] = {
        "seed": seed,
        "model": {
            "hidden_size": config.hidden_size,
            "num_hidden_layers": config.num_hidden_layers,
            "num_attention_heads": config.num_attention_heads,
            "intermediate_size": config.intermediate_size,
            "conv_dim": list(config.conv_dim),
            "conv_kernel": list(config.conv_kernel),
            "conv_stride": list(config.conv_stride),
            "frame_rate_hz": SAMPLE_RATE / math.prod(config.conv_stride),
            "feat_extract_norm": config.feat_extract_norm,
            "do_stable_layer_norm": config.do_stable_layer_norm,
            "num_codevector_groups": config.num_codevector_groups,
            "num_codevectors_per_group": config.num_codevectors_per_group,
            "parameters_pretraining": sum(p.numel() for p in Wav2Vec2ForPreTraining(config).parameters()),
            "parameters_ctc": sum(p.numel() for p in ctc.parameters()),
            "parameters_cnn": sum(p.numel() for p in ctc.wav2vec2.feature_extractor.parameters()),
            "weights_dtype_on_disk": "float16",
        },
        "data": {
            "train_utterances": len(train),
            "train_hours": sum(u.seconds for u in train) / 3600,
            "test_utterances": len(test),
            "test_hours": sum(u.seconds for u in test) / 3600,
        },
        "pretraining": {
            "settings": asdict(pretrain_settings),
            "steps": pre.steps,
            "epochs": pre.epochs,
            "loss_curve_columns": ["step", "loss", "contrastive", "diversity"],
            "loss_curve": [[int(p[0])] + [round(v, 5) for v in p[1:]] for p in pre.loss_curve],
        },
        "finetuning": {
            "settings": asdict(finetune_settings),
            "steps": fine.steps,
            "epochs": fine.epochs,
            "loss_curve_columns": ["step", "ctc_loss"],
            "loss_curve": [[int(p[0]), round(p[1], 5)] for p in fine.loss_curve],
        },
        "test_cer": result.cer,
        "examples": [{"reference": r, "hypothesis": h}
                     for r, h in zip(result.references[:5], result.hypotheses[:5], strict=True)],
        "seconds": {"loading": loading, "pretraining": pre.seconds, "finetuning": fine.seconds,
                    "evaluation": evaluation},
        "bytes_on_disk": {"pretrained": _folder_bytes(pretrained_dir), "finetuned": _folder_bytes(finetuned_dir)},
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    if figure is not None:
        plot_curves(pre, fine, figure)
    return report
