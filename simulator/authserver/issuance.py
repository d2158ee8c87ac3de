"""A client's SMART issuance policy → the lab provider's protocol mapper on that client.

The provider (`keycloak/smart-provider`, mapper type `ISSUANCE_MAPPER_TYPE`) applies at token
issuance the rules `labcore/issuance.py` works out from the client's profile; they travel as
JSON in the mapper's configuration. A client whose policy is absent or all `off` has no such
mapper: Keycloak issues what its registration allows.
"""

from __future__ import annotations

import json
from typing import Any, Final

from labcore.issuance import IssuancePolicy, issuance_rules
from labcore.keycloak_admin import KeycloakAdmin
from labcore.profiles import ClientProfile

ISSUANCE_MAPPER_TYPE: Final = "fhirlab-smart-issuance-policy"
ISSUANCE_MAPPER_NAME: Final = "fhirlab SMART issuance policy"
RULES_KEY: Final = "fhirlab.issuance.rules"


def mapper_representation(profile: ClientProfile, policy: IssuancePolicy) -> dict[str, Any]:
    rules = issuance_rules(profile.client_id, profile.scopes, profile.declared_resources, policy)
    return {
        "name": ISSUANCE_MAPPER_NAME,
        "protocol": "openid-connect",
        "protocolMapper": ISSUANCE_MAPPER_TYPE,
        "config": {
            RULES_KEY: json.dumps(rules, sort_keys=True, separators=(",", ":")),
            "access.token.claim": "true",
            "access.tokenResponse.claim": "true",
        },
    }


def sync_issuance_mapper(
    admin: KeycloakAdmin, realm: str, uuid: str, profile: ClientProfile
) -> str:
    """Make the client's issuance mapper match its profile's `issuance`: 'added', 'updated',
    'removed' or '' (unchanged)."""
    policy = profile.issuance
    path = f"/realms/{realm}/clients/{uuid}/protocol-mappers/models"
    current = [
        m
        for m in admin.expect(admin.request("GET", path), 200).json()
        if m.get("protocolMapper") == ISSUANCE_MAPPER_TYPE
    ]
    if policy is None or not policy.active:
        for mapper in current:
            admin.expect(admin.request("DELETE", f"{path}/{mapper['id']}"), 204)
        return "removed" if current else ""
    wanted = mapper_representation(profile, policy)
    if not current:
        admin.expect(admin.request("POST", path, json=wanted), 201)
        return "added"
    first, *extra = current
    for mapper in extra:
        admin.expect(admin.request("DELETE", f"{path}/{mapper['id']}"), 204)
    if first.get("config") == wanted["config"] and not extra:
        return ""
    admin.expect(
        admin.request("PUT", f"{path}/{first['id']}", json={**wanted, "id": first["id"]}), 204
    )
    return "updated"


def effective_issuance(admin: KeycloakAdmin, realm: str, uuid: str) -> dict[str, Any] | None:
    """The rules Keycloak holds for the client (None: no issuance mapper)."""
    path = f"/realms/{realm}/clients/{uuid}/protocol-mappers/models"
    for mapper in admin.expect(admin.request("GET", path), 200).json():
        if mapper.get("protocolMapper") == ISSUANCE_MAPPER_TYPE:
            rules: dict[str, Any] = json.loads(mapper.get("config", {}).get(RULES_KEY, "{}"))
            return rules
    return None
