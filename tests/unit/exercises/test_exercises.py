"""The exercise catalogue, its workspaces and its goals, without a server."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from labcore.config import REPO_ROOT, load_config
from labcore.errors import LabError
from labcore.yamlfile import DocumentError
from simulator.exercises.goals import judge_goal
from simulator.exercises.model import FAMILIES, Goal, exercise, load_catalogue
from simulator.exercises.workspace import changes_outside, check_library, start
from simulator.scenarios import load_library

DOCS = REPO_ROOT / "docs" / "exercises"


def _cfg(tmp_path: Path):  # type: ignore[no-untyped-def]
    return replace(load_config({}), home=tmp_path)


def test_the_catalogue_has_one_exercise_per_family_on_the_labs_scenarios() -> None:
    catalogue = load_catalogue()
    assert len(catalogue) >= 8
    assert {ex.family for ex in catalogue.values()} == set(FAMILIES)
    library = load_library()
    for ex in catalogue.values():
        assert set(ex.replay) <= set(library), ex.name
        assert ex.may_change.clients or ex.may_change.policy, ex.name


def test_docs_list_every_exercise_with_its_time() -> None:
    readme = (DOCS / "README.md").read_text()
    for ex in load_catalogue().values():
        page = DOCS / f"{ex.name}.md"
        assert page.is_file(), page
        row = re.search(
            rf"^\| {ex.number} \| \[([^]]+)\]\({ex.name}\.md\) \| (.+?) \| (\d+) \|", readme, re.M
        )
        assert row is not None, f"docs/exercises/README.md lists no row for {ex.name}"
        assert int(row.group(3)) == ex.minutes, ex.name
        assert f"fhirlab exercise check {ex.number}" in page.read_text()


def test_a_broken_exercise_file_names_file_line_and_field(tmp_path: Path) -> None:
    text = (REPO_ROOT / "simulator/exercises/catalogue/02-lifetime.yaml").read_text()
    (tmp_path / "02-lifetime.yaml").write_text(text.replace("minutes: 10", "minutes: 0"))
    with pytest.raises(DocumentError) as caught:
        load_catalogue(tmp_path)
    assert "02-lifetime.yaml: line 6: minutes" in str(caught.value)


def test_an_unknown_exercise_is_a_clear_error() -> None:
    with pytest.raises(LabError, match="no exercise 99"):
        exercise(99)


def test_a_goal_has_exactly_one_requirement() -> None:
    with pytest.raises(ValueError):
        Goal(scenario="s", works=True, max_exposure_s=10)
    with pytest.raises(ValueError):
        Goal(scenario="s", control="C05")


def test_start_writes_the_misconfiguration_and_reset_puts_it_back(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    ex = exercise(7)  # a client profile and the policy, C10 off
    ws, written = start(cfg, ex)
    assert written and ws == tmp_path / "exercises" / "07-tenancy"
    policy = yaml.safe_load((ws / "policy.yaml").read_text())
    assert policy["controls"]["C10"] == "off" and policy["controls"]["C08"] == "enforce"
    profile = ws / "clients" / "shared-vendor.yaml"
    assert profile.read_text() == (REPO_ROOT / "keycloak/clients/shared-vendor.yaml").read_text()
    profile.write_text(profile.read_text().replace("tenant-b", "tenant-a"))
    assert start(cfg, ex) == (ws, False)  # a second start keeps the trainee's work
    assert "tenant-b" not in profile.read_text()
    start(cfg, ex, reset=True)
    assert "tenant-b" in profile.read_text()
    assert changes_outside(cfg, ex, ws) == []


def test_changes_outside_the_exercise_are_named(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    ex = exercise(1)
    ws, _ = start(cfg, ex)
    scenario = ws / "scenarios" / "wildcard-scheduler.yaml"
    data: dict[str, Any] = yaml.safe_load(scenario.read_text())
    data["scope"] = "openid launch/patient patient/Appointment.rs"  # allowed
    data["steps"] = data["steps"][:1]  # not allowed: the probing steps go
    scenario.write_text(yaml.safe_dump(data))
    profile = ws / "clients" / "wildcard-scheduler.yaml"
    profile.write_text(profile.read_text().replace("class: operational-ai", "class: clinical-app"))
    (ws / "clients" / "extra.yaml").write_text("x: 1\n")
    assert changes_outside(cfg, ex, ws) == [
        "clients/extra.yaml is not part of this exercise",
        "clients/wildcard-scheduler.yaml: class must stay operational-ai",
        "scenarios/wildcard-scheduler.yaml: steps changed; "
        "this exercise lets you change only scope",
    ]


def test_the_check_replays_the_trainees_scenario_where_allowed(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    ex = exercise(1)
    ws, _ = start(cfg, ex)
    mine = ws / "scenarios" / "wildcard-scheduler.yaml"
    mine.write_text(mine.read_text().replace("patient/*.read", "patient/Appointment.rs"))
    library = check_library(cfg, ex, ws, tmp_path / "lib")
    assert "patient/Appointment.rs" in (library / "wildcard-scheduler.yaml").read_text()
    assert sorted(p.name for p in library.iterdir()) == ["wildcard-scheduler.yaml"]


def _run(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "scenario": "s",
        "verdicts": {"C05": "held"},
        "evidence": {"C05": "refused: x"},
        "auth_error": None,
        "steps": [
            {"step": "mine", "status": 200, "probes": [], "control": None},
            {"step": "probe", "status": 403, "probes": ["C05"], "control": "C05"},
        ],
        "exposure_window": {"seconds": 11.0, "note": ""},
        "alerts": {"checked": True, "raised": ["volume"]},
    }
    return {**base, **fields}


def test_goals_are_judged_on_the_run() -> None:
    assert judge_goal(Goal(scenario="s", control="C05", verdict="held"), _run()).ok
    assert not judge_goal(Goal(scenario="s", control="C08", verdict="held"), _run()).ok
    assert judge_goal(Goal(scenario="s", works=True), _run()).ok
    refused = _run(steps=[{"step": "mine", "status": 401, "probes": [], "control": "C02"}])
    result = judge_goal(Goal(scenario="s", works=True), refused)
    assert not result.ok and result.evidence == "refused or failed: mine → 401 [C02]"
    assert not judge_goal(Goal(scenario="s", works=True), _run(auth_error="invalid_scope")).ok
    assert judge_goal(Goal(scenario="s", max_exposure_s=900), _run()).ok
    unbounded = _run(exposure_window={"seconds": None, "note": "offline"})
    assert not judge_goal(Goal(scenario="s", max_exposure_s=900), unbounded).ok
    assert judge_goal(Goal(scenario="s", alerts=("volume",)), _run()).ok
    assert not judge_goal(Goal(scenario="s", alerts=()), _run()).ok
    unread = _run(alerts={"checked": False, "raised": []})
    assert not judge_goal(Goal(scenario="s", alerts=()), unread).ok
    assert not judge_goal(Goal(scenario="s", works=True), None).ok
