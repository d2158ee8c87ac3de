"""SMART flows against the real Keycloak: each succeeds for a correctly registered client and
fails as the specifications say for the wrong secret, bad PKCE, bad or replayed client assertions,
unregistered scopes, a public client asking for client_credentials, and forged patient context."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from labcore.config import LabConfig
from labcore.keycloak_admin import KeycloakAdmin
from labcore.profiles import ClientProfile, load_profiles
from labcore.tenants import Tenant, load_tenants
from simulator.authserver.apply import apply_profiles
from simulator.authserver.probe import probe_client_credentials
from simulator.smart.auth import ClientSecret, PrivateKeyJwt, PublicClient
from simulator.smart.client import SmartClient
from simulator.smart.discovery import AuthServer, discover_fhir, discover_issuer
from simulator.smart.ehr import mint_launch
from simulator.smart.errors import SmartError
from simulator.smart.keys import client_key

CALLBACK = "http://localhost:9999/callback"
PATIENT_USER = ("itest-patient", "demo-only-itest-password", "pat-a-900001")
NO_PATIENT_USER = ("itest-clinician", "demo-only-itest-password", None)


@pytest.fixture(scope="module")
def tenant(lab: LabConfig) -> Tenant:
    apply_profiles(lab)
    with KeycloakAdmin(lab.keycloak_url, lab.admin_user, lab.admin_password) as admin:
        for username, password, patient in (PATIENT_USER, NO_PATIENT_USER):
            attributes = (
                {"patient": [patient], "fhirUser": [f"Patient/{patient}"]} if patient else {}
            )
            user = {
                "username": username,
                "enabled": True,
                "emailVerified": True,
                "firstName": "Lab",
                "lastName": "User",
                "email": f"{username}@example.org",
                "attributes": attributes,
                "credentials": [{"type": "password", "value": password, "temporary": False}],
            }
            resp = admin.request("POST", "/realms/tenant-a/users", json=user)
            assert resp.status_code in (201, 409), resp.text
    return load_tenants(lab.repo).get("tenant-a")


@pytest.fixture(scope="module")
def server(lab: LabConfig, tenant: Tenant) -> AuthServer:
    return discover_issuer(lab.issuer(tenant.id))


@pytest.fixture(scope="module")
def profiles(lab: LabConfig) -> dict[str, ClientProfile]:
    return load_profiles(lab.repo / "keycloak" / "clients")


@pytest.fixture
def scheduler(server: AuthServer, profiles: dict[str, ClientProfile]) -> Iterator[SmartClient]:
    profile = profiles["scheduling-assistant"]
    assert profile.secret
    with SmartClient(server, ClientSecret(profile.client_id, profile.secret), CALLBACK) as client:
        yield client


@pytest.fixture
def intake(lab: LabConfig, server: AuthServer) -> Iterator[SmartClient]:
    key = client_key(lab.home, "tenant-a", "intake-assistant")
    with SmartClient(server, PrivateKeyJwt("intake-assistant", key), CALLBACK) as client:
        yield client


@pytest.fixture
def analytics(lab: LabConfig, server: AuthServer) -> Iterator[SmartClient]:
    key = client_key(lab.home, "tenant-a", "population-analytics")
    with SmartClient(server, PrivateKeyJwt("population-analytics", key)) as client:
        yield client


SCHEDULER_SCOPE = "openid launch/patient patient/Patient.rs patient/Appointment.*"


# ---- standalone patient launch ------------------------------------------------------------
def test_standalone_launch_binds_the_users_patient(
    lab: LabConfig, scheduler: SmartClient, profiles: dict[str, ClientProfile]
) -> None:
    user, password, patient = PATIENT_USER
    token = scheduler.authorization_code(user, password, SCHEDULER_SCOPE)
    assert token.patient == patient  # top-level field of the token response (SMART)
    assert token.claims["patient"] == patient  # and in the access token
    assert set(token.granted_scopes) >= {"launch/patient", "patient/Patient.rs"}
    assert token.lifetime_s == profiles["scheduling-assistant"].access_token_lifetime_s
    assert token.has_refresh_token
    assert lab.gateway_base_url in token.claims["aud"]


def test_client_cannot_choose_the_patient(scheduler: SmartClient) -> None:
    user, password, patient = PATIENT_USER
    forged = scheduler.authorization_code(
        user, password, SCHEDULER_SCOPE, extra={"patient": "pat-a-000001"}
    )
    assert forged.patient == patient
    assert forged.claims["patient"] == patient


def test_refresh_keeps_the_patient(scheduler: SmartClient) -> None:
    user, password, patient = PATIENT_USER
    token = scheduler.authorization_code(user, password, SCHEDULER_SCOPE)
    assert token.refresh_token
    refreshed = scheduler.refresh(token.refresh_token)
    assert refreshed.patient == patient
    assert refreshed.claims["patient"] == patient


def test_user_without_a_patient_record_is_denied_a_patient_launch(scheduler: SmartClient) -> None:
    user, password, _ = NO_PATIENT_USER
    result = scheduler.authorize(user, password, SCHEDULER_SCOPE)
    assert result.code is None
    assert result.error == "access_denied"


# ---- EHR launch ---------------------------------------------------------------------------
def test_ehr_launch_binds_the_launch_patient(intake: SmartClient, tenant: Tenant) -> None:
    user, password, _ = NO_PATIENT_USER
    launch = mint_launch(tenant, "intake-assistant", "pat-a-000042", encounter="enc-a-000042-1")
    token = intake.authorization_code(
        user, password, "openid launch patient/Patient.rs", launch=launch
    )
    assert token.patient == "pat-a-000042"
    assert token.encounter == "enc-a-000042-1"
    assert token.lifetime_s == 600
    assert not token.has_refresh_token  # the profile turns refresh tokens off


@pytest.mark.parametrize(
    ("launch_kwargs", "reason"),
    [
        ({"secret": "x" * 40}, "signature"),
        ({"now": time.time() - 3600}, "expired"),
        ({"client_id": "scheduling-assistant"}, "another client"),
    ],
)
def test_forged_or_stale_launch_handles_are_refused(
    intake: SmartClient, tenant: Tenant, launch_kwargs: dict, reason: str
) -> None:
    kwargs = {"client_id": "intake-assistant", "patient": "pat-a-000042", **launch_kwargs}
    launch = mint_launch(tenant, **kwargs)
    user, password, _ = NO_PATIENT_USER
    result = intake.authorize(user, password, "openid launch patient/Patient.rs", launch=launch)
    assert result.code is None
    assert result.error == "invalid_request"
    assert reason in (result.error_description or "")


# ---- client authentication and PKCE -------------------------------------------------------
def test_wrong_client_secret_is_invalid_client(server: AuthServer) -> None:
    user, password, _ = PATIENT_USER
    with SmartClient(server, ClientSecret("scheduling-assistant", "wrong"), CALLBACK) as bad:
        result = bad.authorize(user, password, SCHEDULER_SCOPE)
        assert result.code  # the browser part does not involve the secret
        with pytest.raises(SmartError) as caught:
            bad.exchange(result.code, result.verifier)
    assert caught.value.error == "unauthorized_client" or caught.value.error == "invalid_client"
    assert caught.value.status in (400, 401)


def test_pkce_wrong_or_missing_verifier_is_invalid_grant(scheduler: SmartClient) -> None:
    user, password, _ = PATIENT_USER
    for verifier in ("not-the-verifier-" + "x" * 40, None):
        result = scheduler.authorize(user, password, SCHEDULER_SCOPE)
        assert result.code
        with pytest.raises(SmartError) as caught:
            scheduler.exchange(result.code, verifier)
        assert caught.value.error == "invalid_grant"


@pytest.mark.parametrize("mode", ["plain", "none"])
def test_pkce_plain_or_absent_is_refused_at_authorize(scheduler: SmartClient, mode: str) -> None:
    user, password, _ = PATIENT_USER
    with pytest.raises(SmartError) as caught:
        result = scheduler.authorize(user, password, SCHEDULER_SCOPE, pkce=mode)  # type: ignore[arg-type]
        assert result.code is None
        raise SmartError("authorize", result.error or "", result.error_description or "")
    assert caught.value.error == "invalid_request"


def test_backend_services_token(analytics: SmartClient) -> None:
    token = analytics.client_credentials("system/Patient.rs system/Group.rs")
    assert set(token.granted_scopes) == {"system/Patient.rs", "system/Group.rs"}
    assert token.lifetime_s == 300
    assert not token.has_refresh_token  # SMART backend services: no refresh tokens
    assert "patient" not in token.claims


def test_expired_client_assertion_is_refused(lab: LabConfig, server: AuthServer) -> None:
    key = client_key(lab.home, "tenant-a", "population-analytics")
    auth = PrivateKeyJwt("population-analytics", key)
    stale = auth.assertion(server.token_endpoint, now=time.time() - 3600)
    with SmartClient(server, auth) as client, pytest.raises(SmartError) as caught:
        client._token(  # the client's own token call, with a stale assertion
            "client_credentials",
            {
                "grant_type": "client_credentials",
                "scope": "system/Group.rs",
                "client_assertion": stale,
            },
        )
    assert caught.value.error in ("invalid_client", "unauthorized_client")


def test_replayed_client_assertion_is_refused(lab: LabConfig, server: AuthServer) -> None:
    key = client_key(lab.home, "tenant-a", "population-analytics")
    auth = PrivateKeyJwt("population-analytics", key)
    assertion = auth.assertion(server.token_endpoint)
    form = {"grant_type": "client_credentials", "scope": "system/Group.rs"}
    with SmartClient(server, auth) as client:
        client._token("client_credentials", {**form, "client_assertion": assertion})
        with pytest.raises(SmartError) as caught:
            client._token("client_credentials", {**form, "client_assertion": assertion})
    assert caught.value.error in ("invalid_client", "unauthorized_client")


def test_public_client_cannot_use_client_credentials(server: AuthServer) -> None:
    with (
        SmartClient(server, PublicClient("triage-chatbot")) as client,
        pytest.raises(SmartError) as caught,
    ):
        client.client_credentials("patient/Patient.rs")
    assert caught.value.error in ("unauthorized_client", "invalid_client")


# ---- scopes, offline access, revocation ---------------------------------------------------
def test_unregistered_scope_is_invalid_scope(scheduler: SmartClient) -> None:
    user, password, _ = PATIENT_USER
    result = scheduler.authorize(user, password, SCHEDULER_SCOPE + " patient/Condition.rs")
    assert result.code is None
    assert result.error == "invalid_scope"


def test_offline_access_refused_where_the_profile_denies_it(scheduler: SmartClient) -> None:
    user, password, _ = PATIENT_USER
    result = scheduler.authorize(user, password, SCHEDULER_SCOPE + " offline_access")
    assert result.error == "invalid_scope"


def test_down_scoping_probe_records_a_refusal(analytics: SmartClient) -> None:
    result = probe_client_credentials(analytics, "system/*.read offline_access")
    assert result.outcome == "refused"
    assert result.error == "invalid_scope"
    assert result.held


def test_revoked_access_token_is_inactive_on_introspection(scheduler: SmartClient) -> None:
    user, password, _ = PATIENT_USER
    token = scheduler.authorization_code(user, password, SCHEDULER_SCOPE)
    assert scheduler.introspect(token.access_token)["active"] is True
    scheduler.revoke(token.access_token)
    assert scheduler.introspect(token.access_token)["active"] is False


def test_discovery_from_the_fhir_base(lab: LabConfig, server: AuthServer) -> None:
    """SMART discovery at the gateway's FHIR base points at the same Keycloak endpoints."""
    smart = discover_fhir(lab.gateway_base_url)
    assert smart.token_endpoint == server.token_endpoint
    assert smart.authorization_endpoint == server.authorization_endpoint
    assert smart.revocation_endpoint and smart.introspection_endpoint
    assert {"launch-ehr", "launch-standalone", "context-standalone-patient"} <= set(
        smart.capabilities
    )
