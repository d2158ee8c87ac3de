"""An audit record as a FHIR R4 `AuditEvent` in the IHE BALP shape (pure; no I/O).

IHE Basic Audit Log Patterns (https://profiles.ihe.net/ITI/BALP/) give one pattern per RESTful
interaction; the one used is chosen from the record:

| interactions | action | client / server agent type | user agent type | entities |
|---|---|---|---|---|
| read, vread, history-instance, capabilities | R | DCM 110152 / 110153 | IRCP | data |
| searches, history-type/-system, operations, batch | E | DCM 110153 / 110152 | IRCP | query |
| create, update, patch | C / U | DCM 110153 / 110152 | AUT | data |
| delete | D | DCM 110150 / custodian | AUT | data |

plus, always, the transaction entity (the request id as X-Request-Id) and one `Patient/<id>`
entity per patient touched. `meta.profile` names the BALP profile (Read, Query, Create, Update,
Delete; `Patient...` when patients were touched) only for the interactions it describes and only
for successful requests: BALP fixes `outcome` to success; failures (`4` for 4xx, `8` for 5xx)
follow the same shape without the claim, the control and reason in `outcomeDesc`. History,
operations, batch and capabilities get the shape without a claim.

The user agent (the token's `sub`, when it differs from the client id) is the requestor, with
the token id as its `policy`; without a user, the client agent is the requestor.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from gateway.audit.record import AuditRecord

__all__ = ["to_audit_event"]

DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
BALP: Final = "https://profiles.ihe.net/ITI/BALP"

_READS: Final = frozenset({"read", "vread", "history-instance", "capabilities"})
_WRITES: Final = {"create": "C", "update": "U", "patch": "U", "delete": "D"}
# restful-interaction codes (R4); search-compartment is a kind of "search" there
_SUBTYPE: Final = {
    "search-compartment": "search",
    **{
        code: code
        for code in (
            *("read", "vread", "update", "patch", "delete", "create", "capabilities"),
            *("history", "history-instance", "history-type", "history-system"),
            *("search", "search-type", "search-system", "transaction", "batch", "operation"),
        )
    },
}
# the interactions each BALP profile describes (others get the shape without the claim)
_PROFILE: Final = {
    "read": "Read",
    "vread": "Read",
    "search-type": "Query",
    "search-system": "Query",
    "search-compartment": "Query",
    "create": "Create",
    "update": "Update",
    "patch": "Update",
    "delete": "Delete",
}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _action(interaction: str) -> str:
    if interaction in _READS:
        return "R"
    return _WRITES.get(interaction, "E")


def _outcome(status: int) -> str:
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def _recorded(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _agents(record: AuditRecord, action: str, gateway_base: str) -> list[dict[str, Any]]:
    if action == "R":
        client_type, server_type = (
            _coding(DCM, "110152", "Destination Role ID"),
            _coding(DCM, "110153", "Source Role ID"),
        )
    elif action == "D":
        client_type = _coding(DCM, "110150", "Application")
        server_type = _coding(
            "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
            "custodian",
            "Custodian",
        )
    else:
        client_type, server_type = (
            _coding(DCM, "110153", "Source Role ID"),
            _coding(DCM, "110152", "Destination Role ID"),
        )
    client_id = record.client_id or "unknown-client"
    has_user = bool(record.subject) and record.subject != record.client_id
    client: dict[str, Any] = {
        "type": {"coding": [client_type]},
        "who": {"identifier": {"value": client_id}, "display": client_id},
        "requestor": not has_user,
    }
    if record.remote_addr:
        client["network"] = {"address": record.remote_addr, "type": "2"}
    server = {
        "type": {"coding": [server_type]},
        "who": {"identifier": {"value": gateway_base}, "display": "fhirlab gateway"},
        "requestor": False,
        "network": {"address": gateway_base, "type": "5"},
    }
    agents: list[dict[str, Any]] = [client, server]
    if has_user:
        user_code = (
            ("IRCP", "information recipient")
            if action in ("R", "E")
            else ("AUT", "author (originator)")
        )
        user: dict[str, Any] = {
            "type": {"coding": [_coding(PARTICIPATION, *user_code)]},
            "who": {"identifier": {"value": record.subject}, "display": record.subject},
            "requestor": True,
        }
        if record.token_id:
            user["policy"] = [record.token_id]
        agents.append(user)
    elif record.token_id:
        client["policy"] = [record.token_id]
    return agents


def _relative(record: AuditRecord, gateway_base: str) -> str:
    base_path = urlsplit(gateway_base).path.rstrip("/")
    path = record.path
    if base_path and path.startswith(base_path + "/"):
        path = path[len(base_path) :]
    return path.lstrip("/")


def _entities(record: AuditRecord, action: str, gateway_base: str) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if record.request_id:
        entities.append(
            {
                "what": {"identifier": {"value": record.request_id}},
                "type": _coding(f"{BALP}/CodeSystem/BasicAuditEntityType", "XrequestId"),
            }
        )
    if action == "E":
        target = record.path + (f"?{record.query}" if record.query else "")
        entities.append(
            {
                "type": _coding(ENTITY_TYPE, "2", "System Object"),
                "role": _coding(OBJECT_ROLE, "24", "Query"),
                "query": base64.b64encode(target.encode("utf-8")).decode("ascii"),
            }
        )
    else:
        relative = _relative(record, gateway_base)
        what: dict[str, Any]
        if "/" in relative:
            what = {"reference": relative}
        elif record.resource_type:
            what = {"type": record.resource_type}
        else:
            what = {"display": record.path or "/"}
        entities.append(
            {
                "what": what,
                "type": _coding(ENTITY_TYPE, "2", "System Object"),
                "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
            }
        )
    for patient in record.patients:
        entities.append(
            {
                "what": {"reference": f"Patient/{patient}"},
                "type": _coding(ENTITY_TYPE, "1", "Person"),
                "role": _coding(OBJECT_ROLE, "1", "Patient"),
            }
        )
    return entities


def to_audit_event(record: AuditRecord, gateway_base: str) -> dict[str, Any]:
    """The R4 (and R4B) `AuditEvent` JSON for one request; `gateway_base` is the FHIR base URL
    clients see (e.g. `https://gateway.example/fhir`), used for the server and observer."""
    action = _action(record.interaction)
    event: dict[str, Any] = {"resourceType": "AuditEvent"}
    outcome = _outcome(record.status)
    name = _PROFILE.get(record.interaction)
    if name and outcome == "0" and record.decision != "deny":
        profile = ("Patient" + name) if record.patients else name
        event["meta"] = {"profile": [f"{BALP}/StructureDefinition/IHE.BasicAudit.{profile}"]}
    event["type"] = _coding(
        "http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "Restful Operation"
    )
    subtype = _SUBTYPE.get(record.interaction)
    if subtype:
        event["subtype"] = [_coding("http://hl7.org/fhir/restful-interaction", subtype)]
    event["action"] = action
    event["recorded"] = _recorded(record.ts)
    event["outcome"] = outcome
    description = _outcome_description(record)
    if description:
        event["outcomeDesc"] = description
    event["agent"] = _agents(record, action, gateway_base)
    event["source"] = {
        "site": urlsplit(gateway_base).netloc or gateway_base,
        "observer": {"identifier": {"value": gateway_base}, "display": "fhirlab gateway"},
        "type": [
            _coding(
                "http://terminology.hl7.org/CodeSystem/security-source-type",
                "4",
                "Application Server",
            )
        ],
    }
    event["entity"] = _entities(record, action, gateway_base)
    return event


def _outcome_description(record: AuditRecord) -> str:
    parts = []
    if record.decision != "allow":
        parts.append(record.decision + (f" by {record.control}" if record.control else ""))
    if record.reason:
        parts.append(record.reason)
    return ": ".join(parts)
