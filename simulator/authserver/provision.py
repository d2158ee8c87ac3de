"""Provision the lab's tenants into Keycloak (run by `fhirlab up` and `fhirlab clients apply`)."""

from __future__ import annotations

from simulator.authserver.realm import ensure_realm
from simulator.authserver.tenants import load_tenants
from simulator.kcadmin import KeycloakAdmin
from simulator.stack.config import LabConfig


def provision_tenants(cfg: LabConfig) -> dict[str, dict[str, list[str]]]:
    """Every tenant realm complete (realm, flow, user profile, scopes); what was created."""
    tenants = load_tenants(cfg.repo)
    with KeycloakAdmin(cfg.keycloak_url, cfg.admin_user, cfg.admin_password) as admin:
        return {t.id: ensure_realm(admin, t, cfg.gateway_base_url) for t in tenants.tenants}
