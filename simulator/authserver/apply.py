"""`fhirlab clients apply | show`: provision client profiles and read them back."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from labcore.config import LabConfig
from labcore.errors import LabError
from labcore.keycloak_admin import KeycloakAdmin
from labcore.profiles import (
    PROFILE_DIR,
    Authenticator,
    ClientProfile,
    lab_profiles,
    load_profiles,
)
from labcore.tenants import load_tenants
from simulator.authserver.clients import Applied, apply_profile, effective_client
from simulator.authserver.provision import provision_tenants
from simulator.smart.keys import client_key, public_jwks


def profile_dir(cfg: LabConfig) -> Path:
    """Where the profiles come from, for messages: your own directory, else the lab's."""
    return cfg.clients_dir or cfg.repo / PROFILE_DIR


def select_profiles(cfg: LabConfig, client_ids: Iterable[str] = ()) -> list[ClientProfile]:
    profiles = lab_profiles(cfg.repo, cfg.clients_dir)
    tenants = set(load_tenants(cfg.repo).ids)
    for profile in profiles.values():
        unknown = [t for t in profile.tenants if t not in tenants]
        if unknown:
            raise LabError(
                f"client {profile.client_id}: unknown tenant {unknown[0]!r}",
                f"use one of {', '.join(sorted(tenants))} (keycloak/tenants.yaml)",
            )
    wanted = list(client_ids)
    missing = [c for c in wanted if c not in profiles]
    if missing:
        raise LabError(
            f"no client profile {missing[0]!r} in {profile_dir(cfg)}",
            f"known: {', '.join(sorted(profiles))}",
        )
    return [profiles[c] for c in wanted] if wanted else list(profiles.values())


def jwks_for(cfg: LabConfig, profile: ClientProfile, tenant: str) -> dict[str, Any] | None:
    """The public JWKS a private-key-jwt client registers (its key generated on first use)."""
    if profile.authenticator is not Authenticator.PRIVATE_KEY_JWT:
        return None
    return public_jwks(client_key(cfg.home, tenant, profile.client_id))


def apply_profiles(cfg: LabConfig, client_ids: Iterable[str] = ()) -> list[Applied]:
    profiles = select_profiles(cfg, client_ids)
    provision_tenants(cfg)
    applied = []
    with KeycloakAdmin(cfg.keycloak_url, cfg.admin_user, cfg.admin_password) as admin:
        for profile in profiles:
            for tenant in profile.tenants:
                jwks = jwks_for(cfg, profile, tenant)
                applied.append(apply_profile(admin, profile, tenant, jwks))
    return applied


def show_profiles(cfg: LabConfig, client_ids: Iterable[str] = ()) -> list[dict[str, Any]]:
    profiles = select_profiles(cfg, client_ids)
    shown = []
    with KeycloakAdmin(cfg.keycloak_url, cfg.admin_user, cfg.admin_password) as admin:
        for profile in profiles:
            for tenant in profile.tenants:
                effective = effective_client(admin, tenant, profile.client_id)
                shown.append(effective or {"tenant": tenant, "client_id": profile.client_id})
    return shown


@contextmanager
def own_profiles_restored(cfg: LabConfig) -> Iterator[None]:
    """With your own client profiles (`cfg.clients_dir`), Keycloak gets the lab's profiles of
    the clients you changed back on exit, whatever happens; the clients you added stay."""
    if cfg.clients_dir is None:
        yield
        return
    own = load_profiles(cfg.clients_dir)
    try:
        yield
    finally:
        shipped = lab_profiles(cfg.repo)
        changed = [client_id for client_id in own if client_id in shipped]
        if changed:
            apply_profiles(replace(cfg, clients_dir=None), changed)
