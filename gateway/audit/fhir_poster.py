"""FHIR `AuditEvent`s (IHE BALP) posted to the FHIR server in the background (policy
`audit.fhir_audit_events`, control C06).

`offer(record)` is the only call on the request path: O(1), never blocks, never raises. A task on
the event loop wakes every `flush_interval_s` (or as soon as `batch_size` records wait), maps the
records to AuditEvents (`to_audit_event`, on a worker thread) and posts them as one `batch` Bundle
to the server directly (not through the gateway: its own posts are not audited again). The queue
is bounded: beyond `max_pending` records waiting, new ones are dropped and counted (an audit
trail in the FHIR server must not cost the gateway its memory when the server is slow or down).
Failures — unreachable server, a refused Bundle, refused entries — are counted and logged (at
most once per `log_every_s`), never retried and never seen by a client: the hash-chained JSONL
log stays the audit trail of record. `aclose()` flushes what is queued (bounded by
`close_timeout_s`), so a graceful shutdown loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from typing import Any

import httpx

from gateway.audit.fhir import to_audit_event
from gateway.audit.record import AuditRecord

__all__ = ["AuditEventPoster"]

log = logging.getLogger("gateway.audit.fhir")
TENANT_TAG_SYSTEM = "https://fhirlab.dev/tenant"


class AuditEventPoster:
    def __init__(
        self,
        upstream: str,
        gateway_base: str,
        *,
        batch_size: int = 100,
        flush_interval_s: float = 1.0,
        max_pending: int = 10_000,
        timeout_s: float = 30.0,
        close_timeout_s: float = 30.0,
        log_every_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if batch_size < 1 or max_pending < 1:
            raise ValueError("batch_size and max_pending must be >= 1")
        self.url = upstream.rstrip("/")
        self.gateway_base = gateway_base
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_pending = max_pending
        self.close_timeout_s = close_timeout_s
        self.log_every_s = log_every_s
        self.client = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self._pending: deque[AuditRecord] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._logged_at = float("-inf")
        self.posted = 0  # AuditEvents the server stored
        self.failed = 0  # sent, not stored (server down, Bundle or entry refused)
        self.dropped = 0  # never sent: the queue was full, or the poster closed

    @property
    def pending(self) -> int:
        return len(self._pending)

    def offer(self, record: AuditRecord) -> None:
        """Queue one record (the request path: O(1), never blocks or raises)."""
        if self._closing or len(self._pending) >= self.max_pending:
            self.dropped += 1
            self._warn("AuditEvent queue full or closed", None)
            return
        self._pending.append(record)
        if self._task is None:
            try:
                self._task = asyncio.get_running_loop().create_task(self._run())
            except RuntimeError:
                return  # no event loop (tests, tools): `aclose()` posts what is queued
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            self._wake.clear()
            await self._drain()

    async def _drain(self) -> None:
        while self._pending:
            size = min(self.batch_size, len(self._pending))
            batch = [self._pending.popleft() for _ in range(size)]
            await self._post(batch)

    def _bundle(self, batch: list[AuditRecord]) -> bytes:
        entries = []
        for record in batch:
            event = to_audit_event(record, self.gateway_base)
            if record.tenant:  # like every tenant's data in the lab (C10)
                event["meta"] = {
                    **event.get("meta", {}),
                    "tag": [{"system": TENANT_TAG_SYSTEM, "code": record.tenant}],
                }
            entries.append({"resource": event, "request": {"method": "POST", "url": "AuditEvent"}})
        return json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}).encode()

    async def _post(self, batch: list[AuditRecord]) -> None:
        try:
            body = await asyncio.to_thread(self._bundle, batch)
            resp = await self.client.post(
                self.url,
                content=body,
                headers={
                    "Content-Type": "application/fhir+json",
                    "Accept": "application/fhir+json",
                },
            )
        except Exception as exc:  # a failure here must never reach a request
            self.failed += len(batch)
            self._warn(f"cannot post {len(batch)} AuditEvents", exc)
            return
        if resp.status_code >= 300:
            self.failed += len(batch)
            self._warn(
                f"the FHIR server refused {len(batch)} AuditEvents ({resp.status_code})", None
            )
            return
        stored = _stored(resp)
        self.posted += stored
        if stored < len(batch):
            self.failed += len(batch) - stored
            self._warn(f"the FHIR server refused {len(batch) - stored} AuditEvents", None)

    def _warn(self, message: str, exc: BaseException | None) -> None:
        now = time.monotonic()
        if now - self._logged_at < self.log_every_s:
            return
        self._logged_at = now
        log.warning(
            "%s%s (so far: posted %d, failed %d, dropped %d)",
            message,
            f": {exc!r}" if exc else "",
            self.posted,
            self.failed,
            self.dropped,
        )

    async def flush(self) -> None:
        """Post everything queued now (for tests and shutdown)."""
        await self._drain()

    async def aclose(self) -> None:
        """Post what is queued (within `close_timeout_s`), then stop; idempotent."""
        if self._closing and self._task is None and not self._pending:
            return
        self._closing = True
        self._wake.set()
        try:
            if self._task is not None:
                await asyncio.wait_for(asyncio.shield(self._task), self.close_timeout_s)
            await asyncio.wait_for(self._drain(), self.close_timeout_s)
        except TimeoutError:
            if self._task is not None:
                self._task.cancel()
            self.dropped += len(self._pending)
            self._pending.clear()
            self._warn("shutdown: AuditEvents still queued were dropped", None)
        finally:
            self._task = None
            await self.client.aclose()


def _stored(resp: httpx.Response) -> int:
    try:
        bundle: Any = resp.json()
    except ValueError:
        return 0
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if not isinstance(entries, list):
        return 0
    return sum(
        1
        for entry in entries
        if isinstance(entry, dict)
        and str((entry.get("response") or {}).get("status", "")).startswith(("200", "201"))
    )
