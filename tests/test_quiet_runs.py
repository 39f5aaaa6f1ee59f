"""What a user sees in the terminal: a whole paper run (projections with umap-learn's numba
kernels, the Lightning probe, figures, MLflow) prints no third-party warnings or table previews
they cannot act on, and ends with its run id and UI address (slow: a fresh process compiles
umap-learn's kernels)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT, overrides_for, runs

pytestmark = pytest.mark.slow

NOISE = re.compile(
    r"Warning|warnings\.warn|Cannot cache compiled function|LeafSpec|rows x \d+ columns\]|Loading weights|Traceback"
)


def test_a_paper_run_prints_no_third_party_noise(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                                 tmp_path: Path) -> None:
    command = [sys.executable, "-m", "run", *overrides_for(tiny_pair, corpus_manifest, tmp_path),
               "experiment=paper", "paper.seeds=2", "paper.bootstrap=50",
               "paper.projections.umap.projection.n_epochs=50", f"hydra.run.dir={tmp_path / 'out'}"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    noise = [line for line in output.splitlines() if NOISE.search(line)]
    assert noise == []
    record = runs(tmp_path).iloc[0]
    last = result.stdout.strip().splitlines()[-1]
    assert record.run_id in last and f"/runs/{record.run_id}" in last
