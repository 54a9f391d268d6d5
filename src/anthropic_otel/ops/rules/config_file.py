"""Reading and writing the rules config: YAML or TOML files, checked setting by setting against the defaults.

A wrong key, type or duration is a `ValueError` naming the setting, so a typo never silently keeps a default.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .config import RulesConfig
from .promql import seconds

_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION_KEYS = frozenset({"for", "window", "rate_window", "baseline_window", "day_window", "month_window",
                            "month_interval", "exceeded_for", "burn_window_day", "burn_window_month", "burn_for"})


def _key(name: str) -> str:
    return "for" if name == "for_" else name


def _field_value(where: str, current: Any, raw: Any) -> Any:
    """`raw` checked against the type of the default `current`."""
    if dataclasses.is_dataclass(current):
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: expected a table of settings, got {raw!r}")
        return _from_mapping(where, current, raw)
    if isinstance(current, tuple):
        if isinstance(raw, str) or not isinstance(raw, Sequence):
            raise ValueError(f"{where}: expected a list of label names, got {raw!r}")
        for label in raw:
            if not isinstance(label, str) or not _LABEL.match(label):
                raise ValueError(f"{where}: {label!r} is not a Prometheus label name")
        return tuple(raw)
    if isinstance(current, float | int) and not isinstance(current, bool):
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
            raise ValueError(f"{where}: expected a non-negative number, got {raw!r}")
        return float(raw)
    if not isinstance(raw, str) or not raw:
        raise ValueError(f"{where}: expected a string, got {raw!r}")
    if where.rsplit(".", 1)[-1] in _DURATION_KEYS:
        seconds(raw)
    return raw


def _from_mapping(where: str, default: Any, data: Mapping[str, Any]) -> Any:
    names = {_key(f.name): f.name for f in dataclasses.fields(default)}
    changes: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in names:
            raise ValueError(f"{where or 'config'}: unknown setting {key!r}; expected one of {sorted(names)}")
        attr = names[key]
        changes[attr] = _field_value(f"{where}.{key}" if where else key, getattr(default, attr), raw)
    return dataclasses.replace(default, **changes)


def config_from_mapping(data: Mapping[str, Any] | None) -> RulesConfig:
    """A config with the defaults overridden by `data` (nested tables, keys as in the config file)."""
    config = _from_mapping("", RulesConfig(), data or {})
    assert isinstance(config, RulesConfig)
    return config


def load_config(path: str | Path | None) -> RulesConfig:
    """The config in a YAML or TOML (`.toml`) file; the defaults for None."""
    if path is None:
        return RulesConfig()
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    if data is not None and not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a table of settings at the top")
    return config_from_mapping(data)


def config_to_mapping(config: Any) -> dict[str, Any]:
    """The config (or one of its sections) as plain data, keys as in the config file."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out[_key(f.name)] = config_to_mapping(value)
        elif isinstance(value, tuple):
            out[_key(f.name)] = list(value)
        else:
            out[_key(f.name)] = value
    return out


def dump_config(config: RulesConfig | None = None) -> str:
    """The config as a commented YAML file (the defaults for None), loadable by `load_config`."""
    config = config or RulesConfig()
    lines = ["# anthropic-otel alert rules config: `anthropic-otel rules --config THIS_FILE --output alerts/`.",
             "# Every key is optional; a missing one keeps its default (the values below are the defaults).",
             "# Durations are Prometheus durations (30s, 5m, 1h, 1d)."]
    _dump_fields(config, lines, "")
    return "\n".join(lines) + "\n"


def _dump_fields(config: Any, lines: list[str], indent: str) -> None:
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            doc = (type(value).__doc__ or "").strip().splitlines()[0]
            lines.append(f"{indent}{_key(f.name)}:  # {doc}")
            _dump_fields(value, lines, indent + "  ")
            continue
        plain = list(value) if isinstance(value, tuple) else value
        text = yaml.safe_dump({_key(f.name): plain}, default_flow_style=True, width=1000).strip()[1:-1]
        comment = f"  # {f.metadata['help']}" if "help" in f.metadata else ""
        lines.append(f"{indent}{text}{comment}")
