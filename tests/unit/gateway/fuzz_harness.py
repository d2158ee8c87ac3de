"""The offline fuzz harness of the gateway's answers (`test_fuzz_answers.py` draws the input).

The real gateway app (`gateway.app.create_app`) with the lab's policy, every control enforced, is
driven in-process through its raw ASGI callable. Behind it stand two fakes: HAPI (an
`httpx.MockTransport` answering whatever the test drew) and Keycloak (JWKS, OpenID discovery,
introspection answering active). Each drawn request is sent once per *viewer* (a token, or none),
and each drawn upstream answer is *materialised* per viewer: the same abstract answer ("an
Observation of a patient of the other tenant", "a Group with the own patient and foreign members")
becomes concrete resources whose data a viewer may not see carry one marker, `zzforeign`, in their
ids and in the references that name them. Requests never carry the marker, so if it comes back, the
gateway let foreign data through.

Invariants checked on every answer (each kind of violation is its own exception class, so
Hypothesis reports and shrinks distinct failures separately):

1. the marker is not in the answer's headers or body (case-insensitive; gzip/deflate bodies are
   inflated, base64 is searched for it too), whatever the format;
2. no exception escapes the app, the ASGI exchange is complete, and no answer is a 5xx but
   502/503/504 (a 500 that HAPI answered and the gateway passed on is a distinct kind of
   violation, `status-500-passed-on`);
3. every 4xx/5xx answer the gateway makes itself (HAPI was not asked, or its status was replaced)
   is an OperationOutcome, JSON or XML (an empty HEAD answer excepted);

and three points of the fixed gateway's contract:

4. the client's `Forwarded` / `X-Forwarded-*` never reach HAPI (the gateway sets its own);
5. an answer's body is JSON or XML (NDJSON only for a `Binary/<id>` read, an export file);
6. HEAD is answered like GET (every GET is sent again as HEAD: the same status).

`Harness.collected` set to a dict counts violations by kind instead of raising the first.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import html
import json
import re
import time
import traceback
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote
from xml.sax.saxutils import quoteattr

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from gateway.app import create_app
from gateway.config import GatewayConfig, load_gateway_config
from gateway.controls import Mode
from gateway.policy import RUNTIME_CONTROLS, RateLimitPolicy
from gateway.settings import GatewaySettings

MARKER = "zzforeign"
PUBLIC_BASE = "http://gateway.test/fhir"
HAPI_BASE = "http://hapi.test/fhir"
KEYCLOAK = "http://keycloak.test"
REPO = Path(__file__).resolve().parents[3]
TENANT_TAG = "https://fhirlab.dev/tenant"
ME = "{me}"  # what a drawn request says where it names the viewer's own patient

# Types about the server, not anyone's data: never foreign by themselves (what they hold may be).
SERVER_TYPES = frozenset(
    {"OperationOutcome", "Bundle", "Parameters", "Binary", "CapabilityStatement"}
)
UNKNOWN_TYPES = frozenset({"Foo"})

# --------------------------------------------------------------------------------------------
# Viewers: who sends a request


@dataclass(frozen=True, slots=True)
class Viewer:
    """A client as the gateway sees it. `readable`: the types its scopes let it read (None:
    every type); `trusted`: False for an anonymous or forged token (all data is foreign)."""

    name: str
    authorization: str | None
    tenant: str
    other_tenant: str
    me: str  # the own patient (a backend token's: one of its tenant's patients)
    patient_context: bool
    readable: frozenset[str] | None
    trusted: bool = True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Realms:
    """The fake Keycloak: one signing key per tenant realm (plus one nobody trusts)."""

    def __init__(self, tenants: Sequence[str]) -> None:
        self.keys = {
            t: RSAKey.generate_key(2048, parameters={"kid": f"kid-{t}", "alg": "RS256"})
            for t in tenants
        }
        self.stranger = RSAKey.generate_key(2048, parameters={"kid": "kid-tenant-a"})

    @staticmethod
    def issuer(tenant: str) -> str:
        return f"{KEYCLOAK}/realms/{tenant}"

    def mint(self, tenant: str, claims: dict[str, Any], key: RSAKey | None = None) -> str:
        now = int(time.time())
        full = {
            "iss": self.issuer(tenant),
            "aud": PUBLIC_BASE,
            "iat": now,
            "exp": now + 900,  # the policy's longest lifetime (C02)
            "jti": f"fuzz-{tenant}-{claims.get('azp')}",
            "sub": "fuzz-user",
            **claims,
        }
        signer = key or self.keys[tenant]
        return jwt.encode({"alg": "RS256", "kid": signer.kid, "typ": "JWT"}, full, signer)

    def forged(self, kind: str) -> str:
        """An Authorization value the gateway must refuse with 401."""
        claims = {"azp": "scheduling-assistant", "scope": "patient/Patient.rs", "patient": "x1"}
        if kind == "stranger-key":
            return "Bearer " + self.mint("tenant-a", claims, self.stranger)
        if kind == "expired":
            return "Bearer " + self.mint("tenant-a", {**claims, "iat": 1, "exp": 600})
        if kind == "wrong-audience":
            return "Bearer " + self.mint("tenant-a", {**claims, "aud": HAPI_BASE})
        if kind == "alg-none":
            head, body = _b64(b'{"alg":"none"}'), _b64(json.dumps(claims).encode())
            return f"Bearer {head}.{body}."
        if kind == "untrusted-issuer":
            return "Bearer " + self.mint("tenant-a", {**claims, "iss": "http://evil.test/realms/x"})
        return "Basic Zm9vOmJhcg=="

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        for tenant, key in self.keys.items():
            realm = f"/realms/{tenant}"
            if path == f"{realm}/protocol/openid-connect/certs":
                return httpx.Response(200, json={"keys": [key.as_dict(private=False)]})
            if path == f"{realm}/protocol/openid-connect/token/introspect":
                return httpx.Response(200, json={"active": True, "token_type": "Bearer"})
            if path == f"{realm}/.well-known/openid-configuration":
                issuer = self.issuer(tenant)
                return httpx.Response(
                    200,
                    json={
                        "issuer": issuer,
                        "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
                        "authorization_endpoint": f"{issuer}/protocol/openid-connect/auth",
                        "token_endpoint": f"{issuer}/protocol/openid-connect/token",
                        "introspection_endpoint": f"{issuer}/protocol/openid-connect/token/"
                        "introspect",
                    },
                )
        return httpx.Response(404, json={"error": "not found"})


# --------------------------------------------------------------------------------------------
# Upstream answers: abstract, then materialised per viewer


@dataclass(frozen=True, slots=True)
class Item:
    """One resource of an upstream answer, abstractly (`kind`, see `Scene.render`); `n` varies
    its ids; containers (Binary, Parameters, Bundle) hold `children`."""

    kind: str
    n: int = 1
    children: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True)
class Answer:
    """What the fake HAPI answers: `items` shaped (`shape`), written in `fmt` under a content
    type picked by `ct` (0: none, 1: another format's, else one of the format's own), encoded
    (`encoding`), maybe cut short (`truncate` tenths) or garbled, streamed in `chunk`-byte
    pieces, with Location/Content-Location naming its first resource if `location`."""

    status: int
    shape: str
    items: tuple[Item, ...]
    fmt: str = "json"
    ct: int = 2
    encoding: str | None = None
    truncate: int = 0
    junk: bytes = b""
    chunk: int | None = None
    location: bool = False


CONTENT_TYPES: dict[str, tuple[str, ...]] = {
    "json": (
        "application/fhir+json;charset=UTF-8",
        "application/fhir+json",
        "application/json",
        "application/json+fhir",
        "application/json; charset=utf-8",
        "APPLICATION/FHIR+JSON",
        "application/fhir+json; fhirVersion=4.0",
    ),
    "xml": (
        "application/fhir+xml;charset=UTF-8",
        "application/xml+fhir",
        "application/xml",
        "text/xml",
    ),
    "turtle": ("text/turtle", "application/x-turtle"),
    "html": ("text/html;charset=UTF-8",),
    "ndjson": ("application/fhir+ndjson", "application/ndjson", "application/x-ndjson"),
    "garbage": ("text/plain", "application/octet-stream", "garbage", ""),
    "empty": ("application/fhir+json", "text/plain"),
}
_WRONG = {"json": "xml", "xml": "json", "turtle": "json", "html": "json", "ndjson": "json"}


class Scene:
    """Materialises abstract items for one viewer: a resource the viewer may not see carries the
    marker in its id, and for a patient-context viewer so does every reference to a patient
    other than its own (the compartment check can see those). A backend token's own-tenant
    resources name other patients in the clear: the gateway cannot tell whose they are."""

    def __init__(self, viewer: Viewer) -> None:
        self.v = viewer

    def foreign(self, rtype: str, tenant: str, subject: str | None) -> bool:
        v = self.v
        if rtype in SERVER_TYPES:
            return False
        if not v.trusted or tenant != "own":
            return True
        if v.readable is not None and rtype not in v.readable:
            return True  # C05: no granted scope reads the type
        # C08: not in the patient's compartment
        return v.patient_context and (rtype in UNKNOWN_TYPES or subject not in ("me", None))

    def patient(self, role: str, n: int, holder_foreign: bool) -> str:
        """`Patient/<id>` for a patient of `role` (me, sib: same tenant, xt: the other tenant,
        nt: no tenant), as a reference inside a resource."""
        if role == "me":
            return f"Patient/{self.v.me}"
        if holder_foreign or self.v.patient_context or not self.v.trusted:
            return f"Patient/{MARKER}-{role}{n}"
        return f"Patient/pat-{role}{n}"

    def meta(self, tenant: str) -> dict[str, Any]:
        code = {"own": self.v.tenant, "other": self.v.other_tenant}.get(tenant)
        if code is None:
            return {"versionId": "1"}
        return {"versionId": "1", "tag": [{"system": TENANT_TAG, "code": code}]}

    def resource(
        self,
        rtype: str,
        stem: str,
        n: int,
        tenant: str,
        subject: str | None,
        fill: Callable[[Callable[[str], str]], dict[str, Any]],
    ) -> dict[str, Any]:
        foreign = self.foreign(rtype, tenant, subject)
        rid = f"{MARKER}-{stem}{n}" if foreign else f"{stem}{n}"
        body = fill(lambda role: self.patient(role, n, foreign))
        return {"resourceType": rtype, "id": rid, "meta": self.meta(tenant), **body}

    def a_patient(self, role: str, tenant: str, n: int, link: str | None = None) -> dict[str, Any]:
        foreign = self.foreign("Patient", tenant, role)
        if role == "me" and not foreign:
            rid = self.v.me
        else:
            rid = f"{MARKER}-{role}{n}" if foreign else f"pat-{role}{n}"
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": rid,
            "meta": self.meta(tenant),
            "name": [{"family": "Fuzz", "given": [rid]}],
        }
        if link is not None:
            other = self.patient(link, n, foreign)
            patient["link"] = [{"other": {"reference": other}, "type": "seealso"}]
        return patient

    def render(self, item: Item) -> dict[str, Any]:
        k, n = item.kind, item.n
        ref = {"reference": f"Patient/{self.v.me}"}
        if k == "patient-me":
            return self.a_patient("me", "own", n)
        if k == "patient-sibling":
            return self.a_patient("sib", "own", n)
        if k == "patient-other-tenant":
            return self.a_patient("xt", "other", n)
        if k == "patient-untagged":
            return self.a_patient("nt", "none", n)
        if k == "patient-me-linked":
            return self.a_patient("me", "own", n, link="sib")
        if k.startswith("observation-"):
            return self.observation(k.removeprefix("observation-"), n)
        if k.startswith("appointment-"):
            roles = {"me": ("me",), "sibling": ("sib",), "shared": ("me", "sib")}[
                k.removeprefix("appointment-")
            ]
            return self.resource(
                "Appointment",
                "appt",
                n,
                "own",
                "me" if "me" in roles else "sib",
                lambda p: {
                    "status": "booked",
                    "participant": [
                        {"actor": {"reference": p(r)}, "status": "accepted"} for r in roles
                    ],
                },
            )
        if k == "condition-me":
            return self.resource(
                "Condition", "cond", n, "own", "me", lambda p: {"subject": {"reference": p("me")}}
            )
        if k == "encounter-me":
            return self.resource(
                "Encounter", "enc", n, "own", "me", lambda p: {"subject": {"reference": p("me")}}
            )
        if k == "group-members":
            return self.resource(
                "Group",
                "grp",
                n,
                "own",
                "me",
                lambda p: {
                    "type": "person",
                    "actual": True,
                    "member": [{"entity": {"reference": p(r)}} for r in ("me", "sib", "xt")],
                },
            )
        if k == "group-foreign":
            return self.resource(
                "Group",
                "grp",
                n,
                "own",
                "sib",
                lambda p: {
                    "type": "person",
                    "actual": True,
                    "member": [{"entity": {"reference": p("sib")}}],
                },
            )
        if k == "list-foreign-items":
            return self.resource(
                "List",
                "list",
                n,
                "own",
                "me",
                lambda p: {
                    "status": "current",
                    "mode": "working",
                    "subject": {"reference": p("me")},
                    "entry": [{"item": {"reference": p(r)}} for r in ("sib", "nt")],
                },
            )
        if k == "practitioner":
            return self.resource(
                "Practitioner", "prac", n, "own", None, lambda p: {"name": [{"family": "Doc"}]}
            )
        if k == "organization-untagged":
            return self.resource("Organization", "org", n, "none", None, lambda p: {"name": "Org"})
        if k == "unknown-type":
            return self.resource(
                "Foo", "foo", n, "own", "me", lambda p: {"subject": {"reference": p("me")}}
            )
        if k == "no-resource-type":
            return {"id": f"{MARKER}-untyped{n}", "meta": self.meta("own"), "subject": ref}
        if k == "operation-outcome":
            return outcome("informational", "All OK")
        if k == "operation-outcome-foreign":
            return outcome("error", f"HAPI-2001: Resource Patient/{MARKER}-oo{n} is not known")
        if k == "capability-statement":
            return {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance"}
        if k == "binary-ndjson":
            lines = b"\n".join(json.dumps(self.render(c)).encode() for c in item.children)
            return binary(n, "application/fhir+ndjson", lines + b"\n")
        if k == "binary-json":
            first = self.render(item.children[0]) if item.children else outcome("error", "x")
            return binary(n, "application/fhir+json", json.dumps(first).encode())
        if k == "parameters":
            return {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "return", "resource": self.render(c)} for c in item.children
                ],
            }
        if k == "bundle":
            return self.bundle("collection", item.children)
        raise ValueError(f"unknown item kind {k!r}")

    def observation(self, variant: str, n: int) -> dict[str, Any]:
        subject, tenant = {
            "me": ("me", "own"),
            "sibling": ("sib", "own"),
            "other-tenant": ("xt", "other"),
            "untagged": ("me", "none"),
            "foreign-performer": ("me", "own"),
            "contained-patient": ("me", "own"),
        }[variant]

        def fill(p: Callable[[str], str]) -> dict[str, Any]:
            body: dict[str, Any] = {
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": p(subject)},
            }
            if variant == "foreign-performer":
                body["performer"] = [{"reference": p("sib")}]
            if variant == "contained-patient":
                cid = f"{MARKER}-c{n}" if self.v.patient_context or not self.v.trusted else f"c{n}"
                body["contained"] = [
                    {"resourceType": "Patient", "id": cid, "name": [{"family": cid}]}
                ]
                body["performer"] = [{"reference": f"#{cid}"}]
            return body

        return self.resource("Observation", "obs", n, tenant, subject, fill)

    def bundle(self, kind: str, items: Sequence[Item]) -> dict[str, Any]:
        entries = []
        for index, item in enumerate(items):
            resource = self.render(item)
            rtype, rid = resource.get("resourceType", "Resource"), resource.get("id", "x")
            entry: dict[str, Any] = {"fullUrl": f"{HAPI_BASE}/{rtype}/{rid}", "resource": resource}
            if kind == "searchset":
                entry["search"] = {"mode": "include" if index % 3 == 2 else "match"}
            elif kind in ("batch-response", "history"):
                entry["response"] = {
                    "status": "201 Created" if index % 2 else "200 OK",
                    "location": f"{rtype}/{rid}/_history/1",
                }
                if kind == "history":
                    entry["request"] = {"method": "PUT", "url": f"{rtype}/{rid}"}
            entries.append(entry)
        return {
            "resourceType": "Bundle",
            "id": "bundle1",
            "type": kind,
            "total": len(entries),
            "link": [{"relation": "self", "url": f"{HAPI_BASE}/Bundle"}],
            "entry": entries,
        }

    def top(self, answer: Answer) -> dict[str, Any]:
        if answer.shape == "resource":
            return self.render(answer.items[0])
        return self.bundle(answer.shape, answer.items)


def outcome(severity: str, text: str) -> dict[str, Any]:
    issue = {"severity": severity, "code": "processing", "diagnostics": text}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def binary(n: int, content_type: str, data: bytes) -> dict[str, Any]:
    return {
        "resourceType": "Binary",
        "id": f"bin{n}",
        "contentType": content_type,
        "data": base64.b64encode(data).decode(),
    }


# Formats -------------------------------------------------------------------------------------


def to_xml(resource: dict[str, Any]) -> str:
    """FHIR XML, close enough for a fake server (primitives as `value` attributes)."""
    rtype = str(resource.get("resourceType", "Resource"))
    return f'<{rtype} xmlns="http://hl7.org/fhir">{_xml_children(resource)}</{rtype}>'


def _xml_children(node: dict[str, Any]) -> str:
    out = []
    for key, value in node.items():
        if key == "resourceType":
            continue
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, dict) and "resourceType" in one:
                out.append(f"<{key}>{to_xml(one)}</{key}>")
            elif isinstance(one, dict):
                out.append(f"<{key}>{_xml_children(one)}</{key}>")
            else:
                text = json.dumps(one) if isinstance(one, bool) else str(one)
                out.append(f"<{key} value={quoteattr(text)}/>")
    return "".join(out)


def to_turtle(resource: dict[str, Any]) -> str:
    rtype = resource.get("resourceType", "Resource")
    lines = ["@prefix fhir: <http://hl7.org/fhir/> .", ""]
    lines.append(f"<{HAPI_BASE}/{rtype}/{resource.get('id', 'x')}> a fhir:{rtype} ;")
    for path, leaf in _leaves(resource, ""):
        lines.append(f"  fhir:{path} [ fhir:v {json.dumps(leaf)} ] ;")
    lines.append("  .")
    return "\n".join(lines)


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value, prefix)
    else:
        yield prefix, str(node)


def to_html(resource: dict[str, Any]) -> str:
    text = html.escape(json.dumps(resource, indent=2))
    return f"<html><head><title>HAPI FHIR</title></head><body><pre>{text}</pre></body></html>"


def to_ndjson(top: dict[str, Any]) -> bytes:
    if top.get("resourceType") == "Bundle":
        resources = [e["resource"] for e in top.get("entry", []) if "resource" in e]
    else:
        resources = [top]
    return b"".join(json.dumps(r).encode() + b"\n" for r in resources)


def encode_body(data: bytes, encoding: str | None) -> tuple[bytes, str | None]:
    """(bytes sent, Content-Encoding header)."""
    if encoding == "gzip":
        return gzip.compress(data, mtime=0), "gzip"
    if encoding == "deflate":
        return zlib.compress(data), "deflate"
    if encoding == "raw-deflate":
        squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return squeezer.compress(data) + squeezer.flush(), "deflate"
    if encoding == "gzip-unlabelled":
        return gzip.compress(data, mtime=0), None
    if encoding == "gzip-label-on-plain":
        return data, "gzip"
    if encoding == "br-label-on-plain":
        return data, "br"
    return data, None


@dataclass(frozen=True, slots=True)
class Rendered:
    """An answer as the fake HAPI sends it to one viewer."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes  # on the wire (encoded)
    plain: bytes  # before the content encoding
    chunk: int | None


def render_answer(answer: Answer, viewer: Viewer) -> Rendered:
    scene = Scene(viewer)
    top = scene.top(answer)
    fmt = answer.fmt
    if fmt == "xml":
        plain = to_xml(top).encode()
    elif fmt == "turtle":
        plain = to_turtle(top).encode()
    elif fmt == "html":
        plain = to_html(top).encode()
    elif fmt == "ndjson":
        plain = to_ndjson(top)
    elif fmt == "garbage":
        plain = answer.junk + json.dumps(top).encode()
    elif fmt == "empty":
        plain = b""
    else:
        plain = json.dumps(top, indent=2 if answer.truncate % 2 else None).encode()
    if answer.truncate and fmt != "empty":
        plain = plain[: len(plain) * answer.truncate // 10]
    if answer.status == 304:
        plain = b""
    headers: list[tuple[str, str]] = []
    if answer.ct == 1:
        headers.append(("content-type", CONTENT_TYPES[_WRONG.get(fmt, "json")][0]))
    elif answer.ct > 1:
        kinds = CONTENT_TYPES[fmt]
        headers.append(("content-type", kinds[answer.ct % len(kinds)]))
    body, content_encoding = encode_body(plain, answer.encoding if plain else None)
    if content_encoding:
        headers.append(("content-encoding", content_encoding))
    if answer.location:
        first = top
        if top.get("resourceType") == "Bundle" and top.get("entry"):
            first = top["entry"][0].get("resource") or top
        where = f"{HAPI_BASE}/{first.get('resourceType')}/{first.get('id')}/_history/1"
        headers += [("location", where), ("content-location", where), ("etag", 'W/"1"')]
        headers.append(("last-modified", "Sun, 29 Nov 2026 08:00:00 GMT"))
    headers.append(("x-powered-by", "HAPI FHIR 8.0.0 REST Server (FHIR Server; FHIR 4.0.1/R4)"))
    return Rendered(
        answer.status,
        tuple(headers),
        body,
        plain,
        answer.chunk,
    )


# --------------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True, slots=True)
class Request:
    """A request as a client may send it: `path` below the FHIR base (raw, may hold escapes),
    query `params` written per `encoding`, headers, body; `{me}` stands for the viewer's own
    patient. `extra` adds a viewer beside the four tokens (anonymous, or a forged token)."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    encoding: str = "quote"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    body_chunks: int = 1
    extra: str | None = None


def encode_query(params: Sequence[tuple[str, str]], encoding: str) -> bytes:
    if encoding == "raw":
        return "&".join(f"{k}={v}" for k, v in params).encode()
    pieces = []
    for name, value in params:
        if encoding == "plus":
            pieces.append(f"{quote_plus(name, safe=':._-')}={quote_plus(value, safe=',:|/._-')}")
        elif encoding == "double":
            pieces.append(f"{quote(quote(name, safe=''), safe='')}={quote(quote(value))}")
        elif encoding == "broken":
            pieces.append(f"{quote(name, safe=':._-')}={quote(value, safe=',:|/')}%zz")
        else:
            pieces.append(f"{quote(name, safe=':._-')}={quote(value, safe=',:|/*')}")
    return "&".join(pieces).encode()


@dataclass(slots=True)
class Sent:
    """One request as the gateway received it, and its answer."""

    viewer: Viewer
    method: str
    raw_path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    status: int = 0
    out_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    out_body: bytes = b""
    complete: bool = False
    protocol_error: str | None = None

    def describe(self) -> str:
        target = self.raw_path.decode("latin-1")
        if self.query:
            target += "?" + self.query.decode("latin-1")
        shown = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.headers]
        shown = [(k, v if k != "authorization" else v[:16] + "...") for k, v in shown]
        return (
            f"viewer {self.viewer.name}: {self.method} {target}\n"
            f"    headers {shown}\n    body {_clip(self.body)}"
        )


def _clip(data: bytes, limit: int = 500, around: int | None = None) -> str:
    if around is not None and len(data) > limit:
        start = max(0, around - limit // 2)
        data = data[start : start + limit]
        return ("..." if start else "") + repr(data)[2:-1] + "..."
    text = repr(data[:limit])[2:-1]
    return text + ("..." if len(data) > limit else "")


# --------------------------------------------------------------------------------------------
# Checks


class Violation(AssertionError):
    """An invariant broken; one subclass per kind (Hypothesis keeps distinct failures apart)."""


_VIOLATIONS: dict[str, type[Violation]] = {}


def violation(kind: str, message: str) -> Violation:
    cls = _VIOLATIONS.get(kind)
    if cls is None:
        words = kind.replace(":", "-").replace("_", "-").split("-")
        name = "".join(word.capitalize() for word in words)
        cls = _VIOLATIONS[kind] = type(name, (Violation,), {"__module__": __name__})
    return cls(f"[{kind}] {message}")


def _base64_cores(marker: bytes) -> tuple[bytes, ...]:
    """The parts of the marker's base64 that do not depend on the bytes around it, at each of
    the three alignments (standard and URL-safe alphabets)."""
    cores = []
    for shift in range(3):
        a = base64.b64encode(b"\x00" * shift + marker + b"\x00\x00")
        b = base64.b64encode(b"\xff" * shift + marker + b"\xff\xff")
        same = bytes(x if x == y else 0 for x, y in zip(a, b, strict=True))
        core = max(same.split(b"\x00"), key=len)
        cores += [core, core.replace(b"+", b"-").replace(b"/", b"_")]
    return tuple(dict.fromkeys(cores))


MARKER_BYTES = MARKER.encode()
_CORES = _base64_cores(MARKER_BYTES)


def marker_at(data: bytes) -> tuple[int, str] | None:
    """Where the marker is in `data` (plain, any case; or base64-encoded), if anywhere."""
    at = data.lower().find(MARKER_BYTES)
    if at >= 0:
        return at, "plain"
    for core in _CORES:
        at = data.find(core)
        if at >= 0:
            return at, "base64"
    return None


def has_marker(data: bytes) -> bool:
    return marker_at(data) is not None


_STEMS = {"sib": "patient", "xt": "patient", "nt": "patient", "c": "patient", "oo": "outcome-text"}


def _what_leaked(text: bytes) -> str:
    """What kind of foreign data the marked id at the start of `text` stands for."""
    match = re.match(rb"(?i)zzforeign-([a-z]+)", text)
    if match is None:
        return "base64"
    stem = match.group(1).decode().lower()
    return _STEMS.get(stem, "untyped" if stem == "untyped" else "resource")


def inflate(body: bytes, encoding: str) -> bytes:
    """The body without its content encoding (as it is when it cannot be undone)."""
    kind = encoding.strip().lower()
    try:
        if kind in ("gzip", "x-gzip") or (not kind and body[:2] == b"\x1f\x8b"):
            return zlib.decompress(body, wbits=zlib.MAX_WBITS | 32)
        if kind == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, wbits=-zlib.MAX_WBITS)
    except zlib.error:
        return body
    return body


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


_JSON = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
_XML = frozenset({"application/fhir+xml", "application/xml+fhir", "application/xml", "text/xml"})
_NDJSON = frozenset({"application/fhir+ndjson", "application/ndjson", "application/x-ndjson"})


def _family(content_type: str) -> str:
    media = _media(content_type)
    if media in _JSON:
        return "json"
    if media in _XML:
        return "xml"
    if media in _NDJSON:
        return "ndjson"
    if "turtle" in media:
        return "turtle"
    if "html" in media:
        return "html"
    return "other" if media else "untyped"


def is_outcome(body: bytes, content_type: str) -> bool:
    """A FHIR OperationOutcome in JSON or XML."""
    family = _family(content_type)
    if family == "json":
        try:
            value = json.loads(body)
        except ValueError:
            return False
        return (
            isinstance(value, dict)
            and value.get("resourceType") == "OperationOutcome"
            and isinstance(value.get("issue"), list)
            and bool(value["issue"])
        )
    if family == "xml":
        text = body.lstrip()
        if text.startswith(b"<?xml"):
            text = text[text.find(b"?>") + 2 :].lstrip()
        return text.startswith(b"<OperationOutcome") and b"http://hl7.org/fhir" in text[:200]
    return False


@dataclass(slots=True)
class Exchange:
    """A request the fake HAPI got from the gateway, and what it answered."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    answer: Rendered


class FakeHapi:
    """HAPI as a `MockTransport`: answers the current drawn answer (its CapabilityStatement for
    `metadata`); keeps what the gateway forwarded for the checks."""

    def __init__(self) -> None:
        self.answer: Rendered | None = None
        self.exchanges: list[Exchange] = []
        self.internal_reads = 0
        cs = {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance"}
        self.capability = json.dumps(
            {**cs, "fhirVersion": "4.0.1", "format": ["json", "xml"], "rest": [{"mode": "server"}]}
        ).encode()

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/metadata"):
            xml = "xml" in request.headers.get("accept", "") or "xml" in str(request.url.query)
            body = to_xml(json.loads(self.capability)).encode() if xml else self.capability
            kind = "application/fhir+xml" if xml else "application/fhir+json"
            return httpx.Response(
                200, stream=httpx.ByteStream(body), headers={"content-type": kind}
            )
        answer = self.answer
        assert answer is not None, "the fake HAPI was asked outside a drawn request"
        if "x-forwarded-proto" in request.headers:
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
            self.exchanges.append(Exchange(request.method, str(request.url), headers, answer))
        else:
            self.internal_reads += 1  # the gateway's own read (read-before-write)
        body = b"" if request.method == "HEAD" else answer.body
        return httpx.Response(
            answer.status, stream=_Chunks(body, answer.chunk), headers=list(answer.headers)
        )


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, body: bytes, size: int | None) -> None:
        self.body = body
        self.size = size

    async def __aiter__(self) -> Any:
        body, size = self.body, self.size
        if not size or len(body) <= size:
            if body:
                yield body
            return
        for start in range(0, len(body), size):
            yield body[start : start + size]


# --------------------------------------------------------------------------------------------
# The harness


def lab_config(audit_dir: Path | None) -> GatewayConfig:
    """The lab's gateway configuration (policy file, tenants, client classes from Keycloak's
    profiles), every run-time control enforced; the rate limit raised out of the way (it is not
    what is fuzzed here) and a patient app (class clinical-app, may hold wildcards) added."""
    config = load_gateway_config(
        REPO,
        KEYCLOAK,
        PUBLIC_BASE,
        GatewaySettings(upstream=HAPI_BASE, upstream_timeout_s=10.0),
        audit_dir=audit_dir,
    )
    policy = config.policy
    not_enforced = [c for c in RUNTIME_CONTROLS if policy.mode(c) is not Mode.ENFORCE]
    assert not not_enforced, f"the lab's policy does not enforce {not_enforced}"
    policy = policy.model_copy(
        update={"rate_limit": RateLimitPolicy(requests_per_second=1e9, burst=10**9)}
    )
    classes = {**config.client_classes, "fuzz-patient-app": "clinical-app"}
    return dataclasses.replace(config, policy=policy, client_classes=classes)


class Harness:
    """The gateway in-process, its fakes, the viewers, and the request loop with the checks."""

    def __init__(self, audit_dir: Path | None) -> None:
        self.config = lab_config(audit_dir)
        tenants = [i.tenant for i in self.config.issuers]
        assert tenants == ["tenant-a", "tenant-b"], tenants
        assert self.config.client_classes["scheduling-assistant"] == "operational-ai"
        assert self.config.client_classes["population-analytics"] == "analytics-backend"
        self.realms = Realms(tenants)
        self.hapi = FakeHapi()
        self.app = create_app(
            config=self.config,
            transport=httpx.MockTransport(self.hapi.handler),
            auth_transport=httpx.MockTransport(self.realms.handler),
        )
        self.viewers = self._viewers()
        self.minted = time.monotonic()
        self.extra = {
            "anonymous": Viewer(
                "anonymous", None, "tenant-a", "tenant-b", "pat-a1", False, None, False
            )
        }
        self.loop = asyncio.new_event_loop()
        self.sent = 0  # requests through the gateway
        self.forwarded = 0  # of which HAPI was asked
        self.seconds = 0.0
        self.statuses: dict[int, int] = {}
        # when set, violations are counted here (kind -> [count, first message]), not raised
        self.collected: dict[str, list[Any]] | None = None
        self._rendered: dict[tuple[Answer, str], Rendered] = {}

    def _viewers(self) -> tuple[Viewer, ...]:
        r = self.realms

        def bearer(tenant: str, client: str, scope: str, patient: str | None) -> str:
            claims: dict[str, Any] = {"azp": client, "client_id": client, "scope": scope}
            if patient:
                claims["patient"] = patient
            return "Bearer " + r.mint(tenant, claims, None)

        ai_scope = "openid fhirUser launch/patient patient/Patient.rs patient/Appointment.rs"
        # a patient app (clinical-app: wildcards allowed) that also writes, so that writes reach
        # HAPI (read-before-write, tenant stamping, answers to creates and updates)
        app_scope = (
            "openid launch/patient patient/*.rs patient/Observation.cu patient/Appointment.cud"
        )
        return (
            Viewer(
                "ai-a",
                bearer("tenant-a", "scheduling-assistant", ai_scope, "pat-a1"),
                "tenant-a",
                "tenant-b",
                "pat-a1",
                True,
                frozenset({"Patient", "Appointment"}),
            ),
            Viewer(
                "app-a",
                bearer("tenant-a", "fuzz-patient-app", app_scope, "pat-a1"),
                "tenant-a",
                "tenant-b",
                "pat-a1",
                True,
                None,
            ),
            Viewer(
                "backend-a",
                bearer("tenant-a", "population-analytics", "system/*.read", None),
                "tenant-a",
                "tenant-b",
                "pat-a1",
                False,
                None,
            ),
            Viewer(
                "ai-b",
                bearer(
                    "tenant-b",
                    "shared-vendor",
                    "openid launch/patient patient/Patient.rs patient/Observation.rs",
                    "pat-b1",
                ),
                "tenant-b",
                "tenant-a",
                "pat-b1",
                True,
                frozenset({"Patient", "Observation"}),
            ),
        )

    def viewer_for(self, extra: str) -> Viewer:
        viewer = self.extra.get(extra)
        if viewer is None:
            anonymous = self.extra["anonymous"]
            viewer = dataclasses.replace(
                anonymous, name=f"forged:{extra}", authorization=self.realms.forged(extra)
            )
            self.extra[extra] = viewer
        return viewer

    def rendered(self, answer: Answer, viewer: Viewer) -> Rendered:
        key = (answer, viewer.name)
        found = self._rendered.get(key)
        if found is None:
            if len(self._rendered) > 4096:
                self._rendered.clear()
            found = self._rendered[key] = render_answer(answer, viewer)
        return found

    # -- running ------------------------------------------------------------------------------

    def check_exchanges(self, answers: Sequence[Answer], requests: Sequence[Request]) -> None:
        """Every request, by every viewer, against every answer; raises the first violation."""
        t0 = time.perf_counter()
        try:
            self.loop.run_until_complete(
                asyncio.wait_for(self._run(answers, requests), timeout=120)
            )
        finally:
            self.seconds += time.perf_counter() - t0

    async def _run(self, answers: Sequence[Answer], requests: Sequence[Request]) -> None:
        if time.monotonic() - self.minted > 600:  # a long run (shrinking): fresh tokens
            self.viewers, self.minted = self._viewers(), time.monotonic()
        for answer in answers:
            for request in requests:
                viewers = self.viewers
                if request.extra is not None:
                    viewers = (*viewers, self.viewer_for(request.extra))
                for viewer in viewers:
                    status = await self.one(answer, request, viewer)
                    if request.method == "GET":  # and its HEAD twin
                        head = dataclasses.replace(request, method="HEAD")
                        head_status = await self.one(answer, head, viewer)
                        if head_status != status:
                            self.report(
                                violation(
                                    "head-unlike-get",
                                    f"GET answered {status}, HEAD {head_status}: "
                                    f"{self.build(request, viewer).describe()}\n"
                                    f"  drawn {answer!r}",
                                )
                            )

    def build(self, request: Request, viewer: Viewer) -> Sent:
        me = viewer.me

        def own(text: str) -> str:
            return text.replace(ME, me) if ME in text else text

        raw_path = ("/fhir/" + own(request.path) if request.path else "/fhir").encode(
            "utf-8", "replace"
        )
        params = [(own(k), own(v)) for k, v in request.params]
        query = encode_query(params, request.encoding) if params else b""
        headers = [(b"host", b"gateway.test")]
        if viewer.authorization is not None:
            headers.append((b"authorization", viewer.authorization.encode()))
        for name, value in request.headers:
            headers.append((name.lower().encode(), own(value).encode("utf-8")))
        body = request.body or b""
        if ME.encode() in body:
            body = body.replace(ME.encode(), me.encode())
        if body:
            headers.append((b"content-length", str(len(body)).encode()))
        return Sent(viewer, request.method, raw_path, query, headers, body)

    async def one(self, answer: Answer, request: Request, viewer: Viewer) -> int:
        """Send one request; check the answer (raises a `Violation`); its status."""
        sent = self.build(request, viewer)
        if has_marker(sent.raw_path + sent.query + sent.body) or any(
            has_marker(value) for name, value in sent.headers if name != b"authorization"
        ):
            return 0  # drawn text that happens to hold the marker: not a request to judge
        self.hapi.answer = self.rendered(answer, viewer)
        self.hapi.exchanges.clear()
        error = await self.drive(sent, request.body_chunks)
        self.sent += 1
        self.statuses[sent.status] = self.statuses.get(sent.status, 0) + 1
        if self.hapi.exchanges:
            self.forwarded += 1
        try:
            check(sent, self.hapi.exchanges, error, answer)
        except Violation as found:
            self.report(found)
        return sent.status

    def report(self, found: Violation) -> None:
        """Raise a violation, or count it when collecting."""
        if self.collected is None:
            raise found
        kind = str(found).split("]", 1)[0].lstrip("[")
        seen = self.collected.setdefault(kind, [0, str(found)])
        seen[0] += 1

    async def drive(self, sent: Sent, body_chunks: int) -> BaseException | None:
        raw_path = sent.raw_path.decode("latin-1")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": sent.method,
            "scheme": "http",
            "path": unquote(raw_path, errors="replace"),
            "raw_path": sent.raw_path,
            "query_string": sent.query,
            "root_path": "",
            "headers": sent.headers,
            "client": ("192.0.2.7", 50000),
            "server": ("gateway.test", 80),
        }
        body = sent.body
        size = max(1, -(-len(body) // max(1, body_chunks)))
        pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
        done = asyncio.Event()
        out_body: list[bytes] = []

        async def receive() -> dict[str, Any]:
            if pieces:
                chunk = pieces.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(pieces)}
            await done.wait()  # a client that hangs up once it has its answer
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            kind = message.get("type")
            if sent.complete:
                sent.protocol_error = f"{kind} sent after the answer was complete"
            elif kind == "http.response.start":
                if sent.status:
                    sent.protocol_error = "http.response.start sent twice"
                sent.status = int(message["status"])
                sent.out_headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
            elif kind == "http.response.body":
                if not sent.status:
                    sent.protocol_error = "http.response.body before http.response.start"
                out_body.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    sent.complete = True
                    done.set()
            else:
                sent.protocol_error = f"unexpected ASGI message {kind!r}"

        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            return exc
        finally:
            sent.out_body = b"".join(out_body)
            done.set()
        return None

    def close(self) -> None:
        """Shut the app down the way a server does (the audit sink flushes), then the loop."""

        async def lifespan() -> None:
            messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

            async def receive() -> dict[str, Any]:
                return messages.pop(0)

            async def send(_: dict[str, Any]) -> None:
                return None

            await self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)

        try:
            self.loop.run_until_complete(lifespan())
        finally:
            self.loop.close()


def check(
    sent: Sent, exchanges: list[Exchange], error: BaseException | None, answer: Answer
) -> None:
    """The invariants for one answer; raises the first violation found."""

    def context() -> str:
        lines = [sent.describe()]
        for ex in exchanges:
            up = ex.answer
            lines.append(
                f"  upstream answered {ex.method} {ex.url}: {up.status} {list(up.headers)}\n"
                f"    body {_clip(up.plain)}\n    drawn {answer!r}"
            )
        if not exchanges:
            lines.append(f"  (HAPI not asked; the drawn answer was {answer!r})")
        return "\n".join(lines)

    # 2: nothing escapes, the exchange is complete
    if error is not None:
        trace = "".join(traceback.format_exception(error)[-6:])
        raise violation(f"exception-{type(error).__name__}", f"{context()}\n{trace}")
    if sent.protocol_error or not sent.complete:
        problem = sent.protocol_error or "the app returned without completing its answer"
        raise violation("asgi-protocol", f"{problem}\n{context()}")

    status = sent.status
    content_type = _header(sent.out_headers, b"content-type")
    body = inflate(sent.out_body, _header(sent.out_headers, b"content-encoding"))
    last = exchanges[-1].answer if exchanges else None
    # HAPI's answer passed on (checked, perhaps changed, but with HAPI's status), or the
    # gateway's own (HAPI not asked, or its status replaced: a refusal, a 502 for an answer
    # that cannot be read, a 304 worked out after the checks)
    passed_on = last is not None and status == last.status
    answer_text = f"\n  gateway answered {status} {sent.out_headers}"

    # 1: the marker
    for name, value in sent.out_headers:
        in_header = marker_at(value)
        if in_header is not None:
            kind = f"leak-header-{name.decode('latin-1')}:{_what_leaked(value[in_header[0] :])}"
            raise violation(kind, f"{context()}{answer_text}")
    found = marker_at(body)
    if found is not None:
        at, how = found
        if not passed_on and status >= 400:
            kind = "leak-refusal-text"
        else:
            kind = f"leak-passed-on-{_family(content_type)}"
        kind += ":base64" if how == "base64" else f":{_what_leaked(body[at:])}"
        raise violation(kind, f"{context()}{answer_text}\n    body {_clip(body, 600, around=at)}")

    # 2: no 500, no 5xx but 502/503/504
    if status >= 500 and status not in (502, 503, 504):
        kind = f"status-{status}" + ("-passed-on" if passed_on else "")
        raise violation(kind, f"{context()}{answer_text}\n    body {_clip(body)}")

    # 3: the gateway's own errors are OperationOutcomes
    own_error = status >= 400 and not passed_on and not (sent.method == "HEAD" and not body)
    if own_error and not is_outcome(body, content_type):
        raise violation(
            "refusal-not-an-outcome", f"{context()}{answer_text}\n    body {_clip(body)}"
        )

    # 4: the client's forwarding headers stop at the gateway
    client_values = {
        (k, v.decode("latin-1"))
        for k, v in sent.headers
        if k == b"forwarded" or k.startswith(b"x-forwarded-")
    }
    for ex in exchanges:
        for name, value in ex.headers:
            key = name.lower().encode()
            if key == b"x-forwarded-proto" and value == "http":
                continue  # what the gateway sets itself (scheme http here)
            if key == b"x-forwarded-host" and value == "gateway.test":
                continue  # the client's Host, set by the gateway
            if (key, value) in client_values:
                raise violation(
                    "client-forwarding-header-forwarded",
                    f"HAPI got the client's {name}: {value}\n{context()}",
                )

    # 5: JSON or XML only (NDJSON for an export file, read as Binary/<id>)
    if body and sent.method != "HEAD":
        family = _family(content_type)
        export_file = b"/Binary/" in sent.raw_path and family == "ndjson"
        if family not in ("json", "xml") and not export_file:
            raise violation(
                f"answer-format-{family}",
                f"{context()}{answer_text}\n    body {_clip(body, 200)}",
            )
