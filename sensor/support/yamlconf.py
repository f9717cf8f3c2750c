"""YAML configuration files whose errors name the file, the line and the key.

`load_mapping` parses a file into plain dicts and lists, and remembers the line
of every key, so a validator can say `sensor.yaml:7: sensor.workers: must be
an integer ≥ 1, not 'two'` rather than leave the admin to search. `Section`
walks one mapping: it hands out typed values and, when done, refuses the keys
it did not ask for (a typo is an error, not a silently ignored setting).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
_MISSING = object()


class ConfigError(ValueError):
    """One line: `FILE:LINE: key.path: what is wrong`."""


class _LineMap(dict):
    """A mapping that remembers the (1-based) line of each key."""

    lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _LineMap:
        mapping = _LineMap(super().construct_mapping(node, deep=True))
        mapping.lines = {key.value: key.start_mark.line + 1 for key, _ in node.value
                         if isinstance(key, yaml.ScalarNode)}
        return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                        _Loader.construct_mapping)


def load_mapping(path: Path) -> Section:
    """The file's top-level mapping as a `Section` (an empty file is an empty mapping)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason})") from err
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        line = mark.line + 1 if mark else 0
        raise ConfigError(f"{path}:{line}: not valid YAML: {err.problem}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if document is None:
        document = _LineMap()
        document.lines = {}
    if not isinstance(document, _LineMap):
        raise ConfigError(f"{path}:1: expected a mapping of settings (key: value)")
    return Section(path, "", document, 1)


class Section:
    """One mapping of a configuration file, read key by key."""

    def __init__(self, path: Path, prefix: str, mapping: _LineMap, line: int) -> None:
        self.path = path
        self.prefix = prefix
        self.mapping = mapping
        self.line = line
        self._asked: set[str] = set()

    def where(self, key: str | None = None) -> str:
        """`FILE:LINE: dotted.key` for an error message."""
        if key is None:
            return f"{self.path}:{self.line}: {self.prefix or '(top level)'}"
        line = self.mapping.lines.get(key, self.line)
        return f"{self.path}:{line}: {self.prefix}{key}"

    def error(self, key: str | None, problem: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {problem}")

    def has(self, key: str) -> bool:
        return self.mapping.get(key) is not None

    def get(self, key: str, kind: type[T] | tuple[type, ...], default: Any = _MISSING,
            check: Callable[[Any], str | None] | None = None) -> Any:
        """The value of `key`, of type `kind`; `check` returns a problem or None.
        Without a default the key is required."""
        self._asked.add(key)
        value = self.mapping.get(key)
        if value is None:
            if default is _MISSING:
                raise self.error(key, "is required")
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # YAML's `yes` is a bool, and bool is an int: never take one for the other.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            raise self.error(key, f"must be {names}, not {value!r}")
        if check is not None:
            problem = check(value)
            if problem:
                raise self.error(key, f"{problem}, not {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        return self.get(key, str, default, lambda v: None if v in choices else
                        f"must be one of {', '.join(choices)}")

    def section(self, key: str) -> Section:
        """A nested mapping (empty when the key is absent)."""
        self._asked.add(key)
        value = self.mapping.get(key)
        line = self.mapping.lines.get(key, self.line)
        if value is None:
            value = _LineMap()
            value.lines = {}
        elif not isinstance(value, _LineMap):
            raise self.error(key, f"must be a mapping (key: value lines), not {value!r}")
        return Section(self.path, f"{self.prefix}{key}.", value, line)

    def finish(self) -> None:
        """Refuse keys nobody asked for: most often a typo."""
        unknown = [key for key in self.mapping if key not in self._asked]
        if unknown:
            key = str(unknown[0])
            near = difflib.get_close_matches(key, sorted(self._asked), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            known = ", ".join(sorted(self._asked))
            raise self.error(key, f"unknown setting{hint}; known here: {known}")


_TYPE_NAMES = {str: "text", int: "an integer", float: "a number", bool: "true or false",
               list: "a list", dict: "a mapping"}


def positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def string_list(value: list) -> str | None:
    if not value:
        return "must not be empty"
    return None if all(isinstance(v, str) and v for v in value) else "must be a list of names"


def host_port(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` (`[v6]:PORT` too) → (host, port); None when the port is not 1…65535.
    The host may be empty; the caller decides what that means."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)
