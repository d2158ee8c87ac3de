"""The scenario library: every file validates and every control is shown held and violated."""

from __future__ import annotations

from pathlib import Path

import pytest

from labcore.config import REPO_ROOT
from simulator.scenarios import CONTROLS, Scenario, Verdict, load_library, validate
from simulator.scenarios.loader import SCENARIO_DIR

LIBRARY = REPO_ROOT / SCENARIO_DIR


@pytest.fixture(scope="module")
def library() -> dict[str, Scenario]:
    return load_library()


@pytest.mark.parametrize("path", sorted(LIBRARY.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_file_validates(path: Path) -> None:
    assert [str(p) for p in validate(path)] == []


def test_the_library_holds_the_required_scenarios(library: dict[str, Scenario]) -> None:
    required = {
        "scheduling-assistant", "intake-assistant", "population-analytics",
        "broad-clinical-assistant", "long-token-assistant", "offline-assistant",
        "wildcard-scheduler", "triage-chatbot-public", "cross-patient-browser",
        "unrevoked-session", "shared-vendor", "overbroad-request", "export-by-ai",
        "paging-walk", "off-hours-burst",
    }  # fmt: skip
    assert required <= set(library)


@pytest.mark.parametrize("control", CONTROLS)
def test_every_control_is_shown_held_and_violated(
    library: dict[str, Scenario], control: str
) -> None:
    verdicts = {s.verdict(control) for s in library.values()}
    assert Verdict.HELD in verdicts, f"no scenario expects {control} held"
    assert Verdict.VIOLATED in verdicts, f"no scenario expects {control} violated"


def test_good_scenarios_violate_nothing(library: dict[str, Scenario]) -> None:
    for scenario in library.values():
        if scenario.kind == "good":
            assert Verdict.VIOLATED not in scenario.expect.values(), scenario.name


def test_probed_controls_have_an_expectation(library: dict[str, Scenario]) -> None:
    for scenario in library.values():
        for step in scenario.steps:
            for control in step.probes:
                assert scenario.verdict(control) is not Verdict.NA, (scenario.name, step.name)


def test_scenario_exposes_weights_and_steps_by_name(library: dict[str, Scenario]) -> None:
    scheduling = library["scheduling-assistant"]
    assert scheduling.weights()["list my appointments"] == 5
    assert scheduling.steps_by_name["bulk export of the tenant"].type_name == "export"
    assert scheduling.tenant == "tenant-a"  # the profile's first tenant
    with pytest.raises(ValueError):
        scheduling.name = "other"  # type: ignore[misc]
