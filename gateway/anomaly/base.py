"""Alerts and the detector interface shared by every anomaly detector (control C06).

A detector is a pure state machine over the audit stream: `observe(record)` returns the alerts
that record raises (usually none), does no I/O, costs O(1) amortised and keeps bounded state.
Each alert is raised at most once per key per cool-down, so a sustained attack is one alert per
period, not one per request.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from gateway.anomaly.windows import SlidingCount
from gateway.audit.record import AuditRecord

__all__ = ["Alert", "AlertFactory", "Detector", "Severity", "client_key", "recent_ids"]

Severity = Literal["low", "medium", "high"]
EVIDENCE_IDS: Final = 20  # request ids kept as evidence per alert


@dataclass(frozen=True, slots=True)
class Alert:
    """One anomaly, with the evidence that raised it.

    `id` is `<detector>-<n>` (n counts that detector's alerts from 1), so the same audit stream
    yields the same ids. `evidence` holds counts, the window and threshold, and a bounded list
    of the `request_ids` involved.
    """

    id: str
    ts: float
    detector: str
    severity: Severity
    client_id: str | None
    token_id: str | None
    tenant: str | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "detector": self.detector,
            "severity": self.severity,
            "client_id": self.client_id,
            "token_id": self.token_id,
            "tenant": self.tenant,
            "message": self.message,
            "evidence": self.evidence,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, default=str)


class Detector(Protocol):
    """What `AnomalyEngine` runs: a named, pure, bounded state machine."""

    @property
    def name(self) -> str: ...

    def observe(self, record: AuditRecord) -> list[Alert]: ...


class AlertFactory:
    """Numbers one detector's alerts and fills in who raised them from the record."""

    __slots__ = ("_count", "detector")

    def __init__(self, detector: str) -> None:
        self.detector = detector
        self._count = 0

    def __call__(
        self, record: AuditRecord, severity: Severity, message: str, evidence: dict[str, Any]
    ) -> Alert:
        self._count += 1
        return Alert(
            id=f"{self.detector}-{self._count}",
            ts=record.ts,
            detector=self.detector,
            severity=severity,
            client_id=record.client_id,
            token_id=record.token_id,
            tenant=record.tenant,
            message=message,
            evidence=evidence,
        )


def client_key(record: AuditRecord) -> str:
    """Who made the request, for per-client state: the client id, else the token, else
    `anonymous` (unauthenticated requests count together)."""
    if record.client_id:
        return record.client_id
    if record.token_id:
        return "token:" + record.token_id
    return "anonymous"


def recent_ids() -> deque[str]:
    """A bounded buffer of the latest request ids, for evidence."""
    return deque(maxlen=EVIDENCE_IDS)


class WindowedCount:
    """Per-key state of a windowed detector: a sliding count and the latest request ids."""

    __slots__ = ("count", "recent")

    def __init__(self, window_s: float, buckets: int) -> None:
        self.count = SlidingCount(window_s, buckets)
        self.recent: deque[str] = recent_ids()
