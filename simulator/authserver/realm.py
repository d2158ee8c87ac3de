"""A tenant's realm: settings, the SMART browser flow, the user profile, the SMART scopes.

`ensure_realm` is idempotent piece by piece: it creates the realm (with its login flow) if it is
missing, then adds whatever user-profile attributes and client scopes the realm lacks. The same code
runs against the native Keycloak and the one in docker compose.

The browser flow ends with the lab's SMART launch authenticator (keycloak/smart-provider/), so the
patient in context is bound by the server: from a signed EHR launch handle, or from the logged-in
user's `patient` attribute for a standalone launch — never from a request parameter.
"""

from __future__ import annotations

from typing import Any

from labcore.keycloak_admin import KeycloakAdmin
from labcore.tenants import Tenant
from simulator.authserver.catalogue import audience_scope, catalogue_names, client_scope

LAUNCH_AUTHENTICATOR = "fhirlab-smart-launch-context"
GATEWAY_CLIENT = "fhirlab-gateway"
SMART_FLOW = "smart browser"
AUDIENCE_SCOPE = "fhir-audience"

# User attributes the lab binds logins to; only an admin may set them (a user who could edit
# `patient` could choose another patient's record for a standalone launch).
BOUND_ATTRIBUTES = {
    "patient": r"^[A-Za-z0-9\-.]{1,64}$",
    "fhirUser": r"^(Patient|Practitioner|PractitionerRole|RelatedPerson)/[A-Za-z0-9\-.]{1,64}$",
}


def _execution(authenticator: str, requirement: str, priority: int, **extra: Any) -> dict[str, Any]:
    return {
        "authenticatorFlow": False,
        "authenticator": authenticator,
        "requirement": requirement,
        "priority": priority,
        **extra,
    }


def _subflow(alias: str, requirement: str, priority: int) -> dict[str, Any]:
    return {
        "authenticatorFlow": True,
        "flowAlias": alias,
        "requirement": requirement,
        "priority": priority,
    }


def _flow(alias: str, top: bool, executions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "alias": alias,
        "providerId": "basic-flow",
        "topLevel": top,
        "builtIn": False,
        "authenticationExecutions": executions,
    }


def realm_representation(tenant: Tenant) -> dict[str, Any]:
    """The realm as created on first provisioning (SMART flow included, scopes added later)."""
    identify, forms = f"{SMART_FLOW} identify", f"{SMART_FLOW} forms"
    return {
        "realm": tenant.realm,
        "displayName": tenant.display_name,
        "enabled": True,
        "sslRequired": "none",  # loopback lab over plain HTTP
        "accessTokenLifespan": 300,
        "revokeRefreshToken": True,
        "refreshTokenMaxReuse": 0,
        "eventsEnabled": True,
        "browserFlow": SMART_FLOW,
        "authenticationFlows": [
            _flow(
                SMART_FLOW,
                True,
                [
                    _subflow(identify, "REQUIRED", 0),
                    _execution(
                        LAUNCH_AUTHENTICATOR,
                        "REQUIRED",
                        1,
                        authenticatorConfig="smart-launch-context",
                    ),
                ],
            ),
            _flow(
                identify,
                False,
                [
                    _execution("auth-cookie", "ALTERNATIVE", 0),
                    _execution("identity-provider-redirector", "ALTERNATIVE", 1),
                    _subflow(forms, "ALTERNATIVE", 2),
                ],
            ),
            _flow(forms, False, [_execution("auth-username-password-form", "REQUIRED", 0)]),
        ],
        "authenticatorConfig": [
            {"alias": "smart-launch-context", "config": {"launch.secret": tenant.launch_secret}}
        ],
        "clients": [gateway_client(tenant)],
    }


def gateway_client(tenant: Tenant) -> dict[str, Any]:
    """The gateway's own confidential client: no flows, it only introspects tokens (C09)."""
    return {
        "clientId": GATEWAY_CLIENT,
        "name": "fhirlab gateway (token introspection)",
        "protocol": "openid-connect",
        "enabled": True,
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": tenant.gateway_secret,
        "standardFlowEnabled": False,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
    }


def user_profile_attribute(name: str, pattern: str) -> dict[str, Any]:
    return {
        "name": name,
        "displayName": f"SMART {name}",
        "multivalued": False,
        "permissions": {"view": ["admin"], "edit": ["admin"]},
        "validations": {"pattern": {"pattern": pattern, "error-message": f"not a valid {name}"}},
    }


def ensure_user_profile(admin: KeycloakAdmin, realm: str) -> list[str]:
    """Declare the bound attributes in the realm's user profile; names of those added."""
    profile = admin.expect(admin.request("GET", f"/realms/{realm}/users/profile"), 200).json()
    have = {a["name"] for a in profile.get("attributes", [])}
    added = [name for name in BOUND_ATTRIBUTES if name not in have]
    if added:
        profile["attributes"].extend(user_profile_attribute(n, BOUND_ATTRIBUTES[n]) for n in added)
        admin.expect(admin.request("PUT", f"/realms/{realm}/users/profile", json=profile), 200)
    return added


def ensure_client_scopes(
    admin: KeycloakAdmin, realm: str, names: list[str], audience: str
) -> list[str]:
    """Create the client scopes the realm lacks (SMART scopes + the audience scope)."""
    existing = admin.client_scopes(realm)
    wanted = [client_scope(n) for n in names if n not in existing]
    if AUDIENCE_SCOPE not in existing:
        wanted.append(audience_scope(AUDIENCE_SCOPE, audience))
    for representation in wanted:
        admin.expect(
            admin.request("POST", f"/realms/{realm}/client-scopes", json=representation), 201
        )
    return [r["name"] for r in wanted]


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def keycloak_default_scopes(admin: KeycloakAdmin) -> dict[str, Any]:
    """Keycloak's own default client scopes, as this server version defines them.

    Read from the master realm's partial export: a realm representation that lists client scopes
    replaces Keycloak's defaults (tokens would lose `sub`), so the new realm must list them too.
    """
    export = admin.expect(
        admin.request(
            "POST",
            "/realms/master/partial-export",
            params={"exportClients": "false", "exportGroupsAndRoles": "false"},
        ),
        200,
    ).json()
    return {
        "clientScopes": _without_ids(export.get("clientScopes", [])),
        "defaultDefaultClientScopes": export.get("defaultDefaultClientScopes", []),
        "defaultOptionalClientScopes": export.get("defaultOptionalClientScopes", []),
        "clientScopeMappings": {},
        "scopeMappings": [m for m in export.get("scopeMappings", []) if "clientScope" in m],
    }


def new_realm_representation(admin: KeycloakAdmin, tenant: Tenant, audience: str) -> dict[str, Any]:
    """Everything a new tenant realm needs in one representation (one admin call, not hundreds)."""
    representation = {**realm_representation(tenant), **keycloak_default_scopes(admin)}
    representation["clientScopes"] += [client_scope(n) for n in catalogue_names()]
    representation["clientScopes"].append(audience_scope(AUDIENCE_SCOPE, audience))
    return representation


def ensure_realm(admin: KeycloakAdmin, tenant: Tenant, audience: str) -> dict[str, list[str]]:
    """Provision one tenant realm; returns what was created, by kind."""
    created: dict[str, list[str]] = {"realm": [], "user_profile": [], "client_scopes": []}
    if not admin.realm_exists(tenant.realm):
        admin.create_realm(new_realm_representation(admin, tenant, audience))
        created["realm"].append(tenant.realm)
    elif admin.client_uuid(tenant.realm, GATEWAY_CLIENT) is None:
        admin.expect(
            admin.request("POST", f"/realms/{tenant.realm}/clients", json=gateway_client(tenant)),
            201,
        )
    created["user_profile"] = ensure_user_profile(admin, tenant.realm)
    created["client_scopes"] = ensure_client_scopes(
        admin, tenant.realm, catalogue_names(), audience
    )
    return created
