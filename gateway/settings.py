"""The gateway's own settings: where it listens, where HAPI is, its public FHIR base path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TenantIssuer:
    """A tenant's authorization server (a Keycloak realm) as the gateway trusts it."""

    tenant: str
    issuer: str
    client_id: str = "fhirlab-gateway"  # confidential client used for introspection
    client_secret: str = ""

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def introspection_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token/introspect"


@dataclass(frozen=True)
class GatewaySettings:
    upstream: str = "http://127.0.0.1:8280/fhir"  # HAPI's FHIR base, loopback only
    base_path: str = "/fhir"  # the FHIR base clients see on the gateway
    upstream_timeout_s: float = 60.0
    max_connections: int = 200

    def __post_init__(self) -> None:
        if not self.base_path.startswith("/") or self.base_path.endswith("/"):
            raise ValueError(f"base_path must look like /fhir, not {self.base_path!r}")
        if not self.upstream.startswith(("http://", "https://")):
            raise ValueError(f"upstream must be an http(s) URL, not {self.upstream!r}")
