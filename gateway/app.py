"""The gateway ASGI application: the only FHIR entry point clients see.

At this stage it forwards every request under the FHIR base to HAPI unchanged (pass-through);
the control stages are added in front of `Upstream.forward`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.outcome import operation_outcome
from gateway.proxy import Upstream
from gateway.settings import GatewaySettings

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def create_app(
    settings: GatewaySettings | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    settings = settings or GatewaySettings()
    upstream = Upstream(settings, transport)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "UP", "mode": "pass-through", "upstream": upstream.base})

    async def ready(_: Request) -> Response:
        """Deep readiness: 200 only when HAPI answers its CapabilityStatement."""
        if await upstream.ready():
            return JSONResponse({"status": "UP", "upstream": upstream.base})
        return JSONResponse({"status": "DOWN", "upstream": upstream.base}, status_code=503)

    async def fhir(request: Request) -> Response:
        return await upstream.forward(request)

    async def outside(request: Request) -> Response:
        return operation_outcome(
            404, f"no FHIR endpoint at {request.url.path}; the FHIR base is {settings.base_path}"
        )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await upstream.aclose()

    routes = [
        Route("/_gateway/health", health, methods=["GET"]),
        Route("/_gateway/ready", ready, methods=["GET"]),
        Route(settings.base_path, fhir, methods=METHODS),
        Route(settings.base_path + "/{path:path}", fhir, methods=METHODS),
        Route("/{path:path}", outside, methods=METHODS),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
