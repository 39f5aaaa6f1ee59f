"""MLflow tracking: a SQLite store and artifacts inside the project's `mlruns/` folder, and a
Hydra callback that makes one parent run per multirun sweep with the jobs as its children."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
from filelock import FileLock
from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig, OmegaConf

from w2vlens.figures import sweep_comparison

log = logging.getLogger(__name__)
PARENT_RUN_ENV = "W2VLENS_PARENT_RUN_ID"
SWEEP_METRICS = ("ami", "homogeneity", "completeness")
_PARAM_VALUE_LIMIT = 6000


def tracking_uri(store_dir: str | Path) -> str:
    return f"sqlite:///{Path(store_dir).resolve() / 'mlflow.db'}"


def configure(store_dir: str | Path, experiment: str) -> str:
    """Points MLflow at `store_dir` and returns the id of `experiment`, creating it if new.

    MLflow creates and migrates the SQLite tables on first use without any guard, so jobs that
    start together on a new store collide (`table alembic_version already exists`): the first
    use and the experiment's creation are serialised with a file lock beside the database."""
    store_dir = Path(store_dir).resolve()
    store_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri(store_dir))
    with FileLock(store_dir / "mlflow.db.lock"):
        existing = mlflow.get_experiment_by_name(experiment)
        if existing is not None:
            return existing.experiment_id
        return mlflow.create_experiment(experiment, artifact_location=(store_dir / "artifacts").as_uri())


def flatten(config: Mapping, prefix: str = "") -> dict[str, str]:
    """Nested config to dotted keys, values as strings within MLflow's length limit."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = str(value)[:_PARAM_VALUE_LIMIT]
    return flat


def git_commit() -> str:
    """The commit of the code that ran, or 'unknown' outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def start_run(experiment_id: str, run_name: str, tags: dict[str, str]) -> mlflow.ActiveRun:
    """Starts the job's run; inside a sweep it becomes a child of the sweep's parent run."""
    parent = os.environ.get(PARENT_RUN_ENV)
    if parent:
        tags = {**tags, MLFLOW_PARENT_RUN_ID: parent}
    return mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags)


class MlflowSweepCallback(Callback):
    """Opens the parent run before a multirun's jobs start and closes it after the last one,
    logging a table of the children's metrics to it."""

    def __init__(self, store_dir: str, experiment: str) -> None:
        self.store_dir = store_dir
        self.experiment = experiment
        self.parent_run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        experiment_id = configure(self.store_dir, self.experiment)
        sweep_dir = Path(config.hydra.sweep.dir)
        overrides = " ".join(config.hydra.overrides.task)
        run = MlflowClient().create_run(
            experiment_id, run_name=f"sweep {sweep_dir.name}",
            tags={"sweep": "true", "sweep_dir": str(sweep_dir), "overrides": overrides, "git_commit": git_commit()},
        )
        self.parent_run_id = run.info.run_id
        os.environ[PARENT_RUN_ENV] = self.parent_run_id
        log.info("MLflow parent run %s for sweep %s", self.parent_run_id, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        if self.parent_run_id is None:
            return
        client = MlflowClient()
        children = mlflow.search_runs(
            experiment_ids=[client.get_run(self.parent_run_id).info.experiment_id],
            filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{self.parent_run_id}'",
        )
        if not children.empty:
            keep = ["run_id", "tags.mlflow.runName"] + [c for c in children.columns if c.startswith("metrics.")]
            with mlflow.start_run(run_id=self.parent_run_id):
                mlflow.log_table(children[keep], artifact_file="tables/children.json")
                mlflow.log_metric("children", len(children))
                scored = children.dropna(subset=[f"metrics.{m}" for m in SWEEP_METRICS if f"metrics.{m}" in children])
                if not scored.empty and "metrics.ami" in scored:
                    figure = sweep_comparison(scored.set_index("tags.mlflow.runName"), SWEEP_METRICS)
                    mlflow.log_figure(figure, "figures/children.png")
                    plt.close(figure)
        client.set_terminated(self.parent_run_id)
        os.environ.pop(PARENT_RUN_ENV, None)


def log_config(config: DictConfig, hydra_output_dir: Path | None) -> None:
    """Params = the flattened, resolved config; the `.hydra/` folder as an artifact."""
    params = flatten(OmegaConf.to_container(config, resolve=True))
    items = list(params.items())
    for start in range(0, len(items), 100):
        mlflow.log_params(dict(items[start : start + 100]))
    if hydra_output_dir is not None and (hydra_output_dir / ".hydra").is_dir():
        mlflow.log_artifacts(str(hydra_output_dir / ".hydra"), artifact_path="hydra")
