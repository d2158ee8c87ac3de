"""`/.well-known/smart-configuration` (SMART App Launch 2.x), built from Keycloak's discovery.

Served at the FHIR base for the default (first) tenant; a client of another tenant discovers
its realm the same way at `<keycloak>/realms/<tenant>/.well-known/openid-configuration`.
"""

from __future__ import annotations

from typing import Any

import httpx

from gateway.denial import Denial
from gateway.settings import TenantIssuer

CAPABILITIES = (
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "permission-offline",
    "sso-openid-connect",
)


class SmartConfiguration:
    def __init__(self, issuer: TenantIssuer, http: httpx.AsyncClient) -> None:
        self.issuer = issuer
        self.http = http
        self._document: dict[str, Any] | None = None

    async def document(self) -> dict[str, Any]:
        if self._document is None:
            url = f"{self.issuer.issuer}/.well-known/openid-configuration"
            try:
                resp = await self.http.get(url, timeout=5.0)
                resp.raise_for_status()
                oidc = resp.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise Denial(
                    503, f"the authorization server is unreachable ({type(exc).__name__})"
                ) from exc
            self._document = {
                "issuer": oidc["issuer"],
                "jwks_uri": oidc["jwks_uri"],
                "authorization_endpoint": oidc["authorization_endpoint"],
                "token_endpoint": oidc["token_endpoint"],
                "introspection_endpoint": oidc.get("introspection_endpoint"),
                "revocation_endpoint": oidc.get("revocation_endpoint"),
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "private_key_jwt",
                ],
                "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
                "grant_types_supported": [
                    "authorization_code",
                    "client_credentials",
                    "refresh_token",
                ],
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": [
                    "openid",
                    "fhirUser",
                    "launch",
                    "launch/patient",
                    "offline_access",
                    "online_access",
                    "patient/*.rs",
                    "user/*.rs",
                    "system/*.rs",
                ],
                "capabilities": list(CAPABILITIES),
            }
        return self._document
