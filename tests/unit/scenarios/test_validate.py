"""Broken scenario files: each problem names file, line and field, and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from labcore.profiles import ClientProfile
from labcore.yamlfile import DocumentError
from simulator.scenarios import Problem, load_library, load_scenario, validate
from simulator.scenarios.loader import default_profiles

GOOD = """\
schema_version: 1
name: demo
title: Demo
kind: good
remarks: a small valid scenario
client: scheduling-assistant
launch: standalone
user: my-patient
scope: openid launch/patient patient/Patient.rs
steps:
  - name: read my record
    weight: 2
    request: GET Patient/{my_patient}
  - name: another patient
    request: GET Patient/{other_patient}
    probes: [C08]
expect:
  C08: held
"""


@pytest.fixture(scope="module")
def profiles() -> dict[str, ClientProfile]:
    return default_profiles()


def write(tmp_path: Path, text: str, name: str = "demo") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, profiles: dict[str, ClientProfile]) -> list[Problem]:
    return validate(write(tmp_path, text), profiles)


def only(found: list[Problem]) -> Problem:
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def test_the_good_file_is_valid(tmp_path: Path, profiles: dict[str, ClientProfile]) -> None:
    scenario = load_scenario(write(tmp_path, GOOD), profiles)
    assert scenario.weights() == {"read my record": 2, "another patient": 1}
    assert scenario.tenant == "tenant-a"


BROKEN = [
    # (what, replace old, with new, field, line, words in the message)
    ("unknown field", "kind: good\n", "kind: good\ncolour: blue\n", "colour", 5, "unknown field"),
    ("bad weight", "weight: 2", "weight: 0", "steps.0.weight", 12, "greater than 0"),
    ("unknown parameter", "{other_patient}", "{their_patient}", "steps.1.request", 15,
     "{my_patient}"),
    ("unknown client", "client: scheduling-assistant", "client: nobody", "client", 6,
     "scheduling-assistant"),
    ("tenant not in profile", "launch: standalone", "tenant: tenant-b\nlaunch: standalone",
     "tenant", 7, "allowed: tenant-a"),
    ("scope not registered", "patient/Patient.rs\n", "patient/Patient.rs patient/Condition.rs\n",
     "scope", 9, "scope_probe"),
    ("not a SMART scope", "patient/Patient.rs\n", "patient/patient.read\n", "scope", 9,
     "not a SMART scope"),
    ("wrong expectation", "C08: held", "C08: passed", "expect.C08", 18, "'held'"),
    ("wrong control id", "C08: held", "C08: held\n  C13: held", "expect.C13", 19, "'C12'"),
    ("duplicate step names", "name: another patient", "name: read my record", "steps.1.name", 14,
     "used twice"),
    ("name is not the file stem", "name: demo", "name: other", "name", 2, "file name"),
    ("unknown step type", "  - name: another patient\n", "  - name: another patient\n    type: "
     "teleport\n", "steps.1.type", 15, "allowed: request, export, page_walk, refresh, burst"),
    ("bad method", "GET Patient/{my_patient}", "FETCH Patient/{my_patient}", "steps.0.request", 13,
     "allowed: GET, POST, PUT, DELETE"),
    ("probe without expectation", "probes: [C08]", "probes: [C05]", "steps.1.probes", 16,
     "expect C05"),
    ("bad kind", "kind: good", "kind: fine", "kind", 4, "'misconfigured'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "field", "line", "words"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_a_broken_file_names_line_and_field(
    tmp_path: Path,
    profiles: dict[str, ClientProfile],
    old: str,
    new: str,
    field: str,
    line: int,
    words: str,
) -> None:
    assert old in GOOD
    problem = only(problems(tmp_path, GOOD.replace(old, new, 1), profiles))
    assert (problem.field, problem.line) == (field, line), str(problem)
    assert words in problem.message
    assert str(problem).startswith(f"{tmp_path / 'demo.yaml'}:{line}: {field}: ")


def test_every_problem_is_reported_at_once(
    tmp_path: Path, profiles: dict[str, ClientProfile]
) -> None:
    text = GOOD.replace("weight: 2", "weight: -1").replace("kind: good", "kind: fine")
    assert {p.field for p in problems(tmp_path, text, profiles)} == {"kind", "steps.0.weight"}
    text = GOOD.replace("launch: standalone", "tenant: tenant-b\nlaunch: backend")
    assert {p.field for p in problems(tmp_path, text, profiles)} == {"tenant", "launch", "user"}


def test_backend_launch_needs_client_credentials(
    tmp_path: Path, profiles: dict[str, ClientProfile]
) -> None:
    text = GOOD.replace("launch: standalone\nuser: my-patient\n", "launch: backend\n")
    problem = only(problems(tmp_path, text, profiles))
    assert (problem.field, problem.line) == ("launch", 7)
    assert "client_credentials" in problem.message


def test_scope_probe_allows_over_broad_scopes_and_needs_c11(
    tmp_path: Path, profiles: dict[str, ClientProfile]
) -> None:
    text = GOOD.replace(
        "patient/Patient.rs\n", "patient/Patient.rs system/*.read\nscope_probe: true\n"
    )
    assert [p.field for p in problems(tmp_path, text, profiles)] == ["scope_probe"]
    assert problems(tmp_path, text + "  C11: held\n", profiles) == []
    registered_only = GOOD.replace("user: my-patient\n", "user: my-patient\nscope_probe: true\n")
    found = problems(tmp_path, registered_only + "  C11: held\n", profiles)
    assert "nothing to probe" in only(found).message


def test_request_bodies_fit_their_method(
    tmp_path: Path, profiles: dict[str, ClientProfile]
) -> None:
    text = GOOD.replace("GET Patient/{my_patient}", "POST Patient")
    problem = only(problems(tmp_path, text, profiles))
    assert (problem.field, problem.line) == ("steps.0", 11)
    assert "POST needs a body" in problem.message


def test_refresh_step_needs_a_refresh_token(
    tmp_path: Path, profiles: dict[str, ClientProfile]
) -> None:
    text = (
        GOOD.replace("client: scheduling-assistant", "client: intake-assistant")
        .replace("launch: standalone\nuser: my-patient", "launch: ehr\nuser: practitioner")
        .replace("launch/patient", "launch")
        .replace("steps:\n", "steps:\n  - name: refresh\n    type: refresh\n")
    )
    problem = only(problems(tmp_path, text, profiles))
    assert (problem.field, problem.line) == ("steps.0.type", 12)
    assert "no refresh token" in problem.message


def test_backend_launch_has_no_user(tmp_path: Path, profiles: dict[str, ClientProfile]) -> None:
    text = (
        GOOD.replace("client: scheduling-assistant", "client: broad-clinical-assistant")
        .replace("launch: standalone", "launch: backend")
        .replace("openid launch/patient patient/Patient.rs", "system/*.read")
    )
    problem = only(problems(tmp_path, text, profiles))
    assert (problem.field, problem.line) == ("user", 8)
    assert "remove user" in problem.message


def test_unreadable_yaml_is_one_problem(tmp_path: Path) -> None:
    found = validate(write(tmp_path, "name: [unclosed\n"), {})
    assert "not valid YAML" in only(found).message


def test_loaders_raise_with_every_problem(
    tmp_path: Path, profiles: dict[str, ClientProfile]
) -> None:
    write(tmp_path, GOOD)
    write(tmp_path, GOOD.replace("weight: 2", "weight: 0"), name="other")
    with pytest.raises(DocumentError) as caught:
        load_library(tmp_path, profiles)
    assert len(caught.value.problems) == 2  # weight and name != stem, both in other.yaml
    assert all("other.yaml" in p for p in caught.value.problems)
    with pytest.raises(DocumentError, match=r"line 12: steps\.0\.weight"):
        load_scenario(tmp_path / "other.yaml", profiles)
