"""The upstream client's interface over an httpx transport: what the gateway uses when a
transport is handed to `create_app` (the unit tests' stand-in for HAPI's socket)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from gateway.upstream_client import Body, Headers, UpstreamError, UpstreamTimeout


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
        return b"".join([chunk async for chunk in self.chunks()])

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(type(exc).__name__, str(exc)) from exc
        finally:
            await self._response.aclose()

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxUpstreamClient:
    def __init__(self, base_url: str, transport: httpx.AsyncBaseTransport, timeout_s: float):
        self.base = base_url.rstrip("/")
        self.client = httpx.AsyncClient(transport=transport, timeout=timeout_s)

    async def request(
        self, method: str, target: bytes, headers: Headers, body: Body = None
    ) -> HttpxResponse:
        request = self.client.build_request(
            method, self.base + target.decode("latin-1"), headers=headers, content=body
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(type(exc).__name__, str(exc)) from exc
        return HttpxResponse(response)

    async def aclose(self) -> None:
        await self.client.aclose()
