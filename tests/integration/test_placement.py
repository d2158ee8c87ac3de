"""Where to enforce C01-C05 (`fhirlab run --enforce-at`): at the authorization server, the
tokens shrink but what nothing checks at the resource server is still reached; at both, the
gateway refuses what the AS already narrowed. Keycloak is put back as the profiles ship."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labcore.config import LabConfig
from labcore.keycloak_admin import KeycloakAdmin
from simulator.authserver.issuance import effective_issuance
from tests.integration.test_replay import fhirlab_run

pytestmark = pytest.mark.integration

SCENARIOS = ("wildcard-scheduler", "long-token-assistant", "offline-assistant")


def _runs(lab: LabConfig, results: Path, placement: str) -> tuple[dict[str, Any], int]:
    done = fhirlab_run(lab, results, *SCENARIOS, "--no-baseline", "--enforce-at", placement)
    assert done.returncode in (0, 3), done.stdout[-3000:] + done.stderr[-3000:]
    (results_file,) = results.glob("*/results.json")
    replay = json.loads(results_file.read_text())["replay"]
    return replay, done.returncode


def _issuance_mappers(lab: LabConfig) -> list[str]:
    """The tenant-a clients that have an issuance mapper in Keycloak."""
    with KeycloakAdmin(lab.keycloak_url, lab.admin_user, lab.admin_password) as admin:
        clients = admin.expect(admin.request("GET", "/realms/tenant-a/clients"), 200).json()
        return [c["clientId"] for c in clients if effective_issuance(admin, "tenant-a", c["id"])]


def test_at_the_as_the_tokens_shrink_and_unchecked_scopes_still_reach(
    seeded: LabConfig, tmp_path: Path
) -> None:
    replay, code = _runs(seeded, tmp_path, "as")
    assert code == 0, "C01-C05 expectations describe the shipped placement; the rest hold"
    runs = {r["scenario"]: r for r in replay["runs"]}
    assert replay["enforce_at"] == "as"
    assert "wildcard-scheduler" in replay["issuance_clients"]
    assert replay["controls"]["C05"] == "off"  # the gateway's scope check is off here
    wildcard = runs["wildcard-scheduler"]
    assert "patient/*.read" not in wildcard["token"]["scope"].split()
    assert wildcard["verdicts"]["C05"] == "violated"  # the narrowed token is never checked
    assert "C05" not in wildcard["caught"]
    long_token = runs["long-token-assistant"]
    assert long_token["token"]["lifetime_s"] == 900
    assert long_token["verdicts"]["C02"] == "held"
    offline = runs["offline-assistant"]
    assert not offline["token"]["refresh_token"]
    assert offline["verdicts"]["C03"] == "held"
    assert _issuance_mappers(seeded) == []  # Keycloak is back as the profiles ship


def test_at_both_the_gateway_refuses_what_the_as_narrowed(
    seeded: LabConfig, tmp_path: Path
) -> None:
    replay, code = _runs(seeded, tmp_path, "both")
    assert code == 0
    wildcard = next(r for r in replay["runs"] if r["scenario"] == "wildcard-scheduler")
    assert replay["controls"]["C05"] == "enforce"
    assert "patient/*.read" not in wildcard["token"]["scope"].split()
    assert wildcard["verdicts"]["C05"] == "held"
    assert "C05" in wildcard["caught"]
    assert _issuance_mappers(seeded) == []


def test_an_unknown_placement_is_refused_with_a_message(seeded: LabConfig, tmp_path: Path) -> None:
    done = fhirlab_run(seeded, tmp_path, "wildcard-scheduler", "--enforce-at", "nowhere")
    assert done.returncode == 1
    assert "unknown placement 'nowhere'" in done.stderr
    assert "Traceback" not in done.stderr
