"""Config checks: a wrong value stops with one line naming it, before any MLflow run starts."""

import sqlite3
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
    (["cluster.k=2.5"], r"^cluster.k=2.5: use 'auto' or a positive integer up to 2147483647$"),
    (["cluster.k=0"], r"^cluster.k=0: use 'auto' or a positive integer up to 2147483647$"),
    (["cluster.k=abc"], r"^cluster.k='abc': use 'auto' or a positive integer up to 2147483647$"),
    (["cluster.k_scale=0"], r"^cluster.k_scale=0: use a positive number$"),
    (["objective=accuracy"], r"^objective='accuracy': use ami, homogeneity or completeness$"),
    (["data.path=???"], r"^data.path is required: set it on the command line \(data.path=\.\.\.\)$"),
    # issue 23: each was a traceback, silently accepted or refused only after a run had started
    (["cluster.estimator.n_init=abc"], r"^cluster.estimator.n_init='abc': use a positive integer up to 2147483647$"),
    (["cluster.estimator.n_init=0"], r"^cluster.estimator.n_init=0: use a positive integer up to 2147483647$"),
    (["seed=-1"], r"^seed=-1: use a non-negative 32-bit integer \(0 to 4294967295\)$"),
    ([f"seed={2**70}"], rf"^seed={2**70}: use a non-negative 32-bit integer \(0 to 4294967295\)$"),
    (["listen.frames=0"], r"^listen.frames=0: use a positive integer up to 2147483647$"),
    (["listen.context_seconds=-1"], r"^listen.context_seconds=-1.0: use a positive number$"),
    (["extract.batch_seconds=0"], r"^extract.batch_seconds=0.0: use a positive number$"),
    (["extract.storage_dtype=int8"], r"^extract.storage_dtype='int8': use auto, float16 or float32$"),
    (["cluster.estimator.backend=foo"], r"^cluster.estimator.backend='foo': use auto, faiss, torch or sklearn$"),
    (["extract.window_seconds=-5"], r"^extract.window_seconds=-5.0: use a positive number or null$"),
    (["extract.context_seconds=-1"], r"^extract.context_seconds=-1.0: use a positive number$"),
    (["extract.window_seconds=2"], r"^extract.window_seconds=2.0: use more than twice extract.context_seconds=1.0"),
    (["extract.shard=2", "extract.num_shards=2"], r"^extract.shard=2: use 0..1 \(extract.num_shards=2\)$"),
])
def test_bad_values_stop_before_any_work_or_mlflow_run(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                                       tmp_path: Path, overrides: list[str], message: str) -> None:
    data = ["data=manifest", f"data.path={corpus_manifest}"]
    cfg = compose_app(app_overrides(tiny_pair, data, tmp_path / "cache", tmp_path / "mlruns") + overrides)
    with pytest.raises(W2VLensError, match=message):
        run(cfg)
    assert not (tmp_path / "mlruns").exists()  # no store, so no run left FAILED
    assert not (tmp_path / "cache").exists()  # nothing extracted


def test_layer_indices_are_checked_against_the_checkpoint_before_any_run(
        tiny_pair: tuple[Path, Path], corpus_manifest: Path, tracking_dir: Path, tmp_path: Path) -> None:
    """The tiny model has layers 0..2: no MLflow run, nothing in the cache."""
    data = ["data=manifest", f"data.path={corpus_manifest}"]
    cfg = compose_app(app_overrides(tiny_pair, data, tmp_path / "cache", tracking_dir) + ["extract.layers=[99]"])

    def count_runs() -> int:
        database = tracking_dir / "mlflow.db"
        return sqlite3.connect(database).execute("select count(*) from runs").fetchone()[0] if database.exists() else 0

    before = count_runs()
    with pytest.raises(W2VLensError, match=rf"^extract.layers=99: {tiny_pair[1]} has layers 0..2$"):
        run(cfg)
    assert count_runs() == before
    assert not (tmp_path / "cache").exists()


def test_a_manifest_without_its_path_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "run", "data=manifest", f"tracking.dir={tmp_path / 'mlruns'}",
                             f"hydra.run.dir={tmp_path / 'out'}"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: data.path is required: set it on the command line (data.path=...)"]
    assert not (tmp_path / "mlruns").exists()
