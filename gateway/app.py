"""The gateway ASGI application: the only FHIR entry point clients see.

Per request: classify it (`gateway/classify.py`), run the stage pipeline built once from the
policy (`gateway/pipeline.py`), forward what passes to HAPI (`gateway/proxy.py`), check what comes
back, and hand the outcome to the audit sink. Refusals are OperationOutcomes
(`gateway/outcome.py`). The CapabilityStatement and `.well-known/smart-configuration` are public.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import httpx
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.capabilities import ClientCapabilities
from gateway.classify import ClassifyError, Interaction, classify
from gateway.clock import ClockError, simulated_clock
from gateway.config import GatewayConfig
from gateway.context import Finding, RequestContext
from gateway.controls import Mode
from gateway.current import CurrentResources, HapiCurrentResources
from gateway.denial import Denial
from gateway.formats import NotAcceptable, negotiate, without_format
from gateway.outcome import denial_response, operation_outcome
from gateway.pipeline import ModeOf, Pipeline
from gateway.policy import Policy
from gateway.proxy import (
    Receive,
    RequestHead,
    Scope,
    Send,
    Upstream,
    count_patients,
    read_body,
)
from gateway.recorder import GatewayAudit
from gateway.settings import GatewaySettings
from gateway.smart_config import SmartConfiguration
from gateway.stages import Stage, check_order
from gateway.stages.client_policy import ClientPolicyStage
from gateway.stages.compartment import CompartmentStage, narrowing
from gateway.stages.operations import OperationsStage
from gateway.stages.rate_limit import RATE, RateLimitStage
from gateway.stages.scopes import ScopesStage
from gateway.stages.tenant import TenantStage
from gateway.stages.token import TOKEN, TokenStage
from gateway.token_verifier import TokenVerifier
from labcore.patient_compartment import patient_search_params

log = logging.getLogger("gateway")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
_METHODS = frozenset(METHODS)


class AuditSink(Protocol):
    def record(self, ctx: RequestContext, latency_ms: float) -> None: ...

    async def aclose(self) -> None: ...


def mode_of(policy: Policy) -> ModeOf:
    def lookup(control: str | None) -> Mode:
        if control == TOKEN:
            return Mode.ENFORCE if policy.token.enabled else Mode.OFF
        if control == RATE:
            return Mode.ENFORCE if policy.rate_limit.enabled else Mode.OFF
        if control is None:
            return Mode.ENFORCE
        return policy.mode(control)

    return lookup


def build_stages(
    config: GatewayConfig, verifier: TokenVerifier, current: CurrentResources | None = None
) -> list[Stage]:
    policy = config.policy
    stages: list[Stage] = [
        TokenStage(verifier, config.client_classes),
        RateLimitStage(policy.rate_limit),
        ClientPolicyStage(policy.client_policy),
        TenantStage(current),
        ScopesStage(policy.client_policy),
        OperationsStage(policy.operations),
        CompartmentStage(current),
    ]
    check_order(stages)
    return stages


def _bearer(authorization: str) -> str | None:
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


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


def _needs_body(method: str) -> bool:
    """Bodies a stage must read: batches, POST _search forms, and resource writes (C08 checks
    that a patient-context token writes only its patient's data). Bulk data is never buffered."""
    return method in ("POST", "PUT", "PATCH")


def build_audit(config: GatewayConfig) -> AuditSink | None:
    """The C06 audit sink, or None when C06 is off or no audit directory is set."""
    if config.audit_dir is None or config.policy.mode("C06") is Mode.OFF:
        return None
    return GatewayAudit.from_config(config, config.audit_dir)


def create_app(
    settings: GatewaySettings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    config: GatewayConfig | None = None,
    auth_transport: httpx.AsyncBaseTransport | None = None,
    audit: AuditSink | None = None,
) -> ASGIApp:
    """The gateway. Without a `config` it is a plain pass-through proxy (no stages).

    The FHIR base is served by a plain ASGI function (no routing, request or response objects
    on the hot path); the gateway's own small endpoints and everything outside the FHIR base go
    through Starlette."""
    settings = config.settings if config else settings or GatewaySettings()
    if config is not None and audit is None:
        audit = build_audit(config)
    upstream = Upstream(settings, transport)
    auth_http = httpx.AsyncClient(transport=auth_transport, timeout=10.0)
    # reads off the hot path (the stored version before a write, the CapabilityStatement)
    side_http = httpx.AsyncClient(transport=transport, timeout=settings.upstream_timeout_s)
    pipeline: Pipeline | None = None
    smart: SmartConfiguration | None = None
    clock = simulated_clock(config.policy.clock_header) if config else None  # LAB ONLY
    capabilities: ClientCapabilities | None = None
    if config is not None:
        policy = config.policy
        verifier = TokenVerifier(
            list(config.issuers),
            config.public_base,
            auth_http,
            algorithms=policy.token.algorithms,
            leeway_s=policy.token.leeway_s,
            jwks_ttl_s=policy.token.jwks_ttl_s,
            introspection_ttl_s=policy.token.introspection_ttl_s,
        )
        current = HapiCurrentResources(side_http, upstream.base)  # C08/C10 read-before-write
        stages = build_stages(config, verifier, current)
        pipeline = Pipeline(stages, mode_of(policy), settings.base_path)
        capabilities = ClientCapabilities(
            verifier,
            side_http,
            upstream.base,
            policy.operations,
            settings.base_path,
            per_client=policy.token.enabled,
            public_base=config.public_base,
        )
        if config.issuers:
            smart = SmartConfiguration(config.issuers[0], auth_http)

    async def health(_: Request) -> StarletteResponse:
        return JSONResponse(
            {
                "status": "UP",
                "mode": "pass-through" if pipeline is None else "policy",
                "upstream": upstream.base,
                "controls": {k: v.value for k, v in config.policy.controls.items()}
                if config
                else {},
            }
        )

    async def ready(_: Request) -> StarletteResponse:
        """Deep readiness: 200 only when HAPI answers its CapabilityStatement."""
        if await upstream.ready():
            return JSONResponse({"status": "UP", "upstream": upstream.base})
        return JSONResponse({"status": "DOWN", "upstream": upstream.base}, status_code=503)

    async def fhir(scope: Scope, receive: Receive, send: Send) -> None:
        head = RequestHead.of(scope, checked=pipeline is not None)
        if pipeline is None:
            response = await upstream.forward(scope, receive, head)
            await response(scope, receive, send)
            return
        t0 = time.perf_counter()
        raw_path = scope.get("raw_path")
        ctx = RequestContext(
            request_id=head.request_id or secrets.token_hex(8),
            method=scope["method"],
            raw_path=(raw_path if raw_path is not None else scope["path"].encode()).decode(
                "latin-1"
            ),
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            bearer=_bearer(head.authorization),
            if_none_exist=head.if_none_exist,
        )
        try:
            response = await _handle(scope, receive, head, ctx)
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
            if audit is not None:
                count_patients(ctx, response)
                audit.record(ctx, latency_ms)

    async def _handle(
        scope: Scope, receive: Receive, head: RequestHead, ctx: RequestContext
    ) -> Any:
        assert pipeline is not None
        if clock is not None:
            try:
                ctx.simulated_time = clock.read(_ScopeHeaders(scope))
            except ClockError as exc:
                ctx.findings.append(Finding(None, "deny", 400, str(exc)))
                return operation_outcome(400, str(exc))
        form = None
        if _needs_body(ctx.method):
            ctx.body = await read_body(receive)
            if "x-www-form-urlencoded" in head.content_type:
                form = ctx.body.decode("latin-1")
        try:
            ctx.fhir = classify(ctx.method, ctx.raw_path, ctx.raw_query, settings.base_path, form)
        except ClassifyError as exc:
            ctx.findings.append(Finding(None, "deny", exc.status, exc.message))
            return operation_outcome(exc.status, exc.message)
        if ctx.fhir.is_smart_config:
            if smart is None:
                return operation_outcome(404, "no authorization server is configured")
            try:
                return JSONResponse(await smart.document())
            except Denial as denial:
                return denial_response(denial)
        if ctx.fhir.is_metadata:  # per client with a token; else the public one
            assert capabilities is not None  # built with the pipeline
            return await capabilities.respond(ctx, Request(scope, receive))
        denial = await pipeline.run(ctx)
        if denial is not None:
            return denial_response(denial)
        try:
            answer = negotiate(ctx.params, head.accept, export_file=ctx.fhir.reads_binary)
        except NotAcceptable as exc:
            ctx.findings.append(Finding(None, "deny", 406, str(exc)))
            return operation_outcome(406, str(exc))
        if any(name == "_format" for name, _ in ctx.params):
            ctx.upstream_params = without_format(ctx.params)  # HAPI is asked for JSON
        if ("_summary", "text") in ctx.params and ctx.fhir.is_read_by_id:
            ctx.upstream_params = tuple(p for p in ctx.params if p[0] != "_summary")
            ctx.text_summary = True
        if ctx.fhir.interaction is Interaction.SEARCH_COMPARTMENT:
            compartment_as_search(ctx)
        return await upstream.checked(scope, receive, head, ctx, answer)

    async def outside(request: Request) -> StarletteResponse:
        return operation_outcome(
            404, f"no FHIR endpoint at {request.url.path}; the FHIR base is {settings.base_path}"
        )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await upstream.aclose()
        await auth_http.aclose()
        await side_http.aclose()
        if audit is not None:
            await audit.aclose()

    routes = [
        Route("/_gateway/health", health, methods=["GET"]),
        Route("/_gateway/ready", ready, methods=["GET"]),
        Route(settings.base_path, _method_not_allowed),
        Route(settings.base_path + "/{path:path}", _method_not_allowed),
        Route("/{path:path}", outside, methods=METHODS),
    ]
    rest = Starlette(routes=routes, lifespan=lifespan)
    base, below = settings.base_path, settings.base_path + "/"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _METHODS:
            path = scope["path"]
            if path == base or path.startswith(below):
                await fhir(scope, receive, send)
                return
        await rest(scope, receive, send)

    return app


class _ScopeHeaders:
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


async def _method_not_allowed(_: Request) -> StarletteResponse:
    return PlainTextResponse(
        "Method Not Allowed", status_code=405, headers={"Allow": ", ".join(METHODS)}
    )
