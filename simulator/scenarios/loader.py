"""Load and validate scenario files: every problem at once, each with file, line and field."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from labcore.config import REPO_ROOT, LabConfig
from labcore.profiles import PROFILE_DIR, ClientProfile, lab_profiles, load_profiles
from labcore.yamlfile import DocumentError, load_yaml
from simulator.scenarios.checks import check_scenario
from simulator.scenarios.model import Scenario
from simulator.scenarios.problems import Lines, Problem, from_validation, problem

SCENARIO_DIR = Path("scenarios")
Profiles = Mapping[str, ClientProfile]


def default_profiles() -> dict[str, ClientProfile]:
    return load_profiles(REPO_ROOT / PROFILE_DIR)


def _parse(path: Path, profiles: Profiles) -> tuple[Scenario | None, list[Problem]]:
    try:
        data, lines = load_yaml(path)
    except DocumentError as exc:
        return None, [Problem(path, None, "(document)", p) for p in exc.problems]
    if not isinstance(data, dict):
        return None, [Problem(path, 1, "(document)", "a scenario is a mapping of fields")]
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        found = from_validation(path, exc, lines)
        name = data.get("name")
        if isinstance(name, str) and name != path.stem:
            found.append(_stem_problem(path, name, lines))
        return None, found
    found = check_scenario(path, scenario, lines, profiles)
    if scenario.name != path.stem:
        found.append(_stem_problem(path, scenario.name, lines))
    if found:
        return None, found
    profile = profiles[scenario.client]
    if scenario.tenant is None:
        scenario = scenario.model_copy(update={"tenant": profile.tenants[0]})
    return scenario, []


def _stem_problem(path: Path, name: str, lines: Lines) -> Problem:
    return problem(
        path,
        ("name",),
        f"name {name!r} must equal the file name ({path.stem!r}); rename one of them",
        lines,
    )


def validate(path: Path, profiles: Profiles | None = None) -> list[Problem]:
    """Every problem in one scenario file (empty: it is valid)."""
    return _parse(path, default_profiles() if profiles is None else profiles)[1]


def load_scenario(path: Path, profiles: Profiles | None = None) -> Scenario:
    """The scenario in `path` (tenant filled in), or DocumentError listing every problem."""
    scenario, found = _parse(path, default_profiles() if profiles is None else profiles)
    if scenario is None:
        raise DocumentError(path, [_short(p) for p in found])
    return scenario


def load_library(
    directory: Path | None = None, profiles: Profiles | None = None
) -> dict[str, Scenario]:
    """Every `*.yaml` in `directory` (default: the repository's scenarios/), by name."""
    directory = REPO_ROOT / SCENARIO_DIR if directory is None else directory
    profiles = default_profiles() if profiles is None else profiles
    library: dict[str, Scenario] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        scenario, found = _parse(path, profiles)
        problems.extend(str(p) for p in found)
        if scenario is not None:
            library[scenario.name] = scenario
    if problems:
        raise DocumentError(directory, problems)
    return library


def lab_library(cfg: LabConfig, directory: Path | None = None) -> dict[str, Scenario]:
    """The scenarios a lab command replays: `directory`, else your own library
    (`--scenarios`, FHIRLAB_SCENARIOS), else the repository's; checked against the lab's client
    profiles with your own (`--clients`) over them."""
    return load_library(directory or cfg.scenarios_dir, lab_profiles(cfg.repo, cfg.clients_dir))


def _short(p: Problem) -> str:
    return f"line {p.line}: {p.field}: {p.message}" if p.line else f"{p.field}: {p.message}"
