"""The sweep's parent run, driven through the Hydra callback without launching jobs: what the
MLflow UI shows for it (params, "Created by", the children table) and how long it lasts."""

import getpass
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from omegaconf import OmegaConf

from w2vlens.tracking import ERROR_TAG, SWEEP_JOB_TAG, MlflowSweepCallback, git_commit

JOBS = [  # (model, k, status, metrics): the second job failed before scoring anything
    ("pretrained", 5, "FINISHED", {"ami": 0.41, "homogeneity": 0.52, "completeness": 0.33, "inertia": 12.5}),
    ("finetuned", 99999, "FAILED", {}),
]


def test_parent_has_params_source_tags_and_a_dotless_children_table(tmp_path: Path) -> None:
    hydra_like = OmegaConf.create({"hydra": {
        "runtime": {"cwd": str(tmp_path)},
        "sweep": {"dir": "sweep"},
        "sweeper": {"params": {"model": "pretrained,finetuned"}},
        "overrides": {"task": ["data.path=/corpus/manifest.csv", "cluster.k=5,99999"]},
    }})
    callback = MlflowSweepCallback(str(tmp_path / "mlruns"), "w2vlens")
    callback.on_multirun_start(hydra_like)
    parent_id = callback.parent_run_id
    client = MlflowClient()
    experiment_id = client.get_run(parent_id).info.experiment_id
    for number, (model, k, status, metrics) in enumerate(JOBS):
        name = f"{model} kmeans k={k}"
        with mlflow.start_run(experiment_id=experiment_id, run_name=name,
                              tags={MLFLOW_PARENT_RUN_ID: parent_id, SWEEP_JOB_TAG: str(number)}) as child:
            mlflow.log_params({"model.name": model, "cluster.k": k, "data.path": "/corpus/manifest.csv"})
            mlflow.log_metrics(metrics)
        if status == "FAILED":
            client.set_tag(child.info.run_id, ERROR_TAG, "k=99999 is larger than the number of frames (399)")
            client.set_terminated(child.info.run_id, "FAILED")

    with pytest.raises(SystemExit) as exit_info:
        callback.on_multirun_end(hydra_like)
    assert exit_info.value.code == 1

    parent = client.get_run(parent_id)
    assert parent.info.status == "FAILED"
    assert parent.data.params == {"model": "pretrained,finetuned", "cluster.k": "5,99999",
                                  "data.path": "/corpus/manifest.csv"}
    tags = parent.data.tags
    assert tags["mlflow.user"] == getpass.getuser() and tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"]
    if git_commit() != "unknown":
        assert tags["mlflow.source.git.commit"] == git_commit()

    children = client.search_runs([experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_id}'")
    assert parent.info.start_time <= min(c.info.start_time for c in children)
    assert parent.info.end_time >= max(c.info.end_time for c in children)

    table = mlflow.artifacts.load_dict(f"{parent.info.artifact_uri}/tables/children.json")
    assert not [column for column in table["columns"] if "." in column]
    assert table["columns"][:7] == ["run_name", "status", "model", "cluster-k", "ami", "completeness", "homogeneity"]
    rows = {row["run_name"]: row for row in (dict(zip(table["columns"], data, strict=True)) for data in table["data"])}
    finished, failed = rows["pretrained kmeans k=5"], rows["finetuned kmeans k=99999"]
    assert {key: finished[key] for key in ("model", "cluster-k", "status")} == {
        "model": "pretrained", "cluster-k": "5", "status": "FINISHED"}
    assert {key: finished[key] for key in JOBS[0][3]} == JOBS[0][3]
    assert failed["status"] == "FAILED" and failed["ami"] is None
    assert failed["error"] == "k=99999 is larger than the number of frames (399)"
    assert "data-path" not in table["columns"]  # the same in every job: not a column
