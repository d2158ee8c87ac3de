"""The SMART scopes the lab's realms offer, generated rather than written by hand.

Every SMART scope is its own static Keycloak client scope (`include.in.token.scope=true`), so a
client can be granted exactly `patient/Appointment.rs` and nothing else. The catalogue covers the
resource types the seeder generates, in the three contexts, in SMART v1 (`read`, `write`, `*`) and
v2 (`rs`, `r`, `s`, `cud`, `cruds`) spelling; scopes a client profile names beyond these (granular
`?category=` scopes) are added when that profile is applied.
"""

from __future__ import annotations

from typing import Any

from labcore.scopes import CONTEXTS

LAB_RESOURCE_TYPES = (
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "Appointment",
    "DocumentReference",
    "Group",
)
V1_PERMISSIONS = ("read", "write", "*")
V2_PERMISSIONS = ("rs", "r", "s", "cud", "cruds")

# SMART's non-resource scopes. `openid` is implicit in Keycloak; `offline_access` is built in.
LAUNCH_SCOPES = ("launch", "launch/patient", "launch/encounter")
IDENTITY_SCOPES = ("fhirUser",)
SESSION_SCOPES = ("online_access",)
BUILTIN_SCOPES = frozenset({"openid", "offline_access", "profile", "email", "roles"})

# The claim Keycloak fills with the patient in context (a user-session note written by the
# lab's SMART launch authenticator, see keycloak/smart-provider/).
PATIENT_NOTE = "patient"
ENCOUNTER_NOTE = "encounter"


def resource_scope_names() -> list[str]:
    names = []
    for context in CONTEXTS:
        for rtype in ("*", *LAB_RESOURCE_TYPES):
            for perm in (*V1_PERMISSIONS, *V2_PERMISSIONS):
                names.append(f"{context}/{rtype}.{perm}")
    return names


def catalogue_names() -> list[str]:
    """Every client scope name the lab creates in each realm, in a stable order."""
    return [*LAUNCH_SCOPES, *IDENTITY_SCOPES, *SESSION_SCOPES, *resource_scope_names()]


def _note_mapper(note: str) -> dict[str, Any]:
    return {
        "name": f"smart-{note}",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-usersessionmodel-note-mapper",
        "config": {
            "user.session.note": note,
            "claim.name": note,
            "jsonType.label": "String",
            "access.token.claim": "true",
            "id.token.claim": "false",
            "userinfo.token.claim": "false",
            "introspection.token.claim": "true",
            "access.tokenResponse.claim": "true",
        },
    }


def _fhir_user_mapper() -> dict[str, Any]:
    return {
        "name": "smart-fhirUser",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-usermodel-attribute-mapper",
        "config": {
            "user.attribute": "fhirUser",
            "claim.name": "fhirUser",
            "jsonType.label": "String",
            "access.token.claim": "true",
            "id.token.claim": "true",
            "userinfo.token.claim": "true",
            "introspection.token.claim": "true",
        },
    }


def client_scope(name: str) -> dict[str, Any]:
    """The Keycloak representation of one SMART client scope."""
    mappers: list[dict[str, Any]] = []
    if name in ("launch", "launch/patient"):
        mappers.append(_note_mapper(PATIENT_NOTE))
    if name in ("launch", "launch/encounter"):
        mappers.append(_note_mapper(ENCOUNTER_NOTE))
    if name == "fhirUser":
        mappers.append(_fhir_user_mapper())
    return {
        "name": name,
        "description": f"SMART scope {name}",
        "protocol": "openid-connect",
        "attributes": {
            "include.in.token.scope": "true",
            "display.on.consent.screen": "false",
        },
        "protocolMappers": mappers,
    }


def audience_scope(name: str, audience: str) -> dict[str, Any]:
    """A default client scope that puts the FHIR base URL into every token's `aud`."""
    return {
        "name": name,
        "description": "audience: the lab's FHIR base URL (the gateway)",
        "protocol": "openid-connect",
        "attributes": {"include.in.token.scope": "false", "display.on.consent.screen": "false"},
        "protocolMappers": [
            {
                "name": "fhir-audience",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "config": {
                    "included.custom.audience": audience,
                    "access.token.claim": "true",
                    "id.token.claim": "false",
                    "introspection.token.claim": "true",
                },
            }
        ],
    }
