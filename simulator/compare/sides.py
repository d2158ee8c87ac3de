"""What each side of `fhirlab compare A B` is: a results directory to read, or a configuration
to replay (a gateway policy file, or a directory of client profiles)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labcore.errors import LabError

RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class ResultsSide:
    """A finished run: its results.json is compared as it is."""

    label: str
    path: Path
    document: dict[str, Any]

    @property
    def what(self) -> str:
        return f"results of `fhirlab {self.document.get('command', 'run')}` in {self.path}"


@dataclass(frozen=True)
class ConfigSide:
    """A configuration, replayed by the comparison: your policy or your client profiles."""

    label: str
    policy: Path | None = None
    clients: Path | None = None

    @property
    def what(self) -> str:
        return f"policy {self.policy}" if self.policy else f"client profiles in {self.clients}"


Side = ResultsSide | ConfigSide


def _read(label: str, folder: Path) -> ResultsSide:
    try:
        document = json.loads((folder / RESULTS_FILE).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise LabError(f"{label}: cannot read {folder / RESULTS_FILE} ({exc})") from exc
    if not isinstance(document, dict) or "replay" not in document:
        raise LabError(
            f"{label}: {folder / RESULTS_FILE} is not a results document",
            "give a directory written by `fhirlab run` or `fhirlab lab`",
        )
    return ResultsSide(label, folder, document)


def resolve(label: str, text: str) -> Side:
    """The side named by `text`: a results directory (or its results.json, or a folder of runs:
    the newest), a policy file (*.yaml), or a directory of client profiles (*.yaml)."""
    path = Path(text).expanduser().resolve()
    if path.is_file():
        if path.name == RESULTS_FILE:
            return _read(label, path.parent)
        if path.suffix in (".yaml", ".yml"):
            return ConfigSide(label, policy=path)
        raise LabError(
            f"{label}: {path} is neither a results.json nor a policy file (*.yaml)",
            "give a results directory, a gateway policy file or a directory of client profiles",
        )
    if path.is_dir():
        if (path / RESULTS_FILE).is_file():
            return _read(label, path)
        runs = sorted(p for p in path.iterdir() if (p / RESULTS_FILE).is_file())
        if runs:
            return _read(label, runs[-1])  # timestamped names: the newest last
        if any(path.glob("*.yaml")):
            return ConfigSide(label, clients=path)
        raise LabError(
            f"{label}: {path} holds no results.json and no client profiles (*.yaml)",
            "give a results directory, a gateway policy file or a directory of client profiles",
        )
    raise LabError(f"{label}: {path}: no such file or directory")
