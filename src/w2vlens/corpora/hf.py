"""Hugging Face datasets as corpora: a hub (or builder) dataset by name, config and split, a dataset
saved with `save_to_disk`, or an audiofolder; optionally streamed, optionally a seeded subset.

Audio is decoded with soundfile, never with datasets' own decoder (torchcodec): rows are read as
Arrow, where an audio column holds the encoded bytes and/or a file path. Embedded audio is written
once to the cache as FLAC files (under a temporary folder, renamed when complete), keyed by the
dataset's fingerprint (or, streamed, its name, config, split and revision) and the selection;
audio given as paths to local files is used in place. The corpus is a manifest over those files, so
its fingerprint stays cheap and the extraction reads them like any other corpus.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, IterableDataset, load_dataset, load_from_disk
from tqdm import tqdm

from w2vlens.corpora.audio import decode_audio, write_flac
from w2vlens.corpora.corpus import RESERVED_METADATA, Corpus, load_manifest
from w2vlens.errors import W2VLensError
from w2vlens.paths import default_cache_dir

log = logging.getLogger(__name__)

_BATCH = 64  # rows read per Arrow batch
_OFFLINE_HINT = (
    " (HF_HUB_OFFLINE=1 and it is not in the local Hugging Face cache: run once with HF_HUB_OFFLINE=0 to "
    "download it, or use a local copy: data.path=<a folder written by Dataset.save_to_disk>, or "
    "data.path=audiofolder data.data_dir=<a folder of audio files with metadata.csv>)"
)


def _audiofolder(data_dir: str | None) -> tuple[str, str, Path]:
    """The builder, metadata file and folder of an audiofolder. datasets' own audiofolder builder
    needs torchcodec to encode audio, so its layout (a metadata.csv or metadata.jsonl whose
    `file_name` column holds paths relative to it) is read here with the csv/json builders."""
    if not data_dir:
        raise W2VLensError("data.path=audiofolder needs data.data_dir, the folder with the audio and metadata")
    folder = Path(data_dir).expanduser()
    for file_name, builder in (("metadata.csv", "csv"), ("metadata.jsonl", "json")):
        if (folder / file_name).is_file():
            return builder, str(folder / file_name), folder
    raise W2VLensError(f"{folder}: audiofolder without metadata.csv or metadata.jsonl (a `file_name` column "
                       "of audio paths, plus the transcript and any metadata columns)")


def _saved(path: str) -> Path | None:
    """The folder, when `path` is one written by `save_to_disk`."""
    local = Path(path).expanduser()
    return local if (local / "state.json").is_file() or (local / "dataset_dict.json").is_file() else None


def _open(path: str, name: str | None, split: str, data_dir: str | None, data_files: object, revision: str | None,
          streaming: bool, load_kwargs: dict) -> Dataset | IterableDataset:
    local = Path(path).expanduser()
    if _saved(path):
        dataset = load_from_disk(str(local))
        if isinstance(dataset, DatasetDict):
            if split not in dataset:
                raise W2VLensError(f"{local}: no split {split!r} (splits: {list(dataset)})")
            dataset = dataset[split]
        return dataset
    if path.startswith((".", "/", "~")) and not local.exists():
        raise W2VLensError(f"{path}: dataset folder does not exist")
    try:
        return load_dataset(path, name, split=split, data_dir=data_dir, data_files=data_files, revision=revision,
                            streaming=streaming, **load_kwargs)
    except (OSError, ValueError, RuntimeError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        hint = ""
        if isinstance(error, ConnectionError) and os.environ.get("HF_HUB_OFFLINE") == "1":
            hint = _OFFLINE_HINT
        elif "scripts are no longer supported" in message:
            hint = " (try data.revision=refs/convert/parquet, the Hub's Parquet export)"
        raise W2VLensError(f"{path}: cannot load dataset{hint}: {message}") from None


def _rows(dataset: Dataset | IterableDataset, max_utterances: int | None, seed: int | None,
          shuffle_buffer: int) -> Iterator[tuple[int, dict]]:
    """(position, row) of the selected rows, read as Arrow so that audio stays encoded. A seed
    shuffles first (streamed: within a buffer of `shuffle_buffer` rows); position is the row's index
    in the dataset, or in the stream as selected."""
    if isinstance(dataset, IterableDataset):
        if seed is not None:
            dataset = dataset.shuffle(seed=seed, buffer_size=shuffle_buffer)
        if max_utterances is not None:
            dataset = dataset.take(max_utterances)
        position = 0
        for batch in dataset.with_format("arrow").iter(batch_size=_BATCH):
            for row in batch.to_pylist():
                yield position, row
                position += 1
        return
    order = np.arange(len(dataset)) if seed is None else np.random.default_rng(seed).permutation(len(dataset))
    order = order[:max_utterances]
    table = dataset.with_format("arrow")
    for begin in range(0, len(order), _BATCH):
        chunk = order[begin : begin + _BATCH].tolist()
        yield from zip(chunk, table[chunk].to_pylist(), strict=True)


def _audio_file(value: object, label: str, audio_root: Path, target: Path) -> Path:
    """The local file of one row's audio: embedded bytes (or a decoded array) written to `target` as
    FLAC, or the local file that its path names (relative paths from `audio_root`)."""
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict):
        raise W2VLensError(f"{label}: the audio column holds {type(value).__name__}, not audio")
    if value.get("bytes"):
        audio, rate = decode_audio(value["bytes"], label)
        write_flac(target, [audio], rate)
        return target
    if value.get("array") is not None and value.get("sampling_rate"):
        audio = np.asarray(value["array"], dtype=np.float32)
        write_flac(target, [audio.mean(axis=0) if audio.ndim == 2 else audio], int(value["sampling_rate"]))
        return target
    if value.get("path"):
        file = Path(value["path"]).expanduser()
        file = file if file.is_absolute() else audio_root / file
        if not file.is_file():
            raise W2VLensError(f"{label}: audio file not found: {file}")
        return file.resolve()
    raise W2VLensError(f"{label}: no audio (neither bytes nor a path)")


def _metadata(row: dict, skip: set[str], wanted: list[str] | None, rename: dict[str, str],
              labels: dict[str, ClassLabel]) -> dict[str, object]:
    """Scalar columns as metadata (class labels by name); a name the stores use gets `source_`."""
    metadata = {}
    for column, value in row.items():
        if column in skip or (wanted is not None and column not in wanted):
            continue
        if not (value is None or isinstance(value, (str, int, float, bool))):
            continue
        if column in labels and isinstance(value, int) and value >= 0:
            value = labels[column].int2str(value)
        name = rename.get(column, column)
        metadata[f"source_{name}" if name in RESERVED_METADATA else name] = value
    return metadata


def _materialise(rows: Iterator[tuple[int, dict]], folder: Path, label: str, audio_column: str,
                 text_column: str | None, id_column: str | None, metadata_columns: list[str] | None,
                 rename: dict[str, str], labels: dict[str, ClassLabel], audio_root: Path) -> None:
    """Writes the selected rows' audio and a corpus.jsonl manifest into `folder`, atomically."""
    temp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(temp, ignore_errors=True)
    (temp / "audio").mkdir(parents=True)
    needed = [c for c in (audio_column, text_column, id_column, *(metadata_columns or [])) if c]
    skip = {audio_column, text_column, id_column}
    seen: set[str] = set()
    try:
        with (temp / "corpus.jsonl").open("w", encoding="utf-8") as manifest, tqdm(
            desc=f"read {label}", unit="utt"
        ) as progress:
            for count, (position, row) in enumerate(rows):
                if count == 0 and (missing := [c for c in needed if c not in row]):
                    raise W2VLensError(f"{label}: no column {missing[0]!r} (columns: {list(row)}); set "
                                       "data.audio_column, data.text_column, data.id_column or "
                                       "data.metadata_columns to columns it has")
                uid = str(row[id_column]) if id_column else f"{position:06d}"
                if uid in seen:
                    raise W2VLensError(f"{label}: utterance id {uid!r} appears more than once")
                seen.add(uid)
                where = f"{label} example {uid}"
                audio = _audio_file(row[audio_column], where, audio_root, temp / "audio" / f"{count:06d}.flac")
                text = row[text_column] if text_column else None
                entry = {"id": uid, "audio": str(audio.relative_to(temp) if audio.is_relative_to(temp) else audio),
                         "text": None if text is None else str(text),
                         **_metadata(row, skip, metadata_columns, rename, labels)}
                manifest.write(json.dumps(entry, ensure_ascii=False) + "\n")
                progress.update()
        if not seen:
            raise W2VLensError(f"{label}: the selection holds no rows")
        try:
            temp.rename(folder)
        except OSError:  # a concurrent job wrote the same selection first; keep theirs
            shutil.rmtree(temp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def load_hf_corpus(
    path: str,
    name: str | None = None,
    split: str = "test",
    data_dir: str | None = None,
    data_files: object = None,
    revision: str | None = None,
    streaming: bool = False,
    audio_column: str = "audio",
    text_column: str | None = "text",
    id_column: str | None = None,
    metadata_columns: list[str] | None = None,
    rename_columns: dict[str, str] | None = None,
    audio_root: str | None = None,
    load_kwargs: dict | None = None,
    max_utterances: int | None = None,
    seed: int | None = None,
    shuffle_buffer: int = 1000,
    cache_dir: str | Path | None = None,
) -> Corpus:
    """A corpus over the rows of a Hugging Face dataset (see the module docstring).

    `path` is a hub id or builder name (with `name`, `split`, `data_dir`, `data_files`, `revision`,
    `load_kwargs` as `datasets.load_dataset` takes them), a folder written by `save_to_disk`, or
    `audiofolder` (with `data_dir`; its audio is the `file_name` column). `text_column` (None: no
    transcripts), `id_column` (None: the row index), `metadata_columns` (None: every other scalar
    column), `rename_columns` ({column: name}, e.g. {client_id: speaker}); audio paths that are
    relative are taken from `audio_root` (default: the audiofolder, else the working directory).
    `max_utterances` keeps the first rows, after a shuffle with `seed` when one is given.
    """
    load_kwargs = dict(load_kwargs or {})
    rename = dict(rename_columns or {})
    metadata_columns = list(metadata_columns) if metadata_columns is not None else None
    label = path + (f" ({name})" if name else "") + f" [{split}]"
    source_name = Path(data_dir or "").name if path == "audiofolder" else Path(path).name
    corpus_name = "-".join(part for part in (source_name, name, split) if part)
    if path == "audiofolder":
        builder, metadata_file, folder = _audiofolder(data_dir)
        path, data_files, data_dir, split, audio_column = builder, metadata_file, None, "train", "file_name"
        audio_root = audio_root or str(folder)
    root = Path(audio_root).expanduser() if audio_root else Path.cwd()
    selection = {"split": split, "audio": audio_column, "text": text_column, "id": id_column,
                 "metadata": metadata_columns, "rename": rename, "audio_root": audio_root,
                 "max_utterances": max_utterances, "seed": seed, "shuffle_buffer": shuffle_buffer}
    source = {"path": path, "name": name, "data_dir": data_dir, "data_files": data_files, "revision": revision,
              "load_kwargs": load_kwargs}

    def folder_for(identity: object) -> Path:
        key = hashlib.sha1(json.dumps([identity, selection], sort_keys=True, default=str).encode()).hexdigest()
        return Path(cache_dir or default_cache_dir()) / "corpora" / f"hf-{key[:20]}"

    dataset = None
    if streaming and not _saved(path):  # a stream has no fingerprint: its identity is how it was asked for
        folder = folder_for(source)
    else:
        dataset = _open(path, name, split, data_dir, data_files, revision, False, load_kwargs)
        folder = folder_for(dataset._fingerprint)
    if not (folder / "corpus.jsonl").is_file():
        if dataset is None:
            dataset = _open(path, name, split, data_dir, data_files, revision, True, load_kwargs)
        features = dataset.features or {}
        labels = {column: feature for column, feature in features.items() if isinstance(feature, ClassLabel)}
        folder.parent.mkdir(parents=True, exist_ok=True)
        _materialise(_rows(dataset, max_utterances, seed, shuffle_buffer), folder, label, audio_column, text_column,
                     id_column, metadata_columns, rename, labels, root)
    else:
        log.info("%s: reusing %s", label, folder)
    return load_manifest(folder / "corpus.jsonl", name=corpus_name)
