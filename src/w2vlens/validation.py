"""Every value of the app's config checked in one place, before any work: no checkpoint is loaded,
nothing is written to the cache and no MLflow run is started for a bad value (`run.py` calls
`check_config` before it imports the app, and this module imports neither torch nor MLflow: the
choices it names are in `w2vlens.choices`). The schema (`w2vlens.config`) refuses a wrong type when
Hydra composes the config; this checks ranges and choices, and the keys of the `_target_` groups the schema cannot
type (`data`, `cluster.estimator`, `reduce.projection`, ...). Each error is one line,
`key=value: use <what is allowed>`.

RULES holds one rule per key. A view (`model`, `paper.views.<name>`, `layers.views.<name>`) and
a projection (`reduce`, `paper.projections.<name>`) are checked with the rules of `model.*` and
`reduce.*` (ALIASES). A new key needs one line in RULES, built from the helpers below, e.g.

    "paper.min_char_frames": integer(1),                        # 1 to 2**31 - 1
    "paper.seeds": integer(1, 1000),                            # 1 to 1000
    "paper.bootstrap_unit": choice(*BOOTSTRAP_UNITS),
    "reduce.projection.neighbours": choice("auto", "exact", "approximate"),
    "extract.window_seconds": number(gt=0, null=True),          # > 0, or null

tests/test_validation.py composes every option of every config group, walks every key and fails
naming any key without a rule. Keys starting with `_`
(`_target_`, `_convert_`) are Hydra's own; interpolations (`${seed}`) are checked where they point.
RELATIONS are the checks between keys (`extract.shard` below `extract.num_shards`, ...). The layer
indices are checked against the checkpoints once they are loaded
(`w2vlens.embeddings.views.needed_arrays`), still before the run starts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from w2vlens.choices import (
    BOOTSTRAP_UNITS,
    COMPUTE_DTYPES,
    KMEANS_BACKENDS,
    NEIGHBOURS,
    PROJECTION_METRICS,
    SCORES,
    STORAGE_DTYPES,
    UMAP_BACKENDS,
)
from w2vlens.errors import W2VLensError

INT32_MAX = 2**31 - 1  # counts are passed to numpy and torch, which refuse larger ones
SEED_MAX = 2**32 - 1  # numpy's seeds are non-negative 32-bit integers
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Rule:
    """What a key may hold: `allowed` in words (the error's "use ..."), `accepts` the test."""

    allowed: str
    accepts: Callable[[object], bool]

    def check(self, key: str, value: object) -> None:
        if not self.accepts(value):
            raise W2VLensError(f"{key}={value!r}: use {self.allowed}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _or_null(rule: Rule, null: bool) -> Rule:
    if not null:
        return rule
    return Rule(f"{rule.allowed} or null", lambda value: value is None or rule.accepts(value))


def integer(low: int = 1, high: int = INT32_MAX, null: bool = False) -> Rule:
    """An integer from `low` to `high` (null too with `null`)."""
    words = {0: "a non-negative integer up to", 1: "a positive integer up to"}.get(low, f"an integer from {low} to")
    return _or_null(Rule(f"{words} {high}", lambda value: _is_int(value) and low <= value <= high), null)


def number(gt: float | None = None, ge: float | None = None, lt: float | None = None, null: bool = False) -> Rule:
    """A finite number above `gt` (or from `ge`) and below `lt` (null too with `null`)."""
    if gt == 0 and ge is None and lt is None:
        words = "a positive number"
    elif ge == 0 and gt is None and lt is None:
        words = "a non-negative number"
    else:
        bounds = [f"> {gt}" if gt is not None else "", f">= {ge}" if ge is not None else "",
                  f"< {lt}" if lt is not None else ""]
        words = "a number " + " and ".join(bound for bound in bounds if bound)

    def accepts(value: object) -> bool:
        return (_is_number(value) and (gt is None or value > gt) and (ge is None or value >= ge)
                and (lt is None or value < lt))

    return _or_null(Rule(words, accepts), null)


def choice(*options: str, null: bool = False, allowed: str | None = None) -> Rule:
    """One of `options` (named in the message, or `allowed` in words)."""
    words = allowed or (", ".join(options[:-1]) + " or " + options[-1] if len(options) > 1 else options[0])
    return _or_null(Rule(words, lambda value: isinstance(value, str) and value in options), null)


def list_of(rule: Rule, empty: bool = False, allowed: str | None = None) -> Rule:
    """A list of values that each follow `rule` (at least one unless `empty`), e.g. list_of(SEED)."""
    words = allowed or f"a {'' if empty else 'non-empty '}list, each {rule.allowed}"
    return Rule(words, lambda value: isinstance(value, list) and (empty or len(value) > 0)
                and all(rule.accepts(item) for item in value))


def _layer_spec(value: object) -> bool:
    indices = value if isinstance(value, list) else [value]
    return value == "all" or (len(indices) > 0 and all(_is_int(i) and abs(i) <= INT32_MAX for i in indices))


def _increasing(value: object, low: float, high: float) -> bool:
    return (isinstance(value, list) and len(value) > 0 and all(_is_number(v) and low < v < high for v in value)
            and all(a < b for a, b in zip(value, value[1:], strict=False)))


def _bands(value: object) -> bool:
    return (isinstance(value, list) and len(value) > 0
            and all(isinstance(band, list) and len(band) == 2 and all(_is_number(v) for v in band)
                    and 0 <= band[0] < band[1] <= 1 for band in value))


BOOL = Rule("true or false", lambda value: isinstance(value, bool))
TEXT = Rule("a string", lambda value: isinstance(value, str))
OPTIONAL_TEXT = _or_null(TEXT, True)
NAMES = list_of(TEXT, empty=True, allowed="a list of names")
OPTIONAL_NAMES = _or_null(NAMES, True)
ANYTHING = Rule("anything", lambda value: True)  # passed on as it is (a dataset's own load_dataset arguments)
SEED = Rule(f"a non-negative 32-bit integer (0 to {SEED_MAX})", lambda value: _is_int(value) and 0 <= value <= SEED_MAX)
OPTIONAL_SEED = _or_null(SEED, True)
DEVICE = Rule("auto, cpu, cuda, cuda:N or mps",
              lambda value: isinstance(value, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value) is not None)
LAYERS = Rule("a layer index, a non-empty list of them or 'all'", _layer_spec)
VIEW_NAMES = Rule("a list of the paper's views (paper.views)", NAMES.accepts)  # RELATIONS check the names

# One rule per key. Views and projections are under `model.` and `reduce.` (see ALIASES).
RULES: dict[str, Rule] = {
    "seed": SEED,
    "layer": LAYERS,
    "cache_dir": TEXT,
    "objective": choice(*SCORES),
    # analysis: conf/analysis/ (its settings and views are interpolations, checked where they point)
    "analysis.tags.view": TEXT,
    "analysis.tags.cluster": TEXT,
    "analysis.views": Rule("a list of views (`model` configs)", lambda value: isinstance(value, list)),
    "analysis.settings": Rule("the pipeline's settings (a mapping)", lambda value: isinstance(value, dict)),
    "silence.min_frames": integer(1),
    "faithfulness.neighbours": integer(1),
    "faithfulness.sample": integer(2),
    "tracking.dir": TEXT,
    "tracking.experiment": TEXT,
    "atlas.enabled": BOOL,
    "atlas.viewer": BOOL,
    "listen.enabled": BOOL,
    "listen.frames": integer(1),
    "listen.context_seconds": number(gt=0),
    "listen.gap_seconds": number(ge=0),
    # data: the options of conf/data/ (each target takes some of these)
    "data.path": TEXT,
    "data.split": TEXT,
    "data.seed": OPTIONAL_SEED,
    "data.cache_dir": TEXT,
    "data.name": OPTIONAL_TEXT,
    "data.data_dir": OPTIONAL_TEXT,
    "data.data_files": ANYTHING,  # a path, a list of them or a split -> paths mapping: load_dataset's
    "data.revision": OPTIONAL_TEXT,
    "data.load_kwargs": ANYTHING,
    "data.streaming": BOOL,
    "data.audio_column": TEXT,
    "data.text_column": OPTIONAL_TEXT,
    "data.id_column": OPTIONAL_TEXT,
    "data.metadata_columns": OPTIONAL_NAMES,
    "data.rename_columns": Rule("a mapping of column names to names",
                                lambda value: isinstance(value, dict)
                                and all(isinstance(v, str) for v in value.values())),
    "data.audio_root": OPTIONAL_TEXT,
    "data.max_utterances": integer(1, null=True),
    "data.shuffle_buffer": integer(1),
    "data.run_commands": BOOL,
    "pair.name": TEXT,
    "pair.pretrained": TEXT,
    "pair.finetuned": TEXT,
    "model.name": TEXT,
    "model.checkpoint": choice("pretrained", "finetuned"),
    "model.view": choice("cnn", "transformer"),
    "model.layer": LAYERS,
    "cluster.name": TEXT,
    "cluster.k": Rule(f"'auto' or a positive integer up to {INT32_MAX}",
                      lambda value: value == "auto" or integer(1).accepts(value)),
    "cluster.k_scale": number(gt=0),
    "cluster.estimator.spherical": BOOL,
    "cluster.estimator.backend": choice(*KMEANS_BACKENDS),
    "cluster.estimator.device": DEVICE,
    "cluster.estimator.n_init": integer(1),
    "cluster.estimator.max_iter": integer(1),
    "cluster.estimator.max_points_per_centroid": integer(1, null=True),
    "cluster.estimator.refine_iter": integer(0),
    "cluster.estimator.tol": number(ge=0),
    "cluster.estimator.tf32": BOOL,
    "cluster.estimator.memory_budget": integer(1, INT64_MAX, null=True),
    "cluster.estimator.seed": SEED,
    "extract.device": DEVICE,
    "extract.dtype": choice("auto", *COMPUTE_DTYPES),
    "extract.storage_dtype": choice("auto", *STORAGE_DTYPES),
    "extract.layers": Rule("null, all or a non-empty list of layer indices",
                           lambda value: value is None or _layer_spec(value)),
    "extract.batch_seconds": number(gt=0),
    "extract.loader_workers": integer(0),
    "extract.verify": BOOL,
    "extract.num_shards": integer(1),
    "extract.shard": integer(0, null=True),
    "extract.window_seconds": number(gt=0, null=True),
    "extract.context_seconds": number(gt=0),
    "extract.chunk_seconds": number(gt=0),
    "reduce.name": TEXT,
    "reduce.projection.max_points": integer(3, null=True),
    "reduce.projection.seed": SEED,
    "reduce.projection.device": DEVICE,
    "reduce.projection.pca_components": integer(2, null=True),
    "reduce.projection.metric": choice(*PROJECTION_METRICS),
    "reduce.projection.perplexity": number(gt=0),
    "reduce.projection.n_iter": integer(1),
    "reduce.projection.early_exaggeration_iter": integer(0),
    "reduce.projection.n_jobs": Rule(f"a positive integer up to {INT32_MAX} or -1 (every core)",
                                     lambda value: value == -1 or integer(1).accepts(value)),
    "reduce.projection.n_neighbors": integer(2),
    "reduce.projection.min_dist": number(ge=0),
    "reduce.projection.n_epochs": integer(1, null=True),
    "reduce.projection.backend": choice(*UMAP_BACKENDS),
    "reduce.projection.neighbours": choice(*NEIGHBOURS),
    "paper.spherical_views": VIEW_NAMES,
    "paper.figure_projection": TEXT,  # one of paper.projections: RELATIONS
    "paper.hide_blank_in": VIEW_NAMES,
    "paper.color_by": NAMES,
    "paper.cka_points": integer(2),
    "paper.character_labels": choice("pseudo", "aligned"),
    "paper.accuracy_bands": Rule("a non-empty list of [low, high] bands with 0 <= low < high <= 1", _bands),
    "paper.reference": TEXT,  # best, text or an annotator (column or name): checked against the corpus's annotators
    "paper.min_char_frames": integer(1),
    "paper.seeds": integer(1, 1000),
    "paper.bootstrap": integer(0, 1_000_000),  # 0: no intervals
    "paper.bootstrap_unit": choice(*BOOTSTRAP_UNITS),
    "paper.deletions_on_pauses": BOOL,
    "paper.percentiles": Rule("a non-empty increasing list of numbers between 0 and 100",
                              lambda value: _increasing(value, 0, 100)),
    "paper.finetuning_transcripts": OPTIONAL_TEXT,  # auto or a manifest
    "paper.probe.hidden": integer(1),
    "paper.probe.depth": integer(0),
    "paper.probe.dropout": number(ge=0, lt=1),
    "paper.probe.lr": number(gt=0),
    "paper.probe.max_epochs": integer(1),
    "paper.probe.batch_size": integer(1),
    "paper.probe.patience": integer(0),
    "layers.cka_points": integer(2),
}

# Nodes whose keys follow another node's rules: (prefix, with `*` for any one name) -> that node.
ALIASES = {"paper.views.*": "model", "layers.views.*": "model", "paper.projections.*": "reduce"}


def rule_key(key: str) -> str:
    """The key whose rule `key` follows: paper.views.cnn.view -> model.view."""
    parts = key.split(".")
    for pattern, target in ALIASES.items():
        head = pattern.split(".")
        if len(parts) > len(head) and all(p in ("*", part) for p, part in zip(head, parts[:len(head)], strict=True)):
            return ".".join([target, *parts[len(head):]])
    return key


def _has_rules_below(key: str) -> bool:
    return any(name.startswith(key + ".") for name in RULES)


def leaves(cfg: DictConfig, prefix: str = "", interpolations: bool = False) -> Iterator[tuple[str, object]]:
    """(key, value) of every value the rules check: plain values (lists and mappings as Python
    ones), not Hydra's `_` keys; a node with a rule of its own is one value. An interpolation
    (`${seed}`) is checked where it points; with `interpolations`, it is listed as it is."""
    for name in cfg:
        key = f"{prefix}{name}"
        if str(name).startswith("_"):
            continue
        if OmegaConf.is_interpolation(cfg, name):
            if interpolations:
                yield key, cfg._get_node(name)._value()
            continue
        if OmegaConf.is_missing(cfg, name):
            yield key, "???"  # check_config names it first
            continue
        node = cfg._get_node(name)
        if isinstance(node, DictConfig) and rule_key(key) not in RULES:
            if not node._is_none():
                yield from leaves(node, key + ".", interpolations)
            continue
        value = cfg[name]
        if value is None and rule_key(key) not in RULES and _has_rules_below(rule_key(key)):
            continue  # an optional group left out (reduce: null)
        yield key, OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value


def keys_without_rules(cfg: DictConfig) -> list[str]:
    """The keys of `cfg` that no rule checks (the tests require none)."""
    return [key for key, _ in leaves(cfg, interpolations=True) if rule_key(key) not in RULES]


def _relations(cfg: DictConfig) -> Iterator[str]:
    """Checks between keys: the error of each that fails."""
    settings = cfg.extract
    if settings.shard is not None and settings.shard >= settings.num_shards:
        yield (f"extract.shard={settings.shard}: use 0..{settings.num_shards - 1} "
               f"(extract.num_shards={settings.num_shards})")
    if settings.window_seconds is not None and settings.window_seconds <= 2 * settings.context_seconds:
        yield (f"extract.window_seconds={settings.window_seconds}: use more than twice "
               f"extract.context_seconds={settings.context_seconds}, or null")
    if cfg.faithfulness.neighbours >= cfg.faithfulness.sample:
        yield (f"faithfulness.neighbours={cfg.faithfulness.neighbours}: use fewer than "
               f"faithfulness.sample={cfg.faithfulness.sample}")
    if cfg.get("paper") is not None:
        views, projections = list(cfg.paper.views), list(cfg.paper.projections)
        for key in ("spherical_views", "hide_blank_in"):
            names = OmegaConf.to_container(cfg.paper[key])
            if not set(names) <= set(views):
                yield f"paper.{key}={names!r}: use names of paper.views ({', '.join(views)})"
        if cfg.paper.figure_projection not in projections:
            yield (f"paper.figure_projection={cfg.paper.figure_projection!r}: use one of paper.projections "
                   f"({', '.join(projections)})")


def check_config(cfg: DictConfig) -> None:
    """Stops at the first missing value, value out of its rule or pair of values that do not go
    together, with one line naming the key, its value and what is allowed."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise W2VLensError(f"{missing[0]} is required: set it on the command line ({missing[0]}=...)")
    for key, value in leaves(cfg):
        rule = RULES.get(rule_key(key))
        if rule is not None:  # a key of the user's own data target has none
            rule.check(key, value)
    for message in _relations(cfg):
        raise W2VLensError(message)
