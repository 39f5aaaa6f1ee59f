"""The atlas's frame table: its Parquet schema, and the label positions drawn on the map."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from w2vlens.atlas import frame_table, label_positions
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
