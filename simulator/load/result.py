"""What a load run produces: one result per configuration, and `load.json`
(docs/reference/results.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.load.matrix import OFF
from simulator.load.stats import Totals, allowed_added_p50, compared, ratio

LOAD_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ConfigResult:
    """One configuration of the matrix, measured."""

    name: str
    controls: dict[str, str]
    totals: Totals
    audit_records: int | None = None  # None: no audit log (C06 off)
    alerts: int | None = None
    alert_detectors: dict[str, int] = field(default_factory=dict)
    directory: str | None = None  # load/<config>/, relative to the run directory
    by_round: tuple[dict[str, Any], ...] = ()  # each measured slice, summarized, in round order

    def to_dict(self, baseline: ConfigResult | None = None) -> dict[str, Any]:
        t = self.totals
        vs_off = None
        if baseline is not None:
            b = baseline.totals
            names, added = allowed_added_p50(t.by_request, b.by_request)
            vs_off = {
                "rps_ratio": ratio(t.rps, b.rps),
                "added_p50_ms": compared(t.p50_ms, b.p50_ms),
                "added_p99_ms": compared(t.p99_ms, b.p99_ms),
                "allowed_names": names,
                "allowed_added_p50_ms": added,
            }
        return {
            "name": self.name,
            "controls": self.controls,
            "requests": t.requests,
            "failures": t.failures,
            "denied": t.denied,
            "served": t.served,
            "rps": t.rps,
            "served_rps": t.served_rps,
            "p50_ms": t.p50_ms,
            "p95_ms": t.p95_ms,
            "p99_ms": t.p99_ms,
            "window_s": t.window_s,
            "by_request": [r.to_dict() for r in t.by_request],
            "audit_records": self.audit_records,
            "alerts": self.alerts,
            "alert_detectors": self.alert_detectors,
            "vs_off": vs_off,
            "directory": self.directory,
            "rounds": len(self.by_round),
            "by_round": list(self.by_round),
        }


@dataclass
class LoadResult:
    """The whole run: its options, the scenarios' weights, each configuration measured."""

    started_at: str
    seconds: float
    users: int
    spawn_rate: float
    workers: int
    scenarios: list[dict[str, Any]]
    configs: list[ConfigResult] = field(default_factory=list)
    left_out: list[dict[str, str]] = field(default_factory=list)
    rate_limit: bool = False
    read_only: bool = False
    load_average: list[float] = field(default_factory=list)  # 1-min load before, after the run
    interrupted: bool = False
    pace: float = 0.0  # requests per second per user; 0: back to back
    rounds: int = 1  # interleaved rounds: each configuration ran seconds / rounds per round
    warmup_s: float = 0.0  # unmeasured load on the first configuration before the rounds
    order: list[list[str]] = field(default_factory=list)  # each round's configurations, in order
    startup_s: float | None = None  # Locust's start to the first slice (imports, logins)

    @property
    def baseline(self) -> ConfigResult | None:
        return next((c for c in self.configs if c.name == OFF), None)

    def to_dict(self) -> dict[str, Any]:
        baseline = self.baseline
        return {
            "schema_version": LOAD_SCHEMA_VERSION,
            "started_at": self.started_at,
            "seconds": self.seconds,
            "users": self.users,
            "spawn_rate": self.spawn_rate,
            "workers": self.workers,
            "pace": self.pace,
            "rounds": self.rounds,
            "warmup_s": self.warmup_s,
            "order": self.order,
            "startup_s": self.startup_s,
            "rate_limit": self.rate_limit,
            "read_only": self.read_only,
            "load_average": self.load_average,
            "interrupted": self.interrupted,
            "scenarios": self.scenarios,
            "left_out": self.left_out,
            "configs": [c.to_dict(baseline) for c in self.configs],
        }
