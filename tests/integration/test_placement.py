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
from simulator.cli.lab_cmd import compare_placements
from simulator.cli.run_cmd import replay_with_baseline
from simulator.results.where import WHERE_SCENARIOS
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


def test_the_lab_compares_the_placements_and_prices_the_issuance_policy(
    seeded: LabConfig, tmp_path: Path
) -> None:
    """`fhirlab lab`'s "where to enforce" step, on the library's gateway run of its scenarios:
    a row per control with all three placements, and the issuance policy timed per token with
    the policy really applied to the tokens measured (their lifetime capped)."""
    names = list(dict.fromkeys(WHERE_SCENARIOS.values()))
    judged, _, _ = replay_with_baseline(seeded, tmp_path / "gw", names, baseline=False)
    where = compare_placements(seeded, tmp_path, judged, None)
    rows = {r["control"]: r["placements"] for r in where["rows"]}
    costs = {r["control"]: r["cost"] for r in where["rows"]}
    assert set(rows) == set(WHERE_SCENARIOS)
    assert all(list(p) == ["gateway", "as", "both"] for p in rows.values())
    c05 = rows["C05"]
    assert c05["gateway"]["verdict"] == "violated" and c05["gateway"]["caught"]
    assert c05["gateway"]["patients"] == 0  # the registration breaks it, the gateway refused
    assert c05["as"]["verdict"] == "violated" and not c05["as"]["caught"]
    assert "patient/*.read" not in c05["as"]["received"]
    assert c05["as"]["patients"] >= 1
    for control in ("C01", "C11"):  # the broad assistant's system/*.read: refused at the AS
        assert rows[control]["gateway"]["verdict"] == "violated"
        assert rows[control]["as"]["verdict"] == "held"
        assert rows[control]["as"]["received"].startswith("no token")
    c02 = rows["C02"]
    assert "28800 s" in c02["gateway"]["received"] and "900 s" in c02["as"]["received"]
    issuance = where["issuance_cost"]
    assert issuance["expires_in"] == {"registered": 300, "registered-2": 300, "policy": 240}
    assert issuance["added"]["samples"] == issuance["rounds"] * issuance["per_block"]
    assert costs["C05"]["as"].startswith("per token issued: ")
    assert costs["C05"]["gateway"].startswith("not measured")  # no load run here
    assert _issuance_mappers(seeded) == []  # Keycloak is back as the profiles ship
