"""The on-disk embedding store: one memory-mappable array per view and layer, plus tables.

A store holds everything one forward pass of one checkpoint over one corpus gives: the CNN
encoder output (`cnn`), every hidden state (`layer_00` is the Transformer input, `layer_NN`
the output of layer NN) and, for CTC models, the `logits`. Arrays are raw little-endian
binaries whose shapes live in `meta.json`, so readers map them without loading them.
A store is written under a temporary name and renamed when complete: a crash leaves no
partial entry, and a finished store is never rewritten.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd

STORE_VERSION = 1
_META = "meta.json"


class EmbeddingStore:
    """Read access to a finished store."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.meta: dict = json.loads((self.path / _META).read_text())

    @property
    def n_frames(self) -> int:
        return int(self.meta["n_frames"])

    @property
    def num_layers(self) -> int:
        return int(self.meta["num_layers"])

    @property
    def vocabulary(self) -> list[str] | None:
        return self.meta.get("vocabulary")

    def array(self, name: str) -> np.memmap:
        spec = self.meta["arrays"][name]
        return np.memmap(self.path / f"{name}.bin", dtype=spec["dtype"], mode="r", shape=(self.n_frames, spec["dim"]))

    def layer_name(self, layer: int) -> str:
        """`layer_NN` for a layer index; negative indices count from the last layer."""
        index = layer + self.num_layers + 1 if layer < 0 else layer
        if not 0 <= index <= self.num_layers:
            raise IndexError(f"layer {layer} outside 0..{self.num_layers}")
        return f"layer_{index:02d}"

    def frames(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "frames.parquet")

    def utterances(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "utterances.parquet")


class StoreWriter:
    """Appends frames view by view; `commit` publishes the store atomically.

    Use as a context manager: leaving the block with an exception removes the temporary folder.
    """

    def __init__(self, final_path: Path, meta: dict) -> None:
        self.final_path = Path(final_path)
        self.temp_path = self.final_path.with_name(f".{self.final_path.name}.{os.getpid()}.tmp")
        shutil.rmtree(self.temp_path, ignore_errors=True)
        self.temp_path.mkdir(parents=True)
        self.meta = {**meta, "version": STORE_VERSION, "arrays": {}, "n_frames": 0}
        self._files: dict[str, object] = {}

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, trace: TracebackType | None) -> None:
        for handle in self._files.values():
            handle.close()
        if kind is not None:
            shutil.rmtree(self.temp_path, ignore_errors=True)

    def append(self, arrays: dict[str, np.ndarray], storage_dtype: str) -> None:
        """Appends one utterance's frames; every array has the same number of rows."""
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"arrays of one utterance differ in frame count: {lengths}")
        for name, values in arrays.items():
            if name not in self._files:
                self._files[name] = open(self.temp_path / f"{name}.bin", "wb")
                self.meta["arrays"][name] = {"dim": int(values.shape[1]), "dtype": storage_dtype}
            self._files[name].write(np.ascontiguousarray(values, dtype=storage_dtype).tobytes())
        self.meta["n_frames"] += lengths.pop()

    def commit(self, frames: pd.DataFrame, utterances: pd.DataFrame) -> EmbeddingStore:
        """Writes the tables and meta, then renames the folder into place."""
        for handle in self._files.values():
            handle.close()
        self._files = {}
        if len(frames) != self.meta["n_frames"]:
            raise ValueError(f"frame table has {len(frames)} rows for {self.meta['n_frames']} frames")
        frames.to_parquet(self.temp_path / "frames.parquet", index=False)
        utterances.to_parquet(self.temp_path / "utterances.parquet", index=False)
        (self.temp_path / _META).write_text(json.dumps(self.meta, indent=2))
        try:
            self.temp_path.rename(self.final_path)
        except OSError:  # a concurrent job published the same store first; keep theirs
            shutil.rmtree(self.temp_path, ignore_errors=True)
        return EmbeddingStore(self.final_path)
