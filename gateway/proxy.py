"""Forwarding to HAPI: one pooled async HTTP client, bodies streamed both ways.

The gateway tells HAPI where clients really are (`X-Forwarded-Host`/`-Proto`; both serve FHIR at
the same path), so the links HAPI writes (paging, bulk-export status and output) point at the
gateway, never at HAPI itself.
"""

from __future__ import annotations

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.outcome import operation_outcome
from gateway.settings import GatewaySettings

# RFC 9110 §7.6.1 hop-by-hop fields, plus those the proxy recomputes.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Credentials stop at the gateway: HAPI trusts the gateway, not the client's token.
_NOT_FORWARDED = _HOP_BY_HOP | {"authorization", "cookie"}


class Upstream:
    """The HAPI server behind the gateway."""

    def __init__(
        self, settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None
    ):
        self.settings = settings
        self.base = settings.upstream.rstrip("/")
        limits = httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        )
        self.client = httpx.AsyncClient(
            timeout=settings.upstream_timeout_s, limits=limits, transport=transport
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def ready(self) -> bool:
        try:
            resp = await self.client.get(f"{self.base}/metadata", timeout=5.0)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def target(self, request: Request) -> str:
        path = request.url.path[len(self.settings.base_path) :]
        query = request.url.query
        return f"{self.base}{path}" + (f"?{query}" if query else "")

    def forward_headers(self, request: Request) -> list[tuple[str, str]]:
        headers = [(k, v) for k, v in request.headers.items() if k not in _NOT_FORWARDED]
        host = request.headers.get("host")
        if host:
            headers.append(("x-forwarded-host", host))
        headers.append(("x-forwarded-proto", request.url.scheme))
        return headers

    async def forward(self, request: Request) -> Response:
        upstream_request = self.client.build_request(
            request.method,
            self.target(request),
            headers=self.forward_headers(request),
            content=request.stream() if request.method in ("POST", "PUT", "PATCH") else None,
        )
        try:
            upstream = await self.client.send(upstream_request, stream=True)
        except httpx.TimeoutException:
            return operation_outcome(504, "the FHIR server did not answer in time")
        except httpx.HTTPError as exc:
            return operation_outcome(502, f"the FHIR server is unreachable ({type(exc).__name__})")
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=headers,
            background=BackgroundTask(upstream.aclose),
        )
