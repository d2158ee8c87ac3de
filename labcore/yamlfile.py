"""YAML documents validated by pydantic models, with errors that name file, line and field.

Scenario files and client profiles are written by people: a mistake must come back as
`scenarios/x.yaml:12: steps.3.weight: Input should be greater than 0`, not a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from labcore.errors import LabError

Model = TypeVar("Model", bound=BaseModel)
Path_ = tuple[str | int, ...]


class DocumentError(LabError):
    """A YAML document is unreadable or does not fit its schema; `problems` lists each."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        listing = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s)\n{listing}")
        self.path = path
        self.problems = problems


def _walk(node: yaml.Node, here: Path_, lines: dict[Path_, int]) -> Any:
    lines[here] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            lines[(*here, key)] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, (*here, key), lines)
            lines[(*here, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*here, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def load_yaml(path: Path) -> tuple[Any, dict[Path_, int]]:
    """Parse one YAML document; returns the data and the line of every key and item."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DocumentError(path, [f"cannot read: {exc.strerror}"]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise DocumentError(
            path, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]
        ) from exc
    if node is None:
        raise DocumentError(path, ["the file is empty"])
    lines: dict[Path_, int] = {}
    return _walk(node, (), lines), lines


def _line_for(loc: Path_, lines: dict[Path_, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def describe(error: ValidationError, lines: dict[Path_, int]) -> list[str]:
    """One line per pydantic error: `line N: dotted.field: message`."""
    problems = []
    for err in error.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        field = ".".join(str(p) for p in loc) or "(document)"
        line = _line_for(loc, lines)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (check its spelling)"
        problems.append(f"line {line}: {field}: {message}" if line else f"{field}: {message}")
    return problems


def load_model(path: Path, model: type[Model]) -> Model:
    """Load `path` as `model`, raising DocumentError with every problem found."""
    data, lines = load_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DocumentError(path, describe(exc, lines)) from None


Key = TypeVar("Key")


def load_directory(
    directory: Path,
    model: type[Model],
    key: Callable[[Model], Key],
    stem: Callable[[Model], str],
    what: str,
) -> dict[Key, Model]:
    """Every `*.yaml` in `directory` as `model`, by `key`; DocumentError listing every problem of
    every file at once: each file's own, a file not named `<stem>.yaml`, a key defined twice."""
    found: dict[Key, Model] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            document = load_model(path, model)
        except DocumentError as exc:
            problems.extend(f"{path}: {p}" for p in exc.problems)
            continue
        if path.stem != stem(document):
            problems.append(f"{path}: file name must be {stem(document)}.yaml")
        if key(document) in found:
            problems.append(f"{path}: {what} {key(document)!r} is defined twice")
        found[key(document)] = document
    if problems:
        raise DocumentError(directory, problems)
    return found
