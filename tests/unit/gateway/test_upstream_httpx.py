"""The upstream client over an httpx transport (the unit tests' and the in-process benchmark's
stand-in for HAPI's socket): like the socket client it sends what it is given and nothing else,
and it maps transport failures to the gateway's own errors."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.upstream_client import UpstreamError, UpstreamTimeout
from gateway.upstream_httpx import HttpxUpstreamClient

pytestmark = pytest.mark.anyio

BASE = "http://hapi.test/fhir"
# answers are streams, as from a socket (an `httpx.Response(content=...)` is read already)


async def test_the_transport_gets_the_headers_given_and_no_cookie_comes_back() -> None:
    seen: list[httpx.Request] = []

    def hapi(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, headers={"set-cookie": "session=abc"}, stream=httpx.ByteStream(b"{}")
        )

    client = HttpxUpstreamClient(BASE, httpx.MockTransport(hapi), timeout_s=7.0)
    for _ in range(2):
        response = await client.request("GET", b"/Patient/p1?_id=p1", [(b"prefer", b"x")])
        assert (response.status, await response.read()) == (200, b"{}")
    await client.aclose()
    for request in seen:
        assert str(request.url) == f"{BASE}/Patient/p1?_id=p1"
        assert sorted(request.headers.keys()) == ["host", "prefer"]  # no defaults, no cookie
        assert request.extensions["timeout"]["read"] == 7.0


async def test_the_body_is_relayed_as_it_came() -> None:
    raw = gzip.compress(b'{"resourceType":"Patient"}')

    def hapi(request: httpx.Request) -> httpx.Response:
        assert request.content == b'{"a":1}'
        return httpx.Response(
            200, headers={"content-encoding": "gzip"}, stream=httpx.ByteStream(raw)
        )

    client = HttpxUpstreamClient(BASE, httpx.MockTransport(hapi), timeout_s=1.0)
    response = await client.request("POST", b"/Patient", [], b'{"a":1}')
    assert response.header(b"content-encoding") == b"gzip"
    assert await response.read() == raw  # still compressed: the gateway decodes it itself


async def test_a_body_is_framed_as_the_socket_client_frames_it() -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    def hapi(request: httpx.Request) -> httpx.Response:
        seen.append((dict(request.headers), request.content))
        return httpx.Response(201, stream=httpx.ByteStream(b""))

    async def parts() -> AsyncIterator[bytes]:
        yield b'{"resourceType":'
        yield b'"Patient"}'

    client = HttpxUpstreamClient(BASE, httpx.MockTransport(hapi), timeout_s=1.0)
    await client.request(
        "PUT", b"/Patient/p1", [(b"content-type", b"application/fhir+json")], b"{}"
    )
    await client.request("POST", b"/Patient", [], parts())
    await client.request("DELETE", b"/Patient/p1", [])
    (put, streamed, delete) = seen
    assert put == (
        {"host": "hapi.test", "content-type": "application/fhir+json", "content-length": "2"},
        b"{}",
    )
    assert streamed == (
        {"host": "hapi.test", "transfer-encoding": "chunked"},
        b'{"resourceType":"Patient"}',
    )
    assert delete == ({"host": "hapi.test"}, b"")


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.ReadTimeout("slow"), UpstreamTimeout),
        (httpx.ConnectError("refused"), UpstreamError),
    ],
)
async def test_transport_failures_are_the_gateways_errors(
    failure: httpx.HTTPError, expected: type[UpstreamError]
) -> None:
    def hapi(request: httpx.Request) -> httpx.Response:
        raise failure

    client = HttpxUpstreamClient(BASE, httpx.MockTransport(hapi), timeout_s=1.0)
    with pytest.raises(expected):
        await client.request("GET", b"/Patient/p1", [])
