"""The gateway in pass-through mode with its own upstream client, over a loopback socket to a
scripted server: what HAPI receives and what the client gets back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.context import RequestContext
from gateway.formats import negotiate
from gateway.proxy import RequestHead, Upstream, _urlencode
from gateway.settings import GatewaySettings
from gateway.stages.tenant import TENANT_TAG_SYSTEM, SameTenant
from tests.unit.gateway.test_upstream_client import Server, always, chunked, ok, serve

NDJSON = b"application/fhir+ndjson"


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


@pytest.mark.anyio
@pytest.mark.parametrize("lines", [3, 4000])  # whole in one piece / streamed in many
async def test_an_export_file_is_checked_line_by_line_on_its_way_out(lines: int) -> None:
    def patient(i: int) -> bytes:
        tenant = "a" if i % 2 == 0 else "b"
        tag = {"system": TENANT_TAG_SYSTEM, "code": tenant}
        resource = {"resourceType": "Patient", "id": f"p{i}", "meta": {"tag": [tag]}}
        return json.dumps(resource).encode() + b"\n"

    data = b"".join(patient(i) for i in range(lines))
    parts = [data[i : i + 1000] for i in range(0, len(data), 1000)]  # cut through lines
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/fhir/Binary/x",
        "raw_path": b"/fhir/Binary/x",
        "query_string": b"",
        "headers": [(b"host", b"gw")],
    }
    ctx = RequestContext(request_id="r", method="GET", raw_path="/fhir/Binary/x", raw_query="")
    ctx.resource_checks.append(("C10", SameTenant("a")))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with serve(always(chunked(*parts))) as server:
        upstream = Upstream(GatewaySettings(upstream=f"http://127.0.0.1:{server.port}/fhir"))
        head = RequestHead.of(scope, checked=True)
        response = await upstream.checked(scope, receive, head, ctx, negotiate((), NDJSON, True))
        await response(scope, receive, send)
        await upstream.aclose()
    messages = [m.get("body", b"") for m in sent if m["type"] == "http.response.body"]
    assert (len(messages) > 2) == (lines > 3)  # the long file went out as a stream
    assert b"".join(messages) == b"".join(patient(i) for i in range(0, lines, 2))
    assert len(ctx.patients) == ctx.result_count == (lines + 1) // 2
    (finding,) = ctx.findings
    assert (finding.control, finding.action) == ("C10", "filter")
    assert finding.reason.startswith(f"withheld {lines // 2} of {lines} resources")
