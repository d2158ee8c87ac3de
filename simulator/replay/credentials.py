"""Get a scenario's token through its real SMART flow (what the vendor's app would do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from labcore.config import LabConfig
from labcore.profiles import Authenticator, ClientProfile
from labcore.tenants import load_tenants
from seed.users import DEMO_PASSWORD
from simulator.authserver.probe import classify
from simulator.replay.model import ScopeProbe
from simulator.scenarios import Bindings, Launch, Scenario, User
from simulator.smart.auth import ClientSecret, PrivateKeyJwt, PublicClient
from simulator.smart.client import SmartClient
from simulator.smart.discovery import discover_issuer
from simulator.smart.ehr import mint_launch
from simulator.smart.errors import SmartError
from simulator.smart.keys import client_key
from simulator.smart.tokens import Token

DEFAULT_CALLBACK = "http://localhost:9999/callback"
PRACTITIONER = "prac-{letter}-000"  # a seeded clinician of the tenant (seed.ids.practitioner_id)


@dataclass
class Credentials:
    """The client used for the session and what the AS gave it (token None: refused or none)."""

    client: SmartClient | None
    token: Token | None
    probe: ScopeProbe | None = None
    error: str | None = None
    refused_scope: bool = False  # the AS refused the request's scopes (invalid_scope)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def client_auth(
    cfg: LabConfig, profile: ClientProfile, tenant: str
) -> PrivateKeyJwt | ClientSecret | PublicClient:
    if profile.authenticator is Authenticator.PRIVATE_KEY_JWT:
        return PrivateKeyJwt(profile.client_id, client_key(cfg.home, tenant, profile.client_id))
    if profile.authenticator is Authenticator.CLIENT_SECRET:
        return ClientSecret(profile.client_id, profile.secret or "")
    return PublicClient(profile.client_id)


def smart_client(
    cfg: LabConfig, profile: ClientProfile, tenant: str, http: httpx.Client | None = None
) -> SmartClient:
    server = discover_issuer(cfg.issuer(tenant), http)
    callback = profile.redirect_uris[0] if profile.redirect_uris else DEFAULT_CALLBACK
    auth: Any = client_auth(cfg, profile, tenant)  # the auth classes satisfy ClientAuth
    return SmartClient(server, auth, callback)


def practitioner_username(tenant: str) -> str:
    return PRACTITIONER.format(letter=tenant.rsplit("-", 1)[-1])


def _login(
    cfg: LabConfig, client: SmartClient, scenario: Scenario, tenant: str, bindings: Bindings
) -> Token:
    scope = scenario.scope
    if scenario.launch is Launch.BACKEND:
        return client.client_credentials(scope)
    options: dict[str, Any] = {}
    username = bindings.my_patient
    if scenario.launch is Launch.EHR:
        realm = load_tenants(cfg.repo).get(tenant)
        options["launch"] = mint_launch(
            realm, scenario.client, bindings.my_patient, encounter=bindings.my_encounter
        )
        if scenario.user is User.PRACTITIONER:
            username = practitioner_username(tenant)
    return client.authorization_code(username, DEMO_PASSWORD, scope, **options)


def obtain(
    cfg: LabConfig,
    scenario: Scenario,
    profile: ClientProfile,
    tenant: str,
    bindings: Bindings,
    http: httpx.Client | None = None,
) -> Credentials:
    """The session's token; with `scope_probe`, the AS's answer classified (C11)."""
    if scenario.launch is Launch.NONE:
        return Credentials(None, None)
    client = smart_client(cfg, profile, tenant, http)
    requested = scenario.scopes
    try:
        token = _login(cfg, client, scenario, tenant, bindings)
    except SmartError as exc:
        probe = ScopeProbe("refused", requested, (), exc.error) if scenario.scope_probe else None
        return Credentials(client, None, probe, str(exc), exc.error == "invalid_scope")
    probe = None
    if scenario.scope_probe:
        granted = token.granted_scopes
        probe = ScopeProbe(classify(requested, granted), requested, granted)
    return Credentials(client, token, probe)
