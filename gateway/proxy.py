"""Forwarding to HAPI: pooled keep-alive connections (`gateway/upstream_client.py`), bodies
streamed both ways, raw ASGI on the gateway's side.

The gateway tells HAPI where clients really are (`X-Forwarded-Host`/`-Proto`, its own, never a
client's; both serve FHIR at the same path), so the links HAPI writes (paging, bulk-export status
and output) point at the gateway, never at HAPI itself. Credentials (`Authorization`, `Cookie`)
stop at the gateway.

Two paths: `forward` relays (the pass-through proxy, no pipeline); `checked` is the one every
request of the policy gateway takes: HAPI is asked for JSON, the answer is read whole and
screened (`gateway/screen.py`), and only what passed goes out, in the format the client asked
for (`gateway/formats.py`); what cannot be read is withheld (docs/explanation/gateway.md, "The
rule for answers").
"""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Protocol
from urllib.parse import quote, quote_plus, urlencode

import httpx
import orjson
from starlette.requests import ClientDisconnect

from gateway.context import Finding, RequestContext
from gateway.denial import Denial
from gateway.fhir_xml import NotServable, to_xml
from gateway.formats import Answer, Kind, is_json, is_ndjson, text_summary
from gateway.ndjson import NdjsonChecker
from gateway.outcome import denial_response, operation_outcome
from gateway.returned import Returned
from gateway.screen import redact_outcomes, screen
from gateway.settings import GatewaySettings
from gateway.upstream_client import Body, Headers, UpstreamClient, UpstreamError, UpstreamTimeout
from gateway.upstream_httpx import HttpxUpstreamClient

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# RFC 9110 §7.6.1 hop-by-hop fields, plus those the proxy recomputes.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
# The gateway tells HAPI where clients are; what a client says of it is not passed on.
_FORWARDING = frozenset(
    {
        b"forwarded",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-forwarded-for",
        b"x-forwarded-server",
        b"x-real-ip",
    }
)
# Credentials stop at the gateway: HAPI trusts the gateway, not the client's token. The proxy
# sends request bodies at once, so an `Expect: 100-continue` is answered by the gateway alone.
_NOT_FORWARDED = _HOP_BY_HOP | _FORWARDING | {b"authorization", b"cookie", b"expect"}
# What a checked request takes to HAPI of the client's headers (everything else stops at the
# gateway: format and encoding are the gateway's to ask for, conditional reads are answered by
# the gateway after the checks, server-specific switches are not the client's to set).
FORWARDED_WHEN_CHECKED = frozenset(
    {b"content-type", b"prefer", b"if-match", b"if-none-exist", b"x-request-id"}
)
# The server the gateway runs in writes the answer's own `Date` (a field that must not repeat).
_NOT_RELAYED = _HOP_BY_HOP | {b"date"}
_NOT_MODIFIED_KEEPS = frozenset({b"etag", b"last-modified", b"cache-control", b"x-request-id"})
# What a checked answer keeps of the upstream's headers (its type, encoding and length are the
# gateway's; whatever else a server sends is not known to be harmless, so it stays behind).
RELAYED_WHEN_CHECKED = frozenset(
    {
        b"etag",
        b"last-modified",
        b"location",
        b"content-location",
        b"x-request-id",
        b"retry-after",
        b"x-progress",
        b"cache-control",
        b"expires",
    }
)
_LOCATIONS = frozenset({b"location", b"content-location"})
_JSON_MEDIA = b"application/fhir+json;charset=utf-8"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FORM = (b"content-type", b"application/x-www-form-urlencoded")


class UpstreamResponse(Protocol):
    status: int
    headers: Headers

    def header(self, name: bytes) -> bytes | None: ...

    def body_if_complete(self) -> bytes | None: ...

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Client(Protocol):
    async def request(
        self, method: str, target: bytes, headers: Headers, body: Body = None
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class RequestHead:
    """What the gateway needs from a request's headers, read in one pass."""

    forward: Headers  # the headers HAPI gets (no credentials, no hop-by-hop fields)
    host: bytes | None = None
    authorization: str = ""
    content_type: str = ""
    request_id: str | None = None
    if_none_exist: str | None = None  # a conditional create's criteria (stages may narrow them)
    accept: bytes | None = None
    if_none_match: bytes | None = None  # a conditional read, answered after the checks

    @classmethod
    def of(cls, scope: Scope, checked: bool = False) -> RequestHead:
        """`checked`: the request goes through the pipeline, and HAPI gets only the headers
        `FORWARDED_WHEN_CHECKED` names."""
        head = cls([])
        forward = head.forward
        for name, value in scope["headers"]:
            if name in _NOT_FORWARDED:
                if name == b"authorization":
                    head.authorization = value.decode("latin-1")
                elif name == b"host":
                    head.host = value
                continue
            if name == b"content-type":
                head.content_type = value.decode("latin-1")
            elif name == b"x-request-id":
                head.request_id = value.decode("latin-1")
            elif name == b"if-none-exist":
                head.if_none_exist = value.decode("latin-1")
            elif name == b"accept":
                head.accept = value if head.accept is None else head.accept + b"," + value
            elif name == b"if-none-match":
                head.if_none_match = value
            if not checked or name in FORWARDED_WHEN_CHECKED:
                forward.append((name, value))
        return head

    def not_modified(self, etag: bytes | None) -> bool:
        """Does the client's `If-None-Match` name this answer's version (`*` any)?"""
        wanted = self.if_none_match
        if wanted is None or etag is None:
            return False
        current = _weak(etag)
        return any(t == b"*" or _weak(t) == current for t in wanted.split(b","))


def _weak(tag: bytes) -> bytes:
    tag = tag.strip()
    return tag[2:] if tag[:2] in (b"W/", b"w/") else tag


class Forwarded:
    """HAPI's answer on its way to the client: a whole body (one ASGI message) or a stream.
    Call it like a Starlette response; `aclose` if it is not sent after all."""

    __slots__ = ("body", "headers", "lines", "resources", "status_code", "upstream")

    def __init__(
        self,
        status: int,
        headers: Headers,
        body: bytes | None = None,
        upstream: UpstreamResponse | None = None,
        lines: NdjsonChecker | None = None,
    ) -> None:
        self.status_code = status
        self.headers = headers
        self.body = body
        self.upstream = upstream
        self.lines = lines  # an NDJSON stream checked line by line on its way out
        # the resources of an inspected body whose patients are still to be counted
        self.resources: list[Returned] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.body is not None:
            if scope["method"] != "HEAD":
                self.headers.append((b"content-length", b"%d" % len(self.body)))
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.headers}
            )
            await send({"type": "http.response.body", "body": self.body})
            return
        assert self.upstream is not None
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.headers}
            )
            lines = self.lines
            async for chunk in self.upstream.chunks():
                if lines is not None:
                    chunk = lines.feed(chunk)
                    if not chunk:
                        continue
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            tail = lines.end() if lines is not None else b""
            await send({"type": "http.response.body", "body": tail})
        finally:
            await self.upstream.aclose()

    async def aclose(self) -> None:
        if self.upstream is not None:
            await self.upstream.aclose()


Response = Forwarded | Any  # a Forwarded, or a Starlette response (refusals, errors)


class Upstream:
    """The HAPI server behind the gateway."""

    def __init__(
        self, settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None
    ):
        self.settings = settings
        self.base = settings.upstream.rstrip("/")
        self._base_path = settings.base_path.encode()
        self.client: Client
        if transport is None:
            self.client = UpstreamClient(
                self.base,
                timeout_s=settings.upstream_timeout_s,
                max_connections=settings.max_connections,
            )
        else:
            self.client = HttpxUpstreamClient(self.base, transport, settings.upstream_timeout_s)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def ready(self) -> bool:
        try:
            response = await self.client.request("GET", b"/metadata", [])
            await response.read()
        except UpstreamError:
            return False
        return response.status == 200

    def target(self, scope: Scope, ctx: RequestContext | None = None) -> bytes:
        """Path (as the client encoded it) and query below the FHIR base."""
        raw = scope.get("raw_path")
        if ctx is not None and ctx.upstream_path is not None:
            path = b"/" + quote(ctx.upstream_path).encode()
        elif raw is not None and raw.startswith(self._base_path):
            path = raw[len(self._base_path) :]
        else:
            path = quote(scope["path"][len(self.settings.base_path) :]).encode()
        if ctx is not None and ctx.upstream_params is not None:
            # a narrowed POST _search sends its parameters as the form body, nothing in the URL
            query = b"" if _is_post_search(ctx) else _urlencode(ctx.upstream_params).encode()
        else:
            query = scope.get("query_string", b"")
        return path + b"?" + query if query else path

    def forward_headers(
        self, scope: Scope, head: RequestHead, ctx: RequestContext | None = None
    ) -> Headers:
        """The headers HAPI gets. The client's `Accept-Encoding` goes along even when the
        gateway reads the response whole: uncompressed, HAPI writes a response in many small
        segments, which costs the gateway far more than inflating one gzip body."""
        headers = head.forward
        if ctx is not None and ctx.upstream_params is not None and _is_post_search(ctx):
            headers = [(k, v) for k, v in headers if k != b"content-type"]
            headers.append(_FORM)
        elif ctx is not None and ctx.if_none_exist != head.if_none_exist:
            narrowed = (ctx.if_none_exist or "").encode("latin-1")
            headers = [(k, narrowed if k == b"if-none-exist" else v) for k, v in headers]
        else:
            headers = list(headers)
        if head.host:
            headers.append((b"x-forwarded-host", head.host))
        headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        return headers

    def _content(self, scope: Scope, receive: Receive, ctx: RequestContext | None) -> Body:
        if ctx is not None and _is_post_search(ctx) and ctx.upstream_params is not None:
            return urlencode(ctx.upstream_params).encode()
        if ctx is not None and ctx.body is not None:
            return ctx.body
        return request_stream(receive) if scope["method"] in _BODY_METHODS else None

    async def forward(
        self, scope: Scope, receive: Receive, head: RequestHead, ctx: RequestContext | None = None
    ) -> Response:
        """Pass-through (no pipeline): send the request to HAPI and relay what it answers."""
        try:
            upstream = await self.client.request(
                scope["method"],
                self.target(scope, ctx),
                self.forward_headers(scope, head, ctx),
                self._content(scope, receive, ctx),
            )
        except UpstreamTimeout:
            return operation_outcome(504, "the FHIR server did not answer in time")
        except UpstreamError as exc:
            return operation_outcome(502, f"the FHIR server is unreachable ({exc.kind})")
        headers = [(k, v) for k, v in upstream.headers if k not in _NOT_RELAYED]
        if ctx is not None:
            ctx.status = upstream.status
        body = upstream.body_if_complete()
        if body is not None:
            return Forwarded(upstream.status, headers, body)
        return Forwarded(upstream.status, headers, upstream=upstream)

    async def checked(
        self,
        scope: Scope,
        receive: Receive,
        head: RequestHead,
        ctx: RequestContext,
        answer: Answer,
    ) -> Response:
        """Send the request to HAPI asking for JSON (or an export file's NDJSON), read the
        answer whole, check every resource it holds (`gateway/screen.py`) and serve what
        passes in the client's format. What cannot be read is withheld (fail closed)."""
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        headers = self.forward_headers(scope, head, ctx)
        headers.append((b"accept", answer.upstream_accept))
        headers.append((b"accept-encoding", b"gzip"))
        try:
            upstream = await self.client.request(
                method, self.target(scope, ctx), headers, self._content(scope, receive, ctx)
            )
        except UpstreamTimeout:
            return operation_outcome(504, "the FHIR server did not answer in time")
        except UpstreamError as exc:
            return operation_outcome(502, f"the FHIR server is unreachable ({exc.kind})")
        status = upstream.status
        ctx.status = status
        content_type = upstream.header(b"content-type")
        if answer.kind is Kind.NDJSON and status < 300 and is_ndjson(content_type):
            return await self._checked_lines(upstream, status, relayed(ctx, upstream, ()), ctx)
        try:
            raw = await upstream.read()
        except UpstreamTimeout:
            return operation_outcome(504, "the FHIR server did not answer in time")
        except UpstreamError as exc:
            return operation_outcome(502, f"the FHIR server broke off ({exc.kind})")
        if status >= 500 or 300 <= status < 400 or status < 200:
            return withheld(ctx, status, "an answer the gateway did not ask for or cannot use")
        if status < 300 and _cancels_export(ctx, scope["method"]):
            # HAPI says so in an OperationOutcome of no content type: the gateway's own words
            return operation_outcome(status, "the export job is cancelled", error=False)
        encoding = upstream.header(b"content-encoding")
        if encoding is not None and raw:
            decoded = _decode(raw, encoding)
            if decoded is None:
                return withheld(ctx, status, f"a {encoding.decode('latin-1')} body")
            raw = decoded
        if not raw.strip():  # no body (a minimal write answer, a delete)
            return Forwarded(status, relayed(ctx, upstream, ()), b"")
        if not is_json(content_type):
            what = (content_type or b"no content type").decode("latin-1")[:80]
            return withheld(ctx, status, f"an answer of {what}")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return withheld(ctx, status, "JSON that cannot be parsed")
        if redact_outcomes(ctx, body, b'"OperationOutcome"' in raw):
            raw = b""  # the server's own texts name no id the client did not
        resources: list[Returned] = []
        if status < 300 or not _is_outcome(body):
            screened = screen(ctx, body, raw or None)
            if isinstance(screened, Denial):
                ctx.status = screened.status
                return denial_response(screened)
            if screened.changed:
                body, raw = screened.body, b""
            if ctx.text_summary:
                body, raw = text_summary(body), b""
            resources = screened.resources
            ctx.result_count = _result_count(body)
        headers = relayed(ctx, upstream, resources)
        if status == 200 and head.not_modified(upstream.header(b"etag")):
            forwarded = Forwarded(304, [h for h in headers if h[0] in _NOT_MODIFIED_KEEPS], b"")
            forwarded.resources = resources
            return forwarded
        if answer.kind is Kind.XML:
            try:
                raw = to_xml(body)
            except NotServable as exc:
                ctx.status = 406
                return operation_outcome(406, f"{exc}; ask for JSON (application/fhir+json)")
        elif not raw:
            raw = orjson.dumps(body)
        media = answer.media_type if answer.kind is not Kind.NDJSON else _JSON_MEDIA
        headers.append((b"content-type", media))
        forwarded = Forwarded(status, headers, b"" if scope["method"] == "HEAD" else raw)
        forwarded.resources = resources
        return forwarded

    async def _checked_lines(
        self, upstream: UpstreamResponse, status: int, headers: Headers, ctx: RequestContext
    ) -> Response:
        """An NDJSON answer, checked and counted line by line as it streams (`gateway/ndjson.py`);
        re-chunked, since lines may be withheld (and un-compressed, to be read)."""
        encoding = upstream.header(b"content-encoding")
        try:
            checker = NdjsonChecker(ctx, encoding)
        except ValueError as exc:
            await upstream.aclose()
            return operation_outcome(502, f"the FHIR server's export file: {exc}")
        headers.append((b"content-type", upstream.header(b"content-type") or b""))
        body = upstream.body_if_complete()
        if body is not None:
            try:
                return Forwarded(status, headers, checker.feed(body) + checker.end())
            except zlib.error:
                return operation_outcome(502, "the FHIR server's export file cannot be read")
        return Forwarded(status, headers, upstream=upstream, lines=checker)


def withheld(ctx: RequestContext, status: int, what: str) -> Response:
    """An answer the gateway cannot read, so cannot check: nothing of it goes out. A refusal
    keeps its status (its text is withheld); anything else is the upstream's failure (502)."""
    if 400 <= status < 500:
        reason = f"the FHIR server answered HTTP {status} with {what}; its text is withheld"
    else:
        reason = f"the FHIR server answered HTTP {status} with {what}; withheld"
        status = 502
    ctx.findings.append(Finding(None, "deny", status, reason))
    ctx.status = status
    return operation_outcome(status, reason)


def relayed(ctx: RequestContext, upstream: UpstreamResponse, sent: Iterable[Returned]) -> Headers:
    """The upstream headers a checked answer keeps: those `RELAYED_WHEN_CHECKED` names, and a
    `Location` / `Content-Location` only where it points at what the client may know of (its
    own write, its export job, the resource it asked for, a resource that went out)."""
    kept: Headers = []
    for name, value in upstream.headers:
        if name not in RELAYED_WHEN_CHECKED:
            continue
        if name in _LOCATIONS and not _may_point_at(ctx, value, sent):
            continue
        kept.append((name, value))
    return kept


def _may_point_at(ctx: RequestContext, location: bytes, sent: Iterable[Returned]) -> bool:
    fhir = ctx.fhir
    if fhir is None or not 200 <= ctx.status < 300:
        return False  # a refusal or an error points at nothing the client may follow
    path = location.decode("latin-1").split("?", 1)[0].rsplit("/_history/", 1)[0]
    path = path if path.startswith("/") else "/" + path
    if fhir.operation == "$export":
        return path.endswith("/$export-poll-status")  # where its own job is polled
    rtype, rid = fhir.resource_type, fhir.resource_id
    if fhir.is_write and rtype:  # where its own write landed
        if rid:
            return path.endswith(f"/{rtype}/{rid}")
        return _LANDED.search(path) is not None and path.rsplit("/", 2)[-2] == rtype
    if rtype and rid and path.endswith(f"/{rtype}/{rid}"):
        return True  # the resource it asked for
    return any(
        r.resource_type and path.endswith(f"/{r.resource_type}/{r.resource.get('id')}")
        for r in sent
    )


_LANDED: Final = re.compile(r"/[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def _cancels_export(ctx: RequestContext, method: str) -> bool:
    fhir = ctx.fhir
    return method == "DELETE" and fhir is not None and fhir.operation == "$export-poll-status"


def _is_outcome(body: Any) -> bool:
    return isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"


def _result_count(body: Any) -> int:
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        count = 0
        for e in body.get("entry") or []:  # a plain loop, not sum() of a generator: per entry
            if isinstance(e, dict) and (e.get("search") or {}).get("mode", "match") == "match":
                count += 1
        return count
    return 1


def count_patients(ctx: RequestContext, response: Any) -> None:
    """The patients whose data went out (for the audit record; worked out once the client has
    its answer, off its critical path)."""
    if isinstance(response, Forwarded):
        for resource in response.resources:
            ctx.patients.update(resource.compartment_patients)


@lru_cache(maxsize=4096)
def _query_pair(name: str, value: str) -> str:
    return f"{quote_plus(name)}={quote_plus(value)}"


def _urlencode(params: Iterable[tuple[str, str]]) -> str:
    """`urlencode` (same output), each name=value pair encoded once per process: the narrowed
    parameters repeat from request to request."""
    return "&".join(_query_pair(str(k), str(v)) for k, v in params)


async def read_body(receive: Receive) -> bytes:
    """A request's whole body (only where a stage must read it)."""
    parts = [chunk async for chunk in request_stream(receive)]
    return b"".join(parts)


async def request_stream(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _decode(raw: bytes, encoding: bytes) -> bytes | None:
    kind = encoding.strip().lower()
    try:
        if kind in (b"gzip", b"x-gzip"):
            return zlib.decompress(raw, wbits=zlib.MAX_WBITS | 16)
        if kind == b"deflate":
            try:
                return zlib.decompress(raw)
            except zlib.error:
                return zlib.decompress(raw, wbits=-zlib.MAX_WBITS)
        if kind == b"identity":
            return raw
    except zlib.error:
        return None
    return None


def _is_post_search(ctx: RequestContext) -> bool:
    return ctx.method == "POST" and ctx.raw_path.rstrip("/").endswith("/_search")
