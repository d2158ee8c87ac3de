"""`AuditLog`: the gateway's append-only, hash-chained audit trail (control C06).

Every request yields exactly one `"kind": "request"` line (`append`); alerts and other events
share the same chain as `"kind": "<kind>"` lines holding their payload under `"event"`
(`append_event`). The line format and hashing are in `gateway.audit.chain`.

`append` only queues (O(1), never blocks the event loop); sealing — seq, prev, hash — and
writing happen on the writer thread, in queue order, so seq is contiguous under any
concurrency. Opening an existing file continues its chain. One `AuditLog` per file: several
processes (uvicorn workers) need one file each, e.g. `audit-<pid>.jsonl`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from gateway.audit.chain import read_head, seal
from gateway.audit.record import AuditRecord
from gateway.audit.writer import BatchWriter, Encoded

__all__ = ["AuditLog"]

_KIND: Final = re.compile(r"[a-z][a-z0-9_\-]{0,31}")


@dataclass(frozen=True, slots=True)
class _Event:
    kind: str
    ts: float
    payload: dict[str, Any]


class AuditLog:
    """An append-only JSONL audit log, hash-chained, written in batches off the event loop.

    `key` switches the chain from SHA-256 to HMAC-SHA-256 under that key (then only holders of
    the key can verify or forge). `fsync` forces each batch to stable storage.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        batch_size: int = 256,
        flush_interval_s: float = 0.2,
        fsync: bool = False,
        key: bytes | None = None,
    ) -> None:
        self.path = Path(path)
        self._key = key
        self._seq, self._head = read_head(self.path)
        self._writer: BatchWriter[AuditRecord | _Event] = BatchWriter(
            self.path,
            self._encode,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            fsync=fsync,
            name="audit-log-writer",
        )

    @property
    def next_seq(self) -> int:
        """The seq the next written entry will get (entries on disk so far)."""
        return self._seq

    @property
    def head(self) -> str:
        """The hash of the last entry on disk; record it elsewhere to detect a cut tail."""
        return self._head

    @property
    def last_error(self) -> OSError | None:
        """The last write failure, or None once a write succeeds again (for health checks)."""
        return self._writer.last_error

    def append(self, record: AuditRecord) -> None:
        """Queue one request record (O(1), non-blocking; raises `WriterClosedError` once
        closed). The record must not be changed afterwards."""
        self._writer.put(record)

    def append_event(
        self, kind: str, payload: Mapping[str, Any], *, ts: float | None = None
    ) -> None:
        """Queue a non-request entry, e.g. `append_event("alert", alert.to_dict())`.

        `kind` is a short lower-case name other than `request`; the payload is copied (one
        level) and written under `"event"`, with `ts` (default: now).
        """
        if kind == "request" or not _KIND.fullmatch(kind):
            raise ValueError(
                f"event kind must match [a-z][a-z0-9_-]{{0,31}} and not be 'request'; got {kind!r}"
            )
        self._writer.put(_Event(kind, time.time() if ts is None else ts, dict(payload)))

    async def flush(self) -> None:
        """Return once everything appended before the call is on disk."""
        await self._writer.flush()

    async def aclose(self) -> None:
        """Write everything appended, then close (idempotent). Nothing appended is lost."""
        await self._writer.aclose()

    def close(self) -> None:
        """Blocking `aclose()`, for code without an event loop."""
        self._writer.close()

    async def __aenter__(self) -> AuditLog:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- runs on the writer thread ---------------------------------------------------------

    def _encode(self, batch: list[AuditRecord | _Event]) -> Encoded:
        seq, head, key = self._seq, self._head, self._key
        lines = []
        for item in batch:
            if isinstance(item, AuditRecord):
                entry = item.to_dict()
                entry["kind"] = "request"
            else:
                entry = {"kind": item.kind, "ts": item.ts, "event": item.payload}
            line, head = seal(entry, seq, head, key)
            lines.append(line)
            seq += 1

        def commit() -> None:
            self._seq, self._head = seq, head

        return Encoded(b"".join(lines), commit)
