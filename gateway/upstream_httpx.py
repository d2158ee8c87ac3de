"""The upstream client's interface over an httpx transport: what the gateway uses when a
transport is handed to `create_app` (the unit tests' stand-in for HAPI's socket).

Requests go to the transport itself, not through an `httpx.AsyncClient`: like the socket client
(`gateway/upstream_client.py`) the stand-in sends its host, the headers it is given and the
body's length (or chunked framing), and nothing else — no default `User-Agent`/`Accept-Encoding`,
no cookie jar carried from one client's request to the next, no redirects or auth hooks — so it
costs the in-process benchmark about what the socket client costs the real gateway, not several
times the proxying itself."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import contextmanager
from functools import lru_cache

import httpx

from gateway.upstream_client import Body, Headers, UpstreamError, UpstreamTimeout


@contextmanager
def _upstream_errors() -> Iterator[None]:
    """httpx's errors as the socket client raises them (`UpstreamTimeout`, `UpstreamError`)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(str(exc)) from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(type(exc).__name__, str(exc)) from exc


class HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers: Headers = [(k.lower(), v) for k, v in response.headers.raw]

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def body_if_complete(self) -> bytes | None:
        return None  # always streamed, as from a socket

    async def read(self) -> bytes:
        # the transport's stream itself (`aiter_raw` re-chunks and wraps it): the body of every
        # checked answer is read here
        stream = self._response.stream
        parts = []
        try:
            if not isinstance(stream, httpx.AsyncByteStream):
                raise UpstreamError("StreamError", "the transport answered with a sync stream")
            with _upstream_errors():
                async for chunk in stream:
                    parts.append(chunk)
        finally:
            await self._response.aclose()
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            with _upstream_errors():
                async for chunk in self._response.aiter_raw():
                    yield chunk
        finally:
            await self._response.aclose()

    async def aclose(self) -> None:
        await self._response.aclose()


@lru_cache(maxsize=1024)
def _url(base: str, target: bytes) -> httpx.URL:
    """The parsed URL of a target (immutable, so shared): parsing is most of what building a
    request costs httpx, and the targets of a test or a benchmark repeat."""
    return httpx.URL(base + target.decode("latin-1"))


class _Streamed(httpx.AsyncByteStream):
    """A request body sent as it is read (chunked), as the socket client sends one."""

    def __init__(self, body: AsyncIterable[bytes]) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._body:
            yield chunk


class HttpxUpstreamClient:
    def __init__(self, base_url: str, transport: httpx.AsyncBaseTransport, timeout_s: float):
        self.base = base_url.rstrip("/")
        self.transport = transport
        self._host = (b"host", httpx.URL(self.base).netloc)
        # what an AsyncClient would attach to every request, worked out once
        self._extensions = {"timeout": httpx.Timeout(timeout_s).as_dict()}

    async def request(
        self, method: str, target: bytes, headers: Headers, body: Body = None
    ) -> HttpxResponse:
        # the head as the socket client writes it: host, the headers given, the body's framing
        # (so httpx is handed a stream and adds nothing of its own)
        head = [self._host, *headers]
        stream: httpx.AsyncByteStream
        if body is None:
            stream = httpx.ByteStream(b"")
        elif isinstance(body, bytes | bytearray):
            head.append((b"content-length", b"%d" % len(body)))
            stream = httpx.ByteStream(bytes(body))
        else:
            head.append((b"transfer-encoding", b"chunked"))
            stream = _Streamed(body)
        with _upstream_errors():
            request = httpx.Request(
                method,
                _url(self.base, target),
                headers=head,
                stream=stream,
                extensions=self._extensions,
            )
            response = await self.transport.handle_async_request(request)
        response.request = request
        return HttpxResponse(response)

    async def aclose(self) -> None:
        await self.transport.aclose()
