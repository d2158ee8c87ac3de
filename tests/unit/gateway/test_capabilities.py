"""The CapabilityStatement: HAPI's, filtered to a token's grants, or the public one; both name the
gateway where HAPI names itself."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response

from gateway.capabilities import ClientCapabilities, Grants, filter_capabilities
from gateway.classify import ClassifyError, classify
from gateway.context import RequestContext
from gateway.policy import OperationsPolicy
from labcore.scopes import parse_scopes

ALL = ["read", "vread", "update", "patch", "delete", "history-instance", "history-type"]
ALL += ["create", "search-type"]
POLICY = OperationsPolicy(
    export_clients=("population-analytics",),
    restricted=("$everything", "$validate", "$export", "$expunge"),
    restricted_clients=("population-analytics",),
)


def resource(rtype: str, *operations: str) -> dict[str, Any]:
    return {
        "type": rtype,
        "interaction": [{"code": code} for code in ALL],
        "operation": [{"name": op, "definition": f"http://x/{op}"} for op in operations],
    }


STATEMENT: dict[str, Any] = {
    "resourceType": "CapabilityStatement",
    "status": "active",
    "rest": [
        {
            "mode": "server",
            "resource": [
                resource("Patient", "export", "everything", "validate", "meta"),
                resource("Group", "export"),
                resource("Appointment", "meta"),
                resource("Observation", "lastn", "expunge"),
            ],
            "interaction": [{"code": "transaction"}, {"code": "history-system"}],
            "operation": [
                {"name": "export"},
                {"name": "export-poll-status"},
                {"name": "get-resource-counts"},
            ],
        }
    ],
}


def filtered(scope: str, client: str = "scheduling-assistant") -> dict[str, Any]:
    return filter_capabilities(STATEMENT, Grants(parse_scopes(scope), client, POLICY))


def types(statement: dict[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
    return {
        r["type"]: (
            sorted(i["code"] for i in r["interaction"]),
            sorted(o["name"] for o in r.get("operation", [])),
        )
        for r in statement["rest"][0]["resource"]
    }


def test_a_patient_app_sees_its_types_and_interactions_only() -> None:
    seen = types(filtered("openid launch/patient patient/Patient.rs patient/Appointment.*"))
    assert seen == {
        "Patient": (
            ["history-instance", "history-type", "read", "search-type", "vread"],
            ["meta"],  # export: C04; everything, validate: restricted (C12)
        ),
        "Appointment": (sorted(ALL), ["meta"]),
    }
    rest = filtered("patient/Patient.rs")["rest"][0]
    assert rest["interaction"] == [{"code": "transaction"}]  # no history-system without *
    assert "operation" not in rest


def test_export_only_for_the_allowlisted_backend_with_system_scopes() -> None:
    scope = "system/Patient.rs system/Group.rs"
    seen = types(filtered(scope, "population-analytics"))
    assert "export" in seen["Group"][1] and "export" in seen["Patient"][1]
    system_ops = [
        o["name"] for o in filtered(scope, "population-analytics")["rest"][0]["operation"]
    ]
    assert system_ops == ["export", "export-poll-status"]
    assert all("export" not in ops for _, ops in types(filtered(scope, "other-client")).values())


def test_constrained_scopes_still_grant_the_interaction() -> None:
    seen = types(filtered("patient/Observation.rs?category=laboratory"))
    assert seen["Observation"][0] == [
        "history-instance",
        "history-type",
        "read",
        "search-type",
        "vread",
    ]
    assert seen["Observation"][1] == ["lastn"]  # expunge is restricted


def test_the_original_is_not_changed() -> None:
    before = repr(STATEMENT)
    filtered("patient/*.read")
    assert repr(STATEMENT) == before


@given(
    st.lists(st.sampled_from(["Patient", "Group", "Observation", "Appointment", "*"]), max_size=3),
    st.sampled_from(["r", "rs", "cruds", "c", "d"]),
    st.sampled_from(["patient", "user", "system"]),
)
def test_filtering_never_adds(types_: list[str], perms: str, context: str) -> None:
    scope = " ".join(f"{context}/{t}.{perms}" for t in types_)
    result = filtered(scope)
    original = {r["type"]: r for r in STATEMENT["rest"][0]["resource"]}
    for r in result["rest"][0]["resource"]:
        assert r["type"] in original and (r["type"] in types_ or "*" in types_)
        assert all(i in original[r["type"]]["interaction"] for i in r["interaction"])


# -- the public statement: HAPI's base replaced by the gateway's, cached --------------------------

HAPI = "http://127.0.0.1:8280/fhir"
HAPI_STATEMENT: dict[str, Any] = {
    **STATEMENT,
    "date": "2026-12-01T00:00:00Z",  # the elements a CapabilityStatement must have (for XML)
    "kind": "instance",
    "fhirVersion": "4.0.1",
    "format": ["application/fhir+xml", "application/fhir+json"],
    "implementation": {"description": "HAPI", "url": HAPI},
    "rest": [
        {
            **STATEMENT["rest"][0],
            "operation": [{"name": "meta", "definition": f"{HAPI}/OperationDefinition/meta"}],
        }
    ],
}


class Hapi:
    """Stands in for HAPI's `GET metadata` (JSON only: the gateway asks for nothing else);
    counts the requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.headers.get("accept", "application/fhir+json") == "application/fhir+json"
        return httpx.Response(200, json=HAPI_STATEMENT)


class NoVerifier:
    async def verify(self, bearer: str) -> Any:
        raise AssertionError("the public statement verifies no token")


def capabilities(hapi: Hapi, per_client: bool = True) -> ClientCapabilities:
    client = httpx.AsyncClient(transport=httpx.MockTransport(hapi))
    return ClientCapabilities(
        NoVerifier(),  # type: ignore[arg-type]
        client,
        HAPI,
        POLICY,
        per_client=per_client,
        public_base="https://gw.example/fhir",
    )


def metadata(query: str = "", accept: str | None = None, bearer: str | None = None) -> Any:
    headers = [(b"host", b"gw.local:8080")]
    if accept is not None:
        headers.append((b"accept", accept.encode()))
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/fhir/metadata",
        "raw_path": b"/fhir/metadata",
        "query_string": query.encode(),
        "headers": headers,
    }
    ctx = RequestContext(
        request_id="r",
        method="GET",
        raw_path="/fhir/metadata",
        raw_query=query,
        bearer=bearer,
        fhir=classify("GET", "/fhir/metadata", query, "/fhir"),
    )
    return ctx, Request(scope)


def answer(caps: ClientCapabilities, **kwargs: Any) -> Response:
    ctx, request = metadata(**kwargs)
    return asyncio.run(caps.respond(ctx, request))


GATEWAY = "http://gw.local:8080/fhir"


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ("", None),
        ("", "application/fhir+json"),
        ("", "*/*"),
        ("_format=json", "text/html"),
        ("", "application/fhir+xml;q=0.9, application/json"),
    ],
)
def test_the_public_statement_names_the_gateway_and_is_cached(query: str, accept: str) -> None:
    hapi = Hapi()
    caps = capabilities(hapi)
    first = answer(caps, query=query, accept=accept)
    again = answer(caps, query=query, accept=accept)
    assert first.status_code == 200 and "json" in (first.media_type or "")
    statement = json.loads(first.body)
    assert statement["implementation"]["url"] == GATEWAY
    assert statement["rest"][0]["operation"][0]["definition"] == (
        f"{GATEWAY}/OperationDefinition/meta"
    )
    assert HAPI not in first.body.decode() and again.body == first.body
    assert len(hapi.requests) == 1  # fetched once, served from the cache after
    assert hapi.requests[0].headers["x-forwarded-host"] == "gw.local:8080"


@pytest.mark.parametrize(("query", "accept"), [("", "application/fhir+xml"), ("_format=xml", None)])
def test_xml_is_written_from_the_checked_json_statement(query: str, accept: str | None) -> None:
    hapi = Hapi()
    caps = capabilities(hapi)
    for _ in range(2):
        response = answer(caps, query=query, accept=accept)
        assert response.status_code == 200 and response.media_type.startswith(
            "application/fhir+xml"
        )
        root = ET.fromstring(response.body)
        assert root.tag == "{http://hl7.org/fhir}CapabilityStatement"
        assert HAPI not in response.body.decode() and GATEWAY in response.body.decode()
    assert len(hapi.requests) == 1  # the cached JSON statement, asked for as JSON
    assert hapi.requests[0].headers["accept"] == "application/fhir+json"


@pytest.mark.parametrize(("query", "accept"), [("_format=ttl", None), ("", "text/html")])
def test_formats_not_served_are_406(query: str, accept: str | None) -> None:
    hapi = Hapi()
    response = answer(capabilities(hapi), query=query, accept=accept)
    assert response.status_code == 406 and not hapi.requests


def test_the_statement_is_served_whole_whatever_its_shaping_parameters() -> None:
    hapi = Hapi()
    caps = capabilities(hapi)
    for query in ("_summary=text", "_elements=rest", "_pretty=true"):
        response = answer(caps, query=query)  # HAPI would answer `_summary=text` as HTML
        assert response.status_code == 200 and json.loads(response.body)["rest"]
    assert len(hapi.requests) == 1 and not hapi.requests[0].url.query  # the cached statement


class StaleHapi(Hapi):
    """HAPI answering with the statement it cached for an earlier client: built from that
    client's forwarded host, which names HAPI's base and its operation definitions."""

    def __init__(self, named: str) -> None:
        super().__init__()
        self.statement = json.loads(json.dumps(HAPI_STATEMENT).replace(HAPI, named))
        self.statement["rest"][0]["resource"][0]["profile"] = PATIENT_PROFILE

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=self.statement)


PATIENT_PROFILE = "http://hl7.org/fhir/StructureDefinition/Patient"


@pytest.mark.parametrize("named", ["http://127.0.0.1:50923/fhir", "http://hl7.org/fhir"])
def test_a_statement_hapi_cached_for_another_host_names_this_gateway(named: str) -> None:
    response = answer(capabilities(StaleHapi(named)))
    statement = json.loads(response.body)
    assert statement["implementation"]["url"] == GATEWAY
    assert statement["rest"][0]["operation"][0]["definition"] == (
        f"{GATEWAY}/OperationDefinition/meta"
    )
    assert "127.0.0.1:50923" not in response.body.decode()
    # a Host chosen to match canonical URLs rewrites only HAPI's own places, not the profiles
    assert statement["rest"][0]["resource"][0]["profile"] == PATIENT_PROFILE


def test_other_parameters_are_asked_of_hapi_as_json_and_rewritten() -> None:
    hapi = Hapi()
    caps = capabilities(hapi)
    for _ in range(2):
        response = answer(caps, query="mode=terminology&_format=xml")
        assert response.status_code == 200 and HAPI not in response.body.decode()
        assert GATEWAY in response.body.decode()
    assert len(hapi.requests) == 2  # not cached: the rare case
    assert hapi.requests[0].url.query.decode() == "mode=terminology"
    assert hapi.requests[0].headers["accept"] == "application/fhir+json"


def test_without_token_checks_a_bearer_gets_the_public_statement() -> None:
    response = answer(capabilities(Hapi(), per_client=False), bearer="any.token.at-all")
    assert json.loads(response.body)["implementation"]["url"] == GATEWAY


def test_hosts_cached_are_bounded() -> None:
    hapi = Hapi()
    caps = capabilities(hapi)
    for n in range(40):
        asyncio.run(caps.public(f"h{n}", "http"))
    assert len(caps._statements) <= 16
    assert json.loads(asyncio.run(caps.public("", "https")))["implementation"]["url"] == (
        "https://gw.example/fhir"  # no Host header: the configured public base
    )


def test_hapi_unreachable_is_a_502() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    caps = ClientCapabilities(
        NoVerifier(),  # type: ignore[arg-type]
        httpx.AsyncClient(transport=httpx.MockTransport(down)),
        HAPI,
        POLICY,
    )
    assert answer(caps).status_code == 502
    assert answer(caps, accept="application/fhir+xml").status_code == 502


@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=3), st.text())
def test_any_metadata_request_is_served_checked_or_refused(
    params: list[tuple[str, str]], accept: str
) -> None:
    hapi = Hapi()
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params)
    try:
        response = answer(capabilities(hapi), query=query, accept=accept)
    except (UnicodeEncodeError, ClassifyError):
        return  # not a request a client can send, or refused before it gets here
    assert response.status_code in (200, 400, 406, 502)
    assert HAPI not in bytes(response.body).decode("utf-8", "replace")
