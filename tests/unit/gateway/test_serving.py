"""The gateway served by uvicorn as `python -m gateway` serves it, over a loopback socket to a
scripted upstream: keep-alive, streamed and whole answers, one `Date`, no server software named."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn

from gateway.__main__ import SERVER_OPTIONS
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.unit.gateway.test_upstream_client import chunked, ok, serve

pytestmark = pytest.mark.anyio


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def gateway_server(upstream_port: int) -> AsyncIterator[str]:
    """The pass-through gateway in uvicorn, with the options `python -m gateway` gives it."""
    port = _free_port()
    app = create_app(GatewaySettings(upstream=f"http://127.0.0.1:{upstream_port}/fhir"))
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        lifespan="off",
        **SERVER_OPTIONS,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_gateway_served_by_uvicorn(anyio_backend: str) -> None:
    parts = [b'{"a":1}\n', b"x" * 300_000, b'{"b":2}\n']
    answers = iter(
        [
            ok(b'{"resourceType":"Patient"}', "date: Mon, 01 Jan 2001 00:00:00 GMT"),
            chunked(*parts),
            ok(b"{}"),
        ]
    )

    async def answer(_: object) -> bytes:
        return next(answers)

    async with (
        serve(answer) as upstream,
        gateway_server(upstream.port) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        whole = await client.get("/fhir/Patient/1")
        streamed = await client.get("/fhir/Binary/1")
        again = await client.get("/fhir/Patient/2")
    assert whole.status_code == 200 and whole.content == b'{"resourceType":"Patient"}'
    # one Date, the gateway's own (HAPI's is not relayed); no server software named
    dates = [v for k, v in whole.headers.multi_items() if k == "date"]
    assert len(dates) == 1 and dates[0] != "Mon, 01 Jan 2001 00:00:00 GMT"
    assert "server" not in whole.headers
    assert streamed.content == b"".join(parts)
    assert again.status_code == 200 and again.content == b"{}"
    assert upstream.connections == 1  # one upstream keep-alive connection
