"""The trainee's workspace: a copy of the files an exercise lets them change, started from the
exercise's misconfiguration, under the lab directory (`<lab>/exercises/<nn>-<slug>/`)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from labcore.config import LabConfig
from labcore.errors import LabError
from labcore.profiles import PROFILE_DIR
from labcore.yamlfile import load_yaml
from simulator.exercises.model import Exercise
from simulator.scenarios.loader import SCENARIO_DIR

CLIENTS, POLICY, SCENARIOS = "clients", "policy.yaml", "scenarios"
# what a profile must keep: another client, or another class, is another exercise
FIXED_PROFILE_FIELDS = ("client_id", "class")


def workspace(cfg: LabConfig, ex: Exercise) -> Path:
    return cfg.home / "exercises" / ex.name


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _write_yaml(path: Path, header: str, data: Mapping[str, Any]) -> None:
    lines = "".join(f"# {line}\n" for line in header.splitlines())
    path.write_text(lines + yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")


def _policy_file(cfg: LabConfig) -> Path:
    return cfg.gateway_policy or cfg.repo / "gateway" / "policy.yaml"


def start(cfg: LabConfig, ex: Exercise, *, reset: bool = False) -> tuple[Path, bool]:
    """Create the workspace (or, with `reset`, put its files back as the exercise starts; the
    results of earlier checks stay). Returns the path and whether files were written."""
    ws = workspace(cfg, ex)
    if ws.exists() and not reset:
        return ws, False
    for managed in (CLIENTS, SCENARIOS):
        shutil.rmtree(ws / managed, ignore_errors=True)
    (ws / POLICY).unlink(missing_ok=True)
    ws.mkdir(parents=True, exist_ok=True)
    if ex.may_change.clients:
        (ws / CLIENTS).mkdir()
    for client_id in ex.may_change.clients:
        shipped = cfg.repo / PROFILE_DIR / f"{client_id}.yaml"
        target = ws / CLIENTS / shipped.name
        changes = ex.start.clients.get(client_id)
        if not changes:
            shutil.copyfile(shipped, target)
            continue
        data, _ = load_yaml(shipped)
        header = f"exercise {ex.number}: {PROFILE_DIR / shipped.name} as the vendor registered it"
        _write_yaml(target, header, _merged(data, changes))
    if ex.may_change.policy:
        data, _ = load_yaml(_policy_file(cfg))
        header = (
            f"exercise {ex.number}: the gateway policy as this lab runs it\n"
            "every key: docs/reference/policy.md"
        )
        _write_yaml(ws / POLICY, header, _merged(data, ex.start.policy))
    if ex.may_change.scenario_fields:
        (ws / SCENARIOS).mkdir()
    for name in ex.may_change.scenario_fields:
        shutil.copyfile(cfg.repo / SCENARIO_DIR / f"{name}.yaml", ws / SCENARIOS / f"{name}.yaml")
    return ws, True


def _read(path: Path) -> dict[str, Any]:
    data, _ = load_yaml(path)
    if not isinstance(data, dict):
        raise LabError(f"{path}: not a mapping of fields")
    return data


def changes_outside(cfg: LabConfig, ex: Exercise, ws: Path) -> list[str]:
    """Each change the exercise does not allow (empty: the workspace plays by its rules)."""
    problems: list[str] = []
    if ex.may_change.clients:
        have = {p.stem for p in (ws / CLIENTS).glob("*.yaml")}
        for missing in sorted(set(ex.may_change.clients) - have):
            problems.append(f"{CLIENTS}/{missing}.yaml is missing")
        for extra in sorted(have - set(ex.may_change.clients)):
            problems.append(f"{CLIENTS}/{extra}.yaml is not part of this exercise")
        for client_id in sorted(set(ex.may_change.clients) & have):
            mine = _read(ws / CLIENTS / f"{client_id}.yaml")
            shipped = _read(cfg.repo / PROFILE_DIR / f"{client_id}.yaml")
            for key in FIXED_PROFILE_FIELDS:
                if mine.get(key) != shipped.get(key):
                    problems.append(f"{CLIENTS}/{client_id}.yaml: {key} must stay {shipped[key]}")
    if ex.may_change.policy and not (ws / POLICY).is_file():
        problems.append(f"{POLICY} is missing")
    for name, allowed in ex.may_change.scenario_fields.items():
        path = ws / SCENARIOS / f"{name}.yaml"
        if not path.is_file():
            problems.append(f"{SCENARIOS}/{name}.yaml is missing")
            continue
        mine, shipped = _read(path), _read(cfg.repo / SCENARIO_DIR / f"{name}.yaml")
        changed = sorted(
            k
            for k in set(mine) | set(shipped)
            if k not in allowed and mine.get(k) != shipped.get(k)
        )
        if changed:
            problems.append(
                f"{SCENARIOS}/{name}.yaml: {', '.join(changed)} changed; this exercise lets you "
                f"change only {', '.join(allowed)}"
            )
    return problems


def check_library(cfg: LabConfig, ex: Exercise, ws: Path, into: Path) -> Path:
    """The scenarios the check replays: the trainee's where the exercise lets them change one,
    the lab's otherwise; written to `into`."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    for name in ex.replay:
        mine = ws / SCENARIOS / f"{name}.yaml"
        source = mine if name in ex.may_change.scenario_fields else cfg.repo / SCENARIO_DIR
        shutil.copyfile(
            source if source == mine else source / f"{name}.yaml", into / f"{name}.yaml"
        )
    return into
