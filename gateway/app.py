"""The gateway ASGI application: the only FHIR entry point clients see, assembled once.

`create_app` builds the parts from the configuration — the upstream client (`gateway/proxy.py`),
the stage pipeline from the policy (`build_stages`, `gateway/pipeline.py`), the token verifier, the
CapabilityStatement and SMART configuration, the C06 recorder (`build_audit`) — and routes: the
FHIR base to `FhirEndpoint` (`gateway/fhir_endpoint.py`, where a request is handled), the
gateway's own health endpoints and everything else through Starlette. Refusals are
OperationOutcomes (`gateway/outcome.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.capabilities import ClientCapabilities
from gateway.clock import simulated_clock
from gateway.config import GatewayConfig
from gateway.controls import Mode
from gateway.current import CurrentResources, HapiCurrentResources
from gateway.fast_lane import (
    GRANT_PATH,
    SECRET_HEADER,
    FastLane,
    LaneGrants,
    lane_binary,
    lane_config,
    new_secret,
    secret_matches,
)
from gateway.fhir_endpoint import AuditSink, FhirEndpoint, PolicyParts
from gateway.outcome import operation_outcome
from gateway.pipeline import ModeOf, Pipeline
from gateway.policy import Policy
from gateway.proxy import Receive, Scope, Send, Upstream
from gateway.recorder import GatewayAudit
from gateway.settings import GatewaySettings
from gateway.smart_config import SmartConfiguration
from gateway.stages import Stage, check_order
from gateway.stages.client_policy import ClientPolicyStage
from gateway.stages.compartment import CompartmentStage
from gateway.stages.operations import OperationsStage
from gateway.stages.rate_limit import RATE, RateLimitStage
from gateway.stages.scopes import ScopesStage
from gateway.stages.tenant import TenantStage
from gateway.stages.token import TOKEN, TokenStage
from gateway.token_verifier import TokenVerifier
from labcore.errors import LabError

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
_METHODS = frozenset(METHODS)


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


def build_audit(config: GatewayConfig) -> AuditSink | None:
    """The C06 audit sink, or None when C06 is off or no audit directory is set."""
    if config.audit_dir is None or config.policy.mode("C06") is Mode.OFF:
        return None
    return GatewayAudit.from_config(config, config.audit_dir)


def build_policy_parts(
    config: GatewayConfig,
    upstream: Upstream,
    auth_http: httpx.AsyncClient,
    side_http: httpx.AsyncClient,
) -> PolicyParts:
    """The pipeline and the gateway's own answers, from the configuration."""
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
    base_path = config.settings.base_path
    return PolicyParts(
        pipeline=Pipeline(build_stages(config, verifier, current), mode_of(policy), base_path),
        capabilities=ClientCapabilities(
            verifier,
            side_http,
            upstream.base,
            policy.operations,
            base_path,
            per_client=policy.token.enabled,
            public_base=config.public_base,
        ),
        smart=SmartConfiguration(config.issuers[0], auth_http) if config.issuers else None,
        clock=simulated_clock(policy.clock_header),  # LAB ONLY
        verifier=verifier,
    )


def create_app(
    settings: GatewaySettings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    config: GatewayConfig | None = None,
    auth_transport: httpx.AsyncBaseTransport | None = None,
    audit: AuditSink | None = None,
    lane: LaneSettings | None = None,
) -> ASGIApp:
    """The gateway. Without a `config` it is a plain pass-through proxy (no stages). With
    `lane`, the fast lane (`gateway/fast_lane.py`) runs in front of it as its child."""
    settings = config.settings if config else settings or GatewaySettings()
    if config is not None and audit is None:
        audit = build_audit(config)
    upstream = Upstream(settings, transport)
    auth_http = httpx.AsyncClient(transport=auth_transport, timeout=10.0)
    # reads off the hot path (the stored version before a write, the CapabilityStatement)
    side_http = httpx.AsyncClient(transport=transport, timeout=settings.upstream_timeout_s)
    parts = build_policy_parts(config, upstream, auth_http, side_http) if config else None
    fhir = FhirEndpoint(upstream, settings.base_path, parts, audit)
    fast_lane = build_lane(lane, config, parts, audit) if lane is not None else None

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if fast_lane is not None:
            await fast_lane.start()
        yield
        if fast_lane is not None:  # its last requests' records, before the audit log closes
            await fast_lane.stop()
        await upstream.aclose()
        await auth_http.aclose()
        await side_http.aclose()
        if audit is not None:
            await audit.aclose()

    routes = own_routes(settings, upstream, config)
    if fast_lane is not None:
        routes.insert(0, grant_route(fast_lane))
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


@dataclass(frozen=True)
class LaneSettings:
    """Where the fast lane listens (the gateway's public address) and where it finds this
    gateway (its own loopback port)."""

    listen: str
    gateway_url: str


def build_lane(
    lane: LaneSettings,
    config: GatewayConfig | None,
    parts: PolicyParts | None,
    audit: AuditSink | None,
) -> FastLane:
    if config is None or parts is None:
        raise LabError("the fast lane needs the policy gateway (--keycloak)")
    settings = config.settings
    grants = LaneGrants(parts.pipeline, parts.verifier, config.policy, settings.base_path)
    lane_config_ = lane_config(
        lane.listen,
        lane.gateway_url,
        settings.upstream,
        settings.base_path,
        new_secret(),
        settings.upstream_timeout_s,
    )
    return FastLane(lane_binary(), lane_config_, grants, audit.record_done if audit else None)


def grant_route(lane: FastLane) -> Route:
    """The fast lane asks here what a token may do (`LaneGrants`); no one else may."""

    async def grant(request: Request) -> StarletteResponse:
        if not secret_matches(request.headers.get(SECRET_HEADER), lane.secret):
            return operation_outcome(404, f"no FHIR endpoint at {request.url.path}")
        bearer = (await request.body()).decode("latin-1").strip()
        return JSONResponse(await lane.grants.grant(bearer))

    return Route(GRANT_PATH, grant, methods=["POST"])


def own_routes(
    settings: GatewaySettings, upstream: Upstream, config: GatewayConfig | None
) -> list[Route]:
    """The gateway's own endpoints, and a FHIR 404 for everything outside the FHIR base."""

    async def health(_: Request) -> StarletteResponse:
        return JSONResponse(
            {
                "status": "UP",
                "mode": "pass-through" if config is None else "policy",
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

    async def outside(request: Request) -> StarletteResponse:
        return operation_outcome(
            404, f"no FHIR endpoint at {request.url.path}; the FHIR base is {settings.base_path}"
        )

    return [
        Route("/_gateway/health", health, methods=["GET"]),
        Route("/_gateway/ready", ready, methods=["GET"]),
        Route(settings.base_path, _method_not_allowed),
        Route(settings.base_path + "/{path:path}", _method_not_allowed),
        Route("/{path:path}", outside, methods=METHODS),
    ]


async def _method_not_allowed(_: Request) -> StarletteResponse:
    return PlainTextResponse(
        "Method Not Allowed", status_code=405, headers={"Allow": ", ".join(METHODS)}
    )
