"""Stage `compartment` (C08): a patient-context token stays in its patient's compartment.

The stage is driven directly with RequestContexts built from `classify`; batches go through the
real `Pipeline`, and responses through the real `screen`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.classify import ClassifyError, classify
from gateway.context import RequestContext
from gateway.controls import Mode
from gateway.denial import Denial
from gateway.pipeline import Pipeline
from gateway.screen import screen
from gateway.stages.compartment import CompartmentStage, narrowing, patched_elements
from gateway.token_verifier import VerifiedToken
from labcore.scopes import parse_scopes

P = "pat-a-000001"
Q = "pat-a-000002"
STAGE = CompartmentStage()


def token(patient: str | None = P) -> VerifiedToken:
    return VerifiedToken(
        token_id="t-1",
        issuer="https://auth.example/realms/a",
        tenant="a",
        client_id="ai-client",
        subject="user-1",
        scopes=parse_scopes("launch/patient patient/*.cruds"),
        patient=patient,
        encounter=None,
        issued_at=0,
        expires_at=2**31,
        jti=None,
    )


def request(
    method: str,
    path: str,
    query: str = "",
    *,
    body: Any = None,
    form: str | None = None,
    patient: str | None = P,
) -> RequestContext:
    full = f"/fhir/{path}" if path else "/fhir"
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return RequestContext(
        request_id="r-1",
        method=method,
        raw_path=full,
        raw_query=query,
        body=raw,
        fhir=classify(method, full, query, "/fhir", form),
        token=token(patient),
    )


def confine(ctx: RequestContext) -> RequestContext:
    asyncio.run(STAGE.confine(ctx))
    return ctx


def refused(ctx: RequestContext, status: int = 403) -> Denial:
    with pytest.raises(Denial) as caught:
        confine(ctx)
    denial = caught.value
    assert denial.status == status
    if status == 403:
        assert denial.control == "C08"
    assert f"token is bound to patient {P}" in denial.reason
    return denial


def allowed(ctx: RequestContext) -> RequestContext:
    confine(ctx)
    assert [control for control, _ in ctx.resource_checks] == ["C08"]
    return ctx


def check(ctx: RequestContext, body: dict[str, Any]) -> Denial | None:
    """The response checks' verdict on an answer: None if all of it may go out, else the
    refusal as the audit records it (a refused resource, or the entries withheld)."""
    before = len(ctx.findings)
    screened = screen(ctx, body)
    refused = [f for f in ctx.findings[before:] if f.action in ("deny", "filter")]
    if isinstance(screened, Denial) or refused:
        (finding,) = refused
        return Denial(finding.status, finding.reason, finding.control)
    return None


def obs(oid: str, patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{patient}"},
    }


def pat(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid}


def bundle(*entries: tuple[dict[str, Any], str]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": mode}} for r, mode in entries],
    }


def test_stage_declares_c08() -> None:
    assert CompartmentStage.name == "compartment"
    assert [control for control, _ in STAGE.checks()] == ["C08"]


# -- tokens without a patient in context --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "", "_type=Observation"),
        ("GET", "Patient/" + Q, ""),
        ("GET", "Observation", "code=x"),
        ("GET", "Patient/$export", ""),
        ("GET", "Observation/_history", ""),
        ("DELETE", "Observation", "code=x"),
    ],
)
def test_tokens_without_a_patient_pass_untouched(method: str, path: str, query: str) -> None:
    ctx = confine(request(method, path, query, patient=None))
    assert ctx.upstream_params is None
    assert ctx.resource_checks == []


def test_request_without_token_passes_untouched() -> None:
    ctx = request("GET", "Observation")
    ctx.token = None
    assert confine(ctx).upstream_params is None
    assert ctx.resource_checks == []


# -- read, vread, history of an instance ------------------------------------------------------


def test_read_own_patient_is_checked_on_the_way_back() -> None:
    ctx = allowed(request("GET", f"Patient/{P}"))
    assert ctx.upstream_params is None
    assert check(ctx, pat(P)) is None
    denial = check(ctx, pat(Q))  # a read by id: answered as for an id that does not exist
    assert denial is not None and denial.status == 404 and denial.control == "C08"
    assert f"Patient/{Q}" in denial.reason  # the audit's reason (the client's is in test_screen)


@pytest.mark.parametrize(
    "path", [f"Patient/{Q}", f"Patient/{Q}/_history/2", f"Patient/{Q}/_history"]
)
def test_read_of_another_patient_is_refused_up_front(path: str) -> None:
    denial = refused(request("GET", path))
    assert denial.reason == f"token is bound to patient {P}; {path} asks for another patient"


@pytest.mark.parametrize("path", ["Observation/o1", "Observation/o1/_history/3", "Encounter/e1"])
def test_read_of_a_compartment_type_gets_a_response_check(path: str) -> None:
    ctx = allowed(request("GET", path))
    assert check(ctx, obs("o1", P)) is None
    denial = check(ctx, obs("o1", Q))
    assert denial is not None and denial.control == "C08"
    assert denial.reason == (
        f"token is bound to patient {P}; {path} returned Observation/o1, "
        "which is not in that patient's compartment"
    )


def test_history_of_an_instance_checks_every_version() -> None:
    ctx = allowed(request("GET", "Observation/o1/_history"))
    history = {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [{"resource": obs("o1", P)}, {"resource": obs("o1", Q)}],
    }
    assert check(ctx, history) is not None


def test_reference_data_is_readable_but_must_not_name_another_patient() -> None:
    ctx = allowed(request("GET", "Organization/org1"))
    assert check(ctx, {"resourceType": "Organization", "id": "org1", "name": "Clinic"}) is None
    task = {"resourceType": "Task", "id": "t1", "for": {"reference": f"Patient/{Q}"}}
    denial = check(allowed(request("GET", "Task/t1")), task)
    assert denial is not None and f"refers to patient {Q}" in denial.reason


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("Binary/b1", "Binary, which is outside the Patient compartment"),
        ("Binary", "Binary, which is outside the Patient compartment"),
        ("Foo/1", "'Foo', which is not an R4 resource type"),
    ],
)
def test_binary_and_unknown_types_are_refused(path: str, fragment: str) -> None:
    assert fragment in refused(request("GET", path)).reason


# -- search on a type: pinned, another patient, narrowed -----------------------------------------


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("Condition", f"patient={P}"),
        ("Condition", f"patient=Patient/{P}"),
        ("Observation", f"subject=Patient/{P}"),
        ("Observation", f"subject:Patient={P}"),
        ("Observation", f"performer=Patient/{P}"),
        ("Observation", f"subject=Patient/{P},Patient/{P}&code=x"),
        ("Patient", f"_id={P}"),
        ("Appointment", f"actor=Patient/{P}"),
        ("Coverage", f"beneficiary=Patient/{P}"),
    ],
)
def test_search_pinned_to_the_patient_passes_unchanged(path: str, query: str) -> None:
    ctx = allowed(request("GET", path, query))
    assert ctx.upstream_params is None


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("Observation", f"patient={Q}"),
        ("Observation", f"subject=Patient/{Q}"),
        ("Observation", f"subject:Patient={Q}"),
        ("Condition", f"patient={P},{Q}"),
        ("Condition", f"patient={P}&patient={Q}"),
        ("Observation", f"subject=Patient/{P}&performer=Patient/{Q}"),
        ("Observation", f"subject=http://other.example/fhir/Patient/{Q}"),
        ("Patient", f"_id={Q}"),
        ("Patient", f"_id={P},{Q}"),
        ("Device", f"patient={Q}"),
    ],
)
def test_search_naming_another_patient_is_refused(path: str, query: str) -> None:
    denial = refused(request("GET", path, query))
    assert denial.reason.endswith("asks for another patient")


def test_refusal_names_the_patient_and_the_request() -> None:
    denial = refused(request("GET", "Observation", f"patient={Q}"))
    assert denial.reason == (
        f"token is bound to patient {P}; Observation?patient={Q} asks for another patient"
    )


@pytest.mark.parametrize(
    ("path", "added"),
    [
        ("Observation", ("subject", f"Patient/{P}")),
        ("Condition", ("patient", P)),
        ("Encounter", ("patient", P)),
        ("Appointment", ("actor", f"Patient/{P}")),
        ("DocumentReference", ("subject", f"Patient/{P}")),
        ("MedicationRequest", ("subject", f"Patient/{P}")),
        ("AllergyIntolerance", ("patient", P)),
        ("Coverage", ("beneficiary", f"Patient/{P}")),
        ("Patient", ("_id", P)),
    ],
)
def test_search_naming_no_patient_is_narrowed(path: str, added: tuple[str, str]) -> None:
    ctx = allowed(request("GET", path, "status=final"))
    assert ctx.upstream_params == (("status", "final"), added)
    assert narrowing(path, P) == added
    again = allowed(request("GET", path, f"status=final&{added[0]}={quote(added[1], safe='')}"))
    assert again.upstream_params is None  # the narrowed search counts as pinned


def test_unnarrowed_patient_search_is_the_design_example() -> None:
    ctx = allowed(request("GET", "Patient", "name=Smith"))
    assert ctx.upstream_params == (("name", "Smith"), ("_id", P))


def test_narrowing_keeps_what_earlier_stages_set() -> None:
    ctx = request("GET", "Observation", "code=x")
    ctx.upstream_params = (("code", "x"), ("_tag", "https://fhirlab.dev/tenant|a"))
    assert confine(ctx).upstream_params == (
        ("code", "x"),
        ("_tag", "https://fhirlab.dev/tenant|a"),
        ("subject", f"Patient/{P}"),
    )


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("Observation", f"subject={P}"),  # bare id in a polymorphic reference: not a pin
        ("Observation", f"subject=http://other.example/fhir/Patient/{P}"),  # another server
        ("Observation", f"subject=Patient/{P},Group/g1"),
        ("Observation", "subject:identifier=urn:mrn|123"),
        ("Observation", f"subject:Group={P}"),
        ("Observation", f"patient={P}"),  # not a compartment parameter of Observation in R4
        ("Condition", "patient:missing=false"),
        ("Patient", f"_id:not={P}"),
        ("Observation", "subject=Patient/" + P + "\\,Patient/" + Q),
    ],
)
def test_values_that_do_not_pin_are_narrowed_anyway(path: str, query: str) -> None:
    ctx = allowed(request("GET", path, query))
    assert ctx.upstream_params is not None
    assert ctx.upstream_params[-1] == narrowing(path, P)


def test_search_of_reference_data_passes_unchanged() -> None:
    ctx = allowed(request("GET", "Organization", "name=Clinic"))
    assert ctx.upstream_params is None


# -- Patient/<id>/<type> ------------------------------------------------------------------------


def test_own_compartment_search_passes() -> None:
    ctx = allowed(request("GET", f"Patient/{P}/Observation", "code=x"))
    assert ctx.upstream_params is None
    assert allowed(request("GET", f"Patient/{P}/*")).upstream_params is None


@pytest.mark.parametrize(
    ("path", "query", "fragment"),
    [
        (f"Patient/{Q}/Observation", "", "asks for another patient"),
        ("Encounter/e1/Observation", "", "searches the compartment of Encounter/e1"),
        ("Practitioner/d1/Observation", "", "searches the compartment of Practitioner/d1"),
        (f"Patient/{P}/Observation", f"performer=Patient/{Q}", "asks for another patient"),
        (f"Patient/{P}/Observation", "_has:Observation:patient:code=x", "only on Patient"),
    ],
)
def test_other_compartments_are_refused(path: str, query: str, fragment: str) -> None:
    assert fragment in refused(request("GET", path, query)).reason


def test_compartment_search_of_a_type_never_in_it_is_a_bad_request() -> None:
    refused(request("GET", f"Patient/{P}/Organization"), status=400)


# -- system search, history of a type or the system, paging -------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "", "_type=Observation"),
        ("GET", "", ""),
        ("POST", "_search", ""),
        ("GET", "Observation/_history", ""),
        ("GET", "_history", ""),
    ],
)
def test_unbounded_searches_and_histories_are_refused(method: str, path: str, query: str) -> None:
    assert "cannot be narrowed to one patient" in refused(request(method, path, query)).reason


def test_a_page_of_a_confined_search_passes_with_the_response_check() -> None:
    query = "_getpages=3f2a-91&_getpagesoffset=20&_count=20&_bundletype=searchset"
    ctx = allowed(request("GET", "", query))
    assert check(ctx, bundle((obs("o1", Q), "match"))) is not None
    refused(request("GET", "", query + "&name=x"))


# -- _include, _revinclude ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["_include=*", "_revinclude=*", "_include:iterate=*", "_include=Observation:*"],
)
def test_wildcard_includes_are_refused(query: str) -> None:
    assert "wildcard include is unbounded" in refused(request("GET", "Observation", query)).reason


def test_malformed_include_is_a_bad_request() -> None:
    refused(request("GET", "Observation", "_include=nonsense"), status=400)


def test_includes_pass_and_every_included_entry_is_checked() -> None:
    ctx = allowed(request("GET", "Observation", "_include=Observation:subject"))
    assert ctx.upstream_params == (
        ("_include", "Observation:subject"),
        ("subject", f"Patient/{P}"),
    )
    practitioner = {"resourceType": "Practitioner", "id": "d1"}
    outcome = {"resourceType": "OperationOutcome", "issue": []}
    own = bundle((obs("o1", P), "match"), (pat(P), "include"), (practitioner, "include"))
    own["entry"].append({"resource": outcome, "search": {"mode": "outcome"}})
    assert check(ctx, own) is None
    foreign = bundle((obs("o1", P), "match"), (pat(Q), "include"))
    denial = check(ctx, foreign)
    assert denial is not None and denial.status == 403 and denial.control == "C08"
    assert f"Patient/{Q}, which is not in that patient's compartment" in denial.reason


def test_revinclude_on_a_pinned_search_passes() -> None:
    ctx = allowed(request("GET", "Patient", f"_id={P}&_revinclude=Provenance:target"))
    assert ctx.upstream_params is None


def test_revinclude_of_patient_data_from_reference_data_is_refused() -> None:
    denial = refused(request("GET", "Practitioner", "_revinclude=Observation:performer"))
    assert "reverse-includes Observation" in denial.reason
    ctx = allowed(request("GET", "PractitionerRole", "_include=PractitionerRole:practitioner"))
    assert ctx.upstream_params is None


def test_unknown_result_type_is_refused() -> None:
    ctx = allowed(request("GET", "Observation", f"subject=Patient/{P}"))
    denial = check(ctx, bundle(({"resourceType": "Foo", "id": "1"}, "match")))
    assert denial is not None and "unknown type 'Foo'" in denial.reason


# -- chains and _has -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["subject.name=Smith", "subject:Patient.name=Smith", "patient.identifier=x|1"]
)
def test_chains_on_a_compartment_type_are_confined_by_the_narrowing(query: str) -> None:
    ctx = allowed(request("GET", "Observation", query))
    assert ctx.upstream_params is not None
    assert ctx.upstream_params[-1] == ("subject", f"Patient/{P}")


def test_chain_on_a_pinned_search_passes_unchanged() -> None:
    ctx = allowed(request("GET", "Observation", f"subject=Patient/{P}&subject.name=Smith"))
    assert ctx.upstream_params is None


def test_chain_on_reference_data_is_refused() -> None:
    assert "chains organization.name" in (
        refused(request("GET", "Practitioner", "organization.name=x")).reason
    )


def test_has_on_patient_is_confined_to_the_patient() -> None:
    ctx = allowed(request("GET", "Patient", "_has:Observation:patient:code=1234"))
    assert ctx.upstream_params == (("_has:Observation:patient:code", "1234"), ("_id", P))
    pinned = allowed(request("GET", "Patient", f"_id={P}&_has:Observation:subject:code=1234"))
    assert pinned.upstream_params is None


@pytest.mark.parametrize(
    ("path", "query", "fragment"),
    [
        ("Encounter", "_has:Observation:encounter:code=1", "_has is open only on Patient"),
        ("Practitioner", "_has:Observation:performer:code=1", "uses _has"),
        ("Patient", "_has:Observation:focus:code=1", "_has:Observation:focus"),
        ("Patient", "_has:Organization:partof:name=x", "_has:Organization:partof"),
        ("Patient", "_has:Observation:patient:_has:Provenance:target:agent=x", "nests _has"),
        ("Patient", f"_has:Observation:patient:performer=Patient/{Q}", "another patient"),
    ],
)
def test_has_elsewhere_is_refused(path: str, query: str, fragment: str) -> None:
    assert fragment in refused(request("GET", path, query)).reason


@pytest.mark.parametrize("query", ["_query=everyone", "_filter=name eq x"])
def test_named_queries_and_filters_on_reference_data_are_refused(query: str) -> None:
    refused(request("GET", "Organization", quote(query, safe="=")))


def test_filter_on_a_compartment_type_is_anded_with_the_narrowing() -> None:
    ctx = allowed(request("GET", "Observation", quote("_filter=code eq x", safe="=")))
    assert ctx.upstream_params == (("_filter", "code eq x"), ("subject", f"Patient/{P}"))


# -- POST _search ---------------------------------------------------------------------------------


def test_post_search_form_body_is_narrowed() -> None:
    ctx = allowed(request("POST", "Observation/_search", form="code=x"))
    assert ctx.upstream_params == (("code", "x"), ("subject", f"Patient/{P}"))


def test_post_search_form_body_is_pinned_or_refused() -> None:
    pinned = allowed(request("POST", "Condition/_search", form=f"patient={P}&code=x"))
    assert pinned.upstream_params is None
    denial = refused(request("POST", "Condition/_search", form=f"code=x&patient={Q}"))
    assert denial.reason.endswith("asks for another patient")


# -- writes ---------------------------------------------------------------------------------------


def test_create_must_reference_the_patient() -> None:
    ctx = allowed(request("POST", "Observation", body=obs("new", P)))
    assert ctx.upstream_params is None
    denial = refused(request("POST", "Observation", body=obs("new", Q)))
    assert denial.reason == (
        f"token is bound to patient {P}; POST Observation sends Observation content that does "
        "not reference the patient"
    )


def test_create_of_a_patient_needs_a_link_not_an_id() -> None:
    refused(request("POST", "Patient", body=pat(P)))  # the server assigns a new id
    linked = {**pat("new"), "link": [{"other": {"reference": f"Patient/{P}"}, "type": "seealso"}]}
    allowed(request("POST", "Patient", body=linked))


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (None, 403, "did not buffer"),
        (b"<Observation/>", 400, "must be FHIR JSON"),
        (pat(P), 400, "is not a Observation resource"),
    ],
)
def test_create_body_must_be_checkable(body: Any, status: int, fragment: str) -> None:
    assert fragment in refused(request("POST", "Observation", body=body), status).reason


def test_write_of_reference_data_is_refused() -> None:
    org = {"resourceType": "Organization", "id": "x"}
    assert "never in a Patient compartment" in (
        refused(request("POST", "Organization", body=org)).reason
    )


def test_update_checks_the_body() -> None:
    allowed(request("PUT", "Observation/o1", body=obs("o1", P)))
    allowed(request("PUT", f"Patient/{P}", body=pat(P)))
    refused(request("PUT", "Observation/o1", body=obs("o1", Q)))
    refused(request("PUT", "Observation/o1", body=obs("o2", P)), status=400)
    assert "another patient" in refused(request("PUT", f"Patient/{Q}", body=pat(Q))).reason


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("PUT", "Observation", "code=x"),
        ("PATCH", "Observation", "code=x"),
        ("DELETE", "Observation", "code=x"),
        ("DELETE", "Patient", "name=Smith"),
    ],
)
def test_conditional_writes_are_refused(method: str, path: str, query: str) -> None:
    assert "conditional" in refused(request(method, path, query, body=obs("o1", P))).reason


def test_delete_and_patch_only_on_the_patient_itself() -> None:
    allowed(request("DELETE", f"Patient/{P}"))
    allowed(request("PATCH", f"Patient/{P}", body=b"[]"))
    assert "cannot tell" in refused(request("DELETE", "Observation/o1")).reason
    assert "cannot tell" in refused(request("PATCH", "Observation/o1", body=b"[]")).reason
    assert "another patient" in refused(request("DELETE", f"Patient/{Q}")).reason
    assert "cascades" in refused(request("DELETE", f"Patient/{P}", "_cascade=delete")).reason


# -- read-before-write: the stored version decides (a store stands in for HAPI) -------------------


class Stored:
    """Stored resources by (type, id), and the reads made."""

    def __init__(self, *resources: dict[str, Any]) -> None:
        self.resources = {(r["resourceType"], r["id"]): r for r in resources}
        self.reads: list[tuple[str, str]] = []

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        self.reads.append((resource_type, resource_id))
        return self.resources.get((resource_type, resource_id))


def confine_with(store: Stored, ctx: RequestContext) -> RequestContext:
    asyncio.run(CompartmentStage(store).confine(ctx))
    return ctx


def refused_with(store: Stored, ctx: RequestContext, status: int = 403) -> Denial:
    with pytest.raises(Denial) as caught:
        confine_with(store, ctx)
    assert caught.value.status == status
    assert status != 403 or caught.value.control == "C08"
    return caught.value


def test_update_by_id_of_another_patients_resource_is_refused() -> None:
    store = Stored(obs("mine", P), obs("theirs", Q))
    confine_with(store, request("PUT", "Observation/mine", body=obs("mine", P)))
    confine_with(store, request("PUT", "Observation/new-id", body=obs("new-id", P)))  # creates
    denial = refused_with(store, request("PUT", "Observation/theirs", body=obs("theirs", P)))
    assert denial.reason == (
        f"token is bound to patient {P}; PUT Observation/theirs would overwrite "
        "Observation/theirs, which is not in the patient's compartment"
    )
    names = ["mine", "new-id", "theirs"]
    assert store.reads == [("Observation", n) for n in names]
    # the body is checked first: no read for content that is not the patient's anyway
    refused_with(store, request("PUT", "Observation/mine", body=obs("mine", Q)))
    assert len(store.reads) == 3
    # Patient/P names its patient by id: nothing to read
    confine_with(store, request("PUT", f"Patient/{P}", body=pat(P)))
    assert len(store.reads) == 3


def test_delete_and_patch_by_id_need_the_stored_version_to_be_the_patients() -> None:
    store = Stored(obs("mine", P), obs("theirs", Q))
    confine_with(store, request("DELETE", "Observation/mine"))
    confine_with(store, request("DELETE", "Observation/gone"))  # nothing stored: HAPI answers
    assert "would delete Observation/theirs" in (
        refused_with(store, request("DELETE", "Observation/theirs")).reason
    )
    assert (
        "cascades"
        in refused_with(store, request("DELETE", "Observation/mine", "_cascade=delete")).reason
    )
    status = [{"op": "replace", "path": "/status", "value": "amended"}]
    confine_with(store, request("PATCH", "Observation/mine", body=json.dumps(status).encode()))
    assert (
        "would patch Observation/theirs"
        in refused_with(
            store, request("PATCH", "Observation/theirs", body=json.dumps(status).encode())
        ).reason
    )


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "replace", "path": "/subject/reference", "value": f"Patient/{Q}"}],
        [{"op": "remove", "path": "/subject"}],
        [{"op": "move", "from": "/subject", "path": "/focus/0"}],
        [{"op": "replace", "path": "", "value": {}}],
        {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "operation",
                    "part": [
                        {"name": "type", "valueCode": "replace"},
                        {"name": "path", "valueString": "Observation.subject"},
                        {"name": "value", "valueReference": {"reference": f"Patient/{Q}"}},
                    ],
                }
            ],
        },
    ],
)
def test_a_patch_must_leave_the_patient_references_alone(patch: Any) -> None:
    store = Stored(obs("mine", P))
    denial = refused_with(store, request("PATCH", "Observation/mine", body=json.dumps(patch)))
    assert "patches must leave patient references alone" in denial.reason
    assert store.reads == []


LINK_TO_Q = {"other": {"reference": f"Patient/{Q}"}, "type": "seealso"}


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "add", "path": "/link", "value": [LINK_TO_Q]}],
        [{"op": "add", "path": "/link/-", "value": LINK_TO_Q}],
        [{"op": "replace", "path": "/link/0/other/reference", "value": f"Patient/{Q}"}],
        [{"op": "copy", "from": "/generalPractitioner", "path": "/link"}],
        [{"op": "replace", "path": "/id", "value": Q}],
        [{"op": "replace", "path": "", "value": pat(P)}],
        {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "operation",
                    "part": [
                        {"name": "type", "valueCode": "add"},
                        {"name": "path", "valueString": "Patient"},
                        {"name": "name", "valueString": "link"},
                        {"name": "value", "valueReference": {"reference": f"Patient/{Q}"}},
                    ],
                }
            ],
        },
    ],
)
def test_a_patch_of_the_patient_must_leave_its_links_alone(patch: Any) -> None:
    denial = refused(request("PATCH", f"Patient/{P}", body=json.dumps(patch).encode()))
    assert "decides whose compartment the resource is in" in denial.reason


def test_a_patch_of_the_patients_own_details_passes() -> None:
    telecom = [{"op": "add", "path": "/telecom/-", "value": {"system": "phone", "value": "1"}}]
    allowed(request("PATCH", f"Patient/{P}", body=json.dumps(telecom).encode()))
    assert "cannot read" in refused(request("PATCH", f"Patient/{P}", body=b"<xml/>")).reason


def test_a_patient_written_whole_may_link_to_no_other_patient() -> None:
    linked = {**pat(P), "link": [LINK_TO_Q]}
    denial = refused(request("PUT", f"Patient/{P}", body=linked))
    assert denial.reason.endswith(
        f"links the Patient to Patient/{Q}, which would put it in that patient's compartment"
    )
    both = {
        **pat("new"),
        "link": [{"other": {"reference": f"Patient/{P}"}, "type": "seealso"}, LINK_TO_Q],
    }
    refused(request("POST", "Patient", body=both))
    related = {"other": {"reference": "RelatedPerson/r1"}, "type": "seealso"}
    allowed(request("PUT", f"Patient/{P}", body={**pat(P), "link": [related, "junk"]}))


@pytest.mark.parametrize("body", [b"<xml/>", b'{"resourceType": "Observation"}', b"[1]"])
def test_a_patch_the_gateway_cannot_read_is_refused(body: bytes) -> None:
    with pytest.raises(Denial):
        confine_with(Stored(obs("mine", P)), request("PATCH", "Observation/mine", body=body))


@given(
    st.text(max_size=20),
    st.lists(st.text(max_size=8), max_size=3),
    st.sampled_from(["add", "replace", "remove", "move", "copy", "test"]),
)
def test_patched_elements_names_the_first_pointer_token(
    element: str, rest: list[str], op: str
) -> None:
    escaped = [t.replace("~", "~0").replace("/", "~1") for t in (element, *rest)]
    pointer = "/" + "/".join(escaped)
    assert patched_elements([{"op": op, "path": pointer}], "Observation") == {element}
    if not element.startswith("/"):  # not a pointer into the resource: the whole of it
        assert patched_elements([{"op": op, "path": element}], "Observation") == {""}


# -- batch / transaction (through the pipeline, entry by entry) -----------------------------------


def batch_ctx(entries: list[dict[str, Any]]) -> RequestContext:
    body = {"resourceType": "Bundle", "type": "batch", "entry": entries}
    return request("POST", "", body=body)


def run_pipeline(ctx: RequestContext) -> Denial | None:
    pipeline = Pipeline([STAGE], lambda _control: Mode.ENFORCE, "/fhir")
    return asyncio.run(pipeline.run(ctx))


def test_batch_entries_are_narrowed_and_checked_each() -> None:
    ctx = batch_ctx(
        [
            {"request": {"method": "GET", "url": "Observation?code=x"}},
            {"request": {"method": "GET", "url": f"Patient/{P}"}},
            {"request": {"method": "POST", "url": "Observation"}, "resource": obs("n", P)},
        ]
    )
    assert run_pipeline(ctx) is None
    sent = json.loads(ctx.body or b"")
    assert sent["entry"][0]["request"]["url"] == f"Observation?code=x&subject=Patient%2F{P}"
    assert len(ctx.resource_checks) == 1  # one check for all three entries: they are equal
    response = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [{"resource": bundle((obs("o1", Q), "match"))}],
    }
    assert check(ctx, response) is not None


def test_a_large_batch_adds_one_response_check_not_one_per_entry() -> None:
    entries = [{"request": {"method": "GET", "url": f"Observation?code=c{i}"}} for i in range(500)]
    ctx = batch_ctx(entries)
    assert run_pipeline(ctx) is None
    assert len(ctx.resource_checks) == 1
    # the one check still refuses another patient's resource anywhere in the response
    response = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [{"resource": bundle((obs(f"o{i}", P), "match"))} for i in range(499)]
        + [{"resource": bundle((obs("x", Q), "match"))}],
    }
    denial = check(ctx, response)
    assert denial is not None and "Observation/x" in denial.reason


def transaction(*entries: dict[str, Any]) -> RequestContext:
    body = {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}
    return request("POST", "", body=body)


def test_transaction_references_to_an_entry_resolve_to_its_id() -> None:
    me = {
        "fullUrl": "urn:uuid:7f1e",
        "resource": pat(P),
        "request": {"method": "PUT", "url": f"Patient/{P}"},
    }
    observation = {**obs("n", P), "subject": {"reference": "urn:uuid:7f1e"}}
    del observation["id"]
    ctx = transaction(
        me,
        {
            "fullUrl": "urn:uuid:0b2c",
            "resource": observation,
            "request": {"method": "POST", "url": "Observation"},
        },
    )
    assert run_pipeline(ctx) is None
    # the Bundle goes upstream as it came: the server resolves the urn:uuid itself
    assert json.loads(ctx.body or b"")["entry"][1]["resource"]["subject"] == {
        "reference": "urn:uuid:7f1e"
    }


def test_transaction_references_to_a_new_patient_are_refused() -> None:
    new_patient = {
        "fullUrl": "urn:uuid:9a9a",
        "resource": {"resourceType": "Patient"},
        "request": {"method": "POST", "url": "Patient"},
    }
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "urn:uuid:9a9a"},
    }
    entry = {"resource": observation, "request": {"method": "POST", "url": "Observation"}}
    denial = run_pipeline(transaction(entry))
    assert denial is not None and denial.control == "C08"
    denial = run_pipeline(transaction(new_patient, entry))
    assert denial is not None and denial.control == "C08"
    # nor can an entry lend the urn the identity of another patient: that write is refused
    other = {
        "fullUrl": "urn:uuid:9a9a",
        "resource": pat(Q),
        "request": {"method": "PUT", "url": f"Patient/{Q}"},
    }
    denial = run_pipeline(transaction(other, entry))
    assert denial is not None and "entry 0" in denial.reason


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"request": {"method": "GET", "url": f"Patient/{Q}"}}, "asks for another patient"),
        (
            {"request": {"method": "POST", "url": "Observation"}, "resource": obs("n", Q)},
            "content that does not reference the patient",
        ),
        ({"request": {"method": "DELETE", "url": "Observation?code=x"}}, "conditional"),
    ],
)
def test_batch_with_one_entry_outside_is_refused(entry: dict[str, Any], fragment: str) -> None:
    ok = {"request": {"method": "GET", "url": f"Patient/{P}"}}
    denial = run_pipeline(batch_ctx([ok, entry]))
    assert denial is not None and denial.status == 403 and denial.control == "C08"
    assert denial.reason.startswith("entry 1 (") and fragment in denial.reason


# -- operations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"Patient/{P}/$everything"),
        ("GET", f"Patient/{P}/_history/1/$meta"),
        ("GET", "Encounter/e1/$everything"),
        ("GET", "ValueSet/$expand"),
        ("GET", "CodeSystem/c1/$lookup"),
    ],
)
def test_operations_confined_to_the_patient_pass(method: str, path: str) -> None:
    ctx = allowed(request(method, path))
    assert check(ctx, bundle((obs("o1", Q), "match"))) is not None


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        (f"Patient/{Q}/$everything", "asks for another patient"),
        ("Patient/$everything", "runs $everything over every Patient"),
        ("Patient/$match", "runs $match over every Patient"),
        ("Observation/$lastn", "runs $lastn over every Observation"),
        ("$export", "bulk export"),
        ("Patient/$export", "bulk export"),
        (f"Patient/{P}/$export", "bulk export"),
        ("Group/g1/$export", "bulk export"),
        ("$export-poll-status", "bulk export"),
        ("$meta", "system-level operation"),
        ("Observation/o1/$meta", "runs $meta on Observation/o1"),
        ("DocumentReference/d1/$binary-access-read", "runs $binary-access-read"),
    ],
)
def test_other_operations_are_refused(path: str, fragment: str) -> None:
    assert fragment in refused(request("GET", path)).reason


# -- response shaping ----------------------------------------------------------------------------


def test_elements_keep_what_the_response_check_reads() -> None:
    ctx = allowed(request("GET", "Observation", f"subject=Patient/{P}&_elements=code"))
    assert ctx.upstream_params == (
        ("subject", f"Patient/{P}"),
        ("_elements", "code,subject,performer"),
    )
    read = allowed(request("GET", "Observation/o1", "_elements=Observation.code,subject"))
    assert read.upstream_params == (("_elements", "Observation.code,subject,performer"),)
    appt = allowed(request("GET", "Appointment", "_elements=status"))
    assert appt.upstream_params == (
        ("_elements", "status,participant"),
        ("actor", f"Patient/{P}"),
    )


@pytest.mark.parametrize("query", ["_elements=name", "_summary=true", "_summary=text"])
def test_shaping_reference_data_is_refused(query: str) -> None:
    assert "must see the whole resource" in refused(request("GET", "Organization", query)).reason


def test_full_summaries_of_reference_data_pass() -> None:
    assert allowed(request("GET", "Organization", "_summary=count")).upstream_params is None


# -- property: arbitrary Observation queries ------------------------------------------------------

NAMES = [
    "subject",
    "subject:Patient",
    "subject:Group",
    "performer",
    "patient",
    "code",
    "_id",
    "subject.name",
    "patient.identifier",
    "_has:Observation:patient:code",
    "_include",
    "_revinclude",
    "_include:iterate",
    "_elements",
    "_summary",
    "_filter",
    "x:y:z",
    "",
]
VALUES = [
    P,
    Q,
    f"Patient/{P}",
    f"Patient/{Q}",
    f"{P},{Q}",
    f"Patient/{P},Patient/{P}",
    f"Patient/{P},Group/g1",
    f"http://x.example/fhir/Patient/{P}",
    "*",
    "Observation:subject",
    "Observation:*",
    "code",
    "",
    "\\,",
]
# Mostly meaningful names and values, sometimes arbitrary text.
PAIRS = st.tuples(
    st.one_of(*[st.sampled_from(NAMES)] * 8, st.text(max_size=12)),
    st.one_of(*[st.sampled_from(VALUES)] * 2, st.text(max_size=12)),
)
QUERIES = st.one_of(
    st.lists(PAIRS, max_size=5).map(
        lambda pairs: "&".join(f"{quote(n, safe=':.')}={quote(v, safe='/')}" for n, v in pairs)
    ),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40),
)


def pins_patient(params: tuple[tuple[str, str], ...]) -> bool:
    """An independent reading of "pinned" for Observation (subject / performer are its
    compartment parameters in R4)."""
    for name, value in params:
        bare_ok = name in ("subject:Patient", "performer:Patient")
        if name in ("subject", "performer") or bare_ok:
            pieces = value.split(",")
            if all(p == f"Patient/{P}" or (bare_ok and p == P) for p in pieces):
                return True
    return False


def names_other_patient(params: tuple[tuple[str, str], ...]) -> bool:
    for name, value in params:
        bare_ok = name in ("patient", "subject:Patient", "performer:Patient")
        if any(p == f"Patient/{Q}" or (bare_ok and p == Q) for p in value.split(",")):
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(QUERIES)
def test_any_observation_query_is_refused_or_confined(query: str) -> None:
    try:
        ctx = request("GET", "Observation", query)
    except ClassifyError:
        return  # the gateway answers 400 before any stage runs
    try:
        confine(ctx)
    except Denial as denial:
        assert denial.status in (400, 403)
        return
    assert pins_patient(ctx.params), ctx.params
    assert not names_other_patient(ctx.params), ctx.params
    assert [c for c, _ in ctx.resource_checks] == ["C08"]


def test_a_search_page_is_not_a_batch_entry() -> None:
    # HAPI fails on it inside a transaction (500); pages are read one request at a time
    denial = run_pipeline(batch_ctx([{"request": {"method": "GET", "url": "?_getpages=x"}}]))
    assert denial is not None and denial.status == 400 and "not an entry" in denial.reason
