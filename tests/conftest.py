"""Fixtures: tiny random wav2vec2 checkpoints and tiny corpora, made in temp dirs, offline (the
helpers that make them are in helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")  # what w2vlens.runtime sets for the app
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

from helpers import save_tiny_pair, write_corpus, write_long_recording  # noqa: E402


@pytest.fixture(scope="session")
def tracking_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MLflow store for the tests that only need somewhere to log (creating one takes seconds)."""
    return tmp_path_factory.mktemp("mlruns")


@pytest.fixture(scope="session")
def long_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-minute 16 kHz recording."""
    return write_long_recording(tmp_path_factory.mktemp("long") / "long.wav")


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return save_tiny_pair(tmp_path_factory.mktemp("pair"))


@pytest.fixture()
def corpus_manifest(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")
