"""Where the checks that both sides can make run: at the authorization server, at the gateway,
or at both (`fhirlab run --enforce-at`).

Five controls can be enforced on either side: C01, C02, C03, C04 and C05. Keycloak can make
them when it issues a token (`labcore/issuance.py`), and the gateway when a request arrives.
C11, down-scoping, is the authorization server's alone.

- `gateway`, as the lab ships: Keycloak issues what the registrations allow, and the gateway
  runs its policy.
- `as`: every client of an operational class (the gateway policy's
  `client_policy.operational_classes`) gets all six issuance rules enforced. Its lifetime cap
  is the gateway policy's `max_token_lifetime_s`. The gateway runs with C01–C05 off; its other
  controls stay as they are, since the authorization server has nothing to offer for them.
- `both`: the issuance rules as for `as`, and the gateway's policy as shipped.

The placement is provisioned into Keycloak for the replay and the shipped profiles are put back
afterwards, whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Final

from gateway.policy import Policy
from labcore.config import LabConfig
from labcore.controls import Mode
from labcore.errors import LabError
from labcore.issuance import ISSUANCE_CONTROLS, IssuancePolicy
from labcore.keycloak_admin import KeycloakAdmin
from labcore.profiles import ClientProfile
from simulator.authserver.apply import jwks_for, select_profiles
from simulator.authserver.clients import apply_profile

# the gateway's controls the authorization server can also enforce, at issuance
SHARED_CONTROLS: Final[tuple[str, ...]] = ("C01", "C02", "C03", "C04", "C05")


class Placement(StrEnum):
    GATEWAY = "gateway"
    AS = "as"
    BOTH = "both"


def parse_placement(text: str) -> Placement:
    try:
        return Placement(text)
    except ValueError:
        known = ", ".join(p.value for p in Placement)
        raise LabError(f"unknown placement {text!r}", f"use one of {known}") from None


def issuance_at(
    placement: Placement, profile: ClientProfile, policy: Policy
) -> IssuancePolicy | None:
    """The issuance policy `profile` gets under `placement` (None: Keycloak as registered)."""
    if placement is Placement.GATEWAY:
        return profile.issuance
    if profile.client_class.value not in policy.client_policy.operational_classes:
        return profile.issuance
    return IssuancePolicy(
        **{c: Mode.ENFORCE for c in ISSUANCE_CONTROLS},
        max_token_lifetime_s=policy.client_policy.max_token_lifetime_s,
    )


def gateway_modes(placement: Placement) -> dict[str, Mode] | None:
    """The gateway's controls switched for `placement` over its policy (None: as it runs)."""
    if placement is Placement.AS:
        return dict.fromkeys(SHARED_CONTROLS, Mode.OFF)
    return None


def _provision(cfg: LabConfig, profiles: list[ClientProfile]) -> None:
    with KeycloakAdmin(cfg.keycloak_url, cfg.admin_user, cfg.admin_password) as admin:
        for profile in profiles:
            for tenant in profile.tenants:
                apply_profile(admin, profile, tenant, jwks_for(cfg, profile, tenant))


@contextmanager
def placed(cfg: LabConfig, placement: Placement, policy: Policy) -> Iterator[list[str]]:
    """Keycloak's clients provisioned for `placement` (yields the clients whose issuance
    changed); the shipped profiles are provisioned again on exit."""
    shipped = select_profiles(cfg)
    placed_profiles = [
        p.model_copy(update={"issuance": issuance_at(placement, p, policy)}) for p in shipped
    ]
    changed = [p.client_id for p, q in zip(shipped, placed_profiles, strict=True) if p != q]
    if not changed:
        yield []
        return
    try:
        _provision(cfg, placed_profiles)
        yield changed
    finally:
        _provision(cfg, shipped)
