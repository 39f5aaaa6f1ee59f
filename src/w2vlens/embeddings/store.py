"""The on-disk embedding store: one memory-mappable array per kept view, plus the utterance table.

A store holds what the audio and the checkpoint determine, for the views a run asked for: the CNN
encoder output (`cnn`), hidden states (`layer_00` is the Transformer input, `layer_NN` the output
of layer NN) and, for CTC models, the `logits`. Arrays are raw little-endian binaries whose shape,
byte size and CRC-32 live in `meta.json`, so readers map them without loading them and a damaged
file is caught. Transcripts and metadata are not stored: they are joined from the current corpus
when the store is opened, so an edited transcript is always the one analysed.

A store is written under a temporary name and renamed when complete; arrays added later (more
layers) are written beside it and published by atomically replacing `meta.json`. An existing
array file is never rewritten, so open memory maps stay valid.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from w2vlens.corpora.corpus import Corpus
from w2vlens.errors import W2VLensError

STORE_VERSION = 2
_META = "meta.json"
_UTTERANCES = "utterances.parquet"
_WRITE_BUFFER = 16 << 20  # store files are written in blocks of this many bytes


class StoreDamaged(W2VLensError):
    """A committed store whose files do not match what its meta recorded."""


def _numeric_if_possible(column: pd.Series) -> pd.Series:
    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        return column


def file_crc32(path: Path, block: int = _WRITE_BUFFER) -> int:
    """CRC-32 of a file, read in large blocks."""
    crc = 0
    with open(path, "rb") as handle:
        while data := handle.read(block):
            crc = zlib.crc32(data, crc)
    return crc


class EmbeddingStore:
    """Read access to a committed store; with `corpus`, its tables carry the corpus's transcripts
    and metadata. Opening checks every array file's size; `verify` also checks their checksums."""

    def __init__(self, path: Path, corpus: Corpus | None = None, verify: bool = False) -> None:
        self.path = Path(path)
        self.corpus = corpus
        self.meta: dict = json.loads((self.path / _META).read_text())
        for name in self.meta["arrays"]:
            self._check(name, verify)
        self._utterances: pd.DataFrame | None = None

    def _check(self, name: str, verify: bool) -> None:
        spec, file = self.meta["arrays"][name], self.path / f"{name}.bin"
        size = file.stat().st_size if file.is_file() else -1
        if size != spec["bytes"]:
            raise StoreDamaged(f"{file}: {size} bytes on disk, {spec['bytes']} recorded")
        if verify and file_crc32(file) != spec["crc32"]:
            raise StoreDamaged(f"{file}: checksum differs from the one recorded at commit")

    @property
    def n_frames(self) -> int:
        return int(self.meta["n_frames"])

    @property
    def num_layers(self) -> int:
        return int(self.meta["num_layers"])

    @property
    def vocabulary(self) -> list[str] | None:
        return self.meta.get("vocabulary")

    @property
    def array_names(self) -> set[str]:
        return set(self.meta["arrays"])

    def array(self, name: str) -> np.memmap:
        spec = self.meta["arrays"].get(name)
        if spec is None:
            raise W2VLensError(f"{self.path}: the store of {self.meta['checkpoint']} does not keep {name!r} "
                               f"(kept: {', '.join(sorted(self.meta['arrays']))}); set extract.layers to keep it")
        return np.memmap(self.path / f"{name}.bin", dtype=spec["dtype"], mode="r", shape=(self.n_frames, spec["dim"]))

    def layer_name(self, layer: int) -> str:
        """`layer_NN` for a layer index; negative indices count from the last layer."""
        return layer_name(layer, self.num_layers)

    def spans(self) -> Iterator[tuple[Any, slice]]:
        """Each utterance (a named tuple of `utterances()`'s columns) with its rows in the arrays."""
        return spans(self.utterances())

    def utterances(self) -> pd.DataFrame:
        """One row per utterance in store order: id, audio, offset and n_frames of its rows, duration,
        segment bounds, and (with a corpus) its text, annotator transcripts and metadata."""
        if self._utterances is None:
            table = pd.read_parquet(self.path / _UTTERANCES)
            if self.corpus is not None:
                joined = pd.DataFrame([{"id": u.id, "text": u.text, **u.annotators, **u.metadata}
                                       for u in self.corpus.utterances])
                # what the store measured (duration, frame counts) wins over a metadata column of that name
                joined = joined.drop(columns=[c for c in joined.columns if c in table.columns and c != "id"])
                if set(joined["id"]) != set(table["id"]):
                    raise W2VLensError(f"{self.path}: the store's utterances are not those of corpus "
                                       f"{self.corpus.name}")
                table = table[["id", "audio"]].merge(joined, on="id", how="left").join(
                    table.drop(columns=["id", "audio"]))
            self._utterances = table
        return self._utterances.copy()

    def frames(self) -> pd.DataFrame:
        """One row per frame: utterance id, frame index, start time, and the utterance's metadata."""
        utterances = self.utterances()
        counts = utterances["n_frames"].to_numpy()
        index = np.arange(counts.sum()) - np.repeat(utterances["offset"].to_numpy(), counts)
        table = pd.DataFrame({"utterance": np.repeat(utterances["id"].to_numpy(), counts), "frame": index,
                              "start": index * self.meta["frame_seconds"]})
        metadata = {u.id: u.metadata for u in self.corpus.utterances} if self.corpus is not None else {}
        for column in self.corpus.metadata_columns if self.corpus is not None else []:
            if column in table.columns:
                continue
            values = [metadata[uid].get(column) for uid in utterances["id"]]
            table[column] = _numeric_if_possible(pd.Series(np.repeat(np.asarray(values, dtype=object), counts)))
        return table


def spans(utterances: pd.DataFrame) -> Iterator[tuple[Any, slice]]:
    """Each utterance of a store's utterance table (a named tuple of its columns) with its rows in
    the store's frame arrays."""
    for utt in utterances.itertuples():
        yield utt, slice(utt.offset, utt.offset + utt.n_frames)


def layer_name(layer: int, num_layers: int) -> str:
    """`layer_NN` for a layer index of a model with `num_layers` layers; negative counts from the last."""
    index = layer + num_layers + 1 if layer < 0 else layer
    if not 0 <= index <= num_layers:
        raise IndexError(f"layer {layer} outside 0..{num_layers}")
    return f"layer_{index:02d}"


class ArrayFile:
    """One array being written: appends row blocks through a large buffer, tracking size and CRC-32."""

    def __init__(self, path: Path, dim: int, dtype: str) -> None:
        self.path, self.dim, self.dtype = path, dim, dtype
        self.handle = open(path, "wb", buffering=_WRITE_BUFFER)
        self.bytes, self.crc32 = 0, 0

    def write(self, rows: np.ndarray) -> None:
        data = memoryview(np.ascontiguousarray(rows, dtype=self.dtype)).cast("B")
        self.handle.write(data)
        self.crc32 = zlib.crc32(data, self.crc32)
        self.bytes += len(data)

    def close(self) -> dict:
        """Flushes to disk; returns the meta entry."""
        if not self.handle.closed:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
        return {"dim": self.dim, "dtype": self.dtype, "bytes": self.bytes, "crc32": self.crc32}


class StoreWriter:
    """Appends rows array by array; `commit` publishes the store atomically.

    Use as a context manager: leaving the block with an exception removes the temporary folder.
    """

    def __init__(self, final_path: Path, meta: dict) -> None:
        self.final_path = Path(final_path)
        self.temp_path = self.final_path.with_name(f".{self.final_path.name}.{os.getpid()}.tmp")
        shutil.rmtree(self.temp_path, ignore_errors=True)
        self.temp_path.mkdir(parents=True)
        self.meta = {**meta, "version": STORE_VERSION, "arrays": {}, "n_frames": 0}
        self.files: dict[str, ArrayFile] = {}

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, trace: TracebackType | None) -> None:
        for file in self.files.values():
            file.handle.close()
        if kind is not None:
            shutil.rmtree(self.temp_path, ignore_errors=True)

    def write(self, name: str, rows: np.ndarray, storage_dtype: str) -> None:
        """Appends `rows` to array `name`; `add_frames` then counts them once for all arrays."""
        if name not in self.files:
            self.files[name] = ArrayFile(self.temp_path / f"{name}.bin", int(rows.shape[1]), storage_dtype)
        self.files[name].write(rows)

    def add_frames(self, count: int) -> None:
        self.meta["n_frames"] += count

    def commit(self, utterances: pd.DataFrame) -> EmbeddingStore:
        """Writes the utterance table and meta (checking every array has every frame), then renames
        the folder into place."""
        for name, file in self.files.items():
            self.meta["arrays"][name] = file.close()
            if file.bytes != self.meta["n_frames"] * file.dim * np.dtype(file.dtype).itemsize:
                raise ValueError(f"array {name} holds {file.bytes} bytes for {self.meta['n_frames']} frames")
        if int(utterances["n_frames"].sum()) != self.meta["n_frames"]:
            raise ValueError(f"utterance table has {utterances['n_frames'].sum()} frames for {self.meta['n_frames']}")
        utterances.to_parquet(self.temp_path / _UTTERANCES, index=False)
        (self.temp_path / _META).write_text(json.dumps(self.meta, indent=2))
        try:
            self.temp_path.rename(self.final_path)
        except OSError:  # a concurrent job published the same store first; keep theirs
            shutil.rmtree(self.temp_path, ignore_errors=True)
        return EmbeddingStore(self.final_path)


def add_arrays(store: EmbeddingStore, files: dict[str, ArrayFile]) -> EmbeddingStore:
    """Publishes arrays written beside a committed store (as `.<name>.bin.*.tmp` in its folder) into it:
    each file is renamed into place, then `meta.json` is replaced atomically to list them."""
    meta = json.loads((store.path / _META).read_text())
    for name, file in files.items():
        entry = file.close()
        if entry["bytes"] != store.n_frames * entry["dim"] * np.dtype(entry["dtype"]).itemsize:
            raise ValueError(f"array {name} holds {entry['bytes']} bytes for {store.n_frames} frames")
        file.path.rename(store.path / f"{name}.bin")
        meta["arrays"][name] = entry
    temp = store.path / f".{_META}.{os.getpid()}.tmp"
    temp.write_text(json.dumps(meta, indent=2))
    temp.replace(store.path / _META)
    return EmbeddingStore(store.path, store.corpus)
