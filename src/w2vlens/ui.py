"""`make ui`: the MLflow UI over the project's store, opened on the runs of the w2vlens experiment.

MLflow 3 lands on its GenAI overview (traces, an assistant) and hides training runs behind a
toggle; only the URL's `workflowType=machine_learning` opens the runs list, so the URL is
printed before the server starts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from w2vlens import tracking
from w2vlens.errors import W2VLensError


def runs_url(experiment_id: str, host: str = "127.0.0.1", port: int = 5000) -> str:
    """The MLflow UI address that opens the runs list of one experiment."""
    return f"http://{host}:{port}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def run_url(experiment_id: str, run_id: str, host: str = "127.0.0.1", port: int = 5000) -> str:
    """The MLflow UI address of one run (as `make ui` serves it)."""
    return f"http://{host}:{port}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_ui_command(store_dir: Path, host: str, port: int) -> list[str]:
    """`mlflow ui` over the SQLite store and artifact folder the runs write to."""
    beside = Path(sys.executable).parent / "mlflow"  # the venv's, even when it is not on PATH
    executable = str(beside) if beside.is_file() else shutil.which("mlflow")
    if executable is None:
        raise W2VLensError("mlflow: command not found; run `make setup` first")
    store_dir = store_dir.resolve()
    # One worker and no access log: one person browsing their runs on a laptop or a 2-core node,
    # not a shared server (MLflow's default of 4 workers plus job runners took 16 processes, 3 GiB).
    return [executable, "ui", "--backend-store-uri", tracking.tracking_uri(store_dir),
            "--default-artifact-root", str(store_dir / "artifacts"), "--host", host, "--port", str(port),
            "--workers", "1", "--uvicorn-opts", "--no-access-log"]


def quiet_environment() -> dict[str, str]:
    """The server's environment: no background job runners (evaluation jobs and trace roll-ups we
    do not use), and none of the third-party deprecation warnings a user cannot act on."""
    # Starlette's own deprecation class is no DeprecationWarning: it is matched by its message.
    quiet = "ignore::DeprecationWarning,ignore:starlette.middleware.wsgi is deprecated"
    return os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                         "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", quiet)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m w2vlens.ui", description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("mlruns"), help="tracking.dir of the runs (mlruns)")
    parser.add_argument("--experiment", default="w2vlens", help="tracking.experiment of the runs (w2vlens)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    experiment_id = tracking.configure(args.store, args.experiment)
    command = mlflow_ui_command(args.store, args.host, args.port)
    print(f"\n  w2vlens runs: {runs_url(experiment_id, args.host, args.port)}\n", flush=True)
    os.execve(command[0], command, quiet_environment())


if __name__ == "__main__":
    try:
        main()
    except W2VLensError as error:
        raise SystemExit(f"error: {error}") from None
