"""Statistics from raw samples: counts, throughput and percentiles with sub-millisecond precision.

Percentiles are nearest-rank over every response of the group (ok, denied and failed alike: a
refusal's latency is part of what a control costs), in milliseconds rounded to 3 decimals.
Throughput is requests per second over the FHIR window: from the first FHIR request's start to
the last FHIR response's end, so the users' logins before their first request do not dilute it.
Token acquisitions (`TOKEN`) are listed per scenario but are not FHIR requests: they count in no
total and have no throughput.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from simulator.load.samples import TOKEN, Samples, Series

DECIMALS = 3


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (`p` in 0..100) of `values`, None when there are none."""
    if not values:
        return None
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0..100")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return round(ordered[rank - 1], DECIMALS)


def rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, DECIMALS) if seconds > 0 else None


@dataclass(frozen=True)
class RequestStats:
    """One request name (`<scenario>: <step>`, or the scenario for TOKEN) under one method."""

    name: str
    method: str
    requests: int
    failures: int
    denied: int
    rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    denied_by: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Totals:
    """The FHIR requests of one configuration, all names together."""

    requests: int
    failures: int
    denied: int
    rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    window_s: float
    by_request: tuple[RequestStats, ...]

    @property
    def served(self) -> int:
        """Requests neither denied nor failed: the work that reached the FHIR server."""
        return self.requests - self.denied - self.failures

    @property
    def served_rps(self) -> float | None:
        return rate(self.served, self.window_s)


def request_stats(method: str, name: str, series: Series, window_s: float) -> RequestStats:
    times = series.times()
    return RequestStats(
        name=name,
        method=method,
        requests=series.count,
        failures=len(series.failed),
        denied=len(series.denied),
        rps=None if method == TOKEN else rate(series.count, window_s),
        p50_ms=percentile(times, 50),
        p95_ms=percentile(times, 95),
        p99_ms=percentile(times, 99),
        denied_by=dict(sorted(series.controls.items())),
    )


def summarize(samples: Samples) -> Totals:
    window = samples.window_s
    rows = [
        request_stats(method, name, series, window)
        for (method, name), series in sorted(
            samples.series.items(), key=lambda kv: (kv[0][0] == TOKEN, kv[0][1], kv[0][0])
        )
    ]
    fhir = Series()
    for (method, _), series in samples.series.items():
        if method != TOKEN:
            fhir.extend(series)
    times = fhir.times()
    return Totals(
        requests=fhir.count,
        failures=len(fhir.failed),
        denied=len(fhir.denied),
        rps=rate(fhir.count, window),
        p50_ms=percentile(times, 50),
        p95_ms=percentile(times, 95),
        p99_ms=percentile(times, 99),
        window_s=round(window, DECIMALS),
        by_request=tuple(rows),
    )


def compared(value: float | None, baseline: float | None) -> float | None:
    """`value - baseline`, rounded; None if either is missing."""
    if value is None or baseline is None:
        return None
    return round(value - baseline, DECIMALS)


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return round(value / baseline, DECIMALS)


def allowed_added_p50(
    rows: Sequence[RequestStats], baseline: Sequence[RequestStats]
) -> tuple[int, float | None]:
    """The added p50 on the same work: over the FHIR request names that were served in both
    runs without a denial or a failure, the median of (p50 - baseline p50); and how many names.
    A configuration that refuses requests does less work upstream, so its overall p50 may drop;
    this compares only what both let through."""
    base = {(r.method, r.name): r for r in baseline if _served(r)}
    deltas = sorted(
        r.p50_ms - base[(r.method, r.name)].p50_ms  # type: ignore[operator]
        for r in rows
        if _served(r) and (r.method, r.name) in base
    )
    if not deltas:
        return 0, None
    middle = len(deltas) // 2
    median = deltas[middle] if len(deltas) % 2 else (deltas[middle - 1] + deltas[middle]) / 2
    return len(deltas), round(median, DECIMALS)


def _served(row: RequestStats) -> bool:
    return (
        row.method != TOKEN
        and row.requests > 0
        and row.denied == 0
        and row.failures == 0
        and row.p50_ms is not None
    )
