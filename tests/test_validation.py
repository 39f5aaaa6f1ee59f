"""Every key of every config option has a rule (w2vlens.validation.RULES), and a bad value of each
kind is refused in one line naming the key, the value and what is allowed."""

from functools import cache

import pytest
from helpers import REPO_ROOT, compose_app
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ValidationError

from w2vlens.errors import W2VLensError
from w2vlens.validation import ANYTHING, OPTIONAL_TEXT, RULES, TEXT, check_config, keys_without_rules, leaves, rule_key

# A bad value of each kind, where the key's rule says that kind is bad for it.
KINDS = {"text": "abc", "zero": 0, "negative": -1, "huge": 2**70}


def _options() -> list[list[str]]:
    """The default config and each option of each group in conf/ on top of it."""
    options = [[]]
    for group in sorted(path for path in (REPO_ROOT / "conf").iterdir() if path.is_dir() and path.name != "hydra"):
        options += [[f"{group.name}={option.stem}"] for option in sorted(group.glob("*.yaml"))]
    return options


@cache
def _composed(option: tuple[str, ...]) -> DictConfig:
    """The option's config, its required values (`???`) set, so that only the value tried is bad."""
    cfg = compose_app(list(option))
    for key in OmegaConf.missing_keys(cfg):
        OmegaConf.update(cfg, key, "x")
    return cfg


def _keys() -> list[tuple[tuple[str, ...], str]]:
    """(option, key) for each key of every option's config, once per rule (its first place)."""
    seen, keys = set(), []
    for option in _options():
        for key, _ in leaves(_composed(tuple(option)), interpolations=True):
            if rule_key(key) not in seen:
                seen.add(rule_key(key))
                keys.append((tuple(option), key))
    return keys


@pytest.mark.parametrize("option", _options(), ids=lambda option: " ".join(option) or "default")
def test_every_key_has_a_rule_and_the_defaults_pass(option: list[str]) -> None:
    cfg = _composed(tuple(option))
    missing = keys_without_rules(cfg)
    assert not missing, (f"no rule for {', '.join(missing)} ({' '.join(option) or 'default config'}): "
                         "add one line per key to RULES in src/w2vlens/validation.py")
    check_config(cfg)


def test_every_rule_is_used() -> None:
    """A key renamed or removed takes its rule with it."""
    assert set(RULES) == {rule_key(key) for _, key in _keys()}


def test_a_bad_value_of_each_kind_is_one_line_naming_key_value_and_what_is_allowed() -> None:
    refused_by_kind: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for option, key in _keys():
        rule = RULES[rule_key(key)]
        for kind, value in KINDS.items():
            cfg = _composed(option).copy()
            try:
                OmegaConf.update(cfg, key, value)
            except ValidationError as error:  # the schema's type: Hydra refuses it at compose, naming the key
                assert f"full_key: {key}" in str(error)
                refused_by_kind[kind].add(key)
                continue
            landed = OmegaConf.select(cfg, key)  # as the schema converted it (0 -> "0" for a string)
            if isinstance(landed, (DictConfig, ListConfig)):
                landed = OmegaConf.to_container(landed)
            if rule.accepts(landed):
                continue  # a good value for this key
            with pytest.raises(W2VLensError) as caught:
                check_config(cfg)
            message = str(caught.value)
            assert "\n" not in message and message == f"{key}={landed!r}: use {rule.allowed}", (option, kind)
            refused_by_kind[kind].add(key)
        free = rule in (ANYTHING, TEXT, OPTIONAL_TEXT)  # a path or name: no kind is bad for it
        assert free or any(key in refused for refused in refused_by_kind.values()), key
    # every kind is refused somewhere: text by numbers, zero and negative by counts, huge by seeds
    assert {"seed", "cluster.estimator.n_init"} <= refused_by_kind["huge"] & refused_by_kind["negative"]
    assert {"extract.batch_seconds", "listen.frames"} <= refused_by_kind["zero"]
    assert "cluster.estimator.n_init" in refused_by_kind["text"]
