"""Corpora as lists of utterances: from a manifest file, or the embedded demo corpus.

Kaldi data dirs (`w2vlens.corpora.kaldi`) and Hugging Face datasets (`w2vlens.corpora.hf`) give the same `Corpus`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from w2vlens.errors import W2VLensError
from w2vlens.paths import default_cache_dir

ANNOTATOR_PREFIX = "annotator_"
_RESERVED = {"id", "audio", "text"}
# Names the frame and utterance tables of a store use themselves: metadata must not shadow them.
RESERVED_METADATA = _RESERVED | {"utterance", "frame", "start", "end", "duration", "offset", "n_frames"}


@dataclass(frozen=True)
class Utterance:
    """One recording, or the segment [start, end) seconds of one (end None: to its end), with its
    optional reference and annotator transcripts and metadata."""

    id: str
    audio: Path
    text: str | None = None
    annotators: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, object] = field(default_factory=dict)
    start: float = 0.0
    end: float | None = None

    @property
    def is_segment(self) -> bool:
        return self.start > 0 or self.end is not None


@dataclass(frozen=True)
class Corpus:
    """Utterances plus a fingerprint that changes whenever the data the model sees changes."""

    name: str
    utterances: list[Utterance]
    # The transcripts the corpus's model was fine-tuned on, where the corpus knows them (the demo's
    # train split): Table 4-5's frequency correlations read them. Read on demand: it may build data.
    finetuning_texts: Callable[[], list[str]] | None = field(default=None, compare=False, repr=False)

    @property
    def fingerprint(self) -> str:
        """From file names, sizes and modification times (and segment bounds), never the audio itself."""
        digest = hashlib.sha1()
        stats: dict[Path, str] = {}  # many segments share one recording: stat it once
        for utt in self.utterances:
            if utt.audio not in stats:
                stat = utt.audio.stat()
                stats[utt.audio] = f"{utt.audio.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
            segment = f"\0{utt.start}\0{utt.end}" if utt.is_segment else ""
            digest.update(f"{utt.id}\0{stats[utt.audio]}{segment}\n".encode())
        return digest.hexdigest()[:16]

    @property
    def metadata_columns(self) -> list[str]:
        return sorted({key for utt in self.utterances for key in utt.metadata})


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        separator = "\t" if suffix == ".tsv" else ","
        return pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as error:
        raise W2VLensError(f"{path}: cannot parse manifest ({error})") from None


def _text_or_none(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value)
    return text if text.strip() else None


def load_manifest(path: str | Path, name: str | None = None) -> Corpus:
    """Reads a CSV/TSV/JSONL manifest with an `audio` column (relative to the manifest),
    optional `id`, `text` and `annotator_*` columns; every other column becomes metadata."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise W2VLensError(f"{path}: manifest not found")
    if path.suffix.lower() not in {".csv", ".tsv", ".jsonl"}:
        raise W2VLensError(f"{path}: manifest must be .csv, .tsv or .jsonl")
    table = _read_table(path)
    if "audio" not in table.columns:
        raise W2VLensError(f"{path}: manifest has no 'audio' column (columns: {list(table.columns)})")
    if table.empty:
        raise W2VLensError(f"{path}: manifest lists no utterances")
    annotator_columns = sorted(c for c in table.columns if c.startswith(ANNOTATOR_PREFIX))
    metadata_columns = [c for c in table.columns if c not in _RESERVED and c not in annotator_columns]
    utterances: list[Utterance] = []
    for row_number, row in enumerate(table.to_dict("records"), start=2):
        audio_value = _text_or_none(row["audio"])
        if audio_value is None:
            raise W2VLensError(f"{path}: line {row_number} has an empty 'audio' path")
        audio = (path.parent / audio_value).resolve()
        if not audio.is_file():
            raise W2VLensError(f"{path}: line {row_number}: audio file not found: {audio}")
        uid = _text_or_none(row.get("id")) or audio.stem
        annotators = {c: _text_or_none(row[c]) or "" for c in annotator_columns}
        metadata = {c: row[c] for c in metadata_columns}
        utterances.append(Utterance(uid, audio, _text_or_none(row.get("text")), annotators, metadata))
    ids = [u.id for u in utterances]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise W2VLensError(f"{path}: utterance id {duplicate!r} appears more than once")
    return Corpus(name or path.stem, utterances)


def demo_corpus(split: str = "test", seed: int = 0, cache_dir: str | Path | None = None) -> Corpus:
    """The embedded synthetic Finnish corpus (built on first use, then cached)."""
    from w2vlens.demo.corpus import SPLIT_SIZES, build_demo_split

    if split not in SPLIT_SIZES:
        raise W2VLensError(f"demo corpus split must be one of {sorted(SPLIT_SIZES)}, not {split!r}")
    manifest = build_demo_split(Path(cache_dir) if cache_dir else default_cache_dir(), split, seed=seed)
    corpus = load_manifest(manifest, name=f"demo-{split}")

    def train_texts() -> list[str]:  # the demo model was fine-tuned on the train split
        return [utt.text for utt in demo_corpus("train", seed, cache_dir).utterances if utt.text]

    return replace(corpus, finetuning_texts=train_texts)

