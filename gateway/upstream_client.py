"""A small HTTP/1.1 client for the gateway's one upstream (HAPI): keep-alive connections on
asyncio with httptools (the C parser uvicorn itself uses), and nothing else per request — no
cookies, redirects, auth hooks or cancel scopes, which cost a general-purpose client several
times the proxying itself.

Bodies stream both ways with flow control: a request body given as an async iterable goes out
chunked; a response body is buffered only up to `HIGH_WATER` before reading pauses. A response
whose body arrived whole with its head can be taken in one piece (`body_if_complete`), so a
small answer is relayed as one message. A connection is reused only after a response was read
to its end and the server allows it; an idle one is dropped after `keepalive_s`, and an
idempotent request that finds its reused connection closed by the server is sent once more on a
new one.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator
from urllib.parse import urlsplit

import httptools

HIGH_WATER = 256 * 1024  # response bytes buffered before the socket is paused
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

Headers = list[tuple[bytes, bytes]]
Body = bytes | AsyncIterable[bytes] | None


class UpstreamError(Exception):
    """The upstream could not be reached or broke the exchange; `kind` names what happened."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class UpstreamTimeout(UpstreamError):
    def __init__(self, detail: str = "") -> None:
        super().__init__("Timeout", detail)


class UpstreamResponse:
    """One response: status and headers (names lower-cased) as soon as the head is in; the
    body read whole (`read`), in chunks (`chunks`), or taken if already complete. `release`
    must be called once when done (reading to the end releases it too)."""

    __slots__ = (
        "_conn",
        "_done",
        "_error",
        "_parts",
        "_released",
        "_waiter",
        "_whole",
        "headers",
        "status",
    )

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.status = 0
        self.headers: Headers = []
        self._parts = conn.parts  # filled by the parser, emptied here
        self._done = False
        self._whole = False  # read whole: woken only at the end (or to drain a full buffer)
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._released = False

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def body_if_complete(self) -> bytes | None:
        """The whole body if it has fully arrived (the connection is then released)."""
        if not self._done or self._error is not None:
            return None
        body = b"".join(self._parts)
        self._parts.clear()
        self.release()
        return body

    async def read(self) -> bytes:
        """The whole body."""
        self._whole = True
        body: list[bytes] = []
        try:
            while True:
                if self._parts:
                    body += self._parts
                    self._parts.clear()
                    self._conn.taken()
                if self._error is not None:
                    raise self._error
                if self._done:
                    return b"".join(body)
                await self._conn.wait(self._wait_future())
        finally:
            self.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; what arrived together is yielded as one chunk."""
        try:
            while True:
                if self._parts:
                    chunk = b"".join(self._parts)
                    self._parts.clear()
                    self._conn.taken()
                    yield chunk
                    continue
                if self._error is not None:
                    raise self._error
                if self._done:
                    return
                await self._conn.wait(self._wait_future())
        finally:
            self.release()

    async def aclose(self) -> None:
        """Done with the response, read to its end or not."""
        self.release()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._conn.finished(self, reusable=self._done and self._error is None)

    # fed by the connection
    def _wait_future(self) -> asyncio.Future[None]:
        self._waiter = self._conn.loop.create_future()
        return self._waiter

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finish(self) -> None:
        self._done = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if not self._done:
            self._error = error
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)


class _Connection(asyncio.Protocol):
    def __init__(self, pool: UpstreamClient) -> None:
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        # body chunks go straight into one list (a response can come in hundreds of small
        # chunks: no Python frame per chunk); `buffered` counts bytes received, not yet taken
        self.parts: list[bytes] = []
        self.on_body = self.parts.append
        self.buffered = 0
        self.parser = httptools.HttpResponseParser(self)
        self.response: UpstreamResponse | None = None
        self.head: asyncio.Future[None] | None = None
        self.head_only = False  # a HEAD request: the response has no body, whatever it says
        self.interim = False  # a 1xx response, skipped
        self.received = False  # any byte of the current response
        self.keep_alive = True
        self.closed = False
        self.reading_paused = False
        self.drain: asyncio.Future[None] | None = None
        self.idle_since = 0.0

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        self.received = True
        self.buffered += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._broken(UpstreamError("RemoteProtocolError", str(exc)))
            return
        if self.head_only:
            self.parts.clear()  # a HEAD response has no body, whatever follows its head
        if self.buffered > HIGH_WATER:
            self.pause_reading()
        response = self.response
        if response is not None and (not response._whole or self.reading_paused):
            response._wake()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        kind = "ReadError" if self.received else "RemoteProtocolError"
        error = UpstreamError(kind, "the connection was closed before the response ended")
        self._fail_pending(error)
        if self.drain is not None and not self.drain.done():
            self.drain.set_exception(UpstreamError("WriteError", "the connection was closed"))

    def pause_writing(self) -> None:
        self.drain = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)
        self.drain = None

    # --- httptools callbacks
    def on_header(self, name: bytes, value: bytes | None) -> None:
        if self.response is not None and not self.interim:
            self.response.headers.append((name.lower(), value or b""))

    def on_headers_complete(self) -> None:
        response = self.response
        if response is None:
            raise UpstreamError("RemoteProtocolError", "a response nobody asked for")
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.interim = True
            response.headers.clear()
            return
        response.status = status
        if self.head is not None and not self.head.done():
            self.head.set_result(None)
        if self.head_only:
            self.keep_alive = False
            response._finish()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
        if self.response is not None:
            self.response._finish()

    # --- used by the client and the response
    def usable(self, now: float) -> bool:
        return not self.closed and now - self.idle_since < self.pool.keepalive_s

    def pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def taken(self) -> None:
        """The response's consumer took what was buffered."""
        self.buffered = 0
        self.resume_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()

    async def wait(self, future: asyncio.Future[None]) -> None:
        """Wait for the upstream, at most the client's timeout (then the connection is dropped)."""
        timer = self.loop.call_later(self.pool.timeout_s, self._timed_out, future)
        try:
            await future
        finally:
            timer.cancel()

    def _timed_out(self, future: asyncio.Future[None]) -> None:
        error = UpstreamTimeout("the upstream did not answer in time")
        if not future.done():
            future.set_exception(error)
        self._broken(error)

    def _broken(self, error: UpstreamError) -> None:
        self.keep_alive = False
        self._fail_pending(error)
        self.close()

    def _fail_pending(self, error: UpstreamError) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        if self.response is not None:
            self.response._fail(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def start(self, response: UpstreamResponse, head_only: bool) -> asyncio.Future[None]:
        self.response = response
        self.head = self.loop.create_future()
        self.head_only = head_only
        self.received = False
        self.buffered = 0
        self.parts.clear()
        return self.head

    def finished(self, response: UpstreamResponse, reusable: bool) -> None:
        if response is not self.response:
            return
        self.response = None
        self.head = None
        self.pool.release(self, reusable and self.keep_alive and not self.closed)

    async def write_body(self, body: AsyncIterable[bytes]) -> None:
        assert self.transport is not None
        async for chunk in body:
            if chunk:
                self.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                if self.drain is not None:
                    await self.wait(self.drain)
            if self.closed:
                raise UpstreamError("WriteError", "the connection was closed")
        self.transport.write(b"0\r\n\r\n")


class UpstreamClient:
    """Keep-alive connections to one HTTP(S) origin; at most `max_connections` requests at a
    time (more wait for a free one)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 60.0,
        max_connections: int = 200,
        keepalive_s: float = 5.0,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if url.scheme == "https" else None
        )
        self.prefix = url.path.rstrip("/").encode()
        self.host_line = b"host: " + url.netloc.encode("idna") + b"\r\n"
        self.timeout_s = timeout_s
        self.keepalive_s = keepalive_s
        self.max_connections = max_connections
        self._idle: list[_Connection] = []
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    async def request(
        self, method: str, target: bytes, headers: Headers, body: Body = None
    ) -> UpstreamResponse:
        """Send one request (`target`: path and query below the base URL, already encoded) and
        return once the response's head is in. Raises `UpstreamError` / `UpstreamTimeout`."""
        if self._closed:
            raise UpstreamError("ClientClosed", "the upstream client is closed")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        await self._slots.acquire()
        try:
            head = self._head(method, target, headers, body)
            replayable = method in _IDEMPOTENT and not _is_stream(body)
            while True:
                conn, reused = await self._connection()
                try:
                    return await self._exchange(conn, method, head, body)
                except UpstreamError as exc:
                    if reused and replayable and not conn.received and not _is_timeout(exc):
                        continue  # the server closed the idle connection as we sent: again
                    raise  # (on a new connection a request is never sent twice)
        except BaseException:
            self._slots.release()
            raise

    async def _exchange(
        self, conn: _Connection, method: str, head: bytes, body: Body
    ) -> UpstreamResponse:
        response = UpstreamResponse(conn)
        head_ready = conn.start(response, head_only=method == "HEAD")
        assert conn.transport is not None
        try:
            if isinstance(body, bytes | bytearray):
                conn.transport.write(head + body)
            else:
                conn.transport.write(head)
                if body is not None:
                    await conn.write_body(body)
            await conn.wait(head_ready)
        except BaseException:
            conn.keep_alive = False
            conn.response = None
            conn.close()
            raise
        return response

    def _head(self, method: str, target: bytes, headers: Headers, body: Body) -> bytes:
        lines = [
            method.encode("ascii"),
            b" ",
            self.prefix,
            target,
            b" HTTP/1.1\r\n",
            self.host_line,
        ]
        for name, value in headers:
            lines += (name, b": ", value, b"\r\n")
        if isinstance(body, bytes | bytearray):
            lines.append(b"content-length: %d\r\n" % len(body))
        elif body is not None:
            lines.append(b"transfer-encoding: chunked\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    async def _connection(self) -> tuple[_Connection, bool]:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable(now):
                return conn, True
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self.ssl
                ),
                self.timeout_s,
            )
        except TimeoutError as exc:
            raise UpstreamTimeout("connecting to the upstream timed out") from exc
        except OSError as exc:
            raise UpstreamError("ConnectError", str(exc)) from exc
        return conn, False

    def release(self, conn: _Connection, reusable: bool) -> None:
        if reusable and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        if self._slots is not None:
            self._slots.release()

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _is_stream(body: Body) -> bool:
    return body is not None and not isinstance(body, bytes | bytearray)


def _is_timeout(exc: UpstreamError) -> bool:
    return isinstance(exc, UpstreamTimeout)
