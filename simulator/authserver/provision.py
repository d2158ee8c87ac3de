"""Provision the lab's tenants into Keycloak (run by `fhirlab up` and `fhirlab clients apply`)."""

from __future__ import annotations

from labcore.config import LabConfig
from labcore.keycloak_admin import KeycloakAdmin
from labcore.tenants import load_tenants
from simulator.authserver.realm import ensure_realm


def provision_tenants(cfg: LabConfig) -> dict[str, dict[str, list[str]]]:
    """Every tenant realm complete (realm, flow, user profile, scopes); what was created."""
    tenants = load_tenants(cfg.repo)
    with KeycloakAdmin(cfg.keycloak_url, cfg.admin_user, cfg.admin_password) as admin:
        return {t.id: ensure_realm(admin, t, cfg.gateway_base_url) for t in tenants.tenants}
