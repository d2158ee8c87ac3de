"""Offline fuzz of the gateway's answers: no foreign data goes out, whatever is asked or answered.

The real gateway (lab policy, every control enforced, C06 auditing to a temporary directory) runs
in-process behind its raw ASGI callable, with a fake HAPI and a fake Keycloak
(`fuzz_harness.py`, which also states the invariants). Hypothesis draws both halves:

- what a client controls: method, path (resource types known and unknown, instances, history,
  compartments, operations, `_search`, the base), query parameters (`_format`, `_summary`,
  `_elements`, `_include[:iterate]`, `_revinclude`, `_has`, chains, paging, `_count`, `patient`,
  `subject`, random names and values, repeated, percent-encoded or not), headers (Accept with
  every FHIR media type and q-values, Content-Type, conditional headers, Prefer, forwarding
  headers, Content-Encoding, the lab clock), bodies (FHIR resources, batch/transaction Bundles,
  forms, patches, garbage), and which token sends it (four real ones; sometimes none or a forged
  one);
- what HAPI answers: the own patient's resources mixed with other patients', the other tenant's,
  untagged ones, Groups, Lists and Observations naming foreign patients, contained and included
  foreign Patients, nested and batch-response Bundles, Binary export files, Parameters,
  OperationOutcomes naming foreign ids; in JSON (every FHIR JSON media type), XML, turtle, HTML,
  NDJSON, gzip/deflate, with a wrong or no content type, truncated or garbled; status 200, 201,
  304, 404, 410, 412 or 500.

One example is one list of upstream answers and one list of requests; every request is sent by
every viewer against every answer (a GET once more as HEAD). `test_volume` runs after the fuzz
and checks that the module really sent at least 100,000 requests through the gateway (about
120,000 in 60-75 s on the project's 2-core machine).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.client_strategies import accept, pairs, weighted
from tests.unit.gateway.fuzz_harness import ME, Answer, Harness, Item, Request

MIN_REQUESTS = 100_000


# --------------------------------------------------------------------------------------------
# What a client controls

# weighted towards the types the tokens' scopes let them read, so that requests reach HAPI
TYPES = (
    *("Patient", "Observation", "Appointment") * 3,
    "Group",
    "List",
    "Binary",
    "Condition",
    "Encounter",
    "Practitioner",
    "Organization",
    "AuditEvent",
    "Bundle",
    "Foo",
    "Patient",
)
IDS = (ME, ME, ME, ME, "pat-x1", "pat-a1", "pat-b1", "obs-1", "grp-1", "list-1", "bin-1", "a.b-c")
READ_TEMPLATES = (
    *("{T}", "{T}/{I}") * 4,
    "{T}/{I}/_history",
    "{T}/{I}/_history/1",
    "{T}/_history",
    "{T}/_search",
    "Patient/{I}/{T}",
    "Patient/{I}/{T}",
    "Encounter/{I}/{T}",
    "{T}/{I}/$everything",
    "{T}/$everything",
    "{T}/{I}/$export",
    "{T}/$export",
    "{T}/{I}/$meta",
    "{T}/",
)
POST_TEMPLATES = (
    "{T}",
    "{T}",
    "",
    "",
    "{T}/_search",
    "Patient/{I}/{T}/_search",
    "_search",
    "{T}/$validate",
    "{T}/{I}/$everything",
)
BY_ID_TEMPLATES = ("{T}/{I}", "{T}/{I}", "{T}/{I}", "{T}")  # PUT, PATCH, DELETE (or conditional)
FIXED_PATHS = (
    "",
    "_history",
    "_search",
    "$export",
    "$export-poll-status",
    "$everything",
    "metadata",
    ".well-known/smart-configuration",
    f"Patient/{ME}/*",
    f"Patient/{ME}/$everything",
    "Patient/pat-x1/$everything",
    "Group/grp-1/$export",
    "Binary/bin-1",
    "Patient/%2e%2e",
    "Patient//x",
    f"patient/{ME}",
    "Pati%C3%A9nt",
    f"Patient/{ME}%2Fx",
    "%24export",
    "Observation/obs-1/_history/2/$meta",
    "_history/1",
)
SEGMENT_CHARS = st.characters(codec="utf-8", exclude_characters="/?#")


def _path(template: str, rtype: str, rid: str) -> str:
    return template.replace("{T}", rtype).replace("{I}", rid)


def _escape(text: str) -> str:
    return "".join(
        c if c.isascii() and c.isalnum() else "".join(f"%{b:02X}" for b in c.encode()) for c in text
    )


def _paths(templates: tuple[str, ...]) -> st.SearchStrategy[str]:
    templated = st.builds(
        _path, st.sampled_from(templates), st.sampled_from(TYPES), st.sampled_from(IDS)
    )
    odd = st.builds(
        lambda rtype, raw, encode: f"{rtype}/{_escape(raw) if encode else raw}",
        st.sampled_from(TYPES),
        st.text(SEGMENT_CHARS, min_size=1, max_size=6),
        st.booleans(),
    )
    return weighted((10, templated), (1, st.sampled_from(FIXED_PATHS)), (1, odd))


READ_PATHS = _paths(READ_TEMPLATES)
POST_PATHS = weighted((3, _paths(POST_TEMPLATES)), (1, READ_PATHS))
BY_ID_PATHS = weighted((3, _paths(BY_ID_TEMPLATES)), (1, READ_PATHS))


FIXED_PARAMS = (
    pairs("_format", "json", "application/fhir+json", "xml", "application/fhir+xml", "ttl")
    + pairs("_format", "text/turtle", "html", "text/html", "application/json", "x/y", "", "JSON")
    + pairs("_format", "application/xml+fhir", "application/json+fhir", "ndjson", "text/xml")
    + pairs("_summary", "true", "false", "text", "data", "count", "bogus")
    + pairs("_elements", "id", "subject", "id,meta", "name,link", "member", "entry", "")
    + pairs("_include", "Observation:subject", "Observation:performer", "Appointment:actor")
    + pairs("_include", "Group:member", "List:item", "*", "Observation:subject:Patient")
    + pairs("_include", "Patient:link", "Observation:*", "Encounter:subject")
    + pairs("_revinclude", "Observation:subject", "Provenance:target", "*", "Group:member")
    + pairs("_revinclude", "List:item", "Appointment:actor", "Observation:performer")
    + pairs("_include:iterate", "Patient:link", "Observation:performer", "*", "Group:member")
    + pairs("_revinclude:iterate", "Observation:subject", "Group:member")
    + [
        ("_has:Observation:patient:code", "8867-4"),
        ("_has:Group:member:_id", "grp-1"),
        ("_has:Observation:subject:_has:Group:member:_id", "grp-1"),
        ("_has:Appointment:actor:status", "booked"),
        ("subject.name", "Smith"),
        ("patient.identifier", "x|1"),
        ("subject:Patient.name", "Fuzz"),
        ("general-practitioner.name", "Doc"),
        ("performer:Patient.name", "Fuzz"),
        ("actor:Patient.gender", "female"),
        ("member.name", "Fuzz"),
        ("subject:Patient.link:Patient.name", "Fuzz"),
        ("_getpages", "abc123"),
        ("_getpagesoffset", "20"),
        ("_bundletype", "searchset"),
        ("actor", f"Patient/{ME}"),
        ("member", f"Patient/{ME}"),
        ("_typeFilter", "Patient?active=true"),
        ("_outputFormat", "application/fhir+ndjson"),
        ("_since", "2020-01-01"),
        ("_tag", "https://fhirlab.dev/tenant|tenant-b"),
        ("_pretty", "true"),
        ("_total", "accurate"),
        ("_sort", "-_lastUpdated"),
        ("_contained", "true"),
        ("_containedType", "contained"),
        ("_filter", "subject eq Patient/pat-x1"),
        ("_list", "list-1"),
        ("_text", "x"),
        ("code", "8867-4"),
        ("name", "Smith"),
        ("identifier", "x|1"),
        ("category", "laboratory"),
    ]
    + pairs("_count", "10", "1000", "-1", "abc", "0")
    + pairs("patient", ME, ME, "pat-x1", f"Patient/{ME}", "Patient/pat-x1", f"{ME},pat-x1", "")
    + pairs("subject", ME, f"Patient/{ME}", "Patient/pat-x1", "Group/grp-1", f"Patient/{ME}\\,x")
    + pairs("_id", ME, "pat-x1", f"{ME},pat-x1", "obs-1")
    + pairs("_type", "Patient", "Patient,Observation", "Group", "", "Foo")
)
PARAM_NAME_CHARS = st.sampled_from("abcdefghijklmnopqrstuvwxyz_:.-ABCXYZ0123456789")
params = st.lists(
    weighted(
        (5, st.sampled_from(FIXED_PARAMS)),
        (1, st.tuples(st.text(PARAM_NAME_CHARS, min_size=1, max_size=8), st.text(max_size=8))),
    ),
    max_size=5,
).map(tuple)
query_encodings = st.sampled_from(("quote",) * 12 + ("plus", "raw", "double", "broken"))

FIXED_HEADERS = (
    ("If-None-Match", 'W/"1"'),
    ("If-None-Match", "*"),
    ("If-Modified-Since", "Sat, 28 Nov 2026 08:00:00 GMT"),
    ("If-Match", 'W/"1"'),
    ("Prefer", "return=representation"),
    ("Prefer", "return=minimal"),
    ("Prefer", "return=OperationOutcome"),
    ("Prefer", "handling=lenient"),
    ("Prefer", "respond-async"),
    ("X-Forwarded-Host", "evil.test"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Prefix", "/evil"),
    ("X-Forwarded-Port", "8443"),
    ("X-Forwarded-For", "203.0.113.9"),
    ("Forwarded", "host=evil.test;proto=https"),
    ("Content-Encoding", "gzip"),
    ("Content-Encoding", "identity"),
    ("Content-Encoding", "br"),
    ("Accept-Encoding", "gzip"),
    ("Accept-Encoding", "deflate"),
    ("Accept-Encoding", "identity"),
    ("Accept-Encoding", "br;q=1, gzip;q=0.5"),
    ("If-None-Exist", "identifier=x|1"),
    ("If-None-Exist", f"patient={ME}"),
    ("X-Fhirlab-Clock", "2026-11-28T03:00:00-05:00"),
    ("X-Fhirlab-Clock", "soon"),
    ("X-Request-Id", "fuzz-1"),
    ("Accept-Charset", "utf-8"),
    ("Accept-Language", "de"),
    ("Cookie", "session=1"),
)
headers = st.lists(
    weighted(
        (2, st.tuples(st.just("Accept"), accept)),
        (3, st.sampled_from(FIXED_HEADERS)),
        (
            1,
            st.tuples(
                st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-"), min_size=1, max_size=10),
                st.text(max_size=10),
            ),
        ),
    ),
    max_size=4,
).map(tuple)
CONTENT_TYPES = (
    "application/fhir+json",
    "application/fhir+json; charset=utf-8",
    "application/json",
    "application/x-www-form-urlencoded",
    "application/json-patch+json",
    "application/fhir+xml",
    "text/plain",
    "multipart/form-data; boundary=x",
)


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


_ME_REF = {"reference": f"Patient/{ME}"}
_OBS = {
    "resourceType": "Observation",
    "id": "obs-1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "subject": _ME_REF,
}
RESOURCES = (
    {"resourceType": "Patient", "id": ME},
    {
        "resourceType": "Patient",
        "id": ME,
        "link": [{"other": {"reference": "Patient/pat-x1"}, "type": "seealso"}],
    },
    _OBS,
    {**_OBS, "subject": {"reference": "Patient/pat-x1"}},
    {**_OBS, "meta": {"tag": [{"system": "https://fhirlab.dev/tenant", "code": "tenant-b"}]}},
    {
        "resourceType": "Appointment",
        "id": "appt-1",
        "status": "booked",
        "participant": [{"actor": _ME_REF, "status": "accepted"}],
    },
    {"resourceType": "Group", "id": "grp-1", "type": "person", "member": [{"entity": _ME_REF}]},
    {"resourceType": "Foo", "id": "foo-1"},
)
PATCHES = (
    b'[{"op":"replace","path":"/status","value":"final"}]',
    b'[{"op":"add","path":"/subject","value":{"reference":"Patient/pat-x1"}}]',
    b'[{"op":"remove","path":"/meta"}]',
    b'[{"op":"replace","path":"/link","value":[]}]',
    b'[{"op":"test","path":"/id","value":"x"}]',
    _json(
        {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "operation",
                    "part": [
                        {"name": "type", "valueCode": "replace"},
                        {"name": "path", "valueString": "Observation.status"},
                        {"name": "value", "valueCode": "final"},
                    ],
                }
            ],
        }
    ),
)
ENTRIES = (
    {
        "request": {
            "method": "GET",
            "url": f"Observation?patient={ME}&_include=Observation:performer",
        }
    },
    {"request": {"method": "GET", "url": f"Patient/{ME}"}},
    {"request": {"method": "GET", "url": "Patient/pat-x1"}},
    {"request": {"method": "GET", "url": "Observation?_format=xml"}},
    {"request": {"method": "GET", "url": "Group/grp-1/$export"}},
    {"request": {"method": "GET", "url": f"Patient/{ME}/$everything"}},
    {"request": {"method": "PUT", "url": f"Patient/{ME}"}, "resource": RESOURCES[0]},
    {
        "request": {"method": "POST", "url": "Observation"},
        "resource": _OBS,
        "fullUrl": "urn:uuid:1",
    },
    {
        "request": {"method": "POST", "url": "Observation", "ifNoneExist": "identifier=x|1"},
        "resource": _OBS,
    },
    {"request": {"method": "DELETE", "url": "Observation/obs-1"}},
    {
        "request": {"method": "PATCH", "url": "Observation/obs-1"},
        "resource": {
            "resourceType": "Binary",
            "contentType": "application/json-patch+json",
            "data": "W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9zdGF0dXMiLCJ2YWx1ZSI6ImZpbmFsIn1d",
        },
    },
    {"request": {"method": "GET", "url": "http://evil.test/fhir/Patient"}},
    {
        "request": {"method": "POST", "url": ""},
        "resource": {"resourceType": "Bundle", "type": "batch"},
    },
    {"request": "GET Patient"},
)
bundles = st.builds(
    lambda kind, entries: _json({"resourceType": "Bundle", "type": kind, "entry": list(entries)}),
    st.sampled_from(("batch", "transaction", "batch", "collection", "bogus")),
    st.lists(st.sampled_from(ENTRIES), max_size=4),
)
OTHER_BODIES = (
    f"patient={ME}&_include=Observation:performer".encode(),
    b"_id=pat-x1",
    f"subject=Patient%2F{ME}&_format=xml".encode(),
    b"_has:Observation:patient:code=1",
    b"%zz=1",
    b"a=\xff",
    f'<Patient xmlns="http://hl7.org/fhir"><id value="{ME}"/></Patient>'.encode(),
    b"",
    b"null",
    b"[]",
    b"{",
)
bodies = weighted(
    (3, st.sampled_from(RESOURCES).map(_json)),
    (3, bundles),
    (2, st.sampled_from(OTHER_BODIES + PATCHES)),
    (1, st.binary(max_size=48)),
)
patches = weighted((2, st.sampled_from(PATCHES)), (1, bodies))
EXTRA_VIEWERS = (None,) * 20 + (
    "anonymous",
    "stranger-key",
    "expired",
    "wrong-audience",
    "alg-none",
    "untrusted-issuer",
    "basic",
)


@st.composite
def requests(draw: st.DrawFn, methods: tuple[str, ...]) -> Request:
    method = draw(st.sampled_from(methods))
    drawn_headers = draw(headers)
    body = None
    if method in ("POST", "PUT", "PATCH") or draw(st.integers(0, 9)) == 9:  # rarely: GET
        body = draw(patches if method == "PATCH" else bodies)
        kind = draw(st.sampled_from((None, *CONTENT_TYPES)))
        if kind is not None:
            drawn_headers = (("Content-Type", kind), *drawn_headers)
    return Request(
        method=method,
        path=draw(
            READ_PATHS
            if method in ("GET", "HEAD")
            else POST_PATHS
            if method == "POST"
            else BY_ID_PATHS
        ),
        params=draw(params),
        encoding=draw(query_encodings),
        headers=drawn_headers,
        body=body,
        body_chunks=draw(st.sampled_from((1, 1, 1, 2, 3))),
        extra=draw(st.sampled_from(EXTRA_VIEWERS)),
    )


# --------------------------------------------------------------------------------------------
# What HAPI answers

LEAF_KINDS = (
    "patient-me",
    "patient-me",
    "patient-sibling",
    "patient-other-tenant",
    "patient-untagged",
    "patient-me-linked",
    "observation-me",
    "observation-sibling",
    "observation-other-tenant",
    "observation-untagged",
    "observation-foreign-performer",
    "observation-contained-patient",
    "appointment-me",
    "appointment-me",
    "appointment-sibling",
    "appointment-shared",
    "condition-me",
    "encounter-me",
    "group-members",
    "group-foreign",
    "list-foreign-items",
    "practitioner",
    "organization-untagged",
    "unknown-type",
    "no-resource-type",
    "operation-outcome",
    "operation-outcome-foreign",
    "capability-statement",
)
leaves = st.builds(Item, st.sampled_from(LEAF_KINDS), st.integers(1, 3))
inner_bundles = st.builds(
    Item, st.just("bundle"), st.integers(1, 3), st.lists(leaves, min_size=1, max_size=3).map(tuple)
)
containers = st.builds(
    Item,
    st.sampled_from(("binary-ndjson", "binary-json", "parameters", "bundle")),
    st.integers(1, 3),
    st.lists(weighted((3, leaves), (1, inner_bundles)), min_size=1, max_size=4).map(tuple),
)
answers = st.builds(
    Answer,
    status=st.sampled_from((200,) * 6 + (201, 304, 404, 410, 412, 500)),
    shape=st.sampled_from(("resource", "searchset", "searchset", "batch-response", "history")),
    items=st.lists(weighted((4, leaves), (1, containers)), min_size=1, max_size=6).map(tuple),
    fmt=st.sampled_from(
        ("json",) * 6 + ("xml", "xml", "turtle", "html", "ndjson", "garbage", "empty")
    ),
    ct=st.integers(0, 9),
    encoding=st.sampled_from(
        (None,) * 6
        + ("gzip", "deflate", "raw-deflate", "gzip-unlabelled", "gzip-label-on-plain")
        + ("br-label-on-plain",)
    ),
    truncate=st.sampled_from((0,) * 8 + (1, 3, 5, 7, 9)),
    junk=st.sampled_from((b"", b"\x00\xff", b"<html>", b")]}',\n")),
    chunk=st.sampled_from((None, None, None, 7, 64, 1024)),
    location=st.booleans(),
)

# --------------------------------------------------------------------------------------------
# The tests

# Shrinking a failure re-runs whole batches for minutes; the violation's message already names
# the one request, HAPI's answer and what leaked. FHIRLAB_FUZZ_SHRINK=1 shrinks it to a minimal
# example (one request, one small answer) when that is wanted. FHIRLAB_FUZZ_COLLECT=1 runs the
# whole fuzz without stopping and lists every kind of violation at the end (with a count and its
# first example), to see all that is left at once.
SHRINK = os.environ.get("FHIRLAB_FUZZ_SHRINK") == "1"
COLLECT = os.environ.get("FHIRLAB_FUZZ_COLLECT") == "1"
FUZZ = settings(
    derandomize=True,  # the same examples on every run (CI)
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=(Phase.explicit, Phase.generate, *((Phase.shrink, Phase.explain) if SHRINK else ())),
)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    audit_dir: Path = tmp_path_factory.mktemp("fuzz-audit")
    built = Harness(audit_dir)
    if COLLECT:
        built.collected = {}
    yield built
    built.close()


@settings(FUZZ, max_examples=800)
@given(
    st.lists(answers, min_size=1, max_size=3),
    st.lists(requests(("GET",)), min_size=1, max_size=10),
)
def test_reads_and_searches(harness: Harness, ups: list[Answer], sent: list[Request]) -> None:
    harness.check_exchanges(ups, sent)


@settings(FUZZ, max_examples=700)
@given(
    st.lists(answers, min_size=1, max_size=3),
    st.lists(requests(("POST", "POST", "PUT", "PATCH", "DELETE")), min_size=1, max_size=10),
)
def test_writes_batches_and_posted_searches(
    harness: Harness, ups: list[Answer], sent: list[Request]
) -> None:
    harness.check_exchanges(ups, sent)


@settings(FUZZ, max_examples=700)
@given(
    st.lists(answers, min_size=1, max_size=3),
    st.lists(requests(("GET", "POST", "PUT", "PATCH", "DELETE")), min_size=1, max_size=10),
)
def test_any_request_any_answer(harness: Harness, ups: list[Answer], sent: list[Request]) -> None:
    harness.check_exchanges(ups, sent)


FUZZ_TESTS = (
    "test_reads_and_searches",
    "test_writes_batches_and_posted_searches",
    "test_any_request_any_answer",
)


def test_volume(harness: Harness, request: pytest.FixtureRequest) -> None:
    """Runs last: the fuzz above really sent its requests through the gateway."""
    selected = {item.name for item in request.session.items}
    if not selected.issuperset(FUZZ_TESTS):
        pytest.skip("the volume is that of the whole module; run all its fuzz tests")
    statuses = dict(sorted(harness.statuses.items()))
    summary = (
        f"{harness.sent} requests ({harness.forwarded} reached HAPI) in {harness.seconds:.1f} s; "
        f"statuses {statuses}"
    )
    print(summary)
    assert harness.sent >= MIN_REQUESTS, summary
    assert harness.forwarded >= MIN_REQUESTS // 10, summary


def test_collected_violations(harness: Harness) -> None:
    """With FHIRLAB_FUZZ_COLLECT=1: every kind of violation the run met, counted."""
    if harness.collected is None:
        pytest.skip("set FHIRLAB_FUZZ_COLLECT=1 to collect violations instead of stopping")
    found = sorted(harness.collected.items(), key=lambda kind: -kind[1][0])
    summary = "\n".join(f"{count:7d}  {kind}" for kind, (count, _) in found)
    examples = "\n\n".join(first for _, (_, first) in found)
    if found:
        pytest.fail(f"violations by kind:\n{summary}\n\nthe first of each:\n{examples}")
