"""Process settings: importing w2vlens changes nothing; the entry point's configure_process does."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT

from w2vlens.runtime import configure_process


def test_importing_the_app_leaves_the_process_alone() -> None:
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "NUMBA_CACHE_DIR", "MPLBACKEND")}
    code = ("import os, w2vlens.app, matplotlib; "
            "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('NUMBA_CACHE_DIR'))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["None", "None"]


def test_configure_process_sets_what_the_user_left_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import matplotlib

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/elsewhere")  # the user's choice wins
    configure_process(tmp_path, omp_wait_policy="ACTIVE", log_level=logging.WARNING)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" and os.environ["NUMBA_CACHE_DIR"] == "/elsewhere"
    assert matplotlib.get_backend().lower() == "agg"
    assert logging.getLogger("w2vlens").level == logging.WARNING
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    configure_process(tmp_path)
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "numba")
