"""With Keycloak admin access: the client's registration (C07), the realms it is registered in
(C10) and whether the realm records its token requests as events (C06). Read-only: GETs of
the admin REST API."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from labcore.errors import LabError
from labcore.keycloak_admin import KeycloakAdmin
from simulator.audit.access import AdminAccess
from simulator.audit.probes import Answers, note, put


def realm_of(issuer: str) -> str:
    """`http://host/realms/tenant-a` → `tenant-a` (Keycloak's issuer form)."""
    parts = urlparse(issuer).path.rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != "realms":
        raise LabError(
            f"the issuer {issuer} is not a Keycloak realm's",
            "--keycloak-admin works with a Keycloak authorization server only",
        )
    return parts[-1]


def registration(answers: Answers, access: AdminAccess, issuer: str, client_id: str | None) -> None:
    realm = realm_of(issuer)
    with KeycloakAdmin(access.url, access.user, access.password) as admin:
        _events(answers, admin, realm, client_id)
        if client_id is None:
            return
        found = admin.expect(
            admin.request("GET", f"/realms/{realm}/clients", params={"clientId": client_id}), 200
        ).json()
        if not found:
            raise LabError(f"no client {client_id!r} in the realm {realm}")
        _client_type(answers, realm, found[0])
        _tenancy(answers, admin, realm, client_id)


def _events(answers: Answers, admin: KeycloakAdmin, realm: str, client_id: str | None) -> None:
    """C06 on the authorization server's side: events on, and the audit's own requests among
    them. The resource server's audit trail is not reachable through Keycloak."""
    probe = f"GET admin realms/{realm}/events/config"
    config = admin.expect(admin.request("GET", f"/realms/{realm}/events/config"), 200).json()
    if not config.get("eventsEnabled"):
        put(answers, "C06", probe, "login and token events are not recorded", False)
        return
    kinds = config.get("enabledEventTypes") or []
    kept = config.get("eventsExpiration")
    observed = (
        f"events recorded ({len(kinds) or 'all'} types, kept {f'{kept} s' if kept else 'forever'})"
    )
    put(answers, "C06", probe, observed, True)
    if client_id is not None:
        query = {"client": client_id, "max": 5}
        events = admin.expect(
            admin.request("GET", f"/realms/{realm}/events", params=query), 200
        ).json()
        types = sorted({str(e.get("type")) for e in events})
        observed = f"latest events of {client_id}: {', '.join(types) or 'none'}"
        probe = f"GET admin realms/{realm}/events?client={client_id}"
        put(answers, "C06", probe, observed, bool(events))
    note(answers, "C06", "the resource server's audit trail", "not reachable through Keycloak")


def _client_type(answers: Answers, realm: str, rep: dict[str, Any]) -> None:
    probe = f"GET admin realms/{realm}/clients?clientId={rep.get('clientId')}"
    attributes = rep.get("attributes") or {}
    pkce = attributes.get("pkce.code.challenge.method") or "not required"
    faults = [
        fault
        for fault, present in (
            ("a public client", rep.get("publicClient")),
            ("implicit flow on", rep.get("implicitFlowEnabled")),
            ("password grant on", rep.get("directAccessGrantsEnabled")),
            (f"PKCE {pkce}", rep.get("standardFlowEnabled") and pkce != "S256"),
        )
        if present
    ]
    kind = "public" if rep.get("publicClient") else rep.get("clientAuthenticatorType", "?")
    observed = f"authenticator {kind}, PKCE {pkce}" + (f": {', '.join(faults)}" if faults else "")
    put(answers, "C07", probe, observed, not faults)


def _tenancy(answers: Answers, admin: KeycloakAdmin, realm: str, client_id: str) -> None:
    """C10: one registration per tenant. The same client id in other realms (typically with the
    same credentials) lets one vendor's token work wherever it is registered."""
    realms = [r["realm"] for r in admin.expect(admin.request("GET", "/realms"), 200).json()]
    holders = [
        r
        for r in realms
        if r != "master"
        and admin.expect(
            admin.request("GET", f"/realms/{r}/clients", params={"clientId": client_id}), 200
        ).json()
    ]
    probe = f"GET admin realms/*/clients?clientId={client_id}"
    observed = f"registered in {', '.join(holders)}"
    put(answers, "C10", probe, observed, holders == [realm])
