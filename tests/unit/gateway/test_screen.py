"""What of an answer may go out (`gateway/screen.py`): every resource it holds checked, failing
bundle entries withheld, refusals that name no id the request did not name."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from gateway.context import RequestContext
from gateway.controls import Mode
from gateway.denial import Denial
from gateway.pipeline import Pipeline
from gateway.policy import ClientPolicy
from gateway.screen import Screened, redact_outcomes, resources_of, screen
from gateway.stages.compartment import CompartmentStage
from gateway.stages.scopes import ScopesStage
from gateway.stages.tenant import TENANT_TAG_SYSTEM, TenantStage
from labcore.scopes import parse_scopes
from tests.unit.gateway.test_stage_compartment import P, Q, obs, pat, request

FOREIGN = "pat-a-zz9"  # an id no request below names
SCOPES = "launch/patient " + " ".join(
    f"patient/{t}.rs" for t in ("Patient", "Observation", "Condition", "Group", "Appointment")
)


def checked(method: str, path: str, query: str = "", scopes: str = SCOPES) -> RequestContext:
    """A patient-context request of tenant `a` through C05, C08 and C10 (all enforced)."""
    ctx = request(method, path, query)
    assert ctx.token is not None
    ctx.token = replace(ctx.token, scopes=parse_scopes(scopes))
    policy = ClientPolicy(operational_classes=["operational-ai"], max_token_lifetime_s=900)
    stages = [TenantStage(), ScopesStage(policy), CompartmentStage()]
    pipeline = Pipeline(stages, lambda _control: Mode.ENFORCE)
    assert asyncio.run(pipeline.run(ctx)) is None
    return ctx


def tagged(resource: dict[str, Any], tenant: str = "a") -> dict[str, Any]:
    return {**resource, "meta": {"tag": [{"system": TENANT_TAG_SYSTEM, "code": tenant}]}}


def group(*members: str) -> dict[str, Any]:
    return tagged(
        {
            "resourceType": "Group",
            "id": "g1",
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{m}"}} for m in members],
        }
    )


def searchset(*entries: tuple[dict[str, Any], str]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": sum(1 for _, mode in entries if mode == "match"),
        "entry": [{"resource": r, "search": {"mode": mode}} for r, mode in entries],
    }


def out(screened: Screened | Denial) -> str:
    assert isinstance(screened, Screened)
    return json.dumps(screened.body)


def test_a_group_naming_other_patients_is_withheld_from_a_search() -> None:
    ctx = checked("GET", "Patient", f"_id={P}&_revinclude=Group:member")
    answer = searchset((tagged(pat(P)), "match"), (group(P, FOREIGN), "include"))
    screened = screen(ctx, answer)
    assert isinstance(screened, Screened) and screened.changed
    assert FOREIGN not in out(screened) and "g1" not in out(screened)
    assert screened.body["total"] == 1  # no match was withheld: the count stays
    (finding,) = [f for f in ctx.findings if f.action == "filter"]
    assert finding.reason.startswith("withheld 1 of 2 entries") and FOREIGN in finding.reason
    assert [r.resource["id"] for r in screened.resources] == [P]  # what the audit counts


def test_a_withheld_match_takes_the_total_with_it() -> None:
    ctx = checked("GET", "Observation", f"patient={P}")
    answer = searchset((tagged(obs("o1", P)), "match"), (tagged(obs("o2", FOREIGN)), "match"))
    screened = screen(ctx, answer)
    assert isinstance(screened, Screened)
    assert "total" not in screened.body and FOREIGN not in out(screened)


def test_included_types_the_scopes_do_not_cover_are_withheld() -> None:
    scopes = "launch/patient patient/Patient.rs patient/Appointment.rs"
    ctx = checked("GET", "Patient", f"_id={P}&_revinclude=Condition:subject", scopes)
    condition = tagged(
        {"resourceType": "Condition", "id": "c1", "subject": {"reference": f"Patient/{P}"}}
    )
    screened = screen(ctx, searchset((tagged(pat(P)), "match"), (condition, "include")))
    assert isinstance(screened, Screened) and '"Condition"' not in out(screened)
    (finding,) = [f for f in ctx.findings if f.action == "filter"]
    assert finding.control == "C05"


def test_a_contained_resource_of_an_unreadable_type_is_withheld() -> None:
    scopes = "launch/patient patient/Patient.rs patient/Appointment.rs"
    ctx = checked("GET", "Appointment", f"actor=Patient/{P}", scopes)
    appointment = tagged(
        {
            "resourceType": "Appointment",
            "id": "a1",
            "status": "booked",
            "participant": [{"actor": {"reference": f"Patient/{P}"}, "status": "accepted"}],
            "contained": [{"resourceType": "Condition", "id": "c", "code": {"text": "HIV"}}],
        }
    )
    screened = screen(ctx, searchset((appointment, "match")))
    assert isinstance(screened, Screened) and "HIV" not in out(screened)


def test_a_contained_patient_is_withheld() -> None:
    ctx = checked("GET", "Observation", f"patient={P}")
    observation = tagged({**obs("o1", P), "contained": [{"resourceType": "Patient", "id": "x"}]})
    screened = screen(ctx, searchset((observation, "match")))
    assert isinstance(screened, Screened) and screened.body.get("entry") is None


def test_a_read_by_id_of_a_foreign_resource_is_not_found() -> None:
    ctx = checked("GET", "Observation/o2")
    denial = screen(ctx, tagged(obs("o2", FOREIGN)))
    assert isinstance(denial, Denial) and denial.status == 404 and denial.control == "C08"
    assert "Observation/o2 is not known to this token" in denial.reason
    # the audit record keeps the detail
    assert "returned Observation/o2, which is not in that patient's compartment" in (
        ctx.findings[-1].reason
    )


def test_a_single_answer_of_an_operation_names_no_foreign_id() -> None:
    ctx = checked("GET", f"Patient/{P}/$everything")
    denial = screen(ctx, tagged(obs("o2", FOREIGN)))
    assert isinstance(denial, Screened) or FOREIGN not in denial.reason
    params = {
        "resourceType": "Parameters",
        "parameter": [{"name": "return", "resource": tagged(obs("o3", FOREIGN))}],
    }
    ctx = checked("GET", f"Patient/{P}/$meta")
    denial = screen(ctx, params)
    assert isinstance(denial, Denial) and denial.status == 403 and FOREIGN not in denial.reason
    assert denial.reason.startswith(f"the answer to GET /fhir/Patient/{P}/$meta holds")
    assert FOREIGN in ctx.findings[-1].reason


def test_a_batch_response_entry_that_fails_is_replaced_by_a_refusal() -> None:
    ctx = checked("GET", f"Patient/{P}")
    answer = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [
            {"resource": tagged(pat(P)), "response": {"status": "200 OK"}},
            {"resource": tagged(pat(Q)), "response": {"status": "200 OK"}},
        ],
    }
    screened = screen(ctx, answer)
    assert isinstance(screened, Screened)
    first, second = screened.body["entry"]
    assert first["resource"]["id"] == P
    assert second["response"]["status"] == "403 Forbidden" and Q not in json.dumps(second)


def test_an_export_file_inside_a_binary_counts_its_lines() -> None:
    lines = b"\n".join(json.dumps(tagged(obs(f"o{i}", P))).encode() for i in range(3))
    binary = {
        "resourceType": "Binary",
        "contentType": "application/fhir+ndjson",
        "data": base64.b64encode(lines).decode(),
    }
    assert [r.resource["id"] for r in resources_of(binary)] == ["o0", "o1", "o2"]


def test_what_is_not_a_resource_is_refused_by_every_check() -> None:
    ctx = checked("GET", "Observation", f"patient={P}")
    for junk in ([1, 2], "text", {"no": "type"}):
        screened = screen(
            ctx, {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": junk}]}
        )
        assert isinstance(screened, Screened) and screened.body.get("entry") is None


def test_a_deletion_in_a_history_cannot_be_checked_and_is_withheld() -> None:
    ctx = checked("GET", f"Patient/{P}/_history")
    deleted = {"fullUrl": f"Patient/{FOREIGN}", "request": {"method": "DELETE"}}
    history = {"resourceType": "Bundle", "type": "history", "entry": [deleted]}
    screened = screen(ctx, history)
    assert isinstance(screened, Screened) and FOREIGN not in out(screened)


def test_an_export_manifest_goes_out_and_other_non_resources_do_not() -> None:
    manifest = {"transactionTime": "2026-12-01T00:00:00Z", "output": [{"url": "x/Binary/1"}]}
    ctx = request("GET", "$export-poll-status", "_jobId=1")  # past the stages (backend token)
    ctx.resource_checks.append(("C10", lambda _r: Denial(403, "no", "C10")))
    assert isinstance(screen(ctx, manifest), Screened)
    assert isinstance(screen(checked("GET", f"Patient/{P}"), manifest), Denial)


def test_json_that_is_not_a_resource_passes_no_scope_not_even_a_wildcard() -> None:
    ctx = request("GET", "$graphql", "query=x")
    ctx.token = replace(ctx.token, scopes=parse_scopes("system/*.read"))  # type: ignore[arg-type]
    ctx.client_class = "backend-analytics"
    asyncio.run(ScopesStage(ClientPolicy(operational_classes=[])).covered(ctx))
    assert isinstance(screen(ctx, {"data": {"PatientList": [{"id": FOREIGN}]}}), Denial)


def test_hapi_texts_name_no_resource_the_request_did_not_name() -> None:
    ctx = request("DELETE", f"Patient/{P}")
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "processing",
                "diagnostics": f"Unable to delete Patient/{P}: Observation/{FOREIGN} refers to it",
                "expression": [f"Observation/{FOREIGN}.subject"],
            }
        ],
    }
    wrapped = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [{"response": {"status": "409", "outcome": json.loads(json.dumps(outcome))}}],
    }
    for body in (outcome, wrapped):
        assert redact_outcomes(ctx, body)
        text = json.dumps(body)
        assert FOREIGN not in text and f"Patient/{P}" in text and "Observation/[withheld]" in text


def test_a_binary_holding_a_fhir_resource_is_checked_as_that_resource() -> None:
    foreign = json.dumps(tagged(pat(FOREIGN), "b")).encode()
    binary = {
        "resourceType": "Binary",
        "contentType": "application/fhir+json",
        "data": base64.b64encode(foreign).decode(),
    }
    (inner,) = resources_of(binary)
    assert inner.resource["id"] == FOREIGN
    outcome = {"resourceType": "OperationOutcome", "issue": [{"diagnostics": FOREIGN}]}
    binary["data"] = base64.b64encode(json.dumps(outcome).encode()).decode()
    (unreadable,) = resources_of(binary)  # stored free text, not the server's outcome
    assert unreadable.resource == {}


def test_a_batch_answer_is_checked_whatever_its_entries() -> None:
    ctx = request("POST", "", body={"resourceType": "Bundle", "type": "batch", "entry": []})
    policy = ClientPolicy(operational_classes=["operational-ai"], max_token_lifetime_s=900)
    pipeline = Pipeline([ScopesStage(policy), CompartmentStage()], lambda _c: Mode.ENFORCE)
    ctx.token = replace(ctx.token, scopes=parse_scopes(SCOPES))  # type: ignore[arg-type]
    assert asyncio.run(pipeline.run(ctx)) is None
    denial = screen(ctx, group(P, FOREIGN))
    assert isinstance(denial, Denial) and denial.control == "C08" and FOREIGN not in denial.reason


def test_writing_a_binary_needs_a_scope_like_any_type() -> None:
    policy = ClientPolicy(operational_classes=[])
    for method, path in (("POST", "Binary"), ("PUT", "Binary/b1"), ("DELETE", "Binary/b1")):
        ctx = request(method, path, body=b"plain text")
        ctx.token = replace(ctx.token, scopes=parse_scopes("system/Patient.rs"))  # type: ignore[arg-type]
        ctx.client_class = "analytics-backend"
        with pytest.raises(Denial) as caught:
            asyncio.run(ScopesStage(policy).covered(ctx))
        assert caught.value.control == "C05"
    reading = request("GET", "Binary/b1")  # export output: its lines are checked instead
    reading.token = replace(reading.token, scopes=parse_scopes("system/Patient.rs"))  # type: ignore[arg-type]
    asyncio.run(ScopesStage(policy).covered(reading))
