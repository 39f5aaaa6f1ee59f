"""An interactive atlas of a projection: every frame as a point with its label, cluster, speaker,
utterance, time and transcript, explorable in Embedding Atlas (Apple's `embedding-atlas`, which
draws millions of points with WebGPU/WebGL and filters them by any column, offline).

A run with a projection (`reduce=...`) logs the frame table as `atlas/<projection>_<array>.parquet`;
`python -m w2vlens.atlas RUN_ID` downloads it from the project's MLflow store and serves it (or,
with `--export`, writes a standalone viewer), printing one line that says what it served or wrote.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from w2vlens.errors import W2VLensError
from w2vlens.tracking import download_run_artifact, run_artifact_names

if TYPE_CHECKING:  # embedding-atlas is an optional extra, imported where it is used
    from embedding_atlas.data_source import DataSource
    from fastapi import FastAPI

ATLAS_DIR = "atlas"
UNLABELLED = {"blank", "silence", "unaligned"}  # drawn, but not named on the map
ROW_ID = "__row_index__"  # the row id column Embedding Atlas's own CLI adds, under the same name
INSTALL_HINT = "embedding-atlas is not installed: pip install 'w2vlens[atlas]' (or embedding-atlas==0.26.*)"


def frame_table(coords: np.ndarray, labels: np.ndarray, clusters: np.ndarray, frames: pd.DataFrame,
                texts: Mapping[str, str | None], errors: np.ndarray | None = None) -> pd.DataFrame:
    """One row per frame: `x`, `y`, `label`, `cluster`, `error` (when given), `utterance`, `frame`,
    `time` (seconds into the utterance), the utterance's `text`, then the store's metadata columns
    (speaker, gender, ...). `frames` is the store's frame table, in the same order as `coords`."""
    n = len(frames)
    arrays = {"coords": np.asarray(coords), "labels": np.asarray(labels), "clusters": np.asarray(clusters)}
    if errors is not None:
        arrays["errors"] = np.asarray(errors)
    for name, values in arrays.items():
        if len(values) != n:
            raise W2VLensError(f"atlas: {len(values)} {name} for {n} frames")
    if arrays["coords"].ndim != 2 or arrays["coords"].shape[1] != 2:
        raise W2VLensError(f"atlas: coordinates must be an (n, 2) array, got {arrays['coords'].shape}")
    utterance = frames["utterance"].astype(str)
    xy = arrays["coords"].astype(np.float32)
    table = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1],
                          "label": arrays["labels"].astype(str), "cluster": arrays["clusters"].astype(np.int32)})
    if errors is not None:
        table["error"] = arrays["errors"].astype(str)
    table["utterance"] = utterance.to_numpy()
    table["frame"] = frames["frame"].to_numpy(np.int32)
    table["time"] = frames["start"].to_numpy(np.float32)
    table["text"] = utterance.map(lambda utt: texts.get(utt) or "").to_numpy()
    metadata = [column for column in frames.columns if column not in {"utterance", "frame", "start"}]
    for column in metadata:
        table[column] = frames[column].to_numpy()
    for column in table.columns:  # strings repeat frame after frame: dictionary-encoded in Parquet
        if pd.api.types.is_string_dtype(table[column]):
            table[column] = table[column].astype("category")
    return table


def label_positions(table: pd.DataFrame) -> pd.DataFrame:
    """Each label's name at the median of its frames (`x`, `y`, `text`), the atlas's map labels."""
    named = table[~table["label"].isin(UNLABELLED)]
    medians = named.groupby("label", observed=True)[["x", "y"]].median()
    return medians.reset_index().rename(columns={"label": "text"})[["x", "y", "text"]]


def viewer_source(table: pd.DataFrame) -> DataSource:
    """Embedding Atlas's data for `table`: points at their own `x`, `y` (no embedding model,
    nothing fetched), `text` shown per point, label names at their frames' medians. Built with
    its Python API rather than its CLI, which prints the table and adds a `FILE_NAME` column
    holding the input's (temporary) path to every row: the only column added is its row id."""
    try:
        from embedding_atlas.cache import sha256_hexdigest
        from embedding_atlas.data_source import DataSource
        from embedding_atlas.options import make_embedding_atlas_props
    except ImportError:
        raise W2VLensError(INSTALL_HINT) from None
    data = table.assign(**{ROW_ID: np.arange(len(table), dtype=np.int64)})
    props = make_embedding_atlas_props(row_id=ROW_ID, x="x", y="y", text="text",
                                       labels=label_positions(table).to_dict("records"))
    # The viewer caches what it computes (density, label layout) under this key: the content's hash.
    content = int(pd.util.hash_pandas_object(table, index=False).sum())
    identifier = sha256_hexdigest([content, props], scope="DataSource")
    return DataSource(identifier, data, {"props": props})


def static_files() -> str:
    """The folder of Embedding Atlas's web app, shipped in its package."""
    import embedding_atlas

    return str(Path(embedding_atlas.__file__).parent / "static")


def export_viewer(table: pd.DataFrame, target: Path) -> Path:
    """Writes Embedding Atlas's standalone viewer of `table` to `target` (a .zip, else a folder):
    the app and the data together, served by any static web server."""
    source = viewer_source(table)
    if target.suffix == ".zip":
        target.write_bytes(source.make_archive(static_files()))
    else:
        source.export_to_folder(static_files(), str(target))
    return target


def viewer_app(table: pd.DataFrame) -> FastAPI:
    """The web app serving `table` in Embedding Atlas, its queries run by DuckDB in this process."""
    from embedding_atlas.server import make_server

    return make_server(viewer_source(table), static_path=static_files(), duckdb_uri="server")


def free_port(host: str, port: int) -> int:
    """`port`, or the next free one of the 10 after it."""
    for candidate in range(port, port + 10):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex((host, candidate)) != 0:
                return candidate
    raise W2VLensError(f"atlas: ports {port}-{port + 9} on {host} are all taken (pass --port)")


def download_table(run_id: str, store_dir: Path, name: str | None, folder: Path) -> Path:
    """The run's atlas table (`name`, or its only one) downloaded from the project's MLflow store."""
    available = [item for item in run_artifact_names(store_dir, run_id, ATLAS_DIR) if item.endswith(".parquet")]
    if not available:
        raise W2VLensError(f"run {run_id}: no atlas table (run it with a projection, e.g. reduce=umap)")
    if name is None and len(available) > 1:
        raise W2VLensError(f"run {run_id}: several atlas tables, pick one with --table: {', '.join(available)}")
    chosen = name or available[0]
    if chosen not in available:
        raise W2VLensError(f"run {run_id}: no atlas table {chosen!r}; it has {', '.join(available)}")
    return download_run_artifact(store_dir, run_id, f"{ATLAS_DIR}/{chosen}", folder)


def describe(table: pd.DataFrame, name: str) -> str:
    """`name: N frames, M columns (x, y, ...)`, for the command's one line."""
    return f"{name}: {len(table):,} frames, {table.shape[1]} columns ({', '.join(map(str, table.columns))})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m w2vlens.atlas",
                                     description="Open a run's frames in Embedding Atlas.")
    parser.add_argument("run_id", help="MLflow run id of a run with a projection (reduce=...)")
    parser.add_argument("--store", type=Path, default=Path("mlruns"), help="tracking.dir of the run (mlruns)")
    parser.add_argument("--table", help="which atlas/*.parquet when the run has several")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=5055, help="first port tried (5055; the next free if taken)")
    parser.add_argument("--export", type=Path, help="write a standalone viewer (.zip or folder) instead of serving")
    args = parser.parse_args(argv)
    # One small file: MLflow's download progress bar would be the only other output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory() as folder:
        table_path = download_table(args.run_id, args.store.resolve(), args.table, Path(folder))
        table = pd.read_parquet(table_path)
    what = describe(table, table_path.name)
    if args.export is not None:
        export_viewer(table, args.export)
        files = [args.export] if args.export.is_file() else [path for path in args.export.rglob("*") if path.is_file()]
        size = sum(path.stat().st_size for path in files)
        print(f"atlas of run {args.run_id}: wrote {args.export} ({size / 1e6:.1f} MB) from {what}", flush=True)
        return
    app = viewer_app(table)
    port = free_port(args.host, args.port)
    print(f"atlas of run {args.run_id}: serving {what} at http://{args.host}:{port} (Ctrl+C stops it)", flush=True)
    import uvicorn

    uvicorn.run(app, host=args.host, port=port, access_log=False, log_level="error")


if __name__ == "__main__":
    try:
        main()
    except W2VLensError as error:
        raise SystemExit(f"error: {error}") from None
