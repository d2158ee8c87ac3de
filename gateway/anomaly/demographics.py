"""`wildcard_demographics`: trawling the Patient registry by demographics.

A `Patient` search is *demographic* when it filters on name, family, given, birthdate,
address*, phone, telecom, email, gender or an identifier without a full `system|value` pair —
and carries no exact key (`_id`, or `identifier=system|value`). It is *broad* when it cannot
single out a person:

- a value with wildcard characters (`*`, `%`, `?`), or the `:contains` modifier;
- a string value shorter than `min_value_length` (`name=a`, `family=`);
- fewer than two selective criteria (a name part or full birth date each count; an identifier,
  phone or email value is enough alone): `name=Smith`, `gender=female`, `birthdate=ge1950`.

A broad search alerts at once (`max_broad` per window, default 0): `high` without a patient in
context, `medium` with one. Plain demographic searches alert past `max_plain` per client per
window (`low`): a lookup now and then is normal, a stream of them is a registry scan.
Searches sent as a POST form body are not seen (the record carries the URL query only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from gateway.anomaly.base import Alert, AlertFactory, Severity, client_key, recent_ids
from gateway.anomaly.config import require
from gateway.anomaly.query import split_name, tolerant_params
from gateway.anomaly.windows import Cooldown, LruMap, SlidingCount
from gateway.audit.record import AuditRecord

__all__ = ["DemographicsConfig", "WildcardDemographicsDetector", "assess_patient_search"]

_STRINGS: Final = frozenset(
    {"name", "family", "given", "phonetic", "address", "address-city", "address-postalcode"}
    | {"phone", "telecom", "email", "identifier"}
)
_COARSE: Final = frozenset(
    {"gender", "birthdate", "address-state", "address-country", "address-use", "death-date"}
)
DEMOGRAPHIC: Final = _STRINGS | _COARSE
_NEAR_UNIQUE: Final = frozenset({"identifier", "phone", "telecom", "email"})
_WILDCARDS: Final = frozenset("*%?")
_RANGE_PREFIXES: Final = ("ge", "gt", "le", "lt", "sa", "eb", "ne", "ap")
_SEARCHES: Final = frozenset({"search-type", "search-system"})

Kind = Literal["broad", "plain"]


@dataclass(frozen=True, slots=True)
class DemographicsConfig:
    min_value_length: int = 3
    window_s: float = 600.0
    max_broad: int = 0
    max_plain: int = 10
    cooldown_s: float | None = None
    buckets: int = 10
    max_keys: int = 10_000

    def __post_init__(self) -> None:
        require(self.window_s > 0, "window_s", f"must be > 0, got {self.window_s}")
        for name in ("min_value_length", "max_broad", "max_plain"):
            value = getattr(self, name)
            require(value >= 0, name, f"must be >= 0, got {value}")
        require(self.max_keys >= 1, "max_keys", f"must be >= 1, got {self.max_keys}")
        require(1 <= self.buckets <= 1000, "buckets", f"must be 1..1000, got {self.buckets}")
        require(
            self.cooldown_s is None or self.cooldown_s >= 0,
            "cooldown_s",
            f"must be >= 0, got {self.cooldown_s}",
        )


def _selective(base: str, value: str, min_length: int) -> bool:
    if base == "birthdate":
        return len(value) >= 10 and not value.startswith(_RANGE_PREFIXES)
    return base in _STRINGS and len(value.strip()) >= min_length


def assess_patient_search(query: str, min_value_length: int = 3) -> tuple[Kind, list[str]] | None:
    """Classify the query of a Patient search: None when it is not demographic (or has an
    exact key), else ("broad" | "plain", the reasons it is broad). Never raises."""
    demographic: list[tuple[str, str, str]] = []
    for name, raw in tolerant_params(query):
        base, modifier = split_name(name)
        if base == "_id":
            return None
        if base == "identifier":
            system, bar, code = raw.partition("|")
            if bar and system.strip() and code.strip():
                return None
        if base in DEMOGRAPHIC:
            demographic.append((base, modifier, raw))
    if not demographic:
        return None
    reasons: list[str] = []
    selective: list[str] = []  # one entry per parameter whose every alternative is selective
    for base, modifier, raw in demographic:
        strong = True
        for value in raw.split(","):
            if _WILDCARDS.intersection(value):
                reasons.append(f"wildcard in {base}")
            elif modifier == "contains":
                reasons.append(f"{base}:contains")
            elif base in _STRINGS and len(value.strip()) < min_value_length:
                reasons.append(f"short {base} value ({len(value.strip())} characters)")
            strong = strong and _selective(base, value, min_value_length)
        if strong:
            selective.append(base)
    if not reasons and not _NEAR_UNIQUE.intersection(selective) and len(selective) < 2:
        used = ", ".join(sorted({base for base, _, _ in demographic}))
        reasons.append(f"fewer than two selective criteria ({used})")
    return ("broad" if reasons else "plain"), reasons[:10]


class _ClientState:
    __slots__ = ("broad", "plain", "recent")

    def __init__(self, config: DemographicsConfig) -> None:
        self.broad = SlidingCount(config.window_s, config.buckets)
        self.plain = SlidingCount(config.window_s, config.buckets)
        self.recent = recent_ids()


class WildcardDemographicsDetector:
    """Broad or repeated demographic searches on Patient, per client."""

    name = "wildcard_demographics"

    def __init__(self, config: DemographicsConfig | None = None) -> None:
        self.config = config = config or DemographicsConfig()
        self._state: LruMap[str, _ClientState] = LruMap(config.max_keys)
        cooldown = config.window_s if config.cooldown_s is None else config.cooldown_s
        self._cooldown = Cooldown(cooldown, config.max_keys)
        self._alert = AlertFactory(self.name)
        self._new = lambda: _ClientState(config)

    def observe(self, record: AuditRecord) -> list[Alert]:
        if record.resource_type != "Patient" or record.interaction not in _SEARCHES:
            return []
        config = self.config
        assessed = assess_patient_search(record.query, config.min_value_length)
        if assessed is None:
            return []
        kind, reasons = assessed
        key = client_key(record)
        state = self._state.touch(key, self._new)
        state.recent.append(record.request_id)
        counter, limit = (
            (state.broad, config.max_broad) if kind == "broad" else (state.plain, config.max_plain)
        )
        count = counter.add(record.ts)
        if count <= limit or not self._cooldown.ready((key, kind), record.ts):
            return []
        severity: Severity = (
            "low" if kind == "plain" else "medium" if record.patient_context else "high"
        )
        context = f"patient {record.patient_context}" if record.patient_context else "no patient"
        message = (
            f"client {key}: {count} {kind} demographic Patient searches in {config.window_s:g} s "
            f"({context} in context): {'; '.join(reasons) or 'repeated demographic lookups'}"
        )
        evidence = {
            "key": key,
            "kind": kind,
            "count": count,
            "threshold": limit,
            "window_s": config.window_s,
            "reasons": reasons,
            "query": record.query[:512],
            "patient_context": record.patient_context,
            "request_ids": list(state.recent),
        }
        return [self._alert(record, severity, message, evidence)]
