"""The gateway's upstream HTTP/1.1 client against a scripted server on a loopback socket.

The server parses requests with h11 (an independent HTTP/1.1 implementation) and answers with
raw bytes chosen per test, so keep-alive, chunking, closed connections and silence can each be
produced exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import h11
import pytest

from gateway.upstream_client import HIGH_WATER, UpstreamClient, UpstreamError, UpstreamTimeout

pytestmark = pytest.mark.anyio


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int


# an answer: raw bytes to send, or None to close the connection without answering; bytes
# ending in HANG_UP are sent (without it) and the connection is closed
Answer = Callable[[Seen], Awaitable[bytes | None]]
HANG_UP = b"\x00hang-up"


@dataclass
class Server:
    port: int
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0


def ok(body: bytes = b'{"resourceType":"Patient"}', *extra: str) -> bytes:
    head = "HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\n"
    head += "".join(f"{line}\r\n" for line in extra)
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body


def chunked(*parts: bytes) -> bytes:
    out = b"HTTP/1.1 200 OK\r\ncontent-type: application/fhir+ndjson\r\n"
    out += b"transfer-encoding: chunked\r\n\r\n"
    for part in parts:
        out += b"%x\r\n%b\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


@asynccontextmanager
async def serve(answer: Answer) -> AsyncIterator[Server]:
    server = Server(0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        number = server.connections
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = None, b""
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await reader.read(65536)
                        if not data:
                            return
                        conn.receive_data(data)
                    elif isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):
                        return
                assert request is not None
                seen = Seen(
                    request.method.decode(),
                    request.target.decode(),
                    {k.decode(): v.decode() for k, v in request.headers},
                    body,
                    number,
                )
                server.seen.append(seen)
                raw = await answer(seen)
                if raw is None:
                    return
                writer.write(raw.removesuffix(HANG_UP))
                await writer.drain()
                if raw.endswith(HANG_UP):
                    return
                conn = h11.Connection(h11.SERVER)  # the answers are raw bytes: start afresh
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


def client(server: Server, **kwargs: float) -> UpstreamClient:
    return UpstreamClient(f"http://127.0.0.1:{server.port}/fhir", **kwargs)  # type: ignore[arg-type]


def always(raw: bytes) -> Answer:
    async def answer(_: Seen) -> bytes:
        return raw

    return answer


async def test_keep_alive_reuses_one_connection_and_sends_the_head_as_given() -> None:
    async with serve(always(ok())) as server:
        upstream = client(server)
        for _ in range(3):
            resp = await upstream.request(
                "GET", b"/Patient/p1?_elements=id", [(b"accept", b"application/fhir+json")]
            )
            assert resp.status == 200
            assert resp.header(b"content-type") == b"application/fhir+json"
            assert resp.body_if_complete() == b'{"resourceType":"Patient"}'
        await upstream.aclose()
    assert server.connections == 1
    first = server.seen[0]
    assert (first.method, first.target) == ("GET", "/fhir/Patient/p1?_elements=id")
    assert first.headers["host"] == f"127.0.0.1:{server.port}"
    assert first.headers["accept"] == "application/fhir+json"


async def test_a_connection_the_server_closes_is_not_reused() -> None:
    async with serve(always(ok(b"{}", "connection: close"))) as server:
        upstream = client(server)
        for _ in range(2):
            resp = await upstream.request("GET", b"/metadata", [])
            assert await resp.read() == b"{}"
        await upstream.aclose()
    assert server.connections == 2


async def test_chunked_bodies_stream_and_large_ones_pass_the_high_water_mark() -> None:
    big = b"x" * (HIGH_WATER * 3)
    async with serve(always(chunked(b"a\n", big, b"b\n"))) as server:
        upstream = client(server)
        resp = await upstream.request("GET", b"/Binary/1", [])
        parts = [chunk async for chunk in resp.chunks()]
        assert b"".join(parts) == b"a\n" + big + b"b\n"
        again = await upstream.request("GET", b"/Binary/1", [])  # the connection is reusable
        assert len(await again.read()) == len(big) + 4
        await upstream.aclose()
    assert server.connections == 1


async def test_request_bodies_whole_or_streamed() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b'{"resourceType":'
        yield b""
        yield b'"Patient"}'

    async with serve(always(ok(b"{}"))) as server:
        upstream = client(server)
        await (await upstream.request("PUT", b"/Patient/p1", [], b'{"a":1}')).read()
        await (await upstream.request("POST", b"/Patient", [], parts())).read()
        await upstream.aclose()
    whole, streamed = server.seen
    assert whole.body == b'{"a":1}' and whole.headers["content-length"] == "7"
    assert streamed.body == b'{"resourceType":"Patient"}'
    assert streamed.headers["transfer-encoding"] == "chunked"


async def test_an_idempotent_request_is_sent_again_when_a_kept_connection_was_dropped() -> None:
    calls = 0

    async def answer(seen: Seen) -> bytes | None:
        nonlocal calls
        calls += 1
        return None if calls == 2 else ok(b"{}")  # the second request finds the socket closing

    async with serve(answer) as server:
        upstream = client(server)
        await (await upstream.request("GET", b"/Patient/1", [])).read()
        resp = await upstream.request("GET", b"/Patient/1", [])
        assert await resp.read() == b"{}"
        await upstream.aclose()
    assert server.connections == 2
    assert len(server.seen) == 3


async def test_a_post_is_never_sent_twice() -> None:
    calls = 0

    async def answer(seen: Seen) -> bytes | None:
        nonlocal calls
        calls += 1
        return None if calls == 2 else ok(b"{}")

    async with serve(answer) as server:
        upstream = client(server)
        await (await upstream.request("GET", b"/Patient/1", [])).read()
        with pytest.raises(UpstreamError) as caught:
            await upstream.request("POST", b"/Patient", [], b"{}")
        assert caught.value.kind == "RemoteProtocolError"
        await upstream.aclose()
    assert len(server.seen) == 2


async def test_silence_is_a_timeout_and_the_connection_is_dropped() -> None:
    async def answer(seen: Seen) -> bytes | None:
        if seen.target.endswith("/slow"):
            await asyncio.sleep(5)
        return ok(b"{}")

    async with serve(answer) as server:
        upstream = client(server, timeout_s=0.2)
        with pytest.raises(UpstreamTimeout):
            await upstream.request("GET", b"/slow", [])
        resp = await upstream.request("GET", b"/fast", [])  # a fresh connection, no mix-up
        assert await resp.read() == b"{}"
        await upstream.aclose()
    assert server.connections == 2


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with serve(always(ok())) as server:
        port = server.port
    upstream = UpstreamClient(f"http://127.0.0.1:{port}/fhir")
    with pytest.raises(UpstreamError) as caught:
        await upstream.request("GET", b"/metadata", [])
    assert caught.value.kind == "ConnectError"


async def test_a_head_response_ends_at_its_head() -> None:
    async with serve(always(ok(b"{}")[: -len(b"{}")])) as server:  # length, no body
        upstream = client(server)
        resp = await upstream.request("HEAD", b"/metadata", [])
        assert resp.status == 200
        assert await resp.read() == b""
        await upstream.aclose()


async def test_a_response_cut_short_is_an_error_not_a_short_body() -> None:
    cut = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b"x" * 10 + HANG_UP
    async with serve(always(cut)) as server:
        upstream = client(server)
        resp = await upstream.request("GET", b"/Patient/1", [])
        with pytest.raises(UpstreamError) as caught:
            await resp.read()
        assert caught.value.kind == "ReadError"
        assert not isinstance(caught.value, UpstreamTimeout)
        await upstream.aclose()


async def test_garbage_from_the_server_is_a_protocol_error() -> None:
    async with serve(always(b"NOT HTTP AT ALL\r\n\r\n")) as server:
        upstream = client(server)
        with pytest.raises(UpstreamError) as caught:
            await upstream.request("GET", b"/metadata", [])
        assert caught.value.kind == "RemoteProtocolError"
        await upstream.aclose()


async def test_interim_responses_are_skipped() -> None:
    async with serve(always(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"{}"))) as server:
        upstream = client(server)
        resp = await upstream.request("POST", b"/Patient", [], b"{}")
        assert resp.status == 200
        assert await resp.read() == b"{}"
        await upstream.aclose()


async def test_no_more_requests_in_flight_than_the_limit() -> None:
    in_flight = peak = 0

    async def answer(_: Seen) -> bytes:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return ok(b"{}")

    async with serve(answer) as server:
        upstream = client(server, max_connections=2)

        async def one() -> bytes:
            return await (await upstream.request("GET", b"/Patient/1", [])).read()

        assert await asyncio.gather(*(one() for _ in range(6))) == [b"{}"] * 6
        await upstream.aclose()
    assert peak == 2
    assert server.connections == 2
