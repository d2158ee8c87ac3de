"""Forwarding to HAPI: one pooled async HTTP client, bodies streamed both ways.

The gateway tells HAPI where clients really are (`X-Forwarded-Host`/`-Proto`; both serve FHIR at
the same path), so the links HAPI writes (paging, bulk-export status and output) point at the
gateway, never at HAPI itself.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.compartment import compartment_patient_ids
from gateway.context import Finding, RequestContext
from gateway.outcome import denial_response, operation_outcome
from gateway.pipeline import check_resources, iter_resources
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

    def target(self, request: Request, ctx: RequestContext | None = None) -> str:
        path = request.url.path[len(self.settings.base_path) :]
        if ctx is not None and ctx.upstream_params is not None:
            # a narrowed POST _search sends its parameters as the form body, nothing in the URL
            query = "" if _is_post_search(ctx) else urlencode(ctx.upstream_params)
        else:
            query = request.scope.get("query_string", b"").decode("latin-1")
        return f"{self.base}{path}" + (f"?{query}" if query else "")

    def forward_headers(
        self, request: Request, ctx: RequestContext | None = None
    ) -> list[tuple[str, str]]:
        headers = [(k, v) for k, v in request.headers.items() if k not in _NOT_FORWARDED]
        if ctx is not None and ctx.upstream_params is not None and _is_post_search(ctx):
            headers = [(k, v) for k, v in headers if k != "content-type"]
            headers.append(("content-type", "application/x-www-form-urlencoded"))
        host = request.headers.get("host")
        if host:
            headers.append(("x-forwarded-host", host))
        headers.append(("x-forwarded-proto", request.url.scheme))
        return headers

    def _content(self, request: Request, ctx: RequestContext | None) -> Any:
        if ctx is not None and _is_post_search(ctx) and ctx.upstream_params is not None:
            return urlencode(ctx.upstream_params).encode()
        if ctx is not None and ctx.body is not None:
            return ctx.body
        return request.stream() if request.method in ("POST", "PUT", "PATCH") else None

    async def forward(
        self, request: Request, ctx: RequestContext | None = None, inspect: bool = False
    ) -> Response:
        """Send the request to HAPI. With `inspect`, a JSON response is read whole so the
        request's resource checks can run and the patients it reaches can be counted."""
        upstream_request = self.client.build_request(
            request.method,
            self.target(request, ctx),
            headers=self.forward_headers(request, ctx),
            content=self._content(request, ctx),
        )
        try:
            upstream = await self.client.send(upstream_request, stream=True)
        except httpx.TimeoutException:
            return operation_outcome(504, "the FHIR server did not answer in time")
        except httpx.HTTPError as exc:
            return operation_outcome(502, f"the FHIR server is unreachable ({type(exc).__name__})")
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        if ctx is not None:
            ctx.status = upstream.status_code
        if inspect and ctx is not None and _is_json(upstream.headers.get("content-type", "")):
            raw = await upstream.aread()
            await upstream.aclose()
            headers.pop("content-encoding", None)
            return self._inspected(raw, upstream.status_code, headers, ctx)
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=headers,
            background=BackgroundTask(upstream.aclose),
        )

    def _inspected(
        self, raw: bytes, status: int, headers: dict[str, str], ctx: RequestContext
    ) -> Response:
        try:
            body = json.loads(raw)
        except ValueError:
            return Response(raw, status_code=status, headers=headers)
        resources = iter_resources(body)
        if isinstance(body, dict) and body.get("resourceType") == "Bundle":
            ctx.result_count = sum(
                1
                for e in body.get("entry") or []
                if isinstance(e, dict) and (e.get("search") or {}).get("mode", "match") == "match"
            )
        elif status < 300:
            ctx.result_count = 1
        for resource in resources:
            ctx.patients.update(compartment_patient_ids(resource))
        if status < 300:
            denial = check_resources(ctx, resources)
            if denial is not None:
                ctx.findings.append(Finding(denial.control, "deny", denial.status, denial.reason))
                ctx.patients.clear()
                ctx.status = denial.status
                return denial_response(denial)
        return Response(raw, status_code=status, headers=headers)


def _is_post_search(ctx: RequestContext) -> bool:
    return ctx.method == "POST" and ctx.raw_path.rstrip("/").endswith("/_search")


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in ("application/fhir+json", "application/json")
