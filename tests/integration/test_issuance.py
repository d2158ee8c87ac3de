"""The SMART issuance policy in the real Keycloak (the lab's provider, `IssuancePolicyMapper`).

Each test provisions one shipped client with an issuance block (a copy of its profile), asks the
real Keycloak for a token through the client's own flow, and reads what was issued: the token's
`scope` and lifetime, the token response, and the Keycloak events the decisions left. The shipped
profile is provisioned again afterwards.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from labcore.config import LabConfig
from labcore.controls import Mode
from labcore.issuance import ISSUANCE_CONTROLS, IssuancePolicy
from labcore.keycloak_admin import KeycloakAdmin
from labcore.profiles import ClientProfile, load_profiles
from seed.users import DEMO_PASSWORD
from simulator.authserver.apply import jwks_for
from simulator.authserver.clients import apply_profile
from simulator.authserver.issuance import ISSUANCE_MAPPER_TYPE, RULES_KEY, effective_issuance
from simulator.replay.credentials import smart_client
from simulator.smart.errors import SmartError
from simulator.smart.tokens import Token, jwt_claims
from simulator.stack.tools import find_maven

pytestmark = pytest.mark.integration

TENANT = "tenant-a"
PATIENT = "pat-a-000000"
CALLBACK = "http://localhost:9999/callback"
ENFORCE_ALL = IssuancePolicy(**{c: Mode.ENFORCE for c in ISSUANCE_CONTROLS})


def _profile(lab: LabConfig, client_id: str) -> ClientProfile:
    return load_profiles(lab.repo / "keycloak" / "clients")[client_id]


@contextmanager
def issuance(
    lab: LabConfig, client_id: str, policy: IssuancePolicy, **changes: Any
) -> Iterator[ClientProfile]:
    """The client provisioned with `policy` (and any other profile `changes`), then as shipped."""
    shipped = _profile(lab, client_id)
    changed = shipped.model_copy(update={"issuance": policy, **changes})
    with KeycloakAdmin(lab.keycloak_url, lab.admin_user, lab.admin_password) as admin:
        apply_profile(admin, changed, TENANT, jwks_for(lab, shipped, TENANT))
    try:
        yield changed
    finally:
        with KeycloakAdmin(lab.keycloak_url, lab.admin_user, lab.admin_password) as admin:
            apply_profile(admin, shipped, TENANT, jwks_for(lab, shipped, TENANT))


def _token(lab: LabConfig, profile: ClientProfile, scope: str) -> Token:
    with smart_client(lab, profile, TENANT) as client:
        if "client_credentials" in profile.grant_types:
            return client.client_credentials(scope)
        return client.authorization_code(PATIENT, DEMO_PASSWORD, scope)


def _claims(token: Token) -> dict[str, Any]:
    return jwt_claims(token.access_token)


def _decisions(lab: LabConfig, client_id: str) -> list[dict[str, Any]]:
    """The issuance decisions Keycloak recorded for the client, newest first."""
    with KeycloakAdmin(lab.keycloak_url, lab.admin_user, lab.admin_password) as admin:
        query = {"client": client_id, "max": 50}
        events = admin.expect(
            admin.request("GET", f"/realms/{TENANT}/events", params=query), 200
        ).json()
    return [
        {"type": e["type"], "error": e.get("error"), **e["details"]}
        for e in events
        if "fhirlab_control" in (e.get("details") or {})
    ]


def test_c05_narrows_a_wildcard_to_the_declared_resources_and_says_so(
    seeded: LabConfig,
) -> None:
    lab = seeded
    with issuance(lab, "wildcard-scheduler", ENFORCE_ALL) as profile:
        token = _token(lab, profile, "openid launch/patient patient/*.read")
        latest = _decisions(lab, profile.client_id)[0]
    granted = {"openid", "launch/patient", "patient/Appointment.rs", "patient/Patient.rs"}
    # a scope string is a set (RFC 6749 3.3): Keycloak's order varies from one start to the next
    assert set(_claims(token)["scope"].split()) == granted
    assert set(token.response["scope"].split()) == granted  # the response reports the grant
    assert latest["fhirlab_control"] == "C05"
    assert latest["fhirlab_mode"] == "enforce"
    assert latest["fhirlab_scope"] == "patient/*.read"
    assert latest["type"] == "CODE_TO_TOKEN"


def test_monitor_issues_the_token_unchanged_and_records_what_enforce_would_do(
    seeded: LabConfig,
) -> None:
    lab = seeded
    watching = IssuancePolicy(C05=Mode.MONITOR)
    with issuance(lab, "wildcard-scheduler", watching) as profile:
        token = _token(lab, profile, "openid launch/patient patient/*.read")
        latest = _decisions(lab, profile.client_id)[0]
    assert "patient/*.read" in _claims(token)["scope"].split()
    assert "patient/*.read" in token.response["scope"].split()
    assert (latest["fhirlab_control"], latest["fhirlab_mode"]) == ("C05", "monitor")


def test_c02_caps_the_lifetime_and_expires_in_follows(seeded: LabConfig) -> None:
    lab = seeded
    assert _profile(lab, "long-token-assistant").access_token_lifetime_s > 900
    with issuance(lab, "long-token-assistant", ENFORCE_ALL) as profile:
        token = _token(lab, profile, "openid launch/patient patient/Patient.rs")
        latest = _decisions(lab, profile.client_id)[0]
    claims = _claims(token)
    assert claims["exp"] - claims["iat"] == 900
    assert 890 <= token.response["expires_in"] <= 900
    assert latest["fhirlab_control"] == "C02"


def test_c03_withholds_offline_access_and_the_refresh_token(seeded: LabConfig) -> None:
    lab = seeded
    scope = "openid launch/patient offline_access patient/Patient.rs"
    shipped = _token(lab, _profile(lab, "offline-assistant"), scope)
    assert shipped.refresh_token, "the shipped registration grants offline access"
    with issuance(lab, "offline-assistant", ENFORCE_ALL) as profile:
        token = _token(lab, profile, scope)
        latest = _decisions(lab, profile.client_id)[0]
    assert token.refresh_token is None
    assert "offline_access" not in _claims(token)["scope"].split()
    assert "offline_access" not in token.response["scope"].split()
    assert (latest["fhirlab_control"], latest["fhirlab_scope"]) == ("C03", "offline_access")


def test_c04_refuses_a_client_credentials_token_with_invalid_scope(
    seeded: LabConfig,
) -> None:
    lab = seeded
    scope = "system/Patient.rs system/Group.rs"
    assert _token(lab, _profile(lab, "population-analytics"), scope).access_token
    with issuance(lab, "population-analytics", IssuancePolicy(C04=Mode.ENFORCE)) as profile:
        with pytest.raises(SmartError, match="invalid_scope") as refused:
            _token(lab, profile, scope)
        latest = _decisions(lab, profile.client_id)[0]
    assert "not issued to this client" in str(refused.value)
    assert (latest["type"], latest["error"], latest["fhirlab_control"]) == (
        "CLIENT_LOGIN_ERROR",
        "invalid_scope",
        "C04",
    )


def test_c01_with_c04_monitored_leaves_a_system_token_with_no_system_scope(
    seeded: LabConfig,
) -> None:
    lab = seeded
    policy = IssuancePolicy(C01=Mode.ENFORCE, C04=Mode.MONITOR)
    with issuance(lab, "broad-clinical-assistant", policy) as profile:
        token = _token(lab, profile, "system/*.read")
        controls = {d["fhirlab_control"] for d in _decisions(lab, profile.client_id)[:3]}
    assert "system/*.read" not in _claims(token).get("scope", "").split()
    assert {"C01", "C04"} <= controls


def test_c11_grants_only_what_was_asked_for(seeded: LabConfig) -> None:
    lab = seeded
    defaults = ("patient/Appointment.rs",)  # granted by default: Keycloak adds it unasked
    with issuance(lab, "scheduling-assistant", IssuancePolicy(), default_scopes=defaults) as p:
        unasked = _token(lab, p, "openid launch/patient patient/Patient.rs")
    assert "patient/Appointment.rs" in _claims(unasked)["scope"].split()
    with issuance(
        lab, "scheduling-assistant", IssuancePolicy(C11=Mode.ENFORCE), default_scopes=defaults
    ) as profile:
        token = _token(lab, profile, "openid launch/patient patient/Patient.rs")
        latest = _decisions(lab, profile.client_id)[0]
    asked = {"openid", "launch/patient", "patient/Patient.rs"}
    assert set(_claims(token)["scope"].split()) == asked
    assert (latest["fhirlab_control"], latest["fhirlab_scope"]) == ("C11", "patient/Appointment.rs")


def test_rules_that_cannot_be_read_issue_no_token(seeded: LabConfig) -> None:
    lab = seeded
    with issuance(lab, "wildcard-scheduler", ENFORCE_ALL) as profile:
        with KeycloakAdmin(lab.keycloak_url, lab.admin_user, lab.admin_password) as admin:
            uuid = admin.client_uuid(TENANT, profile.client_id)
            path = f"/realms/{TENANT}/clients/{uuid}/protocol-mappers/models"
            mapper = next(
                m
                for m in admin.expect(admin.request("GET", path), 200).json()
                if m["protocolMapper"] == ISSUANCE_MAPPER_TYPE
            )
            mapper["config"][RULES_KEY] = "{not json"
            admin.expect(admin.request("PUT", f"{path}/{mapper['id']}", json=mapper), 204)
        with pytest.raises(SmartError, match="server_error"):
            _token(lab, profile, "openid launch/patient patient/*.read")


def test_without_an_issuance_block_the_client_has_no_mapper(seeded: LabConfig) -> None:
    lab = seeded
    with KeycloakAdmin(lab.keycloak_url, lab.admin_user, lab.admin_password) as admin:
        for client_id in ("wildcard-scheduler", "triage-chatbot"):
            uuid = admin.client_uuid(TENANT, client_id)
            assert uuid is not None
            assert effective_issuance(admin, TENANT, uuid) is None


def test_the_providers_java_unit_tests_pass(clients_applied: LabConfig) -> None:
    """`IssuancePolicyTest` and `LaunchTokenVerifierTest` (the stack builds with -DskipTests)."""
    project = clients_applied.repo / "keycloak" / "smart-provider"
    done = subprocess.run(
        [str(find_maven()), "-B", "-q", "-f", str(project / "pom.xml"), "test"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
