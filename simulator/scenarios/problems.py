"""Problems found in a scenario file: file, line, field and a message naming what is allowed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from labcore.yamlfile import Path_
from simulator.scenarios.steps import STEP_TYPES

Lines = dict[Path_, int]


@dataclass(frozen=True, slots=True)
class Problem:
    file: Path
    line: int | None
    field: str  # dotted: steps.2.weight; "(document)" for the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.field}: {self.message}"


def line_of(loc: Path_, lines: Lines) -> int | None:
    """The line of `loc`, or of its nearest enclosing key or item."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def problem(file: Path, loc: Path_, message: str, lines: Lines) -> Problem:
    field = ".".join(str(p) for p in loc) or "(document)"
    return Problem(file, line_of(loc, lines), field, message)


def from_validation(file: Path, error: ValidationError, lines: Lines) -> list[Problem]:
    """One Problem per pydantic error, with step-type tags taken out of the location."""
    out = []
    for err in error.errors(include_url=False):
        loc = tuple(
            p
            for p in err["loc"]
            if not (isinstance(p, str) and (p.startswith("function-") or p == "[key]"))
        )
        message = err["msg"].removeprefix("Value error, ")
        kind = err["type"]
        if loc[:1] == ("steps",) and len(loc) > 2 and loc[2] in STEP_TYPES:
            loc = loc[:2] + loc[3:]
        if kind == "extra_forbidden":
            message = "unknown field (check its spelling)"
        elif kind == "union_tag_invalid":
            loc = (*loc, "type")
            tag = err.get("ctx", {}).get("tag", "?")
            message = f"unknown step type {tag!r}; allowed: {', '.join(STEP_TYPES)}"
        elif kind == "union_tag_not_found":
            message = "a step is a mapping with name, type (default request) and its fields"
        out.append(problem(file, loc, message, lines))
    return out
