"""C10 on writes: the written resource is stamped with the token's tenant; a write by id must
change only a resource of the token's tenant (read-before-write)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.classify import classify
from gateway.context import RequestContext
from gateway.controls import Mode
from gateway.denial import Denial
from gateway.pipeline import Pipeline
from gateway.stages.compartment import CompartmentStage
from gateway.stages.tenant import (
    TENANT_TAG_SYSTEM,
    SameTenant,
    TenantStage,
    stamp,
    stamp_entries,
    tenant_of,
)
from gateway.token_verifier import VerifiedToken
from labcore.scopes import parse_scopes


def test_untagged_resource_is_stamped_and_other_tags_kept() -> None:
    body = json.dumps(
        {"resourceType": "Appointment", "meta": {"tag": [{"system": "x", "code": "y"}]}}
    ).encode()
    stamped = json.loads(stamp(body, "tenant-a"))
    assert tenant_of(stamped) == "tenant-a"
    assert {"system": "x", "code": "y"} in stamped["meta"]["tag"]


def test_same_tenant_is_untouched() -> None:
    body = json.dumps(
        {"resourceType": "Patient", "meta": {"tag": [{"system": TENANT_TAG_SYSTEM, "code": "t"}]}}
    ).encode()
    assert stamp(body, "t") is body


def test_another_tenants_resource_is_refused() -> None:
    body = json.dumps(
        {"resourceType": "Patient", "meta": {"tag": [{"system": TENANT_TAG_SYSTEM, "code": "b"}]}}
    ).encode()
    with pytest.raises(Denial) as caught:
        stamp(body, "a")
    assert caught.value.status == 403 and caught.value.control == "C10"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"no": "type"}', b"%PDF-1.7"])
def test_a_write_that_cannot_be_tagged_is_refused(body: bytes) -> None:
    with pytest.raises(Denial) as caught:  # it would be stored in no tenant (a raw Binary)
        stamp(body, "a")
    assert caught.value.status == 400 and caught.value.control == "C10"


# -- read-before-write: the stored version of a write by id must be this tenant's ----------------


def tagged(rtype: str, rid: str, tenant: str | None) -> dict[str, Any]:
    meta = {"tag": [{"system": TENANT_TAG_SYSTEM, "code": tenant}]} if tenant else {}
    return {"resourceType": rtype, "id": rid, "meta": meta}


def token(tenant: str = "a", patient: str | None = None) -> VerifiedToken:
    return VerifiedToken(
        token_id="t-1",
        issuer=f"https://auth.example/realms/{tenant}",
        tenant=tenant,
        client_id="c",
        subject="u",
        scopes=parse_scopes("launch/patient patient/*.cruds system/*.cruds"),
        patient=patient,
        encounter=None,
        issued_at=0,
        expires_at=2**31,
        jti=None,
    )


def request(
    method: str, path: str, query: str = "", body: Any = None, patient: str | None = None
) -> RequestContext:
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    full = f"/fhir/{path}" if path else "/fhir"
    return RequestContext(
        request_id="r-1",
        method=method,
        raw_path=full,
        raw_query=query,
        body=raw,
        fhir=classify(method, full, query, "/fhir"),
        token=token(patient=patient),
    )


class Stored:
    """Stored resources by (type, id), and the reads made."""

    def __init__(self, *resources: dict[str, Any]) -> None:
        self.resources = {(r["resourceType"], r["id"]): r for r in resources}
        self.reads: list[tuple[str, str]] = []

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        self.reads.append((resource_type, resource_id))
        return self.resources.get((resource_type, resource_id))


STORE = Stored(
    tagged("Patient", "mine", "a"),
    tagged("Patient", "theirs", "b"),
    tagged("Patient", "nobodys", None),
    tagged("Binary", "bin", None),
)
STATUS_PATCH = [{"op": "replace", "path": "/active", "value": False}]


def bind(ctx: RequestContext, store: Stored = STORE) -> RequestContext:
    asyncio.run(TenantStage(store).bind(ctx))
    return ctx


def refused(ctx: RequestContext, store: Stored = STORE) -> Denial:
    with pytest.raises(Denial) as caught:
        bind(ctx, store)
    assert caught.value.status == 403 and caught.value.control == "C10"
    return caught.value


@pytest.mark.parametrize(
    ("method", "body"),
    [("PUT", tagged("Patient", "theirs", None)), ("PATCH", STATUS_PATCH), ("DELETE", None)],
)
def test_write_by_id_of_another_tenants_resource_is_refused(method: str, body: Any) -> None:
    denial = refused(request(method, "Patient/theirs", body=body))
    verb = {"PUT": "overwrite", "PATCH": "patch", "DELETE": "delete"}[method]
    assert denial.reason == (
        f"{method} Patient/theirs would {verb} a resource of tenant b; this token is for a"
    )


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_write_by_id_of_an_untagged_resource_is_refused(method: str) -> None:
    body = {"PUT": tagged("Patient", "nobodys", None), "PATCH": STATUS_PATCH}.get(method)
    assert (
        "a resource of no tenant" in refused(request(method, "Patient/nobodys", body=body)).reason
    )


def test_write_by_id_of_own_or_unstored_resource_passes() -> None:
    store = Stored(*STORE.resources.values())
    bind(request("PUT", "Patient/mine", body=tagged("Patient", "mine", None)), store)
    bind(request("PATCH", "Patient/mine", body=STATUS_PATCH), store)
    bind(request("DELETE", "Patient/mine"), store)
    created = bind(request("PUT", "Patient/new", body=tagged("Patient", "new", None)), store)
    assert tenant_of(json.loads(created.body or b"")) == "a"  # an update that creates: stamped
    assert store.reads == [("Patient", i) for i in ("mine", "mine", "mine", "new")]


def test_an_untagged_binary_can_be_neither_changed_nor_deleted() -> None:
    # an export file HAPI wrote carries no tenant: no tenant's token may delete or replace it
    body = tagged("Binary", "bin", None)
    for method, rbody in (("DELETE", None), ("PUT", body)):
        assert (
            "a resource of no tenant" in refused(request(method, "Binary/bin", body=rbody)).reason
        )


def test_a_body_naming_another_tenant_is_refused_without_a_read() -> None:
    store = Stored(*STORE.resources.values())
    refused(request("PUT", "Patient/mine", body=tagged("Patient", "mine", "b")), store)
    assert store.reads == []


def test_without_a_reader_writes_by_id_are_checked_on_their_body_only() -> None:
    ctx = request("DELETE", "Patient/theirs")
    asyncio.run(TenantStage().bind(ctx))
    assert ctx.stored is None


def test_conditional_writes_are_narrowed_to_the_tenant() -> None:
    tag = ("_tag", f"{TENANT_TAG_SYSTEM}|a")
    for method, body in (("PUT", tagged("Patient", "x", None)), ("DELETE", None)):
        ctx = bind(request(method, "Patient", "identifier=x", body=body))
        assert ctx.upstream_params == (("identifier", "x"), tag)
    patched = bind(request("PATCH", "Patient", "identifier=x", body=STATUS_PATCH))
    assert patched.upstream_params == (("identifier", "x"), tag)


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "replace", "path": "/meta/tag/0/code", "value": "b"}],
        [{"op": "remove", "path": "/meta"}],
        [{"op": "copy", "from": "/meta", "path": "/meta"}],
        [{"op": "replace", "path": "", "value": {}}],
        {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "operation",
                    "part": [
                        {"name": "type", "valueCode": "delete"},
                        {"name": "path", "valueString": "Patient.meta.tag"},
                    ],
                }
            ],
        },
    ],
)
def test_a_patch_must_leave_the_tenant_tag_alone(patch: Any) -> None:
    assert (
        "where the tenant tag lives" in refused(request("PATCH", "Patient/mine", body=patch)).reason
    )


@pytest.mark.parametrize("body", [b"<Parameters/>", b'{"resourceType": "Patient"}', b"\xff"])
def test_a_patch_the_gateway_cannot_read_is_refused(body: bytes) -> None:
    assert "cannot read this patch" in refused(request("PATCH", "Patient/mine", body=body)).reason


def test_c08_and_c10_share_one_read_of_the_stored_version() -> None:
    store = Stored({**tagged("Observation", "o1", "a"), "subject": {"reference": "Patient/p"}})
    observation = {**tagged("Observation", "o1", None), "subject": {"reference": "Patient/p"}}
    ctx = request("PUT", "Observation/o1", body=observation, patient="p")
    pipeline = Pipeline(
        [TenantStage(store), CompartmentStage(store)], lambda _c: Mode.ENFORCE, "/fhir"
    )
    assert asyncio.run(pipeline.run(ctx)) is None
    assert store.reads == [("Observation", "o1")]
    # the one read also refuses under C08 when the stored version is another patient's
    store.resources["Observation", "o1"]["subject"] = {"reference": "Patient/q"}
    ctx = request("DELETE", "Observation/o1", patient="p")
    denial = asyncio.run(pipeline.run(ctx))
    assert denial is not None and denial.control == "C08"
    assert store.reads == [("Observation", "o1")] * 2


# -- batch / transaction: each create and update entry is stamped in the Bundle sent upstream -----


def entry(method: str, url: str, resource: dict[str, Any] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"request": {"method": method, "url": url}}
    if resource is not None:
        found["resource"] = resource
    return found


def test_write_entries_of_a_bundle_are_stamped() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            entry("POST", "Patient", {"resourceType": "Patient", "meta": {"versionId": "1"}}),
            entry("PUT", "Patient/p1", tagged("Patient", "p1", None)),
            entry("PUT", "Patient?identifier=x", {"resourceType": "Patient"}),
            entry("POST", "Patient", tagged("Patient", "own", "a")),
            entry("POST", "Patient/$validate", {"resourceType": "Parameters"}),
            entry("POST", "Patient/_search", {"resourceType": "Parameters"}),
            entry("GET", "Patient/p1"),
            entry("DELETE", "Patient/p2"),
        ],
    }
    sent = json.loads(stamp_entries(json.dumps(bundle).encode(), "a"))
    owners = [tenant_of(e.get("resource") or {}) for e in sent["entry"]]
    assert owners == ["a", "a", "a", "a", None, None, None, None]
    assert sent["entry"][0]["resource"]["meta"]["versionId"] == "1"
    assert [e["request"] for e in sent["entry"]] == [e["request"] for e in bundle["entry"]]


def test_a_bundle_with_nothing_to_stamp_is_forwarded_as_it_came() -> None:
    body = json.dumps(
        {"resourceType": "Bundle", "type": "batch", "entry": [entry("GET", "Patient/p1")]}
    ).encode()
    assert stamp_entries(body, "a") is body


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1]",
        b'{"resourceType": "Patient"}',
        b'{"resourceType": "Bundle", "entry": {}}',
        b'{"resourceType": "Bundle", "entry": [1, {"request": 2, "resource": {}}]}',
    ],
)
def test_bodies_that_are_not_bundles_of_entries_pass_unchanged(body: bytes) -> None:
    assert stamp_entries(body, "a") is body


def test_an_entry_naming_another_tenant_is_left_to_its_own_check() -> None:
    theirs = entry("POST", "Patient", tagged("Patient", "x", "b"))
    body = json.dumps({"resourceType": "Bundle", "type": "batch", "entry": [theirs]}).encode()
    assert stamp_entries(body, "a") is body
    ctx = request("POST", "", body=body)
    pipeline = Pipeline([TenantStage(STORE)], lambda _c: Mode.ENFORCE, "/fhir")
    denial = asyncio.run(pipeline.run(ctx))
    assert denial is not None and denial.control == "C10"
    assert denial.reason.startswith("entry 0 (POST Patient): the resource names tenant b")


def test_a_transaction_through_the_pipeline_goes_upstream_stamped() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                **entry("POST", "Observation", {"resourceType": "Observation"}),
                "fullUrl": "urn:uuid:1",
            },
            entry("GET", "Observation?code=x"),
        ],
    }
    ctx = request("POST", "", body=bundle)
    pipeline = Pipeline([TenantStage(STORE)], lambda _c: Mode.ENFORCE, "/fhir")
    assert asyncio.run(pipeline.run(ctx)) is None
    sent = json.loads(ctx.body or b"")
    assert tenant_of(sent["entry"][0]["resource"]) == "a"
    assert sent["entry"][0]["fullUrl"] == "urn:uuid:1"
    # the search entry is narrowed to the tenant as well (pipeline rewrites its url)
    assert sent["entry"][1]["request"]["url"].endswith(
        "_tag=https%3A%2F%2Ffhirlab.dev%2Ftenant%7Ca"
    )


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=10,
    )
)
def test_stamp_entries_stamps_only_what_it_must_on_any_json(value: Any) -> None:
    body = json.dumps({"resourceType": "Bundle", "entry": value}).encode()
    out = stamp_entries(body, "a")
    assert out is body or json.loads(out)["entry"] != value


# -- conditional creates: If-None-Exist matches only the tenant's (and patient's) resources -----


def test_a_conditional_creates_criteria_are_narrowed_to_the_tenant() -> None:
    ctx = request("POST", "Patient", body={"resourceType": "Patient"})
    ctx.if_none_exist = "identifier=http://mrn|123"
    bind(ctx)
    assert ctx.if_none_exist == (
        "identifier=http://mrn|123&_tag=https%3A%2F%2Ffhirlab.dev%2Ftenant%7Ca"
    )
    plain = bind(request("POST", "Patient", body={"resourceType": "Patient"}))
    assert plain.if_none_exist is None  # an ordinary create has no criteria to narrow


def test_a_conditional_create_entry_is_narrowed_to_the_tenant_and_the_patient() -> None:
    observation = {"resourceType": "Observation", "subject": {"reference": "Patient/p"}}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation,
                "request": {"method": "POST", "url": "Observation", "ifNoneExist": "code=x"},
            },
            {"resource": observation, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    ctx = request("POST", "", body=bundle, patient="p")
    pipeline = Pipeline(
        [TenantStage(STORE), CompartmentStage(STORE)], lambda _c: Mode.ENFORCE, "/fhir"
    )
    assert asyncio.run(pipeline.run(ctx)) is None
    sent = json.loads(ctx.body or b"")
    assert sent["entry"][0]["request"]["ifNoneExist"] == (
        "code=x&_tag=https%3A%2F%2Ffhirlab.dev%2Ftenant%7Ca&subject=Patient%2Fp"
    )
    assert "ifNoneExist" not in sent["entry"][1]["request"]


def test_a_batch_body_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.context

    loads = gateway.context.json.loads
    calls: list[int] = []

    def counting(raw: Any) -> Any:
        value = loads(raw)
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            calls.append(1)  # (an entry's own resource is parsed by its checks)
        return value

    monkeypatch.setattr(gateway.context.json, "loads", counting)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [entry("POST", "Observation", {"resourceType": "Observation"})],
    }
    ctx = request("POST", "", body=bundle)
    pipeline = Pipeline([TenantStage(STORE)], lambda _c: Mode.ENFORCE, "/fhir")
    assert asyncio.run(pipeline.run(ctx)) is None
    assert len(calls) == 1  # stamped by C10, then checked entry by entry, from one parse
    assert tenant_of(json.loads(ctx.body or b"")["entry"][0]["resource"]) == "a"


# -- a JSON Patch entry travels as a Binary (base64 of the patch): it is decoded and checked ----


def binary_patch(patch: Any) -> dict[str, Any]:
    data = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data}


@pytest.mark.parametrize("stages", ["tenant", "tenant+compartment"])
def test_a_json_patch_entry_in_a_binary_is_checked_like_a_patch(stages: str) -> None:
    store = Stored({**tagged("Observation", "o1", "a"), "subject": {"reference": "Patient/p"}})
    chosen = [TenantStage(store)]
    if "compartment" in stages:
        chosen.append(CompartmentStage(store))  # type: ignore[arg-type]
    pipeline = Pipeline(chosen, lambda _c: Mode.ENFORCE, "/fhir")  # type: ignore[arg-type]

    def run(resource: dict[str, Any]) -> Denial | None:
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"resource": resource, "request": {"method": "PATCH", "url": "Observation/o1"}}
            ],
        }
        return asyncio.run(pipeline.run(request("POST", "", body=bundle, patient="p")))

    assert run(binary_patch([{"op": "replace", "path": "/status", "value": "final"}])) is None
    denial = run(binary_patch([{"op": "remove", "path": "/meta"}]))
    assert denial is not None and "where the tenant tag lives" in denial.reason
    unreadable = run({"resourceType": "Binary", "contentType": "text/plain", "data": "%%"})
    assert unreadable is not None and unreadable.status in (400, 403)


# -- bulk export kick-offs: bound to the tenant when they name their types --------------------


def test_an_export_naming_its_types_gets_a_type_filter_per_type() -> None:
    ctx = bind(request("GET", "Patient/$export", "_type=Patient,Observation&_since=2020"))
    tag = f"{TENANT_TAG_SYSTEM}|a"
    assert ctx.upstream_params == (
        ("_type", "Patient,Observation"),
        ("_since", "2020"),
        ("_typeFilter", f"Patient?_tag={tag},Observation?_tag={tag}"),
    )


@pytest.mark.parametrize(
    "query", ["", "_type=Patient&_typeFilter=Patient%3Factive%3Dtrue", "_outputFormat=ndjson"]
)
def test_an_export_without_types_or_with_its_own_filters_is_left_to_the_download(
    query: str,
) -> None:
    ctx = bind(request("GET", "$export", query))
    assert ctx.upstream_params is None
    assert ("C10", SameTenant("a")) in ctx.resource_checks  # its files are checked line by line


@pytest.mark.parametrize("op", ["$meta", "$everything", "$validate"])
def test_an_operation_on_another_tenants_instance_is_not_found(op: str) -> None:
    for rid in ("theirs", "nobodys"):
        with pytest.raises(Denial) as caught:
            bind(request("GET", f"Patient/{rid}/{op}"))
        assert caught.value.status == 404 and caught.value.control == "C10"
        assert caught.value.reason.startswith(f"Patient/{rid} is not known to this token")
    store = Stored(*STORE.resources.values())
    bind(request("GET", f"Patient/mine/{op}"), store)  # its own: passes, after one read
    bind(request("GET", f"Patient/gone/{op}"), store)  # nothing stored: HAPI answers
    assert store.reads == [("Patient", "mine"), ("Patient", "gone")]
