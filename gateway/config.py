"""Everything the gateway is started with, assembled once from files written elsewhere:
the policy (gateway/policy.yaml), the tenants (keycloak/tenants.yaml) and the client classes
(keycloak/clients/*.yaml, with --clients a directory of profiles over them) — the authorization
server's own configuration, not a copy of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gateway.policy import POLICY_FILE, Policy, load_policy
from gateway.settings import GatewaySettings, TenantIssuer
from labcore.profiles import lab_profiles
from labcore.tenants import load_tenants


@dataclass(frozen=True)
class GatewayConfig:
    settings: GatewaySettings
    policy: Policy
    issuers: tuple[TenantIssuer, ...] = ()
    client_classes: dict[str, str] = field(default_factory=dict)
    client_scopes: dict[str, str] = field(default_factory=dict)  # registered scopes, by client
    # what each vendor declared it needs (the out_of_profile detector's profile), when declared
    client_declared: dict[str, tuple[str, ...]] = field(default_factory=dict)
    public_base: str = "http://localhost:8080/fhir"  # the audience tokens must carry
    audit_dir: Path | None = None


def load_gateway_config(
    repo: Path,
    keycloak_url: str,
    public_base: str,
    settings: GatewaySettings,
    policy_path: Path = POLICY_FILE,
    audit_dir: Path | None = None,
    clients_dir: Path | None = None,
) -> GatewayConfig:
    tenants = load_tenants(repo)
    issuers = tuple(
        TenantIssuer(
            tenant=t.id,
            issuer=f"{keycloak_url.rstrip('/')}/realms/{t.realm}",
            client_secret=t.gateway_secret,
        )
        for t in tenants.tenants
    )
    profiles = lab_profiles(repo, clients_dir)
    return GatewayConfig(
        settings=settings,
        policy=load_policy(policy_path),
        issuers=issuers,
        client_classes={cid: p.client_class.value for cid, p in profiles.items()},
        client_scopes={cid: " ".join(p.scopes) for cid, p in profiles.items()},
        client_declared={
            cid: p.declared_resources for cid, p in profiles.items() if p.declared_resources
        },
        public_base=public_base.rstrip("/"),
        audit_dir=audit_dir,
    )
