"""`off_hours`: a client busy outside business hours (a stolen credential used at night).

Business hours are a time zone, weekdays and a daily `start`-`end` span (an overnight span such
as `22:00`-`06:00` is allowed); default Monday-Friday 07:00-19:00 America/New_York. A few
off-hours requests are normal (a nurse on a night shift); more than `max_requests` from one
client within `window_s` alerts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.anomaly.base import Alert, AlertFactory, WindowedCount, client_key
from gateway.anomaly.config import ConfigError, require
from gateway.anomaly.windows import Cooldown, LruMap
from gateway.audit.record import AuditRecord

__all__ = ["OffHoursConfig", "OffHoursDetector"]

DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM: Final = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True, slots=True)
class OffHoursConfig:
    timezone: str = "America/New_York"
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    start: str = "07:00"
    end: str = "19:00"
    window_s: float = 900.0
    max_requests: int = 10
    cooldown_s: float | None = None
    buckets: int = 10
    max_keys: int = 10_000

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ConfigError("timezone", f"unknown time zone {self.timezone!r}") from None
        for name in ("start", "end"):
            value = getattr(self, name)
            require(
                isinstance(value, str) and bool(_HHMM.fullmatch(value)),
                name,
                f"must be HH:MM (00:00-24:00), got {value!r}",
            )
        require(self.start != self.end, "end", "must differ from start")
        require(
            all(isinstance(d, int) and 0 <= d <= 6 for d in self.weekdays),
            "weekdays",
            f"must be days 0-6 (Monday = 0), got {self.weekdays!r}",
        )
        require(self.window_s > 0, "window_s", f"must be > 0, got {self.window_s}")
        require(self.max_requests >= 0, "max_requests", f"must be >= 0, got {self.max_requests}")
        require(1 <= self.buckets <= 1000, "buckets", f"must be 1..1000, got {self.buckets}")
        require(self.max_keys >= 1, "max_keys", f"must be >= 1, got {self.max_keys}")
        require(
            self.cooldown_s is None or self.cooldown_s >= 0,
            "cooldown_s",
            f"must be >= 0, got {self.cooldown_s}",
        )

    @staticmethod
    def convert_weekdays(value: Any, key: str) -> tuple[int, ...]:
        """A list of day names (`mon`..`sun`, any case, 3+ letters) or numbers (Monday = 0)."""
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(key, f"must be a list of days such as [mon, tue], got {value!r}")
        days: set[int] = set()
        for item in value:
            if isinstance(item, str) and item[:3].lower() in DAYS and len(item) >= 3:
                days.add(DAYS.index(item[:3].lower()))
            elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 6:
                days.add(item)
            else:
                raise ConfigError(key, f"{item!r} is not a day (mon..sun or 0..6)")
        return tuple(sorted(days))

    @property
    def description(self) -> str:
        days = ",".join(DAYS[d] for d in self.weekdays) or "no days"
        return f"{days} {self.start}-{self.end} {self.timezone}"


class OffHoursDetector:
    """Off-hours requests per client per sliding window above a small threshold."""

    name = "off_hours"

    def __init__(self, config: OffHoursConfig | None = None) -> None:
        self.config = config = config or OffHoursConfig()
        self._zone = ZoneInfo(config.timezone)
        self._days = frozenset(config.weekdays)
        self._start, self._end = _minutes(config.start), _minutes(config.end)
        self._state: LruMap[str, WindowedCount] = LruMap(config.max_keys)
        cooldown = config.window_s if config.cooldown_s is None else config.cooldown_s
        self._cooldown = Cooldown(cooldown, config.max_keys)
        self._alert = AlertFactory(self.name)
        self._new = lambda: WindowedCount(config.window_s, config.buckets)
        self._cached: tuple[int, bool] = (-1, False)  # (epoch minute, business?)

    def is_business(self, ts: float) -> bool:
        """Is `ts` (epoch seconds) within business hours? (cached per minute: zone offsets are
        whole minutes)."""
        minute = int(ts // 60)
        if self._cached[0] == minute:
            return self._cached[1]
        local = datetime.fromtimestamp(minute * 60, self._zone)
        now = local.hour * 60 + local.minute
        if self._start < self._end:
            in_span = self._start <= now < self._end
        else:
            in_span = now >= self._start or now < self._end
        business = in_span and local.weekday() in self._days
        self._cached = (minute, business)
        return business

    def observe(self, record: AuditRecord) -> list[Alert]:
        if self.is_business(record.ts):
            return []
        key = client_key(record)
        state = self._state.touch(key, self._new)
        count = state.count.add(record.ts)
        state.recent.append(record.request_id)
        config = self.config
        if count <= config.max_requests or not self._cooldown.ready(key, record.ts):
            return []
        local = datetime.fromtimestamp(record.ts, self._zone)
        message = (
            f"client {key} made {count} requests outside business hours "
            f"({config.description}) in {config.window_s:g} s, last at {local:%a %H:%M}"
        )
        evidence = {
            "key": key,
            "count": count,
            "threshold": config.max_requests,
            "window_s": config.window_s,
            "local_time": local.isoformat(timespec="seconds"),
            "business_hours": config.description,
            "request_ids": list(state.recent),
        }
        return [self._alert(record, "medium", message, evidence)]
