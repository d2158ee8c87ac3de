"""The gateway in pass-through mode with its own upstream client, over a loopback socket to a
scripted server: what HAPI receives and what the client gets back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.proxy import _urlencode
from gateway.settings import GatewaySettings
from tests.unit.gateway.test_upstream_client import Server, always, chunked, ok, serve


async def call(server: Server, method: str, url: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
    app = create_app(GatewaySettings(upstream=f"http://127.0.0.1:{server.port}/fhir"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.example:8080") as client:
        return await client.request(method, url, **kwargs)


@pytest.mark.anyio
async def test_headers_to_hapi_credentials_stop_at_the_gateway() -> None:
    async with serve(always(ok(b"{}", "connection: keep-alive", "x-powered-by: HAPI"))) as server:
        resp = await call(
            server,
            "GET",
            "/fhir/Patient/a%2Fb?name=Sm%C3%AFth&_count=5",
            headers={"Authorization": "Bearer secret", "Cookie": "s=1", "X-Request-Id": "r1"},
        )
    assert resp.status_code == 200
    assert resp.content == b"{}"
    assert resp.headers["content-length"] == "2"
    assert resp.headers["x-powered-by"] == "HAPI"
    assert "connection" not in resp.headers
    (seen,) = server.seen
    assert seen.target == "/fhir/Patient/a%2Fb?name=Sm%C3%AFth&_count=5"  # as the client encoded
    assert "authorization" not in seen.headers and "cookie" not in seen.headers
    assert seen.headers["x-forwarded-host"] == "gw.example:8080"
    assert seen.headers["x-forwarded-proto"] == "http"
    assert seen.headers["x-request-id"] == "r1"
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"


@pytest.mark.anyio
async def test_streamed_bodies_both_ways() -> None:
    async def upload() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    parts = [b'{"a":1}\n', b"x" * 300_000, b'{"b":2}\n']
    async with serve(always(chunked(*parts))) as server:
        resp = await call(server, "POST", "/fhir/Binary", content=upload())
    assert resp.content == b"".join(parts)
    assert resp.headers["content-type"] == "application/fhir+ndjson"
    (seen,) = server.seen
    assert seen.body == b"abcd"


@pytest.mark.anyio
async def test_unreachable_upstream_is_a_502_operation_outcome() -> None:
    async with serve(always(ok())) as server:
        pass  # closed: nothing listens on its port any more
    resp = await call(server, "GET", "/fhir/metadata")
    assert resp.status_code == 502
    assert resp.json()["resourceType"] == "OperationOutcome"
    assert "ConnectError" in resp.json()["issue"][0]["diagnostics"]


@pytest.mark.anyio
async def test_other_methods_on_the_fhir_base_are_405() -> None:
    async with serve(always(ok())) as server:
        resp = await call(server, "OPTIONS", "/fhir/Patient")
    assert resp.status_code == 405
    assert server.seen == []


@given(st.lists(st.tuples(st.text(), st.text()), max_size=6))
def test_the_cached_query_encoding_is_urlencode(params: list[tuple[str, str]]) -> None:
    assert _urlencode(params) == urlencode(params)
