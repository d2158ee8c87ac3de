"""to_audit_event: IHE BALP-shaped R4 AuditEvents that validate as FHIR (R4B models)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from gateway.audit import AuditRecord, to_audit_event
from tests.unit.gateway.audit.helpers import record

BASE = "https://gateway.example:8443/fhir"
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."


def event(rec: AuditRecord) -> dict[str, Any]:
    data = to_audit_event(rec, BASE)
    AuditEvent.model_validate(data)  # raises when not a valid AuditEvent
    return data


def agent_codes(data: dict[str, Any]) -> list[str]:
    return [agent["type"]["coding"][0]["code"] for agent in data["agent"]]


def test_patient_search_is_a_balp_patient_query() -> None:
    rec = record(
        path="/fhir/Observation",
        query="patient=p1&category=laboratory",
        interaction="search-type",
        resource_type="Observation",
        patients=("p1", "p2"),
        remote_addr="10.1.2.3",
    )
    data = event(rec)
    assert data["meta"]["profile"] == [BALP + "PatientQuery"]
    assert data["type"]["code"] == "rest"
    assert data["subtype"] == [
        {"system": "http://hl7.org/fhir/restful-interaction", "code": "search-type"}
    ]
    assert (data["action"], data["outcome"]) == ("E", "0")
    assert data["recorded"] == "2024-06-10T06:13:20.000Z"
    client, server, user = data["agent"]
    assert agent_codes(data) == ["110153", "110152", "IRCP"]
    assert client["who"] == {"identifier": {"value": "scheduler"}, "display": "scheduler"}
    assert client["network"] == {"address": "10.1.2.3", "type": "2"}
    assert (client["requestor"], server["requestor"], user["requestor"]) == (False, False, True)
    assert server["network"] == {"address": BASE, "type": "5"}
    assert user["who"]["identifier"]["value"] == "user-1" and user["policy"] == ["jti-1"]
    assert data["source"]["observer"]["identifier"]["value"] == BASE
    assert data["source"]["site"] == "gateway.example:8443"
    transaction, query, *patients = data["entity"]
    assert transaction["what"]["identifier"]["value"] == "req-0"
    assert transaction["type"]["code"] == "XrequestId"
    assert (query["type"]["code"], query["role"]["code"]) == ("2", "24")
    decoded = base64.b64decode(query["query"]).decode()
    assert decoded == "/fhir/Observation?patient=p1&category=laboratory"
    assert [p["what"]["reference"] for p in patients] == ["Patient/p1", "Patient/p2"]
    assert {(p["type"]["code"], p["role"]["code"]) for p in patients} == {("1", "1")}


def test_read_uses_the_read_pattern_and_references_the_resource() -> None:
    data = event(record(path="/fhir/Patient/p1/_history/3", interaction="vread"))
    assert data["meta"]["profile"] == [BALP + "PatientRead"]
    assert data["action"] == "R"
    assert agent_codes(data) == ["110152", "110153", "IRCP"]
    entity = data["entity"][1]
    assert entity["what"] == {"reference": "Patient/p1/_history/3"}
    assert (entity["type"]["code"], entity["role"]["code"]) == ("2", "4")


@pytest.mark.parametrize(
    ("interaction", "method", "path", "action", "user_code", "profile"),
    [
        ("create", "POST", "/fhir/Observation", "C", "AUT", "Create"),
        ("update", "PUT", "/fhir/Observation/o1", "U", "AUT", "Update"),
        ("patch", "PATCH", "/fhir/Observation/o1", "U", "AUT", "Update"),
        ("delete", "DELETE", "/fhir/Observation/o1", "D", "AUT", "Delete"),
        ("operation", "GET", "/fhir/Patient/p1/$everything", "E", "IRCP", None),
        ("capabilities", "GET", "/fhir/metadata", "R", "IRCP", None),
        ("history-type", "GET", "/fhir/Observation/_history", "E", "IRCP", None),
    ],
)
def test_each_interaction_maps_to_its_pattern(
    interaction: str, method: str, path: str, action: str, user_code: str, profile: str | None
) -> None:
    rec = record(interaction=interaction, method=method, path=path, patients=(), resource_type=None)
    data = event(rec)
    assert data["action"] == action
    assert data["agent"][2]["type"]["coding"][0]["code"] == user_code
    if profile is None:
        assert "meta" not in data
    else:
        assert data["meta"]["profile"] == [BALP + profile]
    if interaction == "create":
        assert data["entity"][1]["what"] == {"display": "/fhir/Observation"}


def test_a_denied_request_is_a_failure_without_a_profile_claim() -> None:
    rec = record(
        decision="deny", control="C08", reason="Patient/p2 is outside the compartment", status=403
    )
    data = event(rec)
    assert data["outcome"] == "4"
    assert "meta" not in data
    assert data["outcomeDesc"] == "deny by C08: Patient/p2 is outside the compartment"
    assert event(record(status=502))["outcome"] == "8"


def test_monitor_mode_is_a_success_that_says_what_would_have_been_denied() -> None:
    data = event(record(decision="monitor", control="C05", reason="wildcard scope"))
    assert data["outcome"] == "0"
    assert data["outcomeDesc"] == "monitor by C05: wildcard scope"


def test_a_backend_client_without_a_user_is_the_requestor() -> None:
    data = event(record(subject="scheduler", patients=(), token_id="sha256:abcd"))
    assert len(data["agent"]) == 2
    client = data["agent"][0]
    assert client["requestor"] is True and client["policy"] == ["sha256:abcd"]


def test_an_unauthenticated_unclassifiable_request_still_validates() -> None:
    rec = AuditRecord(ts=0.0, request_id="r", method="GET", path="/x", decision="deny", status=401)
    data = event(rec)
    assert "subtype" not in data and data["outcome"] == "4"
    assert data["agent"][0]["who"]["identifier"]["value"] == "unknown-client"
