"""`fhirlab audit` against the real stack: the lab's gateway passes the items a patient token
lets it check; HAPI FHIR with nothing in front fails them, with the evidence that says why."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from labcore.config import LabConfig
from simulator.load.saturation import patient_token
from tests.integration.conftest import lab_env

pytestmark = pytest.mark.integration

EXIT_ITEM_FAILED = 4


def fhirlab_audit(lab: LabConfig, tmp: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "audit", *args,
         "--json", str(tmp / "audit.json"), "--junit", str(tmp / "audit.xml"),
         "--markdown", str(tmp / "audit.md")],
        env=lab_env(lab), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.returncode, json.loads((tmp / "audit.json").read_text()), done.stdout


def _status(report: dict[str, Any]) -> dict[str, str]:
    return {item["control"]: item["status"] for item in report["items"]}


def test_the_lab_gateway_passes_with_a_patient_token(seeded: LabConfig, tmp_path: Path) -> None:
    token, _ = patient_token(seeded)
    code, report, _ = fhirlab_audit(seeded, tmp_path, seeded.gateway_base_url, "--token", token)
    status = _status(report)
    assert code == 0, report
    for control in ("C01", "C02", "C03", "C05", "C07", "C08"):
        assert status[control] == "pass", (control, report)
    assert "fail" not in status.values()
    c08 = next(i for i in report["items"] if i["control"] == "C08")
    assert any("only its own patient" in e["observed"] for e in c08["evidence"])
    suite = ET.parse(tmp_path / "audit.xml").getroot()
    assert suite.get("tests") == "12" and suite.get("failures") == "0"


def test_hapi_with_nothing_in_front_fails_with_evidence(seeded: LabConfig, tmp_path: Path) -> None:
    code, report, _ = fhirlab_audit(seeded, tmp_path, seeded.hapi_base_url)
    status = _status(report)
    assert code == EXIT_ITEM_FAILED
    for control in ("C01", "C05", "C07", "C08", "C09", "C10"):
        assert status[control] == "fail", (control, report)
    c08 = next(i for i in report["items"] if i["control"] == "C08")
    assert any("no token needed" in e["observed"] for e in c08["evidence"])
    suite = ET.parse(tmp_path / "audit.xml").getroot()
    assert int(suite.get("failures", "0")) >= 6
    assert "(fail)" in (tmp_path / "audit.md").read_text()


def test_only_narrows_the_audit(seeded: LabConfig, tmp_path: Path) -> None:
    code, report, _ = fhirlab_audit(seeded, tmp_path, seeded.hapi_base_url, "--only", "C07")
    assert [i["control"] for i in report["items"]] == ["C07"]
    assert code == EXIT_ITEM_FAILED


def test_a_target_that_does_not_answer_is_a_usage_error(seeded: LabConfig, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "audit", "http://127.0.0.1:9/fhir"],
        env=lab_env(seeded), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "cannot reach http://127.0.0.1:9/fhir" in done.stderr
    assert "Traceback" not in done.stderr
