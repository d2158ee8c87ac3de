"""Where a SMART client finds the authorization server's endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from labcore.errors import LabError


@dataclass(frozen=True)
class AuthServer:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None = None
    introspection_endpoint: str | None = None
    jwks_uri: str | None = None
    capabilities: tuple[str, ...] = ()
    scopes_supported: tuple[str, ...] = ()

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> AuthServer:
        try:
            return cls(
                issuer=str(doc["issuer"]),
                authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]),
                revocation_endpoint=doc.get("revocation_endpoint"),
                introspection_endpoint=doc.get("introspection_endpoint"),
                jwks_uri=doc.get("jwks_uri"),
                capabilities=tuple(doc.get("capabilities", ())),
                scopes_supported=tuple(doc.get("scopes_supported", ())),
            )
        except KeyError as exc:
            raise LabError(f"discovery document lacks {exc.args[0]!r}") from None


def _get_json(url: str, http: httpx.Client | None) -> dict[str, Any]:
    client = http or httpx.Client(timeout=30)
    try:
        resp = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise LabError(f"{url} is unreachable ({type(exc).__name__})", "is the lab up?") from exc
    finally:
        if http is None:
            client.close()
    if resp.status_code != 200:
        raise LabError(f"GET {url} -> {resp.status_code}", "check the issuer / FHIR base URL")
    body = resp.json()
    if not isinstance(body, dict):
        raise LabError(f"{url} did not return a JSON object")
    return body


def discover_issuer(issuer: str, http: httpx.Client | None = None) -> AuthServer:
    """From the OpenID discovery document of an issuer (a Keycloak realm)."""
    return AuthServer.from_document(
        _get_json(f"{issuer.rstrip('/')}/.well-known/openid-configuration", http)
    )


def discover_fhir(fhir_base: str, http: httpx.Client | None = None) -> AuthServer:
    """From a FHIR server's `/.well-known/smart-configuration` (SMART App Launch 2.x)."""
    return AuthServer.from_document(
        _get_json(f"{fhir_base.rstrip('/')}/.well-known/smart-configuration", http)
    )
