"""The import direction of the package: `tables` is the public top layer that no stage imports, MLflow
is imported by the tracker alone, and checking a config loads no torch."""

import ast
import subprocess
import sys
from pathlib import Path

from helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "w2vlens"
STAGES = ("analysis", "labelling", "embeddings", "corpora", "figures")  # below the pipelines and `tables`


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (also inside functions), as dotted names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_no_stage_imports_tables() -> None:
    offenders = [str(path.relative_to(PACKAGE)) for stage in STAGES for path in sorted((PACKAGE / stage).rglob("*.py"))
                 if "w2vlens.tables" in imported(path)]
    assert not offenders, f"stages import w2vlens.tables, the layer above them: {offenders}"


def test_only_the_tracker_imports_mlflow() -> None:
    offenders = [str(path.relative_to(REPO_ROOT)) for path in sorted(PACKAGE.rglob("*.py")) + [REPO_ROOT / "run.py"]
                 if path.name != "tracking.py" and any(name.split(".")[0] == "mlflow" for name in imported(path))]
    assert not offenders, f"mlflow imported outside w2vlens.tracking: {offenders}"


def test_checking_a_config_loads_no_torch_or_mlflow() -> None:
    """run.py checks the config before it imports the app, so a bad value is reported in seconds."""
    code = ("import sys, w2vlens.config, w2vlens.validation; "
            "print(sorted(m for m in ('torch', 'mlflow', 'sklearn', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"
