"""The config's schema and the OmegaConf resolvers the configs use.

The schema types every setting the app hands to code as plain values (`extract`, `silence`,
`faithfulness`, `paper` with its `probe`, `layers`, `listen`, `atlas`, `tracking`), so that a value
of the wrong type or an unknown key fails when Hydra composes the config, with its one-line message
naming the key; the pipelines get them as these dataclasses. The groups that choose an
implementation (`data`, `cluster.estimator`, `reduce`, `analysis`: the pipeline and its settings)
are built with `_target_`, and `pair` and the views (`model`: name, checkpoint, view, layer) are
read by the app. A new key in
conf/config.yaml must be added here, and its range or choices to `w2vlens.validation.RULES`.
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
class ExtractConfig:
    device: str = MISSING
    dtype: str = MISSING
    storage_dtype: str = MISSING
    layers: Any = None  # null, "all" or a list of layer indices: views.needed_arrays checks them
    batch_seconds: float = MISSING
    loader_workers: int = MISSING
    verify: bool = MISSING
    num_shards: int = MISSING
    shard: int | None = None
    window_seconds: float | None = MISSING
    context_seconds: float = MISSING
    chunk_seconds: float = MISSING


@dataclass
class ProbeConfig:
    """Figure 3's mistake classifier (`w2vlens.analysis.probe.train_probe`)."""

    hidden: int = MISSING
    depth: int = MISSING
    dropout: float = MISSING
    lr: float = MISSING
    max_epochs: int = MISSING
    batch_size: int = MISSING
    patience: int = MISSING


@dataclass
class PaperConfig:
    """experiment=paper (conf/analysis/paper.yaml says what each means)."""

    views: Any = MISSING  # name -> a `model` config, composed from the model group
    projections: Any = MISSING  # name -> a `reduce` config, composed from the reduce group
    spherical_views: list[str] = MISSING
    figure_projection: str = MISSING
    hide_blank_in: list[str] = MISSING
    color_by: list[str] = MISSING
    cka_points: int = MISSING
    character_labels: str = MISSING
    accuracy_bands: list[list[float]] = MISSING
    reference: str = MISSING
    percentiles: list[int] = MISSING
    min_char_frames: int = MISSING
    deletions_on_pauses: bool = MISSING
    finetuning_transcripts: str | None = MISSING
    seeds: int = MISSING
    bootstrap: int = MISSING
    bootstrap_unit: str = MISSING
    probe: ProbeConfig = field(default_factory=ProbeConfig)


@dataclass
class LayersConfig:
    """experiment=layers (conf/analysis/layers.yaml)."""

    views: Any = MISSING  # name -> a `model` config: the CNN baseline and the models scored layer by layer
    cka_points: int = MISSING


@dataclass
class AppConfig:
    """Values live in conf/config.yaml; this only says what each may be."""

    seed: int = MISSING
    layer: Any = MISSING  # an int, a non-empty list of ints or "all": OmegaConf has no unions, validation checks it
    cache_dir: str = MISSING
    objective: str = MISSING
    analysis: Any = MISSING  # conf/analysis/: the run's tags, its views, its pipeline and the pipeline's settings
    silence: SilenceConfig = field(default_factory=SilenceConfig)
    faithfulness: FaithfulnessConfig = field(default_factory=FaithfulnessConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    atlas: AtlasConfig = field(default_factory=AtlasConfig)
    listen: ListenConfig = field(default_factory=ListenConfig)
    data: Any = MISSING
    pair: Any = MISSING
    model: Any = MISSING
    cluster: Any = MISSING
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    reduce: Any = None
    paper: PaperConfig | None = None
    layers: LayersConfig | None = None


ConfigStore.instance().store(name=SCHEMA_NAME, node=AppConfig)


def register_resolvers() -> None:
    """`${w2vlens.cache_dir:}` and `${w2vlens.asset:relative/path}`."""
    OmegaConf.register_new_resolver("w2vlens.cache_dir", lambda: str(default_cache_dir()), replace=True)
    OmegaConf.register_new_resolver("w2vlens.asset", lambda relative: str(ASSETS_DIR / relative), replace=True)
