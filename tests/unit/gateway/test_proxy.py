"""The pass-through proxy, driven in-process through an ASGI transport.

The upstream here is an httpx MockTransport standing in for HAPI's socket, to check exactly
what the gateway sends; the real HAPI is exercised by the integration tests.
"""

from __future__ import annotations

import json

import httpx
import pytest

from gateway.app import create_app
from gateway.classify import classify
from gateway.context import RequestContext
from gateway.proxy import RequestHead, Upstream
from gateway.settings import GatewaySettings

seen: list[httpx.Request] = []


def fake_hapi(request: httpx.Request) -> httpx.Response:
    seen.append(request)
    body = request.read()
    payload = json.dumps({"resourceType": "Bundle", "echo": body.decode() or None}).encode()
    return httpx.Response(  # a streamed body, as a real socket gives
        200,
        stream=httpx.ByteStream(payload),
        headers={"content-type": "application/fhir+json", "connection": "close"},
    )


def refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


async def call(handler, method: str, url: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
    seen.clear()
    app = create_app(
        GatewaySettings(upstream="http://hapi.internal:8280/fhir"), httpx.MockTransport(handler)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080") as client:
        return await client.request(method, url, **kwargs)


@pytest.mark.anyio
async def test_forwards_path_and_query_and_strips_credentials() -> None:
    resp = await call(
        fake_hapi,
        "GET",
        "/fhir/Patient?name=Smith&_count=5",
        headers={"Authorization": "Bearer secret", "Accept": "application/fhir+json"},
    )
    assert resp.status_code == 200
    (sent,) = seen
    assert str(sent.url) == "http://hapi.internal:8280/fhir/Patient?name=Smith&_count=5"
    assert "authorization" not in sent.headers
    assert sent.headers["x-forwarded-host"] == "localhost:8080"
    assert sent.headers["x-forwarded-proto"] == "http"
    assert "connection" not in resp.headers


@pytest.mark.anyio
async def test_streams_request_bodies() -> None:
    resource = json.dumps({"resourceType": "Patient", "id": "p1"})
    resp = await call(fake_hapi, "PUT", "/fhir/Patient/p1", content=resource)
    assert resp.json()["echo"] == resource
    assert str(seen[0].url) == "http://hapi.internal:8280/fhir/Patient/p1"


@pytest.mark.anyio
async def test_unreachable_upstream_is_a_502_operation_outcome() -> None:
    resp = await call(refusing, "GET", "/fhir/metadata")
    assert resp.status_code == 502
    assert resp.headers["content-type"].startswith("application/fhir+json")
    assert resp.json()["resourceType"] == "OperationOutcome"


@pytest.mark.anyio
async def test_paths_outside_the_fhir_base_are_404_without_forwarding() -> None:
    resp = await call(fake_hapi, "GET", "/fhirx/Patient")
    assert resp.status_code == 404
    assert seen == []
    assert resp.json()["issue"][0]["code"] == "not-found"


@pytest.mark.anyio
async def test_health() -> None:
    resp = await call(fake_hapi, "GET", "/_gateway/health")
    assert resp.json()["status"] == "UP"


@pytest.mark.anyio
async def test_ready_follows_the_upstream() -> None:
    assert (await call(fake_hapi, "GET", "/_gateway/ready")).status_code == 200
    assert (await call(refusing, "GET", "/_gateway/ready")).status_code == 503


def test_a_narrowed_if_none_exist_replaces_the_clients() -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/fhir/Patient",
        "headers": [
            (b"host", b"gw"),
            (b"if-none-exist", b"identifier=x"),
            (b"content-type", b"application/fhir+json"),
        ],
    }
    head = RequestHead.of(scope)
    assert head.if_none_exist == "identifier=x"
    ctx = RequestContext(
        request_id="r",
        method="POST",
        raw_path="/fhir/Patient",
        raw_query="",
        fhir=classify("POST", "/fhir/Patient", "", "/fhir"),
        if_none_exist=head.if_none_exist,
    )
    upstream = Upstream(GatewaySettings(upstream="http://hapi.example/fhir"))
    assert (b"if-none-exist", b"identifier=x") in upstream.forward_headers(scope, head, ctx)
    ctx.narrow_if_none_exist("_tag", "s|a")
    sent = upstream.forward_headers(scope, head, ctx)
    assert [v for k, v in sent if k == b"if-none-exist"] == [b"identifier=x&_tag=s%7Ca"]
    assert (b"content-type", b"application/fhir+json") in sent
