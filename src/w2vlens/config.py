"""The config's schema and the OmegaConf resolvers the configs use.

The schema types the top-level keys this module owns, so that a value of the wrong type or an
unknown key fails when Hydra composes the config, with its one-line message naming the key. The
config groups (`data`, `pair`, `model`, `cluster`, `reduce`, `extract`, the experiments' `paper`
and `layers`) are left untyped here: each group's own files define them. A new top-level key in
conf/config.yaml must be added to `AppConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from w2vlens.paths import ASSETS_DIR, default_cache_dir

SCHEMA_NAME = "w2vlens_schema"  # the first entry of conf/config.yaml's defaults list


@dataclass
class SilenceConfig:
    min_frames: int = MISSING


@dataclass
class FaithfulnessConfig:
    neighbours: int = MISSING
    sample: int = MISSING


@dataclass
class TrackingConfig:
    dir: str = MISSING
    experiment: str = MISSING


@dataclass
class AtlasConfig:
    enabled: bool = MISSING
    viewer: bool = MISSING


@dataclass
class ListenConfig:
    enabled: bool = MISSING
    frames: int = MISSING
    context_seconds: float = MISSING
    gap_seconds: float = MISSING


@dataclass
class AppConfig:
    """Values live in conf/config.yaml; this only says what each may be."""

    seed: int = MISSING
    layer: Any = MISSING  # an int, a non-empty list of ints or "all": OmegaConf has no unions, app.run checks it
    cache_dir: str = MISSING
    analysis: str = MISSING
    silence: SilenceConfig = field(default_factory=SilenceConfig)
    faithfulness: FaithfulnessConfig = field(default_factory=FaithfulnessConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    atlas: AtlasConfig = field(default_factory=AtlasConfig)
    listen: ListenConfig = field(default_factory=ListenConfig)
    data: Any = MISSING
    pair: Any = MISSING
    model: Any = MISSING
    cluster: Any = MISSING
    extract: Any = MISSING
    reduce: Any = None
    paper: Any = None
    layers: Any = None


ConfigStore.instance().store(name=SCHEMA_NAME, node=AppConfig)


def register_resolvers() -> None:
    """`${w2vlens.cache_dir:}` and `${w2vlens.asset:relative/path}`."""
    OmegaConf.register_new_resolver("w2vlens.cache_dir", lambda: str(default_cache_dir()), replace=True)
    OmegaConf.register_new_resolver("w2vlens.asset", lambda relative: str(ASSETS_DIR / relative), replace=True)
