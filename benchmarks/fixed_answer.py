"""The server's floor: an ASGI app that answers every request with the same stored body, run by
the same server and options as the gateway (uvicorn, uvloop, httptools).

    .venv/bin/python -m uvicorn --app-dir benchmarks fixed_answer:app --port 18999

`benchmarks/gateway_cost.py --floor` drives it beside the gateways: what it spends per request
is what the server, the event loop and the kernel take on this machine before the gateway does
anything (no upstream, no checks), a floor under any figure of the gateway's own. The body is a
Patient of about the size HAPI answers for a read, compressed once at start when asked for gzip
as the load generator does.
"""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Message = MutableMapping[str, Any]

_PATIENT = {
    "resourceType": "Patient",
    "id": "fixed-answer",
    "meta": {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00.000+00:00"},
    "identifier": [{"system": "urn:fhirlab:mrn", "value": "MRN-0000000"}],
    "name": [{"family": "Floor", "given": ["Fixed", "Answer"]}],
    "gender": "unknown",
    "birthDate": "1970-01-01",
    "address": [{"line": ["1 Loopback Way"], "city": "Localhost", "country": "US"}],
}
BODY = orjson.dumps(_PATIENT)
GZIPPED = gzip.compress(BODY, compresslevel=6)
_JSON = (b"content-type", b"application/fhir+json;charset=utf-8")


def _wants_gzip(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"accept-encoding" and b"gzip" in value for name, value in headers)


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":  # lifespan: nothing to set up
        message = await receive()
        while message["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body, headers = BODY, [_JSON]
    if _wants_gzip(scope["headers"]):
        body = GZIPPED
        headers.append((b"content-encoding", b"gzip"))
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
