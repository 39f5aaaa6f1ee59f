"""Scale-out on a real SLURM: a single-node cluster on this machine (scripts/slurm_cluster.sh),
the submitit launcher running a sharded extraction as an array job, then a 2-job sweep.
Run with `make test-slurm` (needs root; installs the Debian packages if missing, else skips)."""

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from helpers import REPO_ROOT, app_overrides, compose_app

from w2vlens.app import run
from w2vlens.embeddings.store import EmbeddingStore
from w2vlens.tracking import tracking_uri

pytestmark = pytest.mark.slurm

CLUSTER_SCRIPT = REPO_ROOT / "scripts" / "slurm_cluster.sh"
# The overrides that split the extraction into two shards.
SHARD_COUNT = "extract.num_shards=2"
SHARD_SWEEP = "extract.shard=0,1"
# The preset asks for a GPU node; this cluster is one small CPU node.
LAUNCHER = ["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=null", "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=15", "hydra.launcher.array_parallelism=2"]


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    """Starts the cluster (or finds it running); skips with the script's one line when it cannot."""
    result = subprocess.run(["bash", str(CLUSTER_SCRIPT)], capture_output=True, text=True, timeout=900)
    if result.returncode == 3:
        pytest.skip(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, result.stdout + result.stderr


def multirun(overrides: list[str], sweep_dir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "run", "-m", *LAUNCHER, *overrides, f"hydra.sweep.dir={sweep_dir}"]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)


def stores(cache: Path) -> dict[str, EmbeddingStore]:
    return {path.name: EmbeddingStore(path) for path in sorted((cache / "stores").iterdir())}


def test_sharded_extraction_and_sweep_on_slurm(slurm_cluster: None, tiny_pair: tuple[Path, Path],
                                               corpus_manifest: Path, tmp_path: Path) -> None:
    data = ["data=manifest", f"data.path={corpus_manifest}"]
    base = app_overrides(tiny_pair, data, tmp_path / "cache", tmp_path / "mlruns")

    extraction = multirun([*base, SHARD_COUNT, SHARD_SWEEP], tmp_path / "shards")
    assert extraction.returncode == 0, extraction.stderr[-3000:]
    sharded = stores(tmp_path / "cache")
    assert len(sharded) == 2  # the pair's two checkpoints, merged; no parts left
    run(compose_app(app_overrides(tiny_pair, data, tmp_path / "single", tmp_path / "single_mlruns")))
    single = stores(tmp_path / "single")
    assert sharded.keys() >= single.keys() and single
    for name, store in single.items():
        merged = sharded[name]
        assert merged.meta["arrays"] == store.meta["arrays"]
        for array in store.meta["arrays"]:  # batches differ between the runs: equal up to padding's rounding
            assert merged.array(array) == pytest.approx(store.array(array), abs=1e-4), array
        assert merged.frames().equals(store.frames()) and merged.utterances().equals(store.utterances())

    sweep = multirun([*base, "model=pretrained,finetuned"], tmp_path / "sweep")
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    mlflow.set_tracking_uri(tracking_uri(tmp_path / "mlruns"))
    logged = mlflow.search_runs(experiment_names=["w2vlens"])
    assert (logged["status"] == "FINISHED").all()
    parents = logged[logged["tags.sweep"] == "true"].set_index("tags.sweep_dir")
    assert sorted(parents.index) == [str(tmp_path / "shards"), str(tmp_path / "sweep")]
    children = logged[logged["tags.mlflow.parentRunId"] == parents.loc[str(tmp_path / "sweep"), "run_id"]]
    assert sorted(children["tags.mlflow.runName"]) == [
        "job 0: pretrained layer 2 kmeans k=33", "job 1: finetuned layer 2 kmeans k=33"]
    assert (children["metrics.cache_hit_finetuned"] == 1).all()  # the shards' store, reused
    assert len(logged) == 4  # the shard jobs log no analysis runs
