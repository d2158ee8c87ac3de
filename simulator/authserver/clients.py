"""Client profiles → Keycloak clients, and back.

`apply_profile` creates or updates the client in each of its tenants' realms, idempotently: the
representation is PUT again and the default/optional scope sets are made to match the profile
exactly (scopes it names that the realm lacks, e.g. granular `?category=` scopes, are created).
`effective_client` reads the configuration back from Keycloak, so `fhirlab clients show` prints what
the server will actually do, not what the YAML hoped for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from labcore.keycloak_admin import KeycloakAdmin
from labcore.profiles import Authenticator, ClientProfile
from simulator.authserver.catalogue import client_scope
from simulator.authserver.issuance import effective_issuance, sync_issuance_mapper
from simulator.authserver.realm import AUDIENCE_SCOPE

# Keycloak's own scopes every lab client gets: `basic` carries `sub` and `auth_time`.
BASE_DEFAULT_SCOPES = ("basic", "acr", AUDIENCE_SCOPE)
# `openid` is implicit in Keycloak: never a client scope.
IMPLICIT_SCOPES = frozenset({"openid"})


def client_representation(profile: ClientProfile, jwks: dict[str, Any] | None) -> dict[str, Any]:
    grants = set(profile.grant_types)
    attributes = {
        "access.token.lifespan": str(profile.access_token_lifetime_s),
        "use.refresh.tokens": str(profile.refresh_tokens).lower(),
        "client_credentials.use_refresh_token": "false",
        "pkce.code.challenge.method": "S256" if profile.pkce else "",
        "post.logout.redirect.uris": "+",
        "fhirlab.class": profile.client_class.value,
    }
    representation: dict[str, Any] = {
        "clientId": profile.client_id,
        "name": profile.client_id,
        "description": profile.description,
        "protocol": "openid-connect",
        "enabled": True,
        "publicClient": profile.public,
        "standardFlowEnabled": "authorization_code" in grants,
        "serviceAccountsEnabled": "client_credentials" in grants,
        "directAccessGrantsEnabled": False,
        "implicitFlowEnabled": False,
        "frontchannelLogout": False,
        "consentRequired": False,
        "redirectUris": list(profile.redirect_uris),
        "webOrigins": [],
        "attributes": attributes,
    }
    if profile.authenticator is Authenticator.CLIENT_SECRET:
        representation["clientAuthenticatorType"] = "client-secret"
        representation["secret"] = profile.secret
    elif profile.authenticator is Authenticator.PRIVATE_KEY_JWT:
        if jwks is None:
            raise ValueError(f"{profile.client_id}: private-key-jwt needs a JWKS")
        representation["clientAuthenticatorType"] = "client-jwt"
        attributes.update(
            {
                "use.jwks.url": "false",
                "use.jwks.string": "true",
                "jwks.string": json.dumps(jwks),
                "token.endpoint.auth.signing.alg": "RS384",
            }
        )
    return representation


def wanted_scopes(profile: ClientProfile) -> tuple[list[str], list[str]]:
    """(default, optional) client scope names for the profile."""
    default = [
        *BASE_DEFAULT_SCOPES,
        *(s for s in profile.default_scopes if s not in IMPLICIT_SCOPES),
    ]
    optional = [s for s in profile.scopes if s not in default and s not in IMPLICIT_SCOPES]
    return default, optional


@dataclass(frozen=True)
class Applied:
    tenant: str
    client_id: str
    action: str  # created | updated
    scopes_created: tuple[str, ...]
    issuance: str = ""  # the issuance mapper: added | updated | removed | "" (unchanged)


def _sync_scopes(
    admin: KeycloakAdmin, realm: str, uuid: str, kind: str, wanted: list[str], ids: dict[str, str]
) -> None:
    """Make the client's `kind` (default|optional) scope set exactly `wanted`."""
    path = f"/realms/{realm}/clients/{uuid}/{kind}-client-scopes"
    current = {s["name"]: s["id"] for s in admin.expect(admin.request("GET", path), 200).json()}
    for name, scope_id in current.items():
        if name not in wanted:
            admin.expect(admin.request("DELETE", f"{path}/{scope_id}"), 204)
    for name in wanted:
        if name not in current:
            admin.expect(admin.request("PUT", f"{path}/{ids[name]}"), 204)


def apply_profile(
    admin: KeycloakAdmin, profile: ClientProfile, realm: str, jwks: dict[str, Any] | None
) -> Applied:
    default, optional = wanted_scopes(profile)
    ids = admin.client_scopes(realm)
    created_scopes = []
    for name in (*default, *optional):
        if name not in ids:
            admin.expect(
                admin.request("POST", f"/realms/{realm}/client-scopes", json=client_scope(name)),
                201,
            )
            created_scopes.append(name)
    if created_scopes:
        ids = admin.client_scopes(realm)

    representation = client_representation(profile, jwks)
    uuid = admin.client_uuid(realm, profile.client_id)
    if uuid is None:
        admin.expect(admin.request("POST", f"/realms/{realm}/clients", json=representation), 201)
        uuid = admin.client_uuid(realm, profile.client_id)
        assert uuid is not None
        action = "created"
    else:
        admin.expect(
            admin.request("PUT", f"/realms/{realm}/clients/{uuid}", json=representation), 204
        )
        action = "updated"
    _sync_scopes(admin, realm, uuid, "default", default, ids)
    _sync_scopes(admin, realm, uuid, "optional", optional, ids)
    issuance = sync_issuance_mapper(admin, realm, uuid, profile)
    return Applied(realm, profile.client_id, action, tuple(created_scopes), issuance)


def effective_client(admin: KeycloakAdmin, realm: str, client_id: str) -> dict[str, Any] | None:
    """The client as Keycloak holds it, in the profile's vocabulary (None if absent)."""
    uuid = admin.client_uuid(realm, client_id)
    if uuid is None:
        return None
    rep = admin.expect(admin.request("GET", f"/realms/{realm}/clients/{uuid}"), 200).json()
    attrs = rep.get("attributes", {})
    base = f"/realms/{realm}/clients/{uuid}"
    default = [s["name"] for s in admin.request("GET", f"{base}/default-client-scopes").json()]
    optional = [s["name"] for s in admin.request("GET", f"{base}/optional-client-scopes").json()]
    realm_rep = admin.expect(admin.request("GET", f"/realms/{realm}"), 200).json()
    lifetime = attrs.get("access.token.lifespan") or realm_rep.get("accessTokenLifespan")
    grants = []
    if rep.get("standardFlowEnabled"):
        grants.append("authorization_code")
    if rep.get("serviceAccountsEnabled"):
        grants.append("client_credentials")
    if attrs.get("use.refresh.tokens", "true") == "true":
        grants.append("refresh_token")
    return {
        "tenant": realm,
        "client_id": client_id,
        "class": attrs.get("fhirlab.class", ""),
        "public": rep.get("publicClient", False),
        "authenticator": "none"
        if rep.get("publicClient")
        else {"client-jwt": "private-key-jwt"}.get(
            rep.get("clientAuthenticatorType", ""), "client-secret"
        ),
        "grant_types": grants,
        "access_token_lifetime_s": int(lifetime) if lifetime else None,
        "default_scopes": sorted(default),
        "optional_scopes": sorted(optional),
        "offline_access": "offline_access" in default + optional,
        "pkce": attrs.get("pkce.code.challenge.method", ""),
        "redirect_uris": rep.get("redirectUris", []),
        "issuance": effective_issuance(admin, realm, uuid),
    }
