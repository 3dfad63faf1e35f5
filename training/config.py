"""One typed training config: every stage's parameters with documented defaults.

Each stage owns its dataclass (in its module); `TrainConfig` gathers them so a TOML
file (`[copurchase]`, `[als]`, ...) or the CLI can set any of them, and unknown keys
are refused with a message naming the key.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.als import ALSConfig
from training.category_complements import CategoryComplementsConfig
from training.copurchase import CopurchaseConfig
from training.evaluate import EvalConfig
from training.popularity import PopularityConfig
from training.substitutes import SubstitutesConfig


class ConfigError(ValueError):
    """A config key or value is wrong; the message names it."""


@dataclass
class TrainConfig:
    copurchase: CopurchaseConfig = field(default_factory=CopurchaseConfig)
    category_complements: CategoryComplementsConfig = field(default_factory=CategoryComplementsConfig)
    popularity: PopularityConfig = field(default_factory=PopularityConfig)
    als: ALSConfig = field(default_factory=ALSConfig)
    substitutes: SubstitutesConfig = field(default_factory=SubstitutesConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # Publish models refitted on all orders (True) or the ones fitted on the training
    # split and evaluated (False: faster, but the newest orders are left out).
    refit_full: bool = True
    # With two or more cores, the refit on all orders runs in a child process beside the
    # fit on the split and the evaluation (it needs neither) once the orders have at
    # least this many lines; below that, the child's start (~2 s of imports) and the
    # copies of the data cost more than they save. Peak memory is then the job's plus
    # the child's (both are reported).
    parallel_refit_min_lines: int = 200_000

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "config") -> "TrainConfig":
        cfg = cls()
        for key, value in data.items():
            fields = {f.name: f for f in dataclasses.fields(cls)}
            if key not in fields:
                raise ConfigError(f"{where}: unknown key {key!r}; known: {', '.join(sorted(fields))}")
            current = getattr(cfg, key)
            if dataclasses.is_dataclass(current):
                if not isinstance(value, dict):
                    raise ConfigError(f"{where}: [{key}] must be a table of settings")
                setattr(cfg, key, _update(current, value, f"{where}: [{key}]"))
            else:
                setattr(cfg, key, _coerce(value, current, f"{where}: {key}"))
        return cfg

    @classmethod
    def from_toml(cls, path: str | Path, section: str | None = None) -> "TrainConfig":
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read config {path}: {e}") from e
        if section is not None:
            data = data.get(section, {})
        return cls.from_dict(data, where=str(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _update(obj: Any, values: dict[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}; known: {', '.join(sorted(known))}")
        changes[key] = _coerce(value, getattr(obj, key), f"{where} {key}")
    return dataclasses.replace(obj, **changes)


def _coerce(value: Any, current: Any, where: str) -> Any:
    """Accept a value of the default's type (ints for floats too); None-defaults take anything."""
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(current, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return type(current)(value) if isinstance(current, float) else value
    if isinstance(current, str) and not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value
