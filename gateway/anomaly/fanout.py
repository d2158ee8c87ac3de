"""`patient_fanout`: one token (or client) reaching many distinct patients — exfiltration.

A patient-context AI client should touch one patient per launch; a token whose requests reach
dozens of distinct patients within the window is the classic signature of a stolen or
over-scoped credential being used to harvest records. Counted from `AuditRecord.patients`
(the patients whose data a request actually touched), per token and per client. Clients approved
to read a population (`population_clients`: the gateway passes its bulk-export allowlist) are
not counted: reaching many patients is what they are approved for.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Literal

from gateway.anomaly.base import Alert, AlertFactory, client_key, recent_ids
from gateway.anomaly.config import require
from gateway.anomaly.windows import Cooldown, LruMap
from gateway.audit.record import AuditRecord

__all__ = ["FanoutConfig", "PatientFanoutDetector"]

Level = Literal["token", "client"]


@dataclass(frozen=True, slots=True)
class FanoutConfig:
    """Alert when more than `max_patients_per_token` distinct patients are touched by one
    token, or more than `max_patients_per_client` by one client, within `window_s`."""

    window_s: float = 3600.0
    max_patients_per_token: int = 25
    max_patients_per_client: int = 200
    cooldown_s: float | None = None
    max_keys: int = 10_000
    population_clients: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        require(self.window_s > 0, "window_s", f"must be > 0, got {self.window_s}")
        for name in ("max_patients_per_token", "max_patients_per_client", "max_keys"):
            value = getattr(self, name)
            require(value >= 1, name, f"must be >= 1, got {value}")
        require(
            self.cooldown_s is None or self.cooldown_s >= 0,
            "cooldown_s",
            f"must be >= 0, got {self.cooldown_s}",
        )


class _Seen:
    """Distinct patients by last-seen time, oldest first, capped at threshold + 1."""

    __slots__ = ("patients", "recent")

    def __init__(self) -> None:
        self.patients: OrderedDict[str, float] = OrderedDict()
        self.recent: deque[str] = recent_ids()

    def add(self, patients: tuple[str, ...], ts: float, horizon: float, cap: int) -> bool:
        seen = self.patients
        new = False
        for patient in patients:
            if patient in seen:
                seen.move_to_end(patient)
            else:
                new = True
                if len(seen) >= cap:
                    seen.popitem(last=False)
            seen[patient] = ts
        while seen:
            oldest = next(iter(seen.values()))
            if oldest >= horizon:
                break
            seen.popitem(last=False)
        return new


class PatientFanoutDetector:
    """Distinct patients touched per token and per client, over a sliding window."""

    name = "patient_fanout"

    def __init__(self, config: FanoutConfig | None = None) -> None:
        self.config = config = config or FanoutConfig()
        self._state: LruMap[tuple[Level, str], _Seen] = LruMap(config.max_keys)
        cooldown = config.window_s if config.cooldown_s is None else config.cooldown_s
        self._cooldown = Cooldown(cooldown, config.max_keys)
        self._alert = AlertFactory(self.name)

    def observe(self, record: AuditRecord) -> list[Alert]:
        config = self.config
        if not record.patients or record.client_id in config.population_clients:
            return []
        alerts = []
        if record.token_id:
            alert = self._check(record, ("token", record.token_id), config.max_patients_per_token)
            if alert:
                alerts.append(alert)
        alert = self._check(record, ("client", client_key(record)), config.max_patients_per_client)
        if alert:
            alerts.append(alert)
        return alerts

    def _check(self, record: AuditRecord, key: tuple[Level, str], limit: int) -> Alert | None:
        seen = self._state.touch(key, _Seen)
        horizon = record.ts - self.config.window_s
        if seen.add(record.patients, record.ts, horizon, limit + 1):
            seen.recent.append(record.request_id)
        distinct = len(seen.patients)
        if distinct <= limit or not self._cooldown.ready(key, record.ts):
            return None
        level, who = key
        window = self.config.window_s
        message = (
            f"{level} {who} touched at least {distinct} distinct patients in {window:g} s "
            f"(threshold {limit})"
        )
        evidence = {
            "level": level,
            "key": who,
            "distinct_patients": distinct,
            "threshold": limit,
            "window_s": window,
            "patients": list(seen.patients)[-20:],
            "request_ids": list(seen.recent),
        }
        return self._alert(record, "high", message, evidence)
