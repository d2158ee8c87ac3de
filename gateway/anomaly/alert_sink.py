"""Where alerts go: an alerts JSONL file and the audit chain (control C06).

`AlertSink.emit` is O(1) per alert and never blocks: each alert is queued on the alerts file's
batch writer (one JSON object per line, keys in `Alert.to_dict` order, not hash-chained) and,
when an audit log is attached, appended to the chain as a `"kind": "alert"` event.

`observe_and_log` is the order the gateway should follow for each finished request: detect,
stamp the alert ids on the record, append the record, then its alerts — so in the chain every
alert line follows the request line that raised it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import replace
from types import TracebackType
from typing import Protocol

from gateway.anomaly.base import Alert
from gateway.audit.log import AuditLog
from gateway.audit.record import AuditRecord
from gateway.audit.writer import BatchWriter, Encoded

__all__ = ["AlertSink", "Observer", "observe_and_log", "read_alerts"]


class Observer(Protocol):
    """What watches the audit stream: an `AnomalyEngine` (or the lab's simulated timelines)."""

    def observe(self, record: AuditRecord) -> list[Alert]: ...


def _nothing() -> None:
    return None


def _encode(batch: list[Alert]) -> Encoded:
    lines = [alert.to_json().encode("utf-8", "backslashreplace") + b"\n" for alert in batch]
    return Encoded(b"".join(lines), _nothing)


class AlertSink:
    """Alerts to `path` (JSONL; None for none) and to `audit` (the chain; None for none)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        audit: AuditLog | None = None,
        *,
        batch_size: int = 256,
        flush_interval_s: float = 0.2,
    ) -> None:
        self.audit = audit
        self._writer: BatchWriter[Alert] | None = None
        if path is not None:
            self._writer = BatchWriter(
                path,
                _encode,
                batch_size=batch_size,
                flush_interval_s=flush_interval_s,
                name="alert-writer",
            )
        self.emitted = 0

    def emit(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            if self._writer is not None:
                self._writer.put(alert)
            if self.audit is not None:
                self.audit.append_event("alert", alert.to_dict(), ts=alert.ts)
            self.emitted += 1

    async def flush(self) -> None:
        """Flush the alerts file (the audit log is flushed by its owner)."""
        if self._writer is not None:
            await self._writer.flush()

    async def aclose(self) -> None:
        """Close the alerts file; the audit log is left open (its owner closes it)."""
        if self._writer is not None:
            await self._writer.aclose()

    async def __aenter__(self) -> AlertSink:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def observe_and_log(
    record: AuditRecord, log: AuditLog, engine: Observer, sink: AlertSink | None = None
) -> AuditRecord:
    """Run the detectors on a finished request, log it with its alert ids, emit its alerts.

    Returns the record as logged. With a sink whose `audit` is `log`, each alert also lands in
    the chain right after the request line.
    """
    alerts = engine.observe(record)
    if alerts:
        record = replace(record, alerts=record.alerts + tuple(alert.id for alert in alerts))
    log.append(record)
    if alerts and sink is not None:
        sink.emit(alerts)
    return record


def read_alerts(path: str | os.PathLike[str]) -> list[dict[str, object]]:
    """The alerts in an alerts file, in order (for reports and tests)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
