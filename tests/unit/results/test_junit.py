"""`--junit FILE`: a test case per scenario × expected control, read back by a JUnit parser as a
CI system would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from junitparser import Failure, JUnitXml

from labcore.errors import LabError
from simulator.results.junit import write_junit


def _run(scenario: str, *expectations: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "seconds": 2.0,
        "expectations": [
            {
                "control": c,
                "expected": exp,
                "actual": act,
                "ok": exp == act,
                "evidence": f"{c} evidence <&>",
            }
            for c, exp, act in expectations
        ],
    }


DOCUMENT: dict[str, Any] = {
    "command": "lab",
    "finished_at": "2026-12-04T03:00:00Z",
    "duration_s": 12.5,
    "checks": [
        {"id": "stack.fhir-through-gateway", "status": "pass", "evidence": "200"},
        {"id": "smart.backend-services", "status": "fail", "evidence": "no token"},
    ],
    "replay": {
        "runs": [
            _run("cross-patient-browser", ("C08", "held", "held"), ("C06", "held", "held")),
            _run("wildcard-scheduler", ("C05", "held", "violated")),
        ]
    },
}


def test_one_case_per_expectation_and_check(tmp_path: Path) -> None:
    path = write_junit(tmp_path / "out" / "junit.xml", DOCUMENT)
    xml = JUnitXml.fromfile(str(path))
    (suite,) = list(xml)
    cases = {(c.classname, c.name): c for c in suite}
    assert set(cases) == {
        ("fhirlab.checks", "stack.fhir-through-gateway"),
        ("fhirlab.checks", "smart.backend-services"),
        ("fhirlab.cross-patient-browser", "C08 held"),
        ("fhirlab.cross-patient-browser", "C06 held"),
        ("fhirlab.wildcard-scheduler", "C05 held"),
    }
    assert (suite.tests, suite.failures, suite.errors) == (5, 2, 0)
    failed = cases[("fhirlab.wildcard-scheduler", "C05 held")]
    (failure,) = failed.result
    assert isinstance(failure, Failure)
    assert failure.message == "wildcard-scheduler: C05 expected held, was violated"
    assert failure.text == "C05 evidence <&>"
    assert cases[("fhirlab.cross-patient-browser", "C08 held")].is_passed
    assert cases[("fhirlab.cross-patient-browser", "C08 held")].time == pytest.approx(1.0)


def test_a_run_without_expectations_gives_an_empty_suite(tmp_path: Path) -> None:
    path = write_junit(tmp_path / "junit.xml", {"command": "run", "replay": None})
    (suite,) = list(JUnitXml.fromfile(str(path)))
    assert (suite.tests, suite.failures) == (0, 0)


def test_an_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(LabError, match="cannot write"):
        write_junit(tmp_path / "file" / "junit.xml", DOCUMENT)
