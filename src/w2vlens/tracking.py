"""MLflow tracking: a SQLite store and artifacts inside the project's `mlruns/` folder, and a
Hydra callback that makes one parent run per multirun sweep with the jobs as its children."""

from __future__ import annotations

import atexit
import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd
from filelock import FileLock
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from mlflow.entities import Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig, OmegaConf

from w2vlens.errors import W2VLensError
from w2vlens.result import Result

if TYPE_CHECKING:
    from pytorch_lightning.loggers import MLFlowLogger

log = logging.getLogger(__name__)
SWEEP_JOB_TAG = "sweep_job"  # the Hydra job number of a sweep's child run
ERROR_TAG = "error"  # why a run failed, in one line
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


def sweep_job() -> tuple[str, int] | None:
    """(absolute sweep dir, job number) when this process runs a job of a Hydra multirun, else None."""
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return absolute_sweep_dir(hydra_cfg), int(hydra_cfg.job.num)


def absolute_sweep_dir(hydra_cfg: DictConfig) -> str:
    """The sweep dir as the parent run's tag records it: the same string in the launching process
    and in every job, wherever the launcher runs them."""
    return os.path.abspath(os.path.join(hydra_cfg.runtime.cwd, hydra_cfg.sweep.dir))


def find_parent_run(experiment_id: str, sweep_dir: str) -> str | None:
    """The running parent run of the sweep writing to `sweep_dir`. Jobs find it in the store, not
    in an environment variable, since a launcher (SLURM) need not pass the environment on."""
    found = MlflowClient().search_runs(
        [experiment_id], f"tags.sweep = 'true' and tags.sweep_dir = '{sweep_dir}' and attributes.status = 'RUNNING'",
        max_results=1, order_by=["attributes.start_time DESC"],
    )
    return found[0].info.run_id if found else None


def start_run(experiment_id: str, run_name: str, tags: dict[str, str]) -> mlflow.ActiveRun:
    """Starts the job's run; inside a sweep it becomes a child of the sweep's parent run, named
    `job N: <run_name>` so that it cannot pass for a standalone run of the same settings."""
    job = sweep_job()
    if job is not None:
        run_name = f"job {job[1]}: {run_name}"
        tags = {**tags, SWEEP_JOB_TAG: str(job[1])}
        parent = find_parent_run(experiment_id, job[0])
        if parent is not None:
            tags[MLFLOW_PARENT_RUN_ID] = parent
    return mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags)


def record_failed_job(store_dir: str | Path, experiment: str, error: str) -> None:
    """Inside a sweep, leaves a FAILED child run that names `error` for the parent to list: the
    job's own run if it had started one, else a new one named after the job's overrides."""
    job = sweep_job()
    if job is None:
        return
    sweep_dir, number = job
    experiment_id = configure(store_dir, experiment)
    parent = find_parent_run(experiment_id, sweep_dir)
    client = MlflowClient()
    filter_string = f"tags.{SWEEP_JOB_TAG} = '{number}'" + (
        f" and tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent}'" if parent else "")
    own = client.search_runs([experiment_id], filter_string, max_results=1, order_by=["attributes.start_time DESC"])
    if own:
        run_id = own[0].info.run_id
    else:
        overrides = " ".join(HydraConfig.get().overrides.task)
        tags = {SWEEP_JOB_TAG: str(number), "overrides": overrides} | ({MLFLOW_PARENT_RUN_ID: parent} if parent else {})
        run_id = client.create_run(experiment_id, run_name=f"job {number}: {overrides}", tags=tags).info.run_id
    client.set_tag(run_id, ERROR_TAG, error[:_PARAM_VALUE_LIMIT])
    client.set_terminated(run_id, "FAILED")


def _sweep_overrides(config: DictConfig) -> dict[str, tuple[str, bool]]:
    """The sweep's parameter space, key -> (value as typed, whether it is swept), e.g.
    {'cluster.k': ('5,99999,7', True)}: the sweeper's `params`, then the command line's overrides,
    which win, in the order Hydra's BasicSweeper reads them."""
    sweeper_params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    lines = [f"{key}={value}" for key, value in sweeper_params.items()] + list(config.hydra.overrides.task)
    return {override.key_or_group: (override.input_line.partition("=")[2], override.is_sweep_override())
            for override in OverridesParser.create().parse_overrides(lines)}


def _param_name(key: str) -> str:
    """`key` as an MLflow param name: Hydra keys may hold characters MLflow refuses (`$`)."""
    return re.sub(r"[^/\w.\- :]", "_", key)


def _children_table(children: pd.DataFrame, swept: list[str]) -> pd.DataFrame:
    """The sweep's children as the MLflow UI's table view can show them. The view reads a dotted
    column name as a nested path and shows `metrics.ami` as empty cells, so no name has a dot:
    `run_name`, `status`, each swept key with its dots as dashes (`cluster-k`; a group's `name`
    for a config group such as `model`), the metrics without their prefix (`ami` first), `error`, `run_id`."""
    table = pd.DataFrame({"run_name": children["tags.mlflow.runName"], "status": children["status"]})
    for key in swept:
        column = next((c for c in (f"params.{key}", f"params.{key}.name") if c in children), None)
        if column is not None:
            table[key.replace(".", "-")] = children[column]
    metrics = sorted(c.removeprefix("metrics.") for c in children.columns if c.startswith("metrics."))
    for metric in sorted(metrics, key=lambda name: name not in SWEEP_METRICS):  # the headline ones first
        table[metric.replace(".", "-")] = children[f"metrics.{metric}"]
    if f"tags.{ERROR_TAG}" in children:
        table[ERROR_TAG] = children[f"tags.{ERROR_TAG}"]
    table["run_id"] = children["run_id"]
    return table.sort_values("run_name", ignore_index=True)


class MlflowSweepCallback(Callback):
    """Opens the parent run before a multirun's jobs start and closes it after the last one, so
    its duration is the whole sweep's, extraction included. Its params are the sweep's overrides
    and swept values; at the end it logs a table and a chart of the children's metrics. The parent
    ends FAILED, listing the failed jobs, if any child failed; a sweep that stops early
    (interrupted, a launcher error) marks it FAILED on exit rather than leave it RUNNING."""

    def __init__(self, store_dir: str, experiment: str) -> None:
        self.store_dir = store_dir
        self.experiment = experiment
        self.parent_run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        experiment_id = configure(self.store_dir, self.experiment)
        sweep_dir = absolute_sweep_dir(config.hydra)
        overrides = " ".join(config.hydra.overrides.task)
        params = _sweep_overrides(config)
        # The source tags a job's run gets from mlflow.start_run (user, entry point, commit), which
        # the UI shows as "Created by" and "Source"; create_run alone sets none of them.
        commit = git_commit()
        tags = resolve_tags({"sweep": "true", "sweep_dir": sweep_dir, "overrides": overrides, "git_commit": commit})
        if MLFLOW_GIT_COMMIT not in tags and commit != "unknown":
            tags[MLFLOW_GIT_COMMIT] = commit
        client = MlflowClient()
        run = client.create_run(experiment_id, run_name=f"sweep {Path(sweep_dir).name}", tags=tags)
        self.parent_run_id = run.info.run_id
        atexit.register(self._abandon)
        client.log_batch(self.parent_run_id, params=[
            Param(_param_name(key), value[:_PARAM_VALUE_LIMIT]) for key, (value, _) in params.items()])
        log.info("MLflow parent run %s for sweep %s", self.parent_run_id, sweep_dir)

    def _abandon(self) -> None:
        """At exit, a parent still RUNNING means the sweep stopped early: it and any child left
        RUNNING (a killed job) are marked FAILED."""
        if self.parent_run_id is None:
            return
        client = MlflowClient(tracking_uri(self.store_dir))
        for child in self._children(client):
            if child.info.status == "RUNNING":
                client.set_terminated(child.info.run_id, "FAILED")
        client.set_tag(self.parent_run_id, ERROR_TAG, "the sweep stopped before all its jobs ended")
        client.set_terminated(self.parent_run_id, "FAILED")

    def _children(self, client: MlflowClient) -> list[mlflow.entities.Run]:
        experiment_id = client.get_run(self.parent_run_id).info.experiment_id
        return client.search_runs([experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.parent_run_id}'")

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        if self.parent_run_id is None:
            return
        atexit.unregister(self._abandon)
        parent_run_id, self.parent_run_id = self.parent_run_id, None
        client = MlflowClient()
        experiment_id = client.get_run(parent_run_id).info.experiment_id
        children = mlflow.search_runs(
            experiment_ids=[experiment_id], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}'",
        )
        failed = [] if children.empty else [
            f"{row['tags.mlflow.runName']}: {error if isinstance(error, str) else 'failed'}"
            for _, row in children[children["status"] != "FINISHED"].sort_values("tags.mlflow.runName").iterrows()
            for error in [row.get(f"tags.{ERROR_TAG}")]
        ]
        if not children.empty:
            swept = [key for key, (_, is_swept) in _sweep_overrides(config).items() if is_swept]
            with mlflow.start_run(run_id=parent_run_id):
                mlflow.log_table(_children_table(children, swept), artifact_file="tables/children.json")
                mlflow.log_metric("children", len(children))
                mlflow.log_metric("failed_children", len(failed))
                columns = [f"metrics.{m}" for m in SWEEP_METRICS]
                scored = children.dropna(subset=columns) if set(columns) <= set(children) else children.iloc[:0]
                if not scored.empty:
                    import matplotlib.pyplot as plt  # here: Hydra loads this module in every job, for the callback

                    from w2vlens.figures import sweep_comparison

                    figure = sweep_comparison(scored.set_index("tags.mlflow.runName"), SWEEP_METRICS,
                                              f"sweep {Path(absolute_sweep_dir(config.hydra)).name}: "
                                              + " ".join(config.hydra.overrides.task))
                    mlflow.log_figure(figure, "figures/children.png")
                    plt.close(figure)
        if failed:
            client.set_tag(parent_run_id, "failed_jobs", "; ".join(failed)[:_PARAM_VALUE_LIMIT])
        client.set_terminated(parent_run_id, "FAILED" if failed else "FINISHED")
        if failed:
            # Each failed job already printed its error; the sweep's exit code must say so too,
            # and the last hook of a multirun has no other way to set it.
            print(f"error: {len(failed)} of {len(children)} sweep jobs failed: {'; '.join(failed)}", file=sys.stderr)
            sys.exit(1)


def log_config(config: DictConfig, hydra_output_dir: Path | None, as_written: tuple[str, ...] = ()) -> None:
    """Params = the flattened, resolved config, its top-level keys `as_written` as written (a section
    of interpolations, such as `analysis`, would repeat the sections it points at); the `.hydra/`
    folder as an artifact."""
    container = OmegaConf.to_container(config, resolve=True)
    container |= {key: OmegaConf.to_container(config[key], resolve=False) for key in as_written}
    params = flatten(container)
    items = list(params.items())
    for start in range(0, len(items), 100):
        mlflow.log_params(dict(items[start : start + 100]))
    if hydra_output_dir is not None and (hydra_output_dir / ".hydra").is_dir():
        mlflow.log_artifacts(str(hydra_output_dir / ".hydra"), artifact_path="hydra")


def run_name(tags: Mapping[str, str], k: int, views: int) -> str:
    """What the run ran, as its MLflow name, from its tags: `finetuned layer 4 spherical k=33 umap`,
    `finetuned layers 0,4 kmeans k=33`, `cnn kmeans k=33`, `paper kmeans+spherical k=33` (an analysis
    of several `views` is named by the analysis alone)."""
    view, layer = tags["view"], tags["layer"]
    shown = view if views > 1 or layer == "cnn" else f"{view} layer{'s' if ',' in layer else ''} {layer}"
    return " ".join([shown, tags["cluster"], f"k={k}"] + ([tags["reduce"]] if "reduce" in tags else []))


def artifacts_served_at(run_id: str) -> str:
    """The URL prefix (relative to the MLflow UI) under which the run's artifacts are served."""
    return f"/get-artifact?run_uuid={run_id}&path="


def log_result(result: Result) -> None:
    """Logs a pipeline's result into the active run: metrics (without a step), curves (one value
    per step), tables as JSON artifacts, texts, tags and the files under the result's folder; the
    folder is removed afterwards, also when logging fails."""
    try:
        if result.metrics:
            mlflow.log_metrics(result.metrics)
        for name, values in result.curves.items():
            for step, value in sorted(values.items()):
                mlflow.log_metric(name, value, step=step)
        for path, table in result.tables.items():
            mlflow.log_table(table, artifact_file=path)
        for path, text in result.texts.items():
            mlflow.log_text(text, path)
        if result.tags:
            mlflow.set_tags(result.tags)
        if result.files():
            mlflow.log_artifacts(str(result.folder))
    finally:
        result.cleanup()


def lightning_logger(run_id: str) -> MLFlowLogger:
    """A Lightning logger writing into the existing run `run_id` (on the current tracking URI),
    which it leaves running: for the curves of a model a pipeline trains (the mistake probe).
    Lightning is imported here, not with this module, which Hydra loads for its sweep callback
    in every job: importing it takes seconds."""
    from pytorch_lightning.loggers import MLFlowLogger

    class ExistingRunLogger(MLFlowLogger):
        """MLFlowLogger into a run the caller owns: Lightning's `finalize` would mark it finished."""

        def finalize(self, status: str = "success") -> None:
            pass

    return ExistingRunLogger(tracking_uri=mlflow.get_tracking_uri(), run_id=run_id)


def _store_client(store_dir: Path, run_id: str) -> MlflowClient:
    """A client on the store at `store_dir` that holds run `run_id`; a missing store or run is
    a one-line W2VLensError (no store is created by looking)."""
    if not (store_dir / "mlflow.db").is_file():
        raise W2VLensError(f"{store_dir}: no MLflow store here (pass --store, the runs' tracking.dir)")
    client = MlflowClient(tracking_uri(store_dir))
    try:
        client.get_run(run_id)
    except MlflowException:
        raise W2VLensError(f"run {run_id!r}: not found in {store_dir}") from None
    return client


def run_artifact_names(store_dir: Path, run_id: str, folder: str) -> list[str]:
    """The names of the files in run `run_id`'s artifact `folder`, for tools outside a run."""
    return [Path(item.path).name for item in _store_client(store_dir, run_id).list_artifacts(run_id, folder)]


def download_run_artifact(store_dir: Path, run_id: str, path: str, destination: Path) -> Path:
    """Run `run_id`'s artifact `path` downloaded into `destination`; returns the local file."""
    return Path(_store_client(store_dir, run_id).download_artifacts(run_id, path, str(destination)))
