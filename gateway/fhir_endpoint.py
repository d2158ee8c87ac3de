"""The FHIR base as the gateway serves it: one request from arrival to a checked answer.

`FhirEndpoint` is a plain ASGI callable (no routing, request or response objects on the hot
path). Per request: read what the stages need (`_arrive`: the simulated clock, a body to check,
the classification), answer what the gateway answers itself (`.well-known/smart-configuration`,
the CapabilityStatement), run the stage pipeline, ask HAPI (`_ask_upstream`: the format HAPI is
asked for, compartment searches as HAPI serves them) and check what comes back
(`Upstream.checked`). Every request, refused or served, ends as one audit record.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from gateway.audit import AuditRecord
from gateway.capabilities import ClientCapabilities
from gateway.classify import ClassifyError, Interaction, classify
from gateway.clock import ClockError, SimulatedClock
from gateway.context import Finding, RequestContext
from gateway.denial import Denial
from gateway.formats import Answer, NotAcceptable, negotiate, without_format
from gateway.outcome import denial_response, operation_outcome
from gateway.pipeline import Pipeline
from gateway.proxy import Receive, RequestHead, Scope, Send, Upstream, count_patients, read_body
from gateway.smart_config import SmartConfiguration
from gateway.stages.compartment import narrowing
from gateway.token_verifier import TokenVerifier
from labcore.patient_compartment import patient_search_params

log = logging.getLogger("gateway")


class AuditSink(Protocol):
    def record(self, ctx: RequestContext, latency_ms: float) -> None: ...

    def record_done(self, record: AuditRecord) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PolicyParts:
    """What a policy-enforcing gateway adds to the proxy (all built once, at start)."""

    pipeline: Pipeline
    capabilities: ClientCapabilities
    smart: SmartConfiguration | None  # None: no authorization server configured
    clock: SimulatedClock | None  # LAB ONLY: the simulated clock header, when the policy sets one
    verifier: TokenVerifier  # the token stage's (the fast lane's grants use it)


class FhirEndpoint:
    """Requests to the FHIR base. Without `parts` a plain pass-through proxy (no stages)."""

    def __init__(
        self,
        upstream: Upstream,
        base_path: str,
        parts: PolicyParts | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self.upstream = upstream
        self.base_path = base_path
        self.parts = parts
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        head = RequestHead.of(scope, checked=self.parts is not None)
        if self.parts is None:
            response = await self.upstream.forward(scope, receive, head)
            await response(scope, receive, send)
            return
        t0 = time.perf_counter()
        ctx = new_context(scope, head)
        try:
            response = await self.handle(scope, receive, head, ctx, self.parts)
        except ClientDisconnect:
            raise
        except Exception:  # a defect of the gateway: nothing goes out but a refusal, audited
            log.exception("request %s failed in the gateway", ctx.request_id)
            reason = "the gateway failed on this request; nothing of an answer was sent"
            ctx.findings.append(Finding(None, "deny", 500, reason))
            response = operation_outcome(500, reason)
        ctx.status = response.status_code
        latency_ms = (time.perf_counter() - t0) * 1000  # until the answer is ready to go out
        try:
            await response(scope, receive, send)
        finally:
            # recorded once the client has its answer (the record is not on its critical path);
            # a graceful shutdown waits for this task, so no record is lost
            if self.audit is not None:
                count_patients(ctx, response)
                self.audit.record(ctx, latency_ms)

    async def handle(
        self,
        scope: Scope,
        receive: Receive,
        head: RequestHead,
        ctx: RequestContext,
        parts: PolicyParts,
    ) -> Any:
        refused = await self._arrive(scope, receive, head, ctx, parts)
        if refused is not None:
            return refused
        assert ctx.fhir is not None  # classified by _arrive
        if ctx.fhir.is_smart_config:
            return await smart_configuration(parts.smart)
        if ctx.fhir.is_metadata:  # per client with a token; else the public one
            return await parts.capabilities.respond(ctx, Request(scope, receive))
        denial = await parts.pipeline.run(ctx)
        if denial is not None:
            return denial_response(denial)
        try:
            answer = negotiate(ctx.params, head.accept, export_file=ctx.fhir.reads_binary)
        except NotAcceptable as exc:
            ctx.findings.append(Finding(None, "deny", 406, str(exc)))
            return operation_outcome(406, str(exc))
        return await self._ask_upstream(scope, receive, head, ctx, answer)

    async def _arrive(
        self,
        scope: Scope,
        receive: Receive,
        head: RequestHead,
        ctx: RequestContext,
        parts: PolicyParts,
    ) -> Any:
        """Read what the stages need: the simulated time, a body to check, the request's
        classification. A refusal if one of them is malformed, else None."""
        if parts.clock is not None:
            try:
                ctx.simulated_time = parts.clock.read(ScopeHeaders(scope))
            except ClockError as exc:
                ctx.findings.append(Finding(None, "deny", 400, str(exc)))
                return operation_outcome(400, str(exc))
        form = None
        if needs_body(ctx.method):
            ctx.body = await read_body(receive)
            if "x-www-form-urlencoded" in head.content_type:
                form = ctx.body.decode("latin-1")
        try:
            ctx.fhir = classify(ctx.method, ctx.raw_path, ctx.raw_query, self.base_path, form)
        except ClassifyError as exc:
            ctx.findings.append(Finding(None, "deny", exc.status, exc.message))
            return operation_outcome(exc.status, exc.message)
        return None

    async def _ask_upstream(
        self, scope: Scope, receive: Receive, head: RequestHead, ctx: RequestContext, answer: Answer
    ) -> Any:
        """The request as HAPI is asked it (JSON, the whole resource for `_summary=text`, a
        compartment search as a search), and its answer checked."""
        fhir = ctx.fhir
        assert fhir is not None
        if any(name == "_format" for name, _ in ctx.params):
            ctx.upstream_params = without_format(ctx.params)  # HAPI is asked for JSON
        if ("_summary", "text") in ctx.params and fhir.is_read_by_id:
            ctx.upstream_params = tuple(p for p in ctx.params if p[0] != "_summary")
            ctx.text_summary = True
        if fhir.interaction is Interaction.SEARCH_COMPARTMENT:
            compartment_as_search(ctx)
        return await self.upstream.checked(scope, receive, head, ctx, answer)


# Request ids name a request in the audit log and the gateway's own log; a client may set its
# own (`X-Request-Id`), so they are neither secret nor trusted. They are drawn from a generator
# seeded from the OS (afresh in a forked worker) rather than `secrets`: `os.urandom` is a system
# call that releases the GIL on every request, for nothing an id needs.
_IDS = random.Random()
os.register_at_fork(after_in_child=_IDS.seed)


def new_request_id() -> str:
    """16 random hex digits (64 bits, as `secrets.token_hex(8)` gave)."""
    return f"{_IDS.getrandbits(64):016x}"


def new_context(scope: Scope, head: RequestHead) -> RequestContext:
    raw_path = scope.get("raw_path")
    return RequestContext(
        request_id=head.request_id or new_request_id(),
        method=scope["method"],
        raw_path=(raw_path if raw_path is not None else scope["path"].encode()).decode("latin-1"),
        raw_query=scope.get("query_string", b"").decode("latin-1"),
        bearer=bearer(head.authorization),
        if_none_exist=head.if_none_exist,
    )


async def smart_configuration(smart: SmartConfiguration | None) -> Any:
    if smart is None:
        return operation_outcome(404, "no authorization server is configured")
    try:
        return JSONResponse(await smart.document())
    except Denial as denial:
        return denial_response(denial)


def bearer(authorization: str) -> str | None:
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def needs_body(method: str) -> bool:
    """Bodies a stage must read: batches, POST _search forms, and resource writes (C08 checks
    that a patient-context token writes only its patient's data). Bulk data is never buffered."""
    return method in ("POST", "PUT", "PATCH")


def compartment_as_search(ctx: RequestContext) -> None:
    """`Patient/P/Observation?...` as HAPI serves it: `Observation?patient=P&...` (the
    parameter the C08 narrowing uses for the type). HAPI has no compartment search, and the
    type's other compartment parameters (an Observation's `performer`) are not searched."""
    fhir = ctx.fhir
    assert fhir is not None and fhir.compartment is not None
    kind, owner = fhir.compartment
    target = fhir.resource_type
    if kind != "Patient" or target in (None, "*") or not patient_search_params(target):
        return  # left to HAPI, which refuses it
    ctx.upstream_path = target
    ctx.upstream_params = (narrowing(target, owner), *ctx.params)


class ScopeHeaders:
    """`get` of one (lower-case) header of an ASGI scope, as Starlette's `Headers` answers it
    (the first occurrence), without building a mapping of every header per request."""

    __slots__ = ("_raw",)

    def __init__(self, scope: Scope) -> None:
        self._raw: list[tuple[bytes, bytes]] = scope["headers"]

    def get(self, key: str, /) -> str | None:
        name = key.encode("latin-1")
        for raw_name, value in self._raw:
            if raw_name == name:
                return value.decode("latin-1")
        return None
