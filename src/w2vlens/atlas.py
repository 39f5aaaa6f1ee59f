"""An interactive atlas of a projection: every frame as a point with its label, cluster, speaker,
utterance, time and transcript, explorable in Embedding Atlas (Apple's `embedding-atlas`, which
draws millions of points with WebGPU/WebGL and filters them by any column, offline).

A run with a projection (`reduce=...`) logs the frame table as `atlas/<projection>_<array>.parquet`;
`python -m w2vlens.atlas RUN_ID` downloads it from the project's MLflow store and opens it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from w2vlens.errors import W2VLensError

ATLAS_DIR = "atlas"
UNLABELLED = {"blank", "silence", "unaligned"}  # drawn, but not named on the map
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


def atlas_command(table_path: Path, labels_path: Path, port: int, export: Path | None = None) -> list[str]:
    """The `embedding-atlas` command showing `table_path` at its own x, y (no embedding model,
    nothing fetched); with `export`, a standalone viewer (folder, or .zip) is written instead."""
    executable = Path(sys.executable).parent / "embedding-atlas"
    found = str(executable) if executable.is_file() else shutil.which("embedding-atlas")
    if found is None:
        raise W2VLensError(INSTALL_HINT)
    command = [found, str(table_path), "--x", "x", "--y", "y", "--text", "text", "--labels", str(labels_path),
               "--port", str(port), "--auto-port"]
    return command + (["--export-application", str(export)] if export is not None else [])


def export_viewer(table: pd.DataFrame, target: Path) -> Path:
    """Writes Embedding Atlas's standalone viewer of `table` to `target` (a .zip): the app and the
    data in one archive, served by any static web server."""
    with tempfile.TemporaryDirectory() as folder:
        table_path, labels_path = Path(folder) / "frames.parquet", Path(folder) / "labels.parquet"
        table.to_parquet(table_path, index=False)
        label_positions(table).to_parquet(labels_path, index=False)
        result = subprocess.run(atlas_command(table_path, labels_path, 5055, target), capture_output=True, text=True)
    if result.returncode != 0 or not target.is_file():
        raise W2VLensError(f"embedding-atlas could not export {target}: {result.stderr.strip()[-500:]}")
    return target


def download_table(run_id: str, store_dir: Path, name: str | None, folder: Path) -> Path:
    """The run's atlas table (`name`, or its only one) downloaded from the project's MLflow store."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from w2vlens.tracking import tracking_uri

    if not (store_dir / "mlflow.db").is_file():
        raise W2VLensError(f"{store_dir}: no MLflow store here (pass --store, the runs' tracking.dir)")
    mlflow.set_tracking_uri(tracking_uri(store_dir))
    client = mlflow.MlflowClient()
    try:
        client.get_run(run_id)
        available = [Path(item.path).name for item in client.list_artifacts(run_id, ATLAS_DIR)]
    except MlflowException:
        raise W2VLensError(f"run {run_id!r}: not found in {store_dir}") from None
    if not available:
        raise W2VLensError(f"run {run_id}: no atlas table (run it with a projection, e.g. reduce=umap)")
    if name is None and len(available) > 1:
        raise W2VLensError(f"run {run_id}: several atlas tables, pick one with --table: {', '.join(available)}")
    chosen = name or available[0]
    if chosen not in available:
        raise W2VLensError(f"run {run_id}: no atlas table {chosen!r}; it has {', '.join(available)}")
    return Path(client.download_artifacts(run_id, f"{ATLAS_DIR}/{chosen}", str(folder)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m w2vlens.atlas",
                                     description="Open a run's frames in Embedding Atlas.")
    parser.add_argument("run_id", help="MLflow run id of a run with a projection (reduce=...)")
    parser.add_argument("--store", type=Path, default=Path("mlruns"), help="tracking.dir of the run (mlruns)")
    parser.add_argument("--table", help="which atlas/*.parquet when the run has several")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--export", type=Path, help="write a standalone viewer (.zip or folder) instead of serving")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        table_path = download_table(args.run_id, args.store.resolve(), args.table, Path(folder))
        labels_path = Path(folder) / "labels.parquet"
        label_positions(pd.read_parquet(table_path)).to_parquet(labels_path, index=False)
        command = atlas_command(table_path, labels_path, args.port, args.export)
        print(f"atlas of run {args.run_id}: {table_path.name}", flush=True)
        try:
            subprocess.run(command, check=True)
        except KeyboardInterrupt:
            pass
        except subprocess.CalledProcessError as error:
            raise W2VLensError(f"embedding-atlas exited with status {error.returncode}") from None


if __name__ == "__main__":
    try:
        main()
    except W2VLensError as error:
        raise SystemExit(f"error: {error}") from None
