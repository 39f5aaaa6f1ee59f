"""Where w2vlens keeps its cache and its embedded assets."""

from __future__ import annotations

import os
from pathlib import Path

ASSETS_DIR = Path(__file__).parent / "assets"
DEMO_PAIR_DIR = ASSETS_DIR / "demo_pair"


def default_cache_dir() -> Path:
    """`$W2VLENS_CACHE`, else `$XDG_CACHE_HOME/w2vlens`, else `~/.cache/w2vlens`."""
    if "W2VLENS_CACHE" in os.environ:
        return Path(os.environ["W2VLENS_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser()
    return base / "w2vlens"
