"""The MLflow store: several jobs starting at once on a new `tracking.dir`."""

import multiprocessing
from pathlib import Path

import mlflow

from w2vlens.tracking import configure, tracking_uri


def _configure_after(barrier: multiprocessing.Barrier, store: Path, failures: multiprocessing.Queue) -> None:
    barrier.wait()
    try:
        configure(store, "w2vlens")
    except Exception as error:  # noqa: BLE001 - the test reports whatever the race raised
        failures.put(f"{type(error).__name__}: {error}")


def test_simultaneous_first_runs_create_the_store_once(tmp_path: Path) -> None:
    """Jobs of a sweep starting together on a new store raced creating its tables
    (`table alembic_version already exists`); the store is created under a lock."""
    context = multiprocessing.get_context("fork")  # mlflow already imported: the processes start at once
    for attempt in range(3):
        store = tmp_path / f"mlruns{attempt}"
        barrier, failures = context.Barrier(4), context.Queue()
        processes = [context.Process(target=_configure_after, args=(barrier, store, failures)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        assert [process.exitcode for process in processes] == [0] * 4
        assert failures.empty(), failures.get()
        mlflow.set_tracking_uri(tracking_uri(store))
        assert sorted(e.name for e in mlflow.search_experiments()) == ["Default", "w2vlens"]
