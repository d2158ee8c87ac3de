"""The load plan: which scenarios and steps run under load, with which weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from labcore.errors import LabError
from simulator.load.plan import TaskKind, build_plan, scenario_load
from simulator.scenarios import Scenario, load_library, load_scenario, validate

MIXED = """\
schema_version: 1
name: {name}
title: Every step type
kind: good
remarks: one step of each type, for the load plan
client: scheduling-assistant
launch: standalone
user: my-patient
scope: openid launch/patient patient/Patient.rs patient/Appointment.*
steps:
  - name: read
    weight: 3
    request: GET Patient/{{my_patient}}
  - name: book
    request: POST Appointment
    body: {{resourceType: Appointment, status: proposed}}
  - name: search by post
    request: POST Appointment/_search
    form: {{patient: "{{my_patient}}"}}
  - name: walk
    type: page_walk
    weight: 2
    request: GET Appointment?patient={{my_patient}}
    count: 10
    max_pages: 3
  - name: burst
    type: burst
    weight: 4
    request: GET Appointment?patient={{my_patient}}
    times: 50
  - name: refresh
    type: refresh
  - name: export
    type: export
{load}"""


def scenario(tmp_path: Path, name: str = "mixed", load: str = "") -> Scenario:
    path = tmp_path / f"{name}.yaml"
    path.write_text(MIXED.format(name=name, load=load))
    return load_scenario(path)


@pytest.fixture(scope="module")
def library() -> dict[str, Scenario]:
    return load_library()


def test_steps_become_tasks_with_their_weights(tmp_path: Path) -> None:
    load = scenario_load(scenario(tmp_path))
    tasks = {t.step: t for t in load.tasks}
    assert list(tasks) == ["read", "book", "search by post", "walk", "burst"]
    assert tasks["read"].weight == 3 and tasks["read"].kind is TaskKind.REQUEST
    assert tasks["read"].name == "mixed: read"
    assert tasks["walk"].kind is TaskKind.PAGE_WALK
    assert (tasks["walk"].count, tasks["walk"].max_pages) == (10, 3)
    assert tasks["walk"].next_page_name == "mixed: walk (next pages)"
    assert (tasks["burst"].method, tasks["burst"].weight) == ("GET", 4)
    assert tasks["book"].body == {"resourceType": "Appointment", "status": "proposed"}
    assert dict(load.left_out).keys() == {"refresh", "export"}


def test_read_only_leaves_out_writes_but_not_post_searches(tmp_path: Path) -> None:
    load = scenario_load(scenario(tmp_path), read_only=True)
    assert [t.step for t in load.tasks] == ["read", "search by post", "walk", "burst"]
    assert "write" in dict(load.left_out)["book"]


def test_the_scenario_weight_comes_from_its_load_block(tmp_path: Path) -> None:
    weighted = scenario(tmp_path, "heavy", "load: {weight: 5}\n")
    plain = scenario(tmp_path, "plain")
    plan = build_plan({"heavy": weighted, "plain": plain})
    assert [(s.name, s.weight) for s in plan.scenarios] == [("heavy", 5), ("plain", 1)]
    assert plan.total_weight == 6
    assert plan.to_list()[0]["tasks"][0] == "heavy: read"


def test_disabled_scenarios_are_left_out_unless_named(tmp_path: Path) -> None:
    off = scenario(tmp_path, "quiet", "load: {enabled: false}\n")
    on = scenario(tmp_path, "busy")
    library = {"quiet": off, "busy": on}
    plan = build_plan(library)
    assert plan.names == ["busy"]
    assert plan.left_out == (("quiet", "load: enabled: false"),)
    assert build_plan(library, ["quiet"]).names == ["quiet"]


def test_the_library_plan_runs_the_scenarios_that_have_load_tasks(
    library: dict[str, Scenario],
) -> None:
    plan = build_plan(library)
    assert "scheduling-assistant" in plan.names
    assert "overbroad-request" not in plan.names  # its token is refused by design
    walk = next(s for s in plan.scenarios if s.name == "paging-walk")
    assert [t.kind for t in walk.tasks] == [TaskKind.PAGE_WALK]
    analytics = next(s for s in plan.scenarios if s.name == "population-analytics")
    assert "export the tenant" in dict(analytics.left_out)
    for load in plan.scenarios:
        assert load.tasks, load.name


def test_unknown_scenarios_are_named_with_the_library(library: dict[str, Scenario]) -> None:
    with pytest.raises(LabError) as caught:
        build_plan(library, ["scheduling-assistant", "nope"])
    assert "nope" in caught.value.message
    assert "scheduling-assistant" in (caught.value.hint or "")


def test_a_plan_with_nothing_to_run_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "export-only.yaml"
    head, _, _ = MIXED.format(name="export-only", load="").partition("steps:\n")
    path.write_text(head + "steps:\n  - name: export\n    type: export\n")
    only_export = load_scenario(path)
    with pytest.raises(LabError) as caught:
        build_plan({"export-only": only_export})
    assert "no step runs under load" in caught.value.message


def test_the_load_block_is_validated_with_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MIXED.format(name="bad", load="load: {weight: 0, teleport: 1}\n"))
    found = {p.field: p for p in validate(path)}
    assert set(found) == {"load.weight", "load.teleport"}
    last = len(path.read_text().splitlines())
    assert found["load.weight"].line == found["load.teleport"].line == last
