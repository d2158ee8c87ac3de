"""AuditEventPoster: batching, the bounded queue and failure counting (the FHIR server's side is
covered against real HAPI in tests/integration/test_gateway.py)."""

from __future__ import annotations

import asyncio
import json

import httpx

from gateway.audit.fhir_poster import AuditEventPoster
from tests.unit.gateway.anomaly.helpers import rec


class Server:
    """Answers batch Bundles like a FHIR server would, or fails as told."""

    def __init__(self, fail: bool = False) -> None:
        self.bundles: list[dict[str, object]] = []
        self.fail = fail

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.fail:
            raise httpx.ConnectError("connection refused")
        bundle = json.loads(request.content)
        self.bundles.append(bundle)
        entries = [{"response": {"status": "201 Created"}} for _ in bundle["entry"]]
        return httpx.Response(200, json={"resourceType": "Bundle", "entry": entries})


def poster(server: Server, **options: object) -> AuditEventPoster:
    return AuditEventPoster(
        "http://hapi/fhir",
        "http://gw/fhir",
        transport=httpx.MockTransport(server),
        **options,  # type: ignore[arg-type]
    )


def test_records_are_posted_in_batches_and_flushed_on_close() -> None:
    server = Server()

    async def run() -> AuditEventPoster:
        p = poster(server, batch_size=10, flush_interval_s=60)
        for n in range(25):
            p.offer(rec(n, tenant="tenant-a"))
        await p.aclose()
        return p

    p = asyncio.run(run())
    assert [len(b["entry"]) for b in server.bundles] == [10, 10, 5]  # type: ignore[arg-type]
    assert (p.posted, p.failed, p.dropped, p.pending) == (25, 0, 0, 0)
    first = server.bundles[0]["entry"][0]  # type: ignore[index]
    assert first["request"] == {"method": "POST", "url": "AuditEvent"}
    assert first["resource"]["resourceType"] == "AuditEvent"
    assert {"system": "https://fhirlab.dev/tenant", "code": "tenant-a"} in first["resource"][
        "meta"
    ]["tag"]


def test_a_full_queue_drops_and_counts_instead_of_growing() -> None:
    server = Server()

    async def run() -> AuditEventPoster:
        p = poster(server, batch_size=1000, max_pending=5, flush_interval_s=60)
        for n in range(8):
            p.offer(rec(n))
        assert p.pending == 5
        await p.aclose()
        p.offer(rec(99))  # after close: dropped, not raised
        return p

    p = asyncio.run(run())
    assert (p.posted, p.dropped) == (5, 4)


def test_an_unreachable_server_is_counted_never_raised() -> None:
    async def run() -> AuditEventPoster:
        p = poster(Server(fail=True), batch_size=2, flush_interval_s=0.01)
        for n in range(4):
            p.offer(rec(n))
        await asyncio.sleep(0.2)
        await p.aclose()
        return p

    p = asyncio.run(run())
    assert (p.posted, p.failed, p.pending) == (0, 4, 0)
