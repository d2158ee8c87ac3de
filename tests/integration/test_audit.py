"""`fhirlab audit` against the real stack: the lab (gateway + Keycloak) passes all twelve items;
HAPI FHIR with nothing in front fails them, with the evidence that says why; a misconfigured
client's credentials fail the items it breaks; the authorization server's issuance policy with the
gateway's controls off passes the items the AS enforces and fails the rest."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from gateway.policy import load_policy
from labcore.config import LabConfig
from seed.users import DEMO_PASSWORD
from simulator.authserver.placement import Placement, placed
from simulator.load.saturation import patient_token
from simulator.replay.library import BASELINE_MODES
from simulator.smart.keys import key_path
from simulator.stack.extra_gateway import extra_gateway
from tests.browser import render
from tests.integration.conftest import lab_env
from tests.integration.test_gateway import ME, TENANT_B_PATIENT, token_for

pytestmark = pytest.mark.integration

EXIT_ITEM_FAILED = 4


def fhirlab_audit(lab: LabConfig, tmp: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "audit", *args,
         "--json", str(tmp / "audit.json"), "--junit", str(tmp / "audit.xml"),
         "--markdown", str(tmp / "audit.md"), "--html", str(tmp / "audit.html")],
        env=lab_env(lab), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.returncode, json.loads((tmp / "audit.json").read_text()), done.stdout


def _status(report: dict[str, Any]) -> dict[str, str]:
    return {item["control"]: item["status"] for item in report["items"]}


def _failed(report: dict[str, Any]) -> set[str]:
    return {c for c, status in _status(report).items() if status == "fail"}


def _as_app(lab: LabConfig, client: str, scope: str, *, user: bool = True) -> list[str]:
    """The options that let the audit obtain tokens as `client` (shipped profile) would."""
    args = ["--client-id", client, "--scope", scope]
    if client == "broad-clinical-assistant":
        args += ["--client-key", str(key_path(lab.home, "tenant-a", client))]
    elif client != "triage-chatbot":  # the public client holds no secret
        args += ["--client-secret", f"demo-only-{client}-secret"]
    if user:
        args += ["--user", ME, "--password", DEMO_PASSWORD]
    return args


def _admin(lab: LabConfig) -> list[str]:
    return ["--keycloak-admin", lab.keycloak_url, "--admin-user", lab.admin_user,
            "--admin-password", lab.admin_password]  # fmt: skip


def test_the_lab_passes_all_twelve_items(seeded: LabConfig, tmp_path: Path) -> None:
    """The lab's gateway and Keycloak, audited with everything the audit can use: the scheduling
    assistant's registration and a test user, admin access, a tenant-b token, a bulk kick-off."""
    other_tenant = token_for(
        seeded, "shared-vendor", "openid launch/patient patient/Patient.rs",
        TENANT_B_PATIENT, "tenant-b",
    ).access_token  # fmt: skip
    code, report, _ = fhirlab_audit(
        seeded, tmp_path, seeded.gateway_base_url,
        *_as_app(seeded, "scheduling-assistant", "openid launch/patient patient/Patient.rs"),
        *_admin(seeded), "--second-token", other_tenant, "--try-export",
    )  # fmt: skip
    assert _status(report) == {f"C{n:02d}": "pass" for n in range(1, 13)}, report
    assert code == 0
    evidence = {
        i["control"]: " ".join(e["observed"] for e in i["evidence"]) for i in report["items"]
    }
    assert "refused" in evidence["C09"] and "after revocation" in evidence["C09"]
    assert "tenant-a" in evidence["C10"]
    page = render(tmp_path / "audit.html")  # what a reader sees, in a real browser
    assert page.problems == [] and page.headings, page


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
    page = render(tmp_path / "audit.html")
    assert page.problems == [] and page.headings, page


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


# misconfigured vendors of the shipped profiles: the scope each asks for in use, and the items
# their registration breaks (C09 is left out: its revocation wait says nothing about the client)
MISCONFIGURED = {
    "long-token-assistant": ("openid launch/patient patient/Patient.rs", {"C02"}),
    "offline-assistant": ("openid launch/patient offline_access patient/Patient.rs", {"C03"}),
    "wildcard-scheduler": ("openid launch/patient patient/*.read", {"C05"}),
    "triage-chatbot": ("openid launch/patient patient/Patient.rs", {"C07"}),
    "broad-clinical-assistant": ("system/*.read", {"C01", "C05"}),
    "shared-vendor": ("openid launch/patient patient/Patient.rs", {"C10"}),
}


@pytest.mark.parametrize("client", sorted(MISCONFIGURED))
def test_a_misconfigured_clients_credentials_fail_the_items_it_breaks(
    seeded: LabConfig, tmp_path: Path, client: str
) -> None:
    scope, broken = MISCONFIGURED[client]
    app = _as_app(seeded, client, scope, user=client != "broad-clinical-assistant")
    code, report, _ = fhirlab_audit(
        seeded, tmp_path, seeded.gateway_base_url, *app, *_admin(seeded),
        "--only", "C01,C02,C03,C05,C07,C10,C11",
    )  # fmt: skip
    assert _failed(report) == broken, report
    assert code == EXIT_ITEM_FAILED


AS_ENFORCED = {"C01", "C02", "C03", "C05", "C11"}  # the issuance policy's rules (C04: no scope)
GATEWAY_ONLY = {"C04", "C08", "C09", "C12"}  # nothing at the AS stops what a token reaches


def test_the_as_policy_alone_passes_its_items_and_fails_the_gateways(
    seeded: LabConfig, tmp_path: Path
) -> None:
    """Keycloak with the lab's issuance policy in force, audited through a gateway whose controls
    are off: the wildcard scheduler's token is narrowed, short and without offline access, but the
    compartment, $everything, a bulk kick-off and a revoked token all reach HAPI."""
    with (
        placed(seeded, Placement.AS, load_policy()) as changed,
        extra_gateway(seeded, "controls-off", tmp_path / "gw", BASELINE_MODES) as gw,
    ):
        assert "wildcard-scheduler" in changed
        code, report, _ = fhirlab_audit(
            seeded, tmp_path, gw.base_url,
            *_as_app(seeded, "wildcard-scheduler", "openid launch/patient patient/*.read"),
            *_admin(seeded), "--try-export", "--revocation-wait", "12",
        )  # fmt: skip
    status = _status(report)
    assert {c: status[c] for c in AS_ENFORCED} == dict.fromkeys(AS_ENFORCED, "pass"), report
    assert {c: status[c] for c in GATEWAY_ONLY} == dict.fromkeys(GATEWAY_ONLY, "fail"), report
    assert code == EXIT_ITEM_FAILED
