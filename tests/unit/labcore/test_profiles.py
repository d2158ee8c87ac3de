"""Client profiles: the lab's own files load; bad files name file, line, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_gateway_config
from gateway.settings import GatewaySettings
from labcore.config import REPO_ROOT
from labcore.profiles import ClientProfile, load_profile, load_profiles
from labcore.tenants import load_tenants
from labcore.yamlfile import DocumentError
from simulator.authserver.catalogue import catalogue_names, client_scope
from simulator.authserver.clients import client_representation, wanted_scopes
from simulator.authserver.realm import realm_representation

GOOD = """\
schema_version: 1
client_id: demo-app
description: demo
tenants: [tenant-a]
class: operational-ai
authenticator: client-secret
secret: demo-only
grant_types: [authorization_code]
redirect_uris: ["http://localhost:9999/callback"]
scopes: [openid, launch/patient, patient/Patient.rs]
access_token_lifetime_s: 300
"""


def write(tmp_path: Path, text: str, name: str = "demo-app.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_profile_in_the_repository_loads() -> None:
    profiles = load_profiles(REPO_ROOT / "keycloak" / "clients")
    assert {"scheduling-assistant", "intake-assistant", "population-analytics"} <= set(profiles)
    tenants = set(load_tenants(REPO_ROOT).ids)
    for profile in profiles.values():
        assert set(profile.tenants) <= tenants


def test_a_good_profile(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD))
    assert profile.client_class.value == "operational-ai"
    assert not profile.offline_access
    default, optional = wanted_scopes(profile)
    assert "fhir-audience" in default and "basic" in default
    assert optional == ["launch/patient", "patient/Patient.rs"]  # openid is implicit


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("class: operational-ai", "class: chatbot"), ["line 5: class:", "operational-ai"]),
        (("scopes: [openid,", "scopes: [patient/observation.rs, openid,"), ["not a SMART scope"]),
        (("access_token_lifetime_s: 300", "access_token_lifetime_s: 0"), ["line 11"]),
        (("secret: demo-only\n", ""), ["needs a (demo-only) secret"]),
        (("description: demo", "descripton: demo"), ["line 3: descripton: unknown field"]),
        (("tenants: [tenant-a]", "tenants: [Tenant A]"), ["tenant 'Tenant A'"]),
        (
            (
                "access_token_lifetime_s: 300",
                "access_token_lifetime_s: 300\ndeclared_resources: [appointment]",
            ),
            ["declared resource 'appointment' is not a FHIR resource type name"],
        ),
    ],
)
def test_bad_profiles_name_line_field_and_allowed_values(
    tmp_path: Path, change: tuple[str, str], expected: list[str]
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(DocumentError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_a_declared_profile_becomes_the_gateway_s_out_of_profile_profile() -> None:
    config = load_gateway_config(REPO_ROOT, "http://kc", "http://gw/fhir", GatewaySettings())
    assert config.client_declared["wildcard-scheduler"] == ("Patient", "Appointment")
    assert "scheduling-assistant" not in config.client_declared  # its scopes say it all


def test_public_client_cannot_hold_client_credentials(tmp_path: Path) -> None:
    text = GOOD.replace("authenticator: client-secret", "public: true\nauthenticator: none")
    text = text.replace("secret: demo-only\n", "").replace(
        "[authorization_code]", "[authorization_code, client_credentials]"
    )
    with pytest.raises(DocumentError, match="client_credentials needs a confidential client"):
        load_profile(write(tmp_path, text))


def test_file_name_must_match_client_id(tmp_path: Path) -> None:
    write(tmp_path, GOOD, name="other.yaml")
    with pytest.raises(DocumentError, match=r"file name must be demo-app\.yaml"):
        load_profiles(tmp_path)


def test_keycloak_representation_of_a_backend_service() -> None:
    profile = load_profiles(REPO_ROOT / "keycloak" / "clients")["population-analytics"]
    jwks = {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB", "kid": "k1"}]}
    rep = client_representation(profile, jwks)
    assert rep["clientAuthenticatorType"] == "client-jwt"
    assert rep["serviceAccountsEnabled"] and not rep["standardFlowEnabled"]
    assert rep["attributes"]["token.endpoint.auth.signing.alg"] == "RS384"
    assert rep["attributes"]["access.token.lifespan"] == "300"
    assert rep["attributes"]["use.refresh.tokens"] == "false"
    assert not rep["directAccessGrantsEnabled"]


def test_scope_catalogue_and_launch_mappers() -> None:
    names = catalogue_names()
    assert len(names) == len(set(names))
    for scope in ("patient/*.read", "user/Observation.rs", "system/Group.cruds", "launch/patient"):
        assert scope in names
    mappers = client_scope("launch/patient")["protocolMappers"]
    assert mappers[0]["config"]["access.tokenResponse.claim"] == "true"
    assert mappers[0]["config"]["user.session.note"] == "patient"
    assert client_scope("patient/Patient.rs")["protocolMappers"] == []


def test_realm_binds_the_smart_launch_flow() -> None:
    tenant = load_tenants(REPO_ROOT).tenants[0]
    rep = realm_representation(tenant)
    assert rep["browserFlow"] == "smart browser"
    top = next(f for f in rep["authenticationFlows"] if f["alias"] == "smart browser")
    last = top["authenticationExecutions"][-1]
    assert last["authenticator"] == "fhirlab-smart-launch-context"
    assert last["requirement"] == "REQUIRED"
    config = rep["authenticatorConfig"][0]["config"]
    assert config["launch.secret"] == tenant.launch_secret and len(tenant.launch_secret) >= 32


def test_profile_model_is_frozen() -> None:
    profile = ClientProfile.model_validate(
        {
            "schema_version": 1,
            "client_id": "x-app",
            "description": "d",
            "tenants": ["tenant-a"],
            "class": "analytics-backend",
            "authenticator": "private-key-jwt",
            "grant_types": ["client_credentials"],
            "scopes": ["system/Group.rs"],
            "access_token_lifetime_s": 300,
        }
    )
    with pytest.raises(Exception, match="frozen"):
        profile.client_id = "y"  # type: ignore[misc]
