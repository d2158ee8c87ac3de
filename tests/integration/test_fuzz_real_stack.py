"""Hypothesis fuzz of what a client controls, sent through the gateway to the real stack.

The bypass corpus (`test_bypass_corpus.py`) sends attack requests written by hand; the offline
fuzz (`tests/unit/gateway/test_fuzz_answers.py`) draws requests and answers against a fake HAPI.
This module draws the requests and sends them to the real thing: one in-process gateway with the
lab's policy (the corpus's `corpus_gateway`: every control enforced, only the rate limit off), the
session's real Keycloak tokens and its real HAPI with the seeded population.

Hypothesis draws what a client controls:

- the method: GET, HEAD or POST;
- the path: resource types known and unknown, instances of the token's own patient, of another
  patient of its tenant and of the other tenant (Patients and resources of their compartments,
  Groups, Organizations, Binaries), compartment paths (`Patient/<id>/Observation`, `/*`),
  `_history` (instance, type, system, a version), operations (`$everything`, `$meta`,
  `$validate`), `_search`, the base, and odd spellings (lower case, `;x=1`, `%2F..%2F`, trailing
  and doubled slashes, percent-encoded ids);
- the query: `_format`, `_summary`, `_elements`, `_include`, `_revinclude`, `:iterate`, `_has`,
  chains, `_count`, `patient`, `subject`, `_id`, `_getpages` (ids of searches made straight at
  HAPI), `_tag`, `_filter`, `_list`, random names and values; written percent-encoded, with `+`,
  raw, every byte percent-encoded (names too) or encoded twice;
- headers: Accept (every FHIR media type and others, with q-values), If-None-Match,
  If-Modified-Since, X-Forwarded-*, Forwarded (naming `evil.example`), Prefer, Cache-Control,
  Accept-Encoding, the lab clock, random ones;
- bodies for POST: `_search` forms, batch and transaction Bundles (JSON or XML) of GET entries
  (nested ones, absolute URLs of the gateway and of HAPI, `ifNoneMatch`), a Parameters, garbage.

A drawn request names ids through the corpus's placeholders (`{me}`, `{other}`, `{xt}`,
`{other:Observation}`, `{xt_group}`, `{hapi_xt_tenant_page}`, …: see `corpus/bypass.yaml`),
filled per token kind by the corpus's `Side.lookup`, so "the own patient" is each token's own and
"another patient" is one whose data that token must not see. Each drawn request is sent with
each of the corpus's token kinds in turn (scheduler, triage, analytics, tenant-b, no token).

Each answer must hold: no 5xx status at all (no request a client can write may break the gateway
or HAPI; a 502 for HAPI's failure counts too), and the corpus's `judge` with expectation
`no_foreign_data`: no id of another patient's or tenant's resource in the answer's bytes or
headers (collected from HAPI by the corpus's `sides` fixture; an id the request named only inside
a refusal or a Bundle link), no `evil.example`, no 401 for a valid token, no 429.

The sample is bounded and the same on every run (`derandomize=True`): MAX_EXAMPLES examples, each
a list of 4 or 5 distinct drawn requests (95 in all: 52 GET, 20 HEAD, 23 POST), each request sent
with the 5 token kinds: 475 requests, 1-2.5 s of request time on the project's 2-core machine
(the module takes 10-45 s with its fixtures: seeding, the population read from HAPI). A list per
example rather than one request: with a small budget, hypothesis draws many near-copies of earlier
examples, and a list's members are drawn apart. `test_volume` checks the count and prints it with
the statuses per token kind; `test_the_checks_see_a_leak` checks the checks first (HAPI's own
answer fails them). The `test_found_by_the_fuzz*` tests keep what wider runs found.

No drawn request is meant to write: POST only searches (`_search`, a form to a type), batches and
transactions of GET entries, and `$everything`; `$export` is left to the corpus, which cancels the
jobs it starts. `test_nothing_was_written` holds the gateway to that: after the sample, HAPI's
history since its first request must be empty (a wider run found a write: see the last test).

FHIRLAB_FUZZ_COLLECT=1 sends the whole sample without stopping and lists every violation at the
end. A violation's message names the request as sent and the answer; FHIRLAB_FUZZ_SHRINK=1 lets
hypothesis shrink it (every step is five real requests).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus, unquote
from xml.sax.saxutils import quoteattr

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from labcore.config import LabConfig
from tests.client_strategies import accept, pairs, weighted
from tests.integration import test_bypass_corpus as corpus
from tests.integration.bypass_corpus import (
    TOKEN_KINDS,
    Answer,
    Case,
    Expect,
    Lookup,
    Rendered,
    Template,
    Variant,
    describe,
    fhir_url,
    fill,
    fill_any,
    judge,
)
from tests.integration.test_bypass_corpus import Side, send

pytestmark = pytest.mark.anyio

# the corpus's fixtures, shared rather than copied (the seeded population is conftest.py's): the
# gateway with the lab's policy (rate limit off), every token kind's token and foreign ids (`sides`)
anyio_backend = corpus.anyio_backend
base_config = corpus.base_config
scheduler_token = corpus.scheduler_token
sides = corpus.sides
corpus_gateway = corpus.corpus_gateway

MAX_EXAMPLES = 20  # examples of 4 or 5 drawn requests; each request is sent once per token kind
MIN_SENT, MAX_SENT = 300, 500


# --------------------------------------------------------------------------------------------
# Paths

PATIENTS = ("{me}", "{me}", "{me}", "{other}", "{other}", "{xt}")
OWNERS = ("me", "me", "other", "other", "xt")
# types of the patients' compartments in the seeded population ({owner:Type} is one of them)
COMPARTMENT_TYPES = (
    "Observation",
    "Observation",
    "Condition",
    "Encounter",
    "Appointment",
    "Appointment",
    "DocumentReference",
    "Immunization",
    "AllergyIntolerance",
    "MedicationRequest",
)
OTHER_TYPES = (
    "Group",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Binary",
    "AuditEvent",
    "Bundle",
    "Provenance",
    "List",
    "Foo",
    "patient",
)
# weighted towards the types the tokens' scopes let them read, so that requests reach HAPI
TYPES = (
    *("Patient",) * 8,
    *("Observation",) * 6,
    *("Condition", "Appointment") * 3,
    "Group",
    *COMPARTMENT_TYPES,
    *OTHER_TYPES,
)
NOT_FOUND = "fuzz-none-000"  # an id nobody has


@st.composite
def instances(draw: st.DrawFn) -> tuple[str, str]:
    """A resource type and an id (template) to go with it: mostly a real resource of the token's
    own patient, another patient or the other tenant; sometimes a mismatch or a missing id."""
    kind = draw(st.integers(0, 9))
    if kind <= 2:
        return "Patient", draw(st.sampled_from(PATIENTS))
    if kind <= 5:
        rtype = draw(st.sampled_from(COMPARTMENT_TYPES))
        return rtype, f"{{{draw(st.sampled_from(OWNERS))}:{rtype}}}"
    if kind == 6:
        return draw(
            st.sampled_from(
                (
                    ("Group", "{my_group}"),
                    ("Group", "{xt_group}"),
                    ("Organization", "{my_org}"),
                    ("Organization", "{xt_org}"),
                    ("Binary", "{other_binary}"),
                    ("Binary", "{xt_binary}"),
                    ("Practitioner", "{my_prac}"),
                )
            )
        )
    rtype = draw(st.sampled_from(TYPES))
    rid = draw(
        st.sampled_from(
            (*PATIENTS, "{other:Observation}", "{xt:Appointment}", "{xt_binary}", NOT_FOUND)
        )
    )
    return rtype, rid


PAGES = ("{hapi_obs_page}", "{hapi_patient_page}", "{hapi_my_tenant_page}", "{hapi_xt_tenant_page}")
READ_TEMPLATES = (
    *("{T}",) * 8,  # a search: the drawn query is most of the attack
    *("{T}/{I}",) * 4,
    "Patient/{P}/{C}",
    "?_getpages={G}&_getpagesoffset=0",
    "?_getpages={G}&_getpagesoffset=5",
    "{T}/{I}/_history",
    "{T}/{I}/_history/1",
    "{T}/_history",
    "_history",
    "{T}/_search",
    "Patient/{P}/{C}",
    "Patient/{P}/{C}",
    "Patient/{P}/*",
    "Patient/{P}/$everything",
    "Patient/{P}/$everything",
    "Patient/$everything",
    "{T}/{I}/$everything",
    "{T}/{I}/$meta",
    "{T}/$meta",
    "{T}/{I}/_history/1/$meta",
    "{T}/{I}/$validate",
    "",
    "metadata",
)
ODD_PATHS = (
    "patient/{other}",
    "Patient/{other}/",
    "/Patient/{other}",
    "Patient/{other};x=1",
    "Patient/{me}%2F..%2F{other}",
    "Patient/{me}/../{other}",
    "Patient/{other_pct}",
    "Patient/{other_pct}/Observation",
    "Patient/{other}/%24everything",
    "%24everything",
    "Patient/%2e%2e",
    "Patient//{other}",
    "Pati%C3%A9nt",
    "Patient/{me},{other}",
    "Patient/{me}%2C{other}",
    "Patient/{me}?_id={other}",  # a query in the path: the drawn query is appended to it
    "Observation/{other:Observation}/_history/1/$meta",
    "Encounter/{other:Encounter}/Observation",
    "Group/{xt_group}/$everything",
    "DocumentReference/{other:DocumentReference}/$binary-access-read",
    ".well-known/smart-configuration",
    "_search",
)
POST_TEMPLATES = (
    "{T}/_search",
    "{T}/_search",
    "{T}/_search",
    "_search",
    "",
    "",
    "",
    "Patient/{P}/{C}/_search",
    "Patient/{P}/$everything",
    "{T}",
)


@st.composite
def paths(draw: st.DrawFn, templates: tuple[str, ...]) -> str:
    template = draw(st.sampled_from(templates))
    rtype, rid = draw(instances())
    if "{I}" not in template:  # any type then, not only one with an instance
        rtype = draw(st.sampled_from((rtype, *TYPES)))
    return (
        template.replace("{T}", rtype)
        .replace("{I}", rid)
        .replace("{P}", draw(st.sampled_from(PATIENTS)))
        .replace("{C}", draw(st.sampled_from((*COMPARTMENT_TYPES, "Patient", "Group", "Foo"))))
        .replace("{G}", draw(st.sampled_from((*PAGES, "fuzz-page"))))
    )


READ_PATHS = weighted((8, paths(READ_TEMPLATES)), (1, st.sampled_from(ODD_PATHS)))
POST_PATHS = weighted((6, paths(POST_TEMPLATES)), (1, READ_PATHS))


# --------------------------------------------------------------------------------------------
# Query parameters (written plain, placeholders filled per token kind, then encoded as drawn)


FIXED_PARAMS = (
    pairs("_format", "json", "xml", "application/fhir+json", "application/fhir+xml", "ttl")
    + pairs("_format", "html", "text/turtle", "application/json+fhir", "application/xml+fhir")
    + pairs("_format", "application/xml", "text/xml", "JSON", "", "x/y", "ndjson")
    + pairs("_summary", "true", "false", "text", "data", "count", "bogus")
    + pairs("_elements", "id", "subject", "id,meta", "name,link", "member", "code,subject", "")
    + pairs("_include", "Observation:subject", "Observation:performer", "Appointment:actor")
    + pairs("_include", "Group:member", "*", "Observation:subject:Patient", "Patient:link")
    + pairs("_include", "Patient:general-practitioner", "Encounter:subject", "Observation:*")
    + pairs("_include", "Encounter:service-provider", "Observation:encounter", "Patient:*")
    + pairs("_revinclude", "Observation:subject", "Provenance:target", "*", "Group:member")
    + pairs("_revinclude", "Appointment:actor", "Patient:general-practitioner", "List:item")
    + pairs("_revinclude", "Patient:organization", "Encounter:participant", "Patient:link")
    + pairs("_include:iterate", "Patient:link", "Group:member", "*", "Encounter:participant")
    + pairs("_include:iterate", "Observation:subject", "Patient:general-practitioner")
    + pairs("_revinclude:iterate", "Observation:subject", "Group:member", "*")
    + pairs("_revinclude:iterate", "Patient:general-practitioner", "Encounter:participant")
    + pairs("_include:recurse", "*")
    + [
        ("_has:Observation:patient:code", "{common_code}"),
        ("_has:Observation:patient:_id", "{other:Observation}"),
        ("_has:Group:member:_id", "{my_group}"),
        ("_has:Group:member:_id", "{xt_group}"),
        ("_has:Observation:subject:_has:Group:member:_id", "{my_group}"),
        ("_has:Encounter:patient:_has:Observation:encounter:status", "final"),
        ("_has:Appointment:actor:status", "booked"),
        ("subject.name", "{other_family}"),
        ("subject:Patient.family", "{other_family}"),
        ("patient.identifier", "{other_mrn}"),
        ("patient:identifier", "{other_mrn}"),
        ("actor:Patient.family", "{other_family}"),
        ("encounter.subject:Patient.family", "{other_family}"),
        ("general-practitioner.name", "a"),
        ("subject:Patient.link:Patient.name", "a"),
        ("member.name", "a"),
        ("_getpages", "{hapi_obs_page}"),
        ("_getpages", "{hapi_patient_page}"),
        ("_getpages", "{hapi_my_tenant_page}"),
        ("_getpages", "{hapi_xt_tenant_page}"),
        ("_getpages", "fuzz-page"),
        ("_getpagesoffset", "0"),
        ("_getpagesoffset", "10"),
        ("_getpagesoffset", "100"),
        ("_bundletype", "searchset"),
        ("_tag", "{xt_tenant_tag}"),
        ("_tag", "{my_tenant_tag}"),
        ("_tag:not", "{my_tenant_tag}"),
        ("_tag:missing", "true"),
        ("_security:missing", "true"),
        ("_filter", "subject eq Patient/{other}"),
        ("_list", "{xt_group}"),
        ("_text", "a"),
        ("_content", "a"),
        ("_pretty", "true"),
        ("_total", "accurate"),
        ("_sort", "-_lastUpdated"),
        ("_contained", "true"),
        ("_containedType", "contained"),
        ("_since", "2000-01-01"),
        ("_lastUpdated", "gt2000-01-01"),
        ("_type", "Patient"),
        ("_type", "Patient,Observation"),
        ("_type", "Foo"),
        ("mode", "terminology"),
        ("code", "{common_code}"),
        ("name", "a"),
        ("name:contains", "a"),
        ("family", "{other_family}"),
        ("identifier", "{other_mrn}"),
        ("category", "laboratory"),
        ("status", "final"),
        ("actor", "Patient/{other}"),
        ("member", "{me}"),
        ("member", "Patient/{other}"),
        ("Patient", "{other}"),
        ("patient:missing", "true"),
        ("path", "DocumentReference.content.attachment"),
    ]
    + pairs("_count", "0", "1", "2", "10", "100", "1000", "-1", "abc")
    + pairs("patient", "{me}", "{me}", "{other}", "{xt}", "Patient/{me}", "Patient/{other}")
    + pairs("patient", "{me},{other}", "{other_pct}", "", "{base}/Patient/{other}")
    + pairs("subject", "{me}", "Patient/{me}", "Patient/{other}", "Patient/{xt}", "{other}")
    + pairs("subject", "Group/{my_group}", "Group/{xt_group}", "{hapi_base}/Patient/{other}")
    + pairs("subject:Patient", "{other}")
    + pairs("_id", "{me}", "{other}", "{xt}", "{me},{other}", "{other:Observation}", "{xt_org}")
    + pairs("_id:not", "{me}")
)
NAME_CHARS = "abcdefghijklmnopqrstuvwxyz_:.-ABCXYZ0123456789"
# printable ASCII and a few letters beyond it; no braces (the placeholders') and no `#`
VALUE_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="{}#") | (
    st.sampled_from("éü中")
)
params = st.lists(
    weighted(
        (6, st.sampled_from(FIXED_PARAMS)),
        (
            1,
            st.tuples(
                st.text(NAME_CHARS, min_size=1, max_size=8), st.text(VALUE_CHARS, max_size=8)
            ),
        ),
    ),
    max_size=5,
).map(tuple)
ENCODINGS = ("quote",) * 8 + ("plus", "plus", "raw", "all", "double")


def encode(text: str, how: str) -> str:
    """A name or value as the query (or form) carries it."""
    if how == "raw":
        return text
    if how == "plus":
        return quote_plus(text, safe=":/,*")
    if how == "all":  # every byte, names too: %5Fhas:…
        return "".join(f"%{b:02X}" for b in text.encode())
    if how == "double":
        return quote(quote(text, safe=""), safe="")
    return quote(text, safe=":/,*")


def query(pairs: tuple[tuple[str, str], ...], how: str, lookup: Lookup) -> str:
    return "&".join(
        f"{encode(unquote(fill(k, lookup)), how)}={encode(unquote(fill(v, lookup)), how)}"
        for k, v in pairs
    )


# --------------------------------------------------------------------------------------------
# Headers

FIXED_HEADERS = (
    ("If-None-Match", 'W/"1"'),
    ("If-None-Match", 'W/"2"'),
    ("If-None-Match", "*"),
    ("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"),
    ("If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Port", "443"),
    ("X-Forwarded-Prefix", "/evil.example"),
    ("X-Forwarded-For", "203.0.113.9"),
    ("Forwarded", "host=evil.example;proto=https"),
    ("Forwarded", "for=203.0.113.9;host=evil.example:8443"),
    ("Prefer", "return=representation"),
    ("Prefer", "return=minimal"),
    ("Prefer", "return=OperationOutcome"),
    ("Prefer", "handling=strict"),
    ("Prefer", "handling=lenient"),
    ("Cache-Control", "no-cache"),
    ("Cache-Control", "no-store, max-results=1"),
    ("Accept-Encoding", "gzip"),
    ("Accept-Encoding", "identity"),
    ("Accept-Encoding", "br;q=1, deflate;q=0.5"),
    ("X-Request-Id", "fuzz-real-stack"),
    ("X-Fhirlab-Clock", "2026-11-28T03:00:00-05:00"),
    ("Accept-Language", "de"),
    ("Content-Type", "application/fhir+json"),
)
RESERVED_HEADERS = frozenset(
    {"host", "authorization", "content-length", "content-type", "transfer-encoding"}
    | {"connection", "accept"}
)
random_headers = st.tuples(
    st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=10).filter(
        lambda name: name not in RESERVED_HEADERS
    ),
    st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="{}"), max_size=10
    ),
)
headers = st.lists(
    weighted(
        (2, st.tuples(st.just("Accept"), accept)),
        (3, st.sampled_from(FIXED_HEADERS)),
        (1, random_headers),
    ),
    max_size=4,
).map(tuple)


# --------------------------------------------------------------------------------------------
# Bodies (POST): forms, batch and transaction Bundles of GET entries, a Parameters, garbage

FORM = "application/x-www-form-urlencoded"
FHIR_JSON = "application/fhir+json"
FORM_TYPES = (FORM,) * 5 + (f"{FORM}; charset=UTF-8", None, "application/fhir+json", "text/plain")
BUNDLE_TYPES = ("application/fhir+json",) * 4 + ("application/json", None, FORM)


@dataclass(frozen=True)
class Body:
    kind: str  # form | json | xml | raw
    content_type: str | None
    form: tuple[tuple[str, str], ...] = ()
    document: Any = None  # json: a document with placeholders; xml: (bundle type, entry URLs)
    raw: bytes = b""


@st.composite
def entry_urls(draw: st.DrawFn) -> str:
    """An entry's request URL, written plain (the gateway reads it out of the JSON)."""
    path = draw(weighted((6, paths(READ_TEMPLATES)), (1, st.sampled_from(ODD_PATHS))))
    path = draw(st.sampled_from((path,) * 6 + (f"{{base}}/{path}", f"{{hapi_base}}/{path}")))
    drawn = draw(st.lists(st.sampled_from(FIXED_PARAMS), max_size=3))
    if not drawn:
        return path
    return f"{path}{'&' if '?' in path else '?'}" + "&".join(f"{k}={v}" for k, v in drawn)


@st.composite
def entries(draw: st.DrawFn) -> dict[str, Any]:
    request: dict[str, Any] = {"method": "GET", "url": draw(entry_urls())}
    if draw(st.integers(0, 7)) == 0:
        request["ifNoneMatch"] = 'W/"1"'
    if draw(st.integers(0, 9)) == 0:  # a batch inside the batch
        inner = draw(st.lists(entry_urls(), min_size=1, max_size=2))
        return {
            "request": {"method": "POST", "url": ""},
            "resource": {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{"request": {"method": "GET", "url": u}} for u in inner],
            },
        }
    return {"request": request}


@st.composite
def bundles(draw: st.DrawFn) -> Body:
    kind = draw(st.sampled_from(("batch", "batch", "transaction")))
    if draw(st.integers(0, 5)) == 0:
        urls = tuple(draw(st.lists(entry_urls(), min_size=1, max_size=3)))
        return Body(
            "xml",
            draw(st.sampled_from(("application/fhir+xml", "application/xml"))),
            (),
            (kind, urls),
        )
    document = {
        "resourceType": "Bundle",
        "type": kind,
        "entry": draw(st.lists(entries(), min_size=1, max_size=4)),
    }
    return Body("json", draw(st.sampled_from(BUNDLE_TYPES)), document=document)


forms = st.builds(
    lambda form, ctype: Body("form", ctype, form=form),
    params,
    st.sampled_from(FORM_TYPES),
)
OTHER_BODIES = (
    Body("json", "application/fhir+json", document={"resourceType": "Parameters"}),
    Body(
        "json",
        "application/fhir+json",
        document={"resourceType": "Bundle", "type": "searchset", "entry": []},
    ),
    Body("raw", "application/fhir+json", raw=b"{"),
    Body("raw", "application/fhir+json", raw=b"null"),
    Body("raw", FORM, raw=b"%zz=1&_id"),
    Body("raw", None, raw=b""),
)


def bodies_for(path: str) -> st.SearchStrategy[Body]:
    if path in ("", "/"):
        return weighted((8, bundles()), (1, forms), (1, st.sampled_from(OTHER_BODIES)))
    return weighted((8, forms), (1, bundles()), (1, st.sampled_from(OTHER_BODIES)))


# --------------------------------------------------------------------------------------------
# A drawn request, and how it is written for one token kind


@dataclass(frozen=True)
class Drawn:
    method: str
    path: str  # under /fhir, with placeholders
    params: tuple[tuple[str, str], ...]
    encoding: str  # of the query and of a form: quote, plus, raw, all, double
    encode_path: bool  # every byte of the ids in the path percent-encoded
    headers: tuple[tuple[str, str], ...]
    body: Body | None = None


@st.composite
def requests(draw: st.DrawFn) -> Drawn:
    method = draw(st.sampled_from(("GET",) * 5 + ("HEAD", "HEAD", "POST", "POST", "POST")))
    path = draw(POST_PATHS if method == "POST" else READ_PATHS)
    return Drawn(
        method=method,
        path=path,
        params=draw(params),
        encoding=draw(st.sampled_from(ENCODINGS)),
        encode_path=draw(st.integers(0, 11)) == 0,
        headers=draw(headers),
        body=draw(bodies_for(path)) if method == "POST" else None,
    )


def _encode_ids(path: str) -> str:
    """`Patient/pat-a-000002/_history` → `Patient/%70%61…/_history`."""
    segments = path.split("/")
    return "/".join(
        s if i == 0 or not s or s[0] in "_$%*" else "".join(f"%{b:02X}" for b in s.encode())
        for i, s in enumerate(segments)
    )


def render(drawn: Drawn, lookup: Lookup) -> Rendered:
    path = fill(drawn.path, lookup)
    if drawn.encode_path:
        path = _encode_ids(path.split("?")[0]) + (
            f"?{path.split('?', 1)[1]}" if "?" in path else ""
        )
    url = fhir_url(path)  # `/Patient/x` → `/fhir//Patient/x`, as drawn
    if drawn.params:
        url += ("&" if "?" in url else "?") + query(drawn.params, drawn.encoding, lookup)
    headers = {k: fill(v, lookup) for k, v in drawn.headers}
    content: bytes | None = None
    body = drawn.body
    if body is not None:
        if body.kind == "form":
            content = query(body.form, drawn.encoding, lookup).encode()
        elif body.kind == "json":
            content = json.dumps(fill_any(body.document, lookup)).encode()
        elif body.kind == "xml":
            kind, urls = body.document
            entries_xml = "".join(
                f'<entry><request><method value="GET"/><url value={quoteattr(fill(u, lookup))}/>'
                "</request></entry>"
                for u in urls
            )
            content = (
                f'<Bundle xmlns="http://hl7.org/fhir"><type value="{kind}"/>{entries_xml}</Bundle>'
            ).encode()
        else:
            content = body.raw
        headers.pop("Content-Type", None)
        if body.content_type is not None:
            headers["Content-Type"] = body.content_type
    return Rendered(drawn.method, url, headers, content)


def lookup_for(side: Side, extra: Mapping[str, str]) -> Lookup:
    """The corpus's placeholders for a token kind, and `{hapi_base}`; a typed one whose patient
    holds no resource of that type is an id that does not exist."""

    def lookup(name: str, rtype: str | None) -> str:
        if rtype is None and name in extra:
            return extra[name]
        try:
            return side.lookup(name, rtype)
        except KeyError:
            if rtype is None:
                raise
            return NOT_FOUND

    return lookup


# --------------------------------------------------------------------------------------------
# The checks


def hapi_now() -> str:
    """Now, as HAPI's `_since` takes it (HAPI runs on this machine: one clock)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def written_since(hapi: httpx.Client, since: str) -> list[str]:
    """Every version HAPI stored since then, as `POST Binary/1894/_history/1`."""
    resp = hapi.get(
        "/_history", params={"_since": since, "_count": "200"}, headers={"Accept": FHIR_JSON}
    )
    assert resp.status_code == 200, resp.text
    return [
        f"{e['request']['method']} {e['request']['url']}"
        for e in resp.json().get("entry", [])
        if "request" in e
    ]


_FUZZ_TEMPLATE = Template(
    id="fuzz",
    cls="fuzz",
    method="GET",
    url="",
    expect=dict.fromkeys(TOKEN_KINDS, Expect.NO_FOREIGN_DATA),
    variants=dict.fromkeys(TOKEN_KINDS, "one"),
)
_CASES = {kind: Case(_FUZZ_TEMPLATE, kind, Variant("drawn")) for kind in TOKEN_KINDS}


def problems_with(kind: str, side: Side, request: Rendered, answer: Answer) -> list[str]:
    problems: list[str] = []
    if answer.status >= 500:
        problems.append(f"a {answer.status}: no request a client can write may get a 5xx")
    named = side.foreign.found(request.text())
    problems += judge(
        _CASES[kind], request.method, answer, side.foreign, named, side.token is not None
    )
    return problems


@dataclass
class Tally:
    sent: int = 0
    seconds: float = 0.0  # time spent in the requests (fixtures and drawing not counted)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    methods: Counter[str] = field(default_factory=Counter)  # of the drawn requests
    violations: list[str] = field(default_factory=list)
    stopped: bool = False  # a violation was raised: the sample was not sent whole
    since: str | None = None  # HAPI's `_since` for the sample: when its first request went out

    def summary(self) -> str:
        by_kind: dict[str, dict[int, int]] = {}
        for (kind, status), count in sorted(self.statuses.items()):
            by_kind.setdefault(kind, {})[status] = count
        lines = [f"{kind}: {counts}" for kind, counts in by_kind.items()]
        return (
            f"{self.sent} requests through the gateway to the real stack in {self.seconds:.1f} s"
            f" ({sum(self.methods.values())} drawn: {dict(sorted(self.methods.items()))})"
            + "".join(f"\n  {line}" for line in lines)
        )


COLLECT = os.environ.get("FHIRLAB_FUZZ_COLLECT") == "1"
SHRINK = os.environ.get("FHIRLAB_FUZZ_SHRINK") == "1"
FUZZ = settings(
    derandomize=True,  # the same sample on every run
    database=None,
    deadline=None,  # real requests: HAPI's time is not the test's
    max_examples=MAX_EXAMPLES,
    # drawing is cheap, but some drawn requests are large (bundles); none of these says
    # anything about the gateway
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
    phases=(Phase.explicit, Phase.generate, *((Phase.shrink, Phase.explain) if SHRINK else ())),
)


@pytest.fixture(scope="module")
def tally() -> Tally:
    return Tally()


def test_the_checks_see_a_leak(sides: dict[str, Side], hapi: httpx.Client) -> None:
    """The checks are not blind: HAPI's own answer to a search of every Patient (no gateway in
    between) fails them for every token kind, and so does any 5xx."""
    resp = hapi.get("/Patient", params={"_count": "100"}, headers={"Accept": FHIR_JSON})
    assert resp.status_code == 200, resp.text
    answer = Answer(resp.status_code, tuple(resp.headers.multi_items()), resp.content)
    request = Rendered("GET", "/fhir/Patient?_count=100")
    for kind in TOKEN_KINDS:
        problems = problems_with(kind, sides[kind], request, answer)
        assert any(p.startswith("foreign ids the request did not name") for p in problems), kind
    broken = Answer(500, (("content-type", FHIR_JSON),), b'{"resourceType": "OperationOutcome"}')
    assert problems_with("triage", sides["triage"], request, broken)


async def exchange(
    gw: httpx.AsyncClient, drawn: Drawn, side: Side, extra: Mapping[str, str]
) -> tuple[Rendered, Answer]:
    """A drawn request as written for one token kind, and the gateway's answer."""
    request = render(drawn, lookup_for(side, extra))
    return request, await send(gw, request, side.token)


def report(kind: str, problems: list[str], request: Rendered, answer: Answer) -> str:
    return (
        f"[{kind}] " + "; ".join(problems) + f"\n  request: {request.method} {request.url}"
        f" {request.headers} body={(request.content or b'')[:300]!r}\n  answer: {describe(answer)}"
    )


@settings(FUZZ)
@given(drawn=st.lists(requests(), min_size=4, max_size=5, unique_by=repr))
async def test_client_requests(
    drawn: list[Drawn],
    corpus_gateway: httpx.AsyncClient,
    sides: dict[str, Side],
    seeded: LabConfig,
    tally: Tally,
) -> None:
    extra = {"hapi_base": seeded.hapi_base_url}
    found: list[str] = []
    if tally.since is None:
        tally.since = hapi_now()
    tally.methods.update(each.method for each in drawn)
    for each, kind in itertools.product(drawn, TOKEN_KINDS):
        started = time.perf_counter()
        request, answer = await exchange(corpus_gateway, each, sides[kind], extra)
        tally.seconds += time.perf_counter() - started
        tally.sent += 1
        tally.statuses[kind, answer.status] += 1
        problems = problems_with(kind, sides[kind], request, answer)
        if problems:
            found.append(report(kind, problems, request, answer))
    if found:
        tally.violations += found
        if not COLLECT:
            tally.stopped = True
            raise AssertionError("\n".join(found))


def test_nothing_was_written(tally: Tally, hapi: httpx.Client) -> None:
    """Runs after the fuzz: no drawn request is a write, so HAPI holds no new version of anything
    (the test lab is this session's alone: nothing else writes to it meanwhile)."""
    if tally.since is None:
        pytest.skip("run with test_client_requests")
    written = written_since(hapi, tally.since)
    assert not written, f"the sample wrote to HAPI through the gateway: {written}"


def test_volume(
    tally: Tally, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs after the fuzz: the bounded sample really went through the gateway."""
    if "test_client_requests" not in {item.name for item in request.session.items}:
        pytest.skip("run with test_client_requests")
    if tally.stopped:
        pytest.skip("the fuzz stopped at a violation")
    with capsys.disabled():
        print(f"\n{tally.summary()}")
    assert MIN_SENT <= tally.sent <= MAX_SENT, tally.summary()


def test_collected_violations(tally: Tally) -> None:
    """With FHIRLAB_FUZZ_COLLECT=1: every violation of the sample, listed."""
    if not COLLECT:
        pytest.skip("set FHIRLAB_FUZZ_COLLECT=1 to collect violations instead of stopping")
    if tally.violations:
        pytest.fail(f"{len(tally.violations)} violations:\n\n" + "\n\n".join(tally.violations))


# ---- found by wider runs of this fuzz ----------------------------------------------------------
# Three runs of 400 examples (about 1,790 drawn requests and 8,950 sent each) found no foreign data
# in any answer, and, outside the bounded sample above, the three 5xx answers below and a write (the
# last test). Kept strict: they fail until the gateway is changed (not this module's to change).
FOUND = {
    # HAPI answers `_summary=text` on its CapabilityStatement as text/html, whatever is asked for;
    # the public (tokenless) statement passes the parameter on and cannot read the answer: 502
    # "the FHIR server's CapabilityStatement cannot be read". With a token: 200.
    "metadata-summary-text": Drawn("GET", "metadata", (("_summary", "text"),), "quote", False, ()),
    # HAPI fails on `$everything` with a `_count` that is not a number (NumberFormatException,
    # 500; a search answers 400 "Invalid _count value"); the gateway answers 502. Only the
    # analytics backend may call `$everything` (C12); `_count=-1` and `0` are answered 200.
    "everything-count-not-a-number": Drawn(
        "GET", "Patient/{me}/$everything", (("_count", "abc"),), "quote", False, ()
    ),
    # HAPI fails on a transaction entry that reads a live page (NullPointerException on
    # RequestDetails.getCompleteUrl(), 500); the gateway answers 502. Any token; a page of HAPI's
    # or of the token's own search alike. In a batch HAPI answers 200 with the 500 (and its Java
    # message) in the entry.
    "transaction-getpages": Drawn(
        "POST",
        "",
        (),
        "quote",
        False,
        (),
        Body(
            "json",
            FHIR_JSON,
            document={
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"request": {"method": "GET", "url": "?_getpages={hapi_obs_page}"}}],
            },
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(FOUND))
async def test_found_by_the_fuzz(
    name: str, corpus_gateway: httpx.AsyncClient, sides: dict[str, Side], seeded: LabConfig
) -> None:
    extra = {"hapi_base": seeded.hapi_base_url}
    found: list[str] = []
    for kind in TOKEN_KINDS:
        request, answer = await exchange(corpus_gateway, FOUND[name], sides[kind], extra)
        problems = problems_with(kind, sides[kind], request, answer)
        if problems:
            found.append(report(kind, problems, request, answer))
    assert not found, "\n".join(found)


async def test_found_by_the_fuzz_binary_write(
    corpus_gateway: httpx.AsyncClient, sides: dict[str, Side], hapi: httpx.Client
) -> None:
    """`POST Binary` with a body that is not FHIR (a form, text) is a create in HAPI: it stores
    the body as a new Binary. The gateway lets the tenant-a analytics backend (an export client,
    whose scopes grant reads and searches only) send it: C05 leaves Binary to C04 (export files),
    C04 lets an export client through, and the body cannot be stamped with the tenant. HAPI creates
    an untagged Binary; only then is the answer refused (403 [C10] the answer to POST /fhir/Binary
    holds a resource this token may not see). The same token's `PUT Binary/<id>` of an untagged
    Binary (text/plain) overwrites it (answer 403, version stored) and `DELETE Binary/<id>` deletes
    it (200): export files are untagged Binaries. What this test writes is deleted again, straight
    at HAPI."""
    since = hapi_now()
    answers: list[str] = []
    for kind in TOKEN_KINDS:
        body = f"fhirlab fuzz: written by the {kind} token".encode()
        request = Rendered("POST", "/fhir/Binary", {"Content-Type": "text/plain"}, body)
        answer = await send(corpus_gateway, request, sides[kind].token)
        answers.append(f"[{kind}] {describe(answer, 200)}")
    written = written_since(hapi, since)
    for line in written:
        method, url = line.split(" ", 1)
        if method in ("POST", "PUT") and url.startswith("Binary/"):
            hapi.delete(f"/{url.split('/_history')[0]}")
    assert not written, f"written to HAPI: {written}\n" + "\n".join(answers)
