"""`volume`: more requests from one client in a sliding window than its policy expects."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.anomaly.base import Alert, AlertFactory, WindowedCount, client_key
from gateway.anomaly.config import require
from gateway.anomaly.windows import Cooldown, LruMap
from gateway.audit.record import AuditRecord

__all__ = ["VolumeConfig", "VolumeDetector"]


@dataclass(frozen=True, slots=True)
class VolumeConfig:
    """Alert when a client makes more than `max_requests` requests within `window_s`.

    `cooldown_s` (default: the window) is the least time between two alerts for one client.
    """

    window_s: float = 60.0
    max_requests: int = 600
    cooldown_s: float | None = None
    buckets: int = 12
    max_keys: int = 10_000

    def __post_init__(self) -> None:
        require(self.window_s > 0, "window_s", f"must be > 0, got {self.window_s}")
        require(self.max_requests >= 1, "max_requests", f"must be >= 1, got {self.max_requests}")
        require(
            self.cooldown_s is None or self.cooldown_s >= 0,
            "cooldown_s",
            f"must be >= 0, got {self.cooldown_s}",
        )
        require(1 <= self.buckets <= 1000, "buckets", f"must be 1..1000, got {self.buckets}")
        require(self.max_keys >= 1, "max_keys", f"must be >= 1, got {self.max_keys}")


class VolumeDetector:
    """Requests per client per sliding window above a threshold."""

    name = "volume"

    def __init__(self, config: VolumeConfig | None = None) -> None:
        self.config = config = config or VolumeConfig()
        self._state: LruMap[str, WindowedCount] = LruMap(config.max_keys)
        cooldown = config.window_s if config.cooldown_s is None else config.cooldown_s
        self._cooldown = Cooldown(cooldown, config.max_keys)
        self._alert = AlertFactory(self.name)
        self._new = lambda: WindowedCount(config.window_s, config.buckets)

    def observe(self, record: AuditRecord) -> list[Alert]:
        key = client_key(record)
        state = self._state.touch(key, self._new)
        count = state.count.add(record.ts)
        state.recent.append(record.request_id)
        config = self.config
        if count <= config.max_requests or not self._cooldown.ready(key, record.ts):
            return []
        message = (
            f"client {key} made {count} requests in {config.window_s:g} s "
            f"(threshold {config.max_requests})"
        )
        evidence = {
            "key": key,
            "count": count,
            "threshold": config.max_requests,
            "window_s": config.window_s,
            "request_ids": list(state.recent),
        }
        return [self._alert(record, "medium", message, evidence)]
