"""`make ui` prints the URL that opens the runs list of the project's experiment."""

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
    monkeypatch.setattr(ui.os, "execv", lambda path, command: served.append(command))
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
