"""Detector configuration from plain data (a policy file), with errors that name the key.

Each detector has a frozen config dataclass whose defaults are the lab's defaults. `load()`
builds one from a mapping: unknown keys, wrong types and out-of-range values raise
`ConfigError` whose `key` is the dotted path (`anomaly.volume.window_s`). Plain `int`, `float`,
`bool`, `str` and optional fields are converted here; a config class converts any other field
with a static method `convert_<field>(value, key)`.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import fields
from functools import cache
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

__all__ = ["ConfigError", "load", "require"]

C = TypeVar("C")

_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


class ConfigError(ValueError):
    """A bad anomaly-detection setting; `key` is its dotted path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def require(condition: bool, key: str, message: str) -> None:
    """Raise `ConfigError(key, message)` unless `condition` (for `__post_init__` checks)."""
    if not condition:
        raise ConfigError(key, message)


@cache
def _hints(cls: type) -> tuple[tuple[str, ...], dict[str, Any]]:
    return tuple(f.name for f in fields(cls)), get_type_hints(cls)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    if isinstance(hint, types.UnionType) or get_origin(hint) is Union:
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(option for option in options if option is not type(None))
    if get_origin(hint) is Literal:
        if value in get_args(hint):
            return value
        choices = ", ".join(repr(choice) for choice in get_args(hint))
        raise ConfigError(key, f"must be one of {choices}, got {value!r}")
    if hint is bool and isinstance(value, bool):
        return value
    if not isinstance(value, bool):
        if hint is int and isinstance(value, int):
            return value
        if hint is float and isinstance(value, int | float):
            return float(value)
        if hint is str and isinstance(value, str):
            return value
    raise ConfigError(key, f"must be {_TYPE_NAMES.get(hint, str(hint))}, got {value!r}")


def load(cls: type[C], data: Any, where: str, *, ignore: frozenset[str] = frozenset()) -> C:
    """Build config `cls` from `data` (a mapping or None); `ignore` lists keys handled by the
    caller (e.g. `enabled`)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(where, f"must be a mapping of settings, got {type(data).__name__}")
    names, hints = _hints(cls)  # type: ignore[arg-type]  # classes are hashable
    values: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}"
        if key in ignore:
            continue
        if key not in names:
            raise ConfigError(path, f"unknown setting; expected one of: {', '.join(names)}")
        convert = getattr(cls, f"convert_{key}", None)
        values[key] = convert(value, path) if convert else _coerce(value, hints[key], path)
    try:
        return cls(**values)
    except ConfigError as exc:
        if exc.key.startswith(where + "."):
            raise
        raise ConfigError(f"{where}.{exc.key}", exc.message) from None
