"""The atlas's frame table: its Parquet schema, and the label positions drawn on the map; the
atlas command: what it writes or serves (no column but the table's), its one line, its errors."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from w2vlens import tracking
from w2vlens.atlas import frame_table, label_positions, main
from w2vlens.errors import W2VLensError


def store_frames() -> pd.DataFrame:
    return pd.DataFrame({"utterance": ["u1"] * 3 + ["u2"] * 2, "frame": [0, 1, 2, 0, 1],
                         "start": [0.0, 0.02, 0.04, 0.0, 0.02], "speaker": ["s1"] * 3 + ["s2"] * 2,
                         "gender": ["female"] * 3 + ["male"] * 2})


def test_parquet_schema(tmp_path: Path) -> None:
    coords = np.arange(10, dtype=float).reshape(5, 2)
    table = frame_table(coords, np.array(["a", "a", "silence", "b", "b"]), np.array([3, 3, 0, 1, 1]),
                        store_frames(), {"u1": "aa", "u2": "bb"}, np.array(["correct"] * 4 + ["1/4"]))
    table.to_parquet(tmp_path / "atlas.parquet", index=False)
    schema = pq.read_schema(tmp_path / "atlas.parquet")
    assert schema.names == ["x", "y", "label", "cluster", "error", "utterance", "frame", "time", "text",
                            "speaker", "gender"]
    assert str(schema.field("x").type) == "float" and str(schema.field("cluster").type) == "int32"
    assert str(schema.field("time").type) == "float"
    assert all(str(schema.field(name).type).startswith("dictionary") for name in ("label", "utterance", "text"))
    read = pd.read_parquet(tmp_path / "atlas.parquet")
    assert read["text"].astype(str).tolist() == ["aa"] * 3 + ["bb"] * 2
    assert read["time"].tolist() == pytest.approx([0.0, 0.02, 0.04, 0.0, 0.02])
    assert read.loc[4, ["x", "y"]].tolist() == [8.0, 9.0] and read.loc[4, "speaker"] == "s2"


def test_without_error_categories_and_with_mismatched_lengths() -> None:
    table = frame_table(np.zeros((5, 2)), np.array(list("aabbb")), np.zeros(5, int), store_frames(), {})
    assert "error" not in table and table["text"].astype(str).tolist() == [""] * 5
    with pytest.raises(W2VLensError, match="4 labels for 5 frames"):
        frame_table(np.zeros((5, 2)), np.array(list("aabb")), np.zeros(5, int), store_frames(), {})


def test_labels_sit_at_each_labels_median_and_skip_blank_and_silence() -> None:
    table = pd.DataFrame({"x": [0.0, 1.0, 2.0, 9.0, 5.0], "y": [0.0, 0.0, 3.0, 9.0, 5.0],
                          "label": ["a", "a", "a", "silence", "b"]})
    positions = label_positions(table).set_index("text")
    assert positions.to_dict("index") == {"a": {"x": 1.0, "y": 0.0}, "b": {"x": 5.0, "y": 5.0}}


def test_a_projection_run_logs_its_atlas_table_and_cluster_audio(tiny_pair: tuple[Path, Path],
                                                                corpus_manifest: Path, tmp_path: Path) -> None:
    from helpers import compose_app, overrides_for, runs
    from mlflow.tracking import MlflowClient

    from w2vlens.app import run

    run(compose_app(overrides_for(tiny_pair, corpus_manifest, tmp_path) + ["reduce=pca", "listen.frames=3"]))
    run_id = runs(tmp_path).run_id.iloc[0]
    client = MlflowClient()
    table = pd.read_parquet(client.download_artifacts(run_id, "atlas/pca_layer_02.parquet", str(tmp_path)))
    utterances = pd.read_parquet(next((tmp_path / "cache").rglob("utterances.parquet")))
    assert len(table) == utterances["n_frames"].sum()
    assert {"x", "y", "label", "cluster", "utterance", "time", "text"} <= set(table)
    page = Path(client.download_artifacts(run_id, "clusters.html", str(tmp_path))).read_text()
    audio = [item.path for item in client.list_artifacts(run_id, "audio")]
    assert len(audio) == table["cluster"].nunique() and all(f'src="{path}"' in page for path in audio)


ATLAS_COLUMNS = ["x", "y", "label", "cluster", "utterance", "frame", "time", "text", "speaker", "gender"]


@pytest.fixture(scope="module")
def atlas_run(tracking_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A run that logged an atlas table (and a standalone viewer beside it, which is no table)."""
    import mlflow

    folder = tmp_path_factory.mktemp("atlas_run")
    table = frame_table(np.arange(10, dtype=float).reshape(5, 2), np.array(["a", "a", "silence", "b", "b"]),
                        np.array([3, 3, 0, 1, 1]), store_frames(), {"u1": "aa", "u2": "bb"})
    table.to_parquet(folder / "pca_layer_02.parquet", index=False)
    (folder / "pca_layer_02.zip").write_bytes(b"viewer")
    with mlflow.start_run(experiment_id=tracking.configure(tracking_dir, "atlas")) as run:
        mlflow.log_artifact(str(folder / "pca_layer_02.parquet"), "atlas")
        mlflow.log_artifact(str(folder / "pca_layer_02.zip"), "atlas")
    return run.info.run_id


def test_a_bad_run_id_or_store_is_one_line(atlas_run: str, tracking_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(W2VLensError, match=r"^run 'nope': not found in .*mlruns") as error:
        main(["nope", "--store", str(tracking_dir)])
    assert "\n" not in str(error.value)
    with pytest.raises(W2VLensError, match="no MLflow store here"):
        main([atlas_run, "--store", str(tmp_path)])
    assert not (tmp_path / "mlflow.db").exists()
    with pytest.raises(W2VLensError, match="no atlas table 'umap.parquet'; it has pca_layer_02.parquet$"):
        main([atlas_run, "--store", str(tracking_dir), "--table", "umap.parquet"])


def test_export_writes_the_table_as_it_is_and_says_so_in_one_line(atlas_run: str, tracking_dir: Path,
                                                                   tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("embedding_atlas")
    target = tmp_path / "atlas.zip"
    main([atlas_run, "--store", str(tracking_dir), "--export", str(target)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines  # no DataFrame preview, no "Loading data from <temp path>"
    assert lines[0].startswith(f"atlas of run {atlas_run}: wrote {target} (")
    assert lines[0].endswith(f"MB) from pca_layer_02.parquet: 5 frames, 10 columns ({', '.join(ATLAS_COLUMNS)})")
    with zipfile.ZipFile(target) as archive:
        data = pd.read_parquet(io.BytesIO(archive.read("data/dataset.parquet")))
        props = json.loads(archive.read("data/metadata.json"))["props"]
    assert list(data.columns) == ATLAS_COLUMNS + ["__row_index__"]  # no FILE_NAME
    assert data["__row_index__"].tolist() == list(range(5)) and data["text"].astype(str).tolist()[-1] == "bb"
    assert props["data"]["projection"] == {"x": "x", "y": "y"} and props["data"]["text"] == "text"
    assert [label["text"] for label in props["embeddingViewLabels"]] == ["a", "b"]


def test_the_served_data_is_the_table_without_a_file_column(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("embedding_atlas")
    from fastapi.testclient import TestClient

    from w2vlens.atlas import viewer_app

    table = frame_table(np.zeros((5, 2)), np.array(list("aabbb")), np.zeros(5, int), store_frames(), {})
    client = TestClient(viewer_app(table))
    served = pd.read_parquet(io.BytesIO(client.get("/data/dataset.parquet").content))
    assert list(served.columns) == ATLAS_COLUMNS + ["__row_index__"]
    assert client.get("/data/metadata.json").json()["database"] == {"type": "rest"}
    assert capsys.readouterr().out == ""
