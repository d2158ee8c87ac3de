"""The CapabilityStatement a client sees: HAPI's, cut down to what its token may do.

`GET [base]/metadata` without a token is HAPI's whole statement, naming the gateway where HAPI
names itself; it is cached (as JSON bytes, per public host), so the anonymous path parses nothing
per request. A client with other parameters (`mode=terminology`) gets HAPI's answer for them,
rewritten the same way, uncached. Every statement is read as JSON and served as JSON or XML
(`gateway/formats.py`), like every other answer. With a bearer token the
gateway verifies it (401 if it is not valid) and answers HAPI's statement filtered to the token's
grants:

- a resource type stays if a granted scope covers one of its interactions, with only those
  interactions (`read`/`vread`/`history-*` need `r`, `search-type` `s`, `create` `c`, `update` and
  `patch` `u`, `delete` `d`); constraints (`?category=`) still grant the interaction;
- its operations stay if the token may read the type, except restricted ones the client is not
  allowed (C12) (`Patient/[id]/$everything` needs read access to Patient, like any other
  instance operation; what it returns is checked entry by entry);
- `$export` and `$export-poll-status` stay only for export-allowlisted clients holding system
  scopes (C04); other system-level operations and `search-system` / `history-system` need a
  wildcard grant; `batch` / `transaction` stay (their entries are checked one by one).

HAPI's statement is fetched at most once per `ttl_s` per public host (the last 16 hosts are kept:
the Host header is the client's); HAPI's own base URL in it (`implementation.url`, operation
definitions) is replaced by the gateway's; filtered statements are cached per grant. When the
gateway does not check tokens, every client gets the public statement.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import OrderedDict
from typing import Any, Final

import httpx
from starlette.requests import Request
from starlette.responses import Response

from gateway.classify import Params
from gateway.context import Finding, RequestContext
from gateway.denial import Denial
from gateway.fhir_xml import NotServable, to_xml
from gateway.formats import Kind, NotAcceptable, negotiate
from gateway.outcome import denial_response, operation_outcome
from gateway.policy import OperationsPolicy
from gateway.token_verifier import TokenVerifier, VerifiedToken
from labcore.scopes import ScopeSet

__all__ = ["ClientCapabilities", "Grants", "filter_capabilities"]

_PERMISSION: Final = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "history-type": "r",
    "search-type": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}
_SYSTEM_PERMISSION: Final = {"search-system": "s", "history-system": "r"}
_EXPORT: Final = frozenset({"export", "export-poll-status"})
_CACHED_GRANTS: Final = 256
_CACHED_HOSTS: Final = 16
_STATEMENTS: Final = frozenset({"CapabilityStatement", "TerminologyCapabilities"})


class Grants:
    """What one token may do, as the filter asks it."""

    def __init__(self, scopes: ScopeSet, client_id: str, policy: OperationsPolicy) -> None:
        self.scopes = scopes
        contexts = scopes.contexts
        self._granted = {
            (s.resource_type, p)
            for s in scopes.resource_scopes
            if s.context in contexts
            for p in s.permissions
        }
        self.export = client_id in policy.export_clients and scopes.has_context("system")
        self._restricted = {op.lstrip("$") for op in policy.restricted} - _EXPORT
        self._restricted_ok = client_id in policy.restricted_clients

    def may(self, resource_type: str, permission: str) -> bool:
        return (resource_type, permission) in self._granted or ("*", permission) in self._granted

    def operation(self, name: str, resource_type: str | None) -> bool:
        if name in _EXPORT:
            return self.export
        if name in self._restricted and not self._restricted_ok:
            return False
        if resource_type is None:
            return ("*", "r") in self._granted
        return self.may(resource_type, "r")


def _operation_name(op: Any) -> str:
    return str(op.get("name", "")).lstrip("$") if isinstance(op, dict) else ""


def _named_base(statement: dict[str, Any]) -> str:
    """The base URL a statement names its server by (`implementation.url`), or ""."""
    implementation = statement.get("implementation")
    url = implementation.get("url") if isinstance(implementation, dict) else None
    return url.rstrip("/") if isinstance(url, str) and "://" in url else ""


def filter_capabilities(statement: dict[str, Any], grants: Grants) -> dict[str, Any]:
    """A copy of `statement` with only what `grants` allow (see the module docstring)."""
    result = copy.copy(statement)
    rests = []
    for rest in statement.get("rest") or []:
        if not isinstance(rest, dict):
            continue
        rest = dict(rest)
        resources = []
        for resource in rest.get("resource") or []:
            rtype = resource.get("type") if isinstance(resource, dict) else None
            if not isinstance(rtype, str):
                continue
            interactions = [
                i
                for i in resource.get("interaction") or []
                if isinstance(i, dict)
                and (perm := _PERMISSION.get(str(i.get("code")))) is not None
                and grants.may(rtype, perm)
            ]
            if not interactions:
                continue
            kept = dict(resource, interaction=interactions)
            operations = [
                op
                for op in resource.get("operation") or []
                if grants.operation(_operation_name(op), rtype)
            ]
            if operations:
                kept["operation"] = operations
            else:
                kept.pop("operation", None)
            resources.append(kept)
        rest["resource"] = resources
        rest["interaction"] = [
            i
            for i in rest.get("interaction") or []
            if isinstance(i, dict)
            and (
                i.get("code") in ("batch", "transaction")
                or (
                    (perm := _SYSTEM_PERMISSION.get(str(i.get("code")))) is not None
                    and grants.may("*", perm)
                )
            )
        ]
        rest["operation"] = [
            op for op in rest.get("operation") or [] if grants.operation(_operation_name(op), None)
        ]
        for key in ("interaction", "operation"):
            if not rest[key]:
                del rest[key]
        rests.append(rest)
    result["rest"] = rests
    return result


class ClientCapabilities:
    """Per-token CapabilityStatements over HAPI's, for `GET [base]/metadata` with a token."""

    def __init__(
        self,
        verifier: TokenVerifier,
        client: httpx.AsyncClient,
        upstream: str,
        policy: OperationsPolicy,
        base_path: str = "/fhir",
        ttl_s: float = 60.0,
        *,
        per_client: bool = True,
        public_base: str | None = None,
    ) -> None:
        self.verifier = verifier
        self.client = client
        self.upstream = upstream.rstrip("/")
        self.url = self.upstream + "/metadata"
        self.base_path = base_path
        self.policy = policy
        self.ttl_s = ttl_s
        self.per_client = per_client  # False when tokens are not checked: everyone is anonymous
        self.public_base = public_base.rstrip("/") if public_base else None
        # per public (host, proto): expiry, HAPI's statement, the public statement as JSON bytes
        self._statements: OrderedDict[tuple[str, str], tuple[float, dict[str, Any], bytes]] = (
            OrderedDict()
        )
        self._filtered: OrderedDict[tuple[str, str, str, str], bytes] = OrderedDict()
        self._lock = asyncio.Lock()

    async def verify(self, bearer: str) -> VerifiedToken:
        return await self.verifier.verify(bearer)  # raises Denial (401, 503)

    def gateway_base(self, host: str, proto: str) -> str | None:
        """The FHIR base clients reach the gateway at (from their Host), else the configured."""
        return f"{proto}://{host}{self.base_path}" if host else self.public_base

    def rewrite(self, statement: dict[str, Any], host: str, proto: str) -> str:
        """`statement` as JSON text, naming the gateway where HAPI names itself: HAPI's own
        address anywhere, and the base in `implementation.url` and in HAPI's operation
        definitions. HAPI caches its statement with the base built from the forwarded host of
        whoever asked first, so that base can be another client's (another gateway's port);
        only those two places are rewritten, so a client's chosen Host cannot make the gateway
        rewrite canonical URLs (`http://hl7.org/fhir/...`)."""
        base = self.gateway_base(host, proto)
        if not base:
            return json.dumps(statement)
        named = _named_base(statement)
        if named and named != base:
            implementation = {**statement["implementation"], "url": base}
            statement = {**statement, "implementation": implementation}
        text = json.dumps(statement).replace(self.upstream, base)
        if named and named not in (base, self.upstream):
            text = text.replace(f'"{named}/OperationDefinition/', f'"{base}/OperationDefinition/')
        return text

    async def _cached(self, host: str, proto: str) -> tuple[dict[str, Any], bytes]:
        key = (host, proto)
        cached = self._statements.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1], cached[2]
        async with self._lock:
            cached = self._statements.get(key)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1], cached[2]
            headers = {"Accept": "application/fhir+json", "X-Forwarded-Proto": proto}
            if host:
                headers["X-Forwarded-Host"] = host
            try:
                resp = await self.client.get(self.url, headers=headers)
                statement = resp.json() if resp.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                statement = None
            if not isinstance(statement, dict):
                raise Denial(502, "the FHIR server did not give its CapabilityStatement")
            public = self.rewrite(statement, host, proto).encode()
            self._statements[key] = (time.monotonic() + self.ttl_s, statement, public)
            self._statements.move_to_end(key)
            if len(self._statements) > _CACHED_HOSTS:  # Host is the client's to choose
                self._statements.popitem(last=False)
            self._filtered.clear()  # a new statement: filtered copies are stale
            return statement, public

    async def statement(self, host: str, proto: str) -> dict[str, Any]:
        """HAPI's statement as HAPI gives it (fetched at most once per `ttl_s` per host)."""
        return (await self._cached(host, proto))[0]

    async def public(self, host: str, proto: str) -> bytes:
        """The anonymous (unfiltered) statement, naming the gateway, as JSON bytes (cached)."""
        return (await self._cached(host, proto))[1]

    async def for_token(self, token: VerifiedToken, host: str, proto: str) -> bytes:
        """The filtered statement as JSON bytes (cached per grant)."""
        statement = await self.statement(host, proto)
        key = (str(token.scopes), token.client_id, host, proto)
        body = self._filtered.get(key)
        if body is None:
            grants = Grants(token.scopes, token.client_id, self.policy)
            body = self.rewrite(filter_capabilities(statement, grants), host, proto)
            body = body.encode()
            self._filtered[key] = body
            if len(self._filtered) > _CACHED_GRANTS:
                self._filtered.popitem(last=False)
        return body

    async def respond(self, ctx: RequestContext, request: Request) -> Response:
        """The answer to `GET [base]/metadata`: with a bearer token (and tokens checked) the
        statement filtered to it; without, the public one, cached when asked for without
        parameters, else HAPI's JSON for those parameters, rewritten on the way. Served in the
        format asked for (JSON, or XML written from the JSON), like every other answer."""
        host, proto = request.headers.get("host", ""), request.url.scheme
        params = ctx.fhir.params if ctx.fhir else ()
        accept = request.headers.get("accept")
        try:
            answer = negotiate(params, accept.encode("latin-1") if accept else None)
        except NotAcceptable as exc:
            ctx.findings.append(Finding(None, "deny", 406, str(exc)))
            return operation_outcome(406, str(exc))
        # the statement is served whole: of its parameters only `mode` asks for another one
        asked = tuple((name, value) for name, value in params if name == "mode")
        try:
            if ctx.bearer and self.per_client:
                ctx.token = await self.verify(ctx.bearer)
                body = await self.for_token(ctx.token, host, proto)
            elif not asked:
                body = await self.public(host, proto)
            else:
                body = await self._asked(asked, host, proto)
        except Denial as denial:
            ctx.findings.append(Finding(denial.control, "deny", denial.status, denial.reason))
            return denial_response(denial)
        if answer.kind is Kind.XML:
            try:
                body = to_xml(json.loads(body))
            except (NotServable, ValueError) as exc:
                return operation_outcome(406, f"{exc}; ask for JSON (application/fhir+json)")
        return Response(body, status_code=200, media_type=answer.media_type.decode())

    async def _asked(self, params: Params, host: str, proto: str) -> bytes:
        """HAPI's statement for other parameters (`mode=terminology`), as JSON, not cached:
        the rare case."""
        headers = {"Accept": "application/fhir+json", "X-Forwarded-Proto": proto}
        if host:
            headers["X-Forwarded-Host"] = host
        try:
            resp = await self.client.get(self.url, params=list(params), headers=headers)
        except httpx.HTTPError as exc:
            raise Denial(502, f"the FHIR server is unreachable ({type(exc).__name__})") from None
        if resp.status_code != 200:
            raise Denial(
                resp.status_code,
                f"the FHIR server refused the metadata request ({resp.status_code})",
            )
        try:
            statement = resp.json()
        except ValueError:
            raise Denial(502, "the FHIR server's CapabilityStatement cannot be read") from None
        if not isinstance(statement, dict) or statement.get("resourceType") not in _STATEMENTS:
            raise Denial(502, "the FHIR server answered metadata with something else")
        return self.rewrite(statement, host, proto).encode()
