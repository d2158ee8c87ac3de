"""The SMART issuance policy: what the authorization server grants a client, decided when it
issues a token (the lab's Keycloak provider, `keycloak/smart-provider`, `IssuancePolicyMapper`).

A client profile's `issuance` block switches each rule like the gateway's controls (enforce /
monitor / off); without it, Keycloak issues what the registration allows, as before:

- C01 patient-level only: `user/` and `system/` resource scopes are not granted;
- C02 lifetime: the access token expires at most `max_token_lifetime_s` after it is issued;
- C03 no offline access: `offline_access` is not granted and no refresh token is returned;
- C04 no bulk export: `system/` scopes (the scopes of a bulk `$export`) are not granted, and a
  client-credentials request, which only `system/` scopes serve, gets no token;
- C05 resource-specific: a wildcard scope is narrowed to the client's declared resources;
- C11 down-scoping: only what the request asked for is granted (a registration's default
  scopes the request did not name are not), and the token response's `scope` says what was.

`monitor` issues the token unchanged and records what `enforce` would have done. Every decision
is a Keycloak event (`IssuancePolicyMapper`'s docstring says which).

The scope grammar is the lab's own (`labcore/scopes.py`). Rather than write it a second time in
Java, this module works out once per client what each scope its registration allows becomes
under the policy (`issuance_rules`); the provider looks each granted scope up in that table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from labcore.controls import Mode, ModeField
from labcore.scopes import SPECIAL_SCOPES, ScopeError, parse_scope

ISSUANCE_CONTROLS: Final[tuple[str, ...]] = ("C01", "C02", "C03", "C04", "C05", "C11")
RULES_VERSION: Final = 1


class IssuancePolicy(BaseModel):
    """A client's issuance rules (the `issuance` block of its profile)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    C01: ModeField = Mode.OFF
    C02: ModeField = Mode.OFF
    C03: ModeField = Mode.OFF
    C04: ModeField = Mode.OFF
    C05: ModeField = Mode.OFF
    C11: ModeField = Mode.OFF
    max_token_lifetime_s: int = Field(default=900, ge=30, le=7 * 24 * 3600)

    def mode(self, control: str) -> Mode:
        mode: Mode = getattr(self, control)
        return mode

    @property
    def active(self) -> bool:
        return any(self.mode(c) is not Mode.OFF for c in ISSUANCE_CONTROLS)

    def with_modes(self, modes: dict[str, Mode]) -> IssuancePolicy:
        unknown = sorted(set(modes) - set(ISSUANCE_CONTROLS))
        if unknown:
            raise ValueError(f"not issuance controls: {', '.join(unknown)}")
        return self.model_copy(update=modes)


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """One rule's verdict on one scope."""

    control: str
    mode: Mode  # enforce (applied) or monitor (recorded only)
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"control": self.control, "mode": self.mode.value, "reason": self.reason}


@dataclasses.dataclass(frozen=True, slots=True)
class ScopeFate:
    """What one registered scope becomes when granted: `to` replaces it (empty: not granted)."""

    scope: str
    to: tuple[str, ...]
    decisions: tuple[Decision, ...]

    @property
    def changed(self) -> bool:
        return self.to != (self.scope,)


def scope_fate(scope: str, policy: IssuancePolicy, declared: Iterable[str]) -> ScopeFate:
    """Apply the scope rules in order (C04, C01, C05, C03); an enforced rule that grants nothing
    ends the chain, a monitored one is recorded and the scope goes on unchanged."""
    if scope in SPECIAL_SCOPES or not _is_resource_scope(scope):
        if scope == "offline_access":
            reason = "offline_access is not issued to this client (no refresh token)"
            return _chain(scope, [("C03", (), reason)], policy)
        return ScopeFate(scope, (scope,), ())
    parsed = parse_scope(scope)
    steps: list[tuple[str, tuple[str, ...], str]] = []
    if parsed.context == "system":
        steps.append(("C04", (), "system scopes (bulk export) are not issued to this client"))
    if parsed.context != "patient":
        steps.append(("C01", (), f"{parsed.context}-level scopes: patient-level scopes only"))
    if parsed.is_wildcard:
        types = sorted(set(declared) - {"*"})
        narrowed = tuple(dataclasses.replace(parsed, resource_type=t).canonical for t in types)
        where = ", ".join(types) if types else "no resource type (none declared)"
        steps.append(("C05", narrowed, f"wildcard narrowed to the declared resources: {where}"))
    return _chain(scope, steps, policy)


def _chain(
    scope: str, steps: list[tuple[str, tuple[str, ...], str]], policy: IssuancePolicy
) -> ScopeFate:
    current: tuple[str, ...] = (scope,)
    decisions: list[Decision] = []
    for control, to, reason in steps:
        mode = policy.mode(control)
        if mode is Mode.OFF:
            continue
        decisions.append(Decision(control, mode, reason))
        if mode is Mode.ENFORCE:
            current = to
            if not current:
                break
    return ScopeFate(scope, current, tuple(decisions))


def _is_resource_scope(scope: str) -> bool:
    try:
        parse_scope(scope)
    except ScopeError:
        return False
    return True


def declared_types(scopes: Iterable[str], declared: Iterable[str]) -> tuple[str, ...]:
    """The resource types a client declared, or (by default) those its scopes name."""
    explicit = tuple(declared)
    if explicit:
        return explicit
    named = []
    for scope in scopes:
        if _is_resource_scope(scope):
            named.append(parse_scope(scope).resource_type)
    return tuple(dict.fromkeys(t for t in named if t != "*"))


def issuance_rules(
    client_id: str, scopes: Iterable[str], declared: Iterable[str], policy: IssuancePolicy
) -> dict[str, Any]:
    """The provider's configuration for one client: every registered scope's fate (those left
    unchanged and unremarked are omitted), the lifetime cap and the down-scoping mode."""
    registered = tuple(scopes)
    types = declared_types(registered, declared)
    fates = {}
    for scope in registered:
        fate = scope_fate(scope, policy, types)
        if fate.changed or fate.decisions:
            fates[scope] = {"to": list(fate.to), "decisions": [d.as_json() for d in fate.decisions]}
    return {
        "version": RULES_VERSION,
        "client_id": client_id,
        "scopes": fates,
        "lifetime": {"mode": policy.C02.value, "max_s": policy.max_token_lifetime_s},
        "offline": policy.C03.value,
        "service_account": policy.C04.value,
        "down_scope": policy.C11.value,
    }
