"""`make ui` prints the URL that opens the runs list of the project's experiment."""

import os
import re
from pathlib import Path

import pytest

from w2vlens import ui


def test_runs_url_opens_the_runs_list_of_the_experiment() -> None:
    url = ui.runs_url("7", "127.0.0.1", 5000)
    assert re.fullmatch(r"http://127\.0\.0\.1:5000/#/experiments/7/runs\?workflowType=machine_learning", url)


def test_main_creates_the_experiment_prints_its_url_then_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    served = []
    monkeypatch.setattr(ui.os, "execve", lambda path, command, environment: served.append(command))
    ui.main(["--store", str(tmp_path / "store"), "--experiment", "w2vlens", "--port", "5123"])
    printed = capsys.readouterr().out
    match = re.search(r"http://127\.0\.0\.1:5123/#/experiments/(\d+)/runs\?workflowType=machine_learning", printed)
    assert match, printed
    from mlflow.tracking import MlflowClient
    experiment = MlflowClient().get_experiment_by_name("w2vlens")
    assert experiment is not None and experiment.experiment_id == match.group(1)
    (command,) = served
    assert command[1] == "ui" and command[command.index("--port") + 1] == "5123"
    assert command[command.index("--backend-store-uri") + 1].endswith(str(tmp_path / "store" / "mlflow.db"))
    assert Path(command[0]).name == "mlflow"


def test_the_ui_serves_quietly_from_few_processes(tmp_path: Path) -> None:
    """A real `python -m w2vlens.ui`: the runs page answers, requests are not logged one line
    each, no deprecation warning is printed, and it runs as a handful of processes."""
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "w2vlens.ui", "--store", str(tmp_path / "store"), "--port",
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        deadline, answered = time.monotonic() + 120, False
        while time.monotonic() < deadline and not answered:
            try:
                for _ in range(3):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                        answered = response.status == 200
            except OSError:
                time.sleep(1)
        assert answered, "the MLflow UI did not answer within 120 s"
        processes = subprocess.run(["pgrep", "-s", str(server.pid)], capture_output=True, text=True).stdout.split()
        assert len(processes) <= 3, processes  # mlflow's launcher and one uvicorn worker
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    assert "GET /" not in output and "Warning" not in output, output
