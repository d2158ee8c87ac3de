"""Anomaly detection on simulated time (the lab's clock header, `gateway/clock.py`; LAB ONLY).

A request stamped with a simulated instant is judged by detectors that see that instant as its
time. Stamped requests never share state with real-time ones: mixing instants days apart in one
sliding window would make both wrong (a window that moved on to the real "now" ignores an older
simulated stamp). Each token's stamped requests form a timeline of their own, with a fresh set of
detectors: a scenario run (a new token) starts afresh however often it replays the same simulated
night, instead of meeting the cool-downs and windows of the run before. Timelines are bounded
(least recently used first out).

Alerts keep the real time in `ts`, carry the simulated instant in `evidence.simulated_time` and
have ids `sim<n>.<detector>-<k>`, apart from the real-time alerts' ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from gateway.anomaly.base import Alert
from gateway.anomaly.engine import AnomalyEngine
from gateway.anomaly.windows import LruMap
from gateway.audit.record import AuditRecord

__all__ = ["SimulatedTimelines"]


class _Timeline:
    __slots__ = ("engine", "name")

    def __init__(self, name: str, engine: AnomalyEngine) -> None:
        self.name = name
        self.engine = engine


class SimulatedTimelines:
    """Detectors per token for records carrying `simulated_time`."""

    def __init__(self, new_engine: Callable[[], AnomalyEngine], max_timelines: int = 64) -> None:
        self._new_engine = new_engine
        self._timelines: LruMap[str, _Timeline] = LruMap(max_timelines)
        self._started = 0

    def __len__(self) -> int:
        return len(self._timelines)

    def _new(self) -> _Timeline:
        self._started += 1
        return _Timeline(f"sim{self._started}", self._new_engine())

    def observe(self, record: AuditRecord) -> list[Alert]:
        simulated = record.simulated_time
        if simulated is None:
            raise ValueError("a record without simulated_time belongs to the real-time engine")
        key = record.token_id or record.client_id or "anonymous"
        timeline = self._timelines.touch(key, self._new)
        alerts = timeline.engine.observe(replace(record, ts=simulated))
        if not alerts:
            return alerts
        instant = datetime.fromtimestamp(simulated, UTC).isoformat(timespec="seconds")
        return [
            replace(
                alert,
                id=f"{timeline.name}.{alert.id}",
                ts=record.ts,
                evidence={**alert.evidence, "simulated_time": instant},
            )
            for alert in alerts
        ]
