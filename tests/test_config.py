"""Config checks: a wrong value stops with one line naming it, before any MLflow run starts."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO_ROOT, app_overrides, compose_app
from hydra.errors import ConfigCompositionException

from w2vlens.app import run
from w2vlens.errors import W2VLensError


@pytest.mark.parametrize(("override", "key"), [
    ("seed=abc", "seed"),
    ("seed=2.5", "seed"),
    ("faithfulness.neighbours=abc", "faithfulness.neighbours"),
    ("silence.min_frames=[1]", "silence.min_frames"),
    ("tracking.experiment=[a]", "tracking.experiment"),
    ("no_such_key=1", "no_such_key"),
    ("extract.batch_seconds=fast", "extract.batch_seconds"),
    ("extract.shard=first", "extract.shard"),
    ("extract.no_such_key=1", "extract.no_such_key"),
    ("paper.probe.hidden=many", "paper.probe.hidden"),
    ("paper.probe.hiden=3", "paper.probe.hiden"),
    ("paper.cka_points=abc", "paper.cka_points"),
    ("layers.cka_points=abc", "layers.cka_points"),
])
def test_wrong_types_and_unknown_keys_fail_at_compose(override: str, key: str) -> None:
    preset = ["experiment=paper"] if override.startswith("paper.") else (
        ["experiment=layers"] if override.startswith("layers.") else [])
    with pytest.raises(ConfigCompositionException) as caught:
        compose_app([*preset, override])
    assert f"full_key: {key}" in str(caught.value.__cause__)


def test_a_compose_error_is_hydras_message_within_seconds(tmp_path: Path) -> None:
    """`python -m run` reports it before importing the app: no traceback, no MLflow store."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "run", "reduce=pca", "faithfulness.neighbours=abc",
                             f"tracking.dir={tmp_path / 'mlruns'}"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120)
    elapsed = time.perf_counter() - started
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[:2] == ["Error merging override faithfulness.neighbours=abc",
                                              "Value 'abc' of type 'str' could not be converted to Integer"]
    assert elapsed < 10, elapsed
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize(("overrides", "message"), [
    (["layer=abc"], r"^layer='abc': use a layer index, a non-empty list of them or 'all'$"),
    (["layer=[]"], r"^layer=\[\]: use a layer index, a non-empty list of them or 'all'$"),
    (["layer=[1,x]"], r"^layer=\[1, 'x'\]: use a layer index, a non-empty list of them or 'all'$"),
    (["cluster.k=2.5"], r"^cluster.k=2.5: use 'auto' or a positive integer$"),
    (["cluster.k=0"], r"^cluster.k=0: use 'auto' or a positive integer$"),
    (["cluster.k=abc"], r"^cluster.k='abc': use 'auto' or a positive integer$"),
    (["cluster.k_scale=0"], r"^cluster.k_scale=0: use a positive number$"),
    (["analysis=layers"], r"^analysis=layers needs experiment=layers"),
    (["analysis=everything"], r"^analysis='everything': use view, or experiment=layers or experiment=paper$"),
    (["data.path=???"], r"^data.path is required: set it on the command line \(data.path=\.\.\.\)$"),
])
def test_bad_values_stop_before_any_work_or_mlflow_run(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                                       tmp_path: Path, overrides: list[str], message: str) -> None:
    data = ["data=manifest", f"data.path={corpus_manifest}"]
    cfg = compose_app(app_overrides(tiny_pair, data, tmp_path / "cache", tmp_path / "mlruns") + overrides)
    with pytest.raises(W2VLensError, match=message):
        run(cfg)
    assert not (tmp_path / "mlruns").exists()  # no store, so no run left FAILED
    assert not (tmp_path / "cache").exists()  # nothing extracted


def test_a_manifest_without_its_path_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "run", "data=manifest", f"tracking.dir={tmp_path / 'mlruns'}",
                             f"hydra.run.dir={tmp_path / 'out'}"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: data.path is required: set it on the command line (data.path=...)"]
    assert not (tmp_path / "mlruns").exists()
