"""The audit's pure parts: what counts as granted beyond a request (C11), the realm behind an
issuer, the client authentication a registration's credentials give, the CLI's usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from joserfc.jwk import RSAKey
from typer.testing import CliRunner

from labcore.errors import LabError
from labcore.scopes import parse_scopes
from simulator.audit.access import ClientAccess
from simulator.audit.grants import _beyond
from simulator.audit.registration import realm_of
from simulator.cli import app
from simulator.smart.auth import ClientSecret, PrivateKeyJwt, PublicClient


@pytest.mark.parametrize(
    ("asked", "granted", "beyond"),
    [
        ("patient/Patient.rs", "patient/Patient.rs", []),
        ("patient/*.read", "patient/Patient.rs patient/Appointment.rs", []),  # a narrowing
        ("patient/Patient.rs", "patient/Patient.rs patient/Condition.rs", ["patient/Condition.rs"]),
        ("patient/Patient.r", "patient/Patient.rs", ["patient/Patient.rs"]),  # search not asked
        ("patient/Patient.rs", "user/Patient.rs", ["user/Patient.rs"]),  # another context
        ("patient/Patient.rs", "patient/*.read", ["patient/*.read"]),
        ("patient/Patient.rs", "patient/Patient.rs offline_access", ["offline_access"]),
        ("patient/Patient.rs offline_access", "patient/Patient.rs offline_access", []),
    ],
)
def test_granted_beyond_the_request(asked: str, granted: str, beyond: list[str]) -> None:
    assert _beyond(parse_scopes(asked), parse_scopes(granted)) == beyond


def test_the_realm_is_read_from_a_keycloak_issuer() -> None:
    assert realm_of("http://localhost:8180/realms/tenant-a") == "tenant-a"
    assert realm_of("https://as.example/auth/realms/prod/") == "prod"
    with pytest.raises(LabError, match="not a Keycloak realm"):
        realm_of("https://login.example/oauth2")


def test_the_credentials_given_decide_the_client_authentication(tmp_path: Path) -> None:
    key = RSAKey.generate_key(2048, private=True)
    jwk = tmp_path / "app.jwk.json"
    jwk.write_text(json.dumps(key.as_dict(private=True)))
    pem = tmp_path / "app.pem"
    pem.write_bytes(key.as_pem(private=True))
    assert isinstance(ClientAccess("app", key_file=jwk).auth(), PrivateKeyJwt)
    assert isinstance(ClientAccess("app", key_file=pem).auth(), PrivateKeyJwt)
    assert isinstance(ClientAccess("app", secret="s").auth(), ClientSecret)
    public = ClientAccess("app")
    assert isinstance(public.auth(), PublicClient) and not public.confidential


def test_a_key_file_that_cannot_sign_is_a_clear_error(tmp_path: Path) -> None:
    public = tmp_path / "public.jwk.json"
    public.write_text(json.dumps(RSAKey.generate_key(2048).as_dict(private=False)))
    with pytest.raises(LabError, match="public key only"):
        ClientAccess("app", key_file=public).auth()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(LabError, match="not an RSA private key"):
        ClientAccess("app", key_file=garbage).auth()
    with pytest.raises(LabError, match="cannot read the client key"):
        ClientAccess("app", key_file=tmp_path / "missing.pem").auth()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "u"], "--user and --password go together"),
        (["--user", "u", "--password", "p"], "--user needs --client-id"),
        (["--keycloak-admin", "http://127.0.0.1:9"], "--keycloak-admin needs --admin-password"),
        (["--only", "C13"], "C13"),
    ],
)
def test_audit_usage_errors_name_the_option(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FHIRLAB_AUDIT_PASSWORD", raising=False)
    monkeypatch.delenv("FHIRLAB_AUDIT_ADMIN_PASSWORD", raising=False)
    result = CliRunner().invoke(app, ["audit", "http://127.0.0.1:9/fhir", *args])
    assert isinstance(result.exception, LabError), result.output
    assert message in str(result.exception)
