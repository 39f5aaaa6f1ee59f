"""OmegaConf resolvers the configs use; registered once by the entry point."""

from __future__ import annotations

from omegaconf import OmegaConf

from w2vlens.paths import ASSETS_DIR, default_cache_dir


def register_resolvers() -> None:
    """`${w2vlens.cache_dir:}` and `${w2vlens.asset:relative/path}`."""
    OmegaConf.register_new_resolver("w2vlens.cache_dir", lambda: str(default_cache_dir()), replace=True)
    OmegaConf.register_new_resolver("w2vlens.asset", lambda relative: str(ASSETS_DIR / relative), replace=True)
