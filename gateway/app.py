"""The gateway ASGI application: the only FHIR entry point clients see.

Per request: classify it (`gateway/classify.py`), run the stage pipeline built once from the
policy (`gateway/pipeline.py`), forward what passes to HAPI (`gateway/proxy.py`), check what comes
back, and hand the outcome to the audit sink. Refusals are OperationOutcomes
(`gateway/outcome.py`). The CapabilityStatement and `.well-known/smart-configuration` are public.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.audit_sink import GatewayAudit
from gateway.capabilities import ClientCapabilities
from gateway.classify import ClassifyError, classify
from gateway.clock import ClockError, simulated_clock
from gateway.config import GatewayConfig
from gateway.context import Finding, RequestContext
from gateway.controls import Mode
from gateway.current import CurrentResources, HapiCurrentResources
from gateway.denial import Denial
from gateway.outcome import denial_response, operation_outcome
from gateway.pipeline import ModeOf, Pipeline
from gateway.policy import Policy
from gateway.proxy import Upstream
from gateway.settings import GatewaySettings
from gateway.smart_config import SmartConfiguration
from gateway.stages import Stage
from gateway.stages.client_policy import ClientPolicyStage
from gateway.stages.compartment import CompartmentStage
from gateway.stages.operations import OperationsStage
from gateway.stages.rate_limit import RATE, RateLimitStage
from gateway.stages.scopes import ScopesStage
from gateway.stages.tenant import TenantStage
from gateway.stages.token import TOKEN, TokenStage
from gateway.tokens import TokenVerifier

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


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
    return [
        TokenStage(verifier, config.client_classes),
        RateLimitStage(policy.rate_limit),
        ClientPolicyStage(policy.client_policy),
        TenantStage(current),
        ScopesStage(policy.client_policy),
        OperationsStage(policy.operations),
        CompartmentStage(current),
    ]


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _needs_body(request: Request) -> bool:
    """Bodies a stage must read: batches, POST _search forms, and resource writes (C08 checks
    that a patient-context token writes only its patient's data). Bulk data is never buffered."""
    return request.method in ("POST", "PUT", "PATCH")


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
) -> Starlette:
    """The gateway. Without a `config` it is a plain pass-through proxy (no stages)."""
    settings = config.settings if config else settings or GatewaySettings()
    if config is not None and audit is None:
        audit = build_audit(config)
    upstream = Upstream(settings, transport)
    auth_http = httpx.AsyncClient(transport=auth_transport, timeout=10.0)
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
        current = HapiCurrentResources(upstream.client, upstream.base)  # C08/C10 read-before-write
        stages = build_stages(config, verifier, current)
        pipeline = Pipeline(stages, mode_of(policy), settings.base_path)
        capabilities = ClientCapabilities(
            verifier,
            upstream.client,
            upstream.base,
            policy.operations,
            settings.base_path,
            per_client=policy.token.enabled,
            public_base=config.public_base,
        )
        if config.issuers:
            smart = SmartConfiguration(config.issuers[0], auth_http)

    async def health(_: Request) -> Response:
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

    async def ready(_: Request) -> Response:
        """Deep readiness: 200 only when HAPI answers its CapabilityStatement."""
        if await upstream.ready():
            return JSONResponse({"status": "UP", "upstream": upstream.base})
        return JSONResponse({"status": "DOWN", "upstream": upstream.base}, status_code=503)

    async def fhir(request: Request) -> Response:
        if pipeline is None:
            return await upstream.forward(request)
        t0 = time.perf_counter()
        ctx = RequestContext(
            request_id=request.headers.get("x-request-id") or secrets.token_hex(8),
            method=request.method,
            raw_path=request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
            raw_query=request.scope.get("query_string", b"").decode("latin-1"),
            bearer=_bearer(request),
        )
        response = await _handle(request, ctx)
        ctx.status = response.status_code
        if audit is not None:
            audit.record(ctx, (time.perf_counter() - t0) * 1000)
        return response

    async def _handle(request: Request, ctx: RequestContext) -> Response:
        assert pipeline is not None
        if clock is not None:
            try:
                ctx.simulated_time = clock.read(request.headers)
            except ClockError as exc:
                ctx.findings.append(Finding(None, "deny", 400, str(exc)))
                return operation_outcome(400, str(exc))
        form = None
        if _needs_body(request):
            ctx.body = await request.body()
            if "x-www-form-urlencoded" in request.headers.get("content-type", ""):
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
        if ctx.fhir.is_metadata:
            if capabilities is not None:  # per client with a token; else the public one
                return await capabilities.respond(ctx, request)
            return await upstream.forward(request, ctx)
        denial = await pipeline.run(ctx)
        if denial is not None:
            return denial_response(denial)
        return await upstream.forward(request, ctx, inspect=True)

    async def outside(request: Request) -> Response:
        return operation_outcome(
            404, f"no FHIR endpoint at {request.url.path}; the FHIR base is {settings.base_path}"
        )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await upstream.aclose()
        await auth_http.aclose()
        if audit is not None:
            await audit.aclose()

    routes = [
        Route("/_gateway/health", health, methods=["GET"]),
        Route("/_gateway/ready", ready, methods=["GET"]),
        Route(settings.base_path, fhir, methods=METHODS),
        Route(settings.base_path + "/{path:path}", fhir, methods=METHODS),
        Route("/{path:path}", outside, methods=METHODS),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
