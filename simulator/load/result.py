"""What a load run produces: one result per configuration, and `load.json`
(docs/reference/results.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.load import cost
from simulator.load.matrix import AA, DIRECT, OFF
from simulator.load.rounds import REQUESTS, SLICES
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
    # each measured slice's times by request kind, in round order (the cost's bootstrap input)
    slices: tuple[cost.Slice, ...] = field(default=(), repr=False, compare=False)

    def cost_against(
        self,
        baseline: ConfigResult,
        floor: dict[str, cost.Cost] | None = None,
        interleaved: bool = False,
    ) -> list[dict[str, Any]]:
        """Per request kind: what this configuration adds to `baseline` (`off`, or `direct`),
        as intervals, and how a report reads it against the run's noise floor (`floor`, the A/A
        pair's costs, which are this configuration's own when it is the A/A twin). With the
        requests `interleaved` (every configuration got a share of the same offered load, drawn
        at random, in the same instants), the rounds are not drawn (`cost.cost`) and no
        throughput ratio is given."""
        found = []
        if self.name == AA and floor is not None and baseline.name == OFF:
            for measured in floor.values():
                reach = cost.floor_extent(measured.added_p50_ms)
                said = f"the run's noise floor: ±{reach:.2f} ms"
                found.append({**measured.to_dict(), "reading": said})
        else:
            costs = cost.costs_by_kind(self.slices, baseline.slices, draw_rounds=not interleaved)
            for kind, measured in costs.items():
                noise = (floor or {}).get(kind)
                said = cost.reading(measured.added_p50_ms, noise.added_p50_ms if noise else None)
                found.append({**measured.to_dict(), "reading": said})
        if interleaved:
            for item in found:
                item["rps_ratio"] = None
        return found

    def to_dict(
        self,
        baseline: ConfigResult | None = None,
        floor: dict[str, cost.Cost] | None = None,
        direct: ConfigResult | None = None,
        interleaved: bool = False,
    ) -> dict[str, Any]:
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
            "cost_vs_off": self.cost_against(baseline, floor, interleaved)
            if baseline is not None and baseline is not self and self.name != DIRECT
            else [],
            "cost_vs_direct": self.cost_against(direct, floor, interleaved)
            if direct is not None and direct is not self
            else [],
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
    order_seed: int | None = None  # the seed the rounds' orders were shuffled from
    interleave: str = SLICES  # a round's configurations: in turn (SLICES) or at once (REQUESTS)
    startup_s: float | None = None  # Locust's start to the first slice (imports, logins)
    enforce_at: str = "gateway"  # where C01-C05 were enforced (simulator/authserver/placement.py)

    @property
    def baseline(self) -> ConfigResult | None:
        return next((c for c in self.configs if c.name == OFF), None)

    @property
    def direct(self) -> ConfigResult | None:
        return next((c for c in self.configs if c.name == DIRECT), None)

    def noise_floor(self) -> dict[str, cost.Cost] | None:
        """Per request kind, `off-2` against `off`: the cost the run reports for no difference
        (None when the run has no such pair)."""
        baseline = self.baseline
        twin = next((c for c in self.configs if c.name == AA), None)
        if baseline is None or twin is None:
            return None
        return cost.costs_by_kind(
            twin.slices, baseline.slices, draw_rounds=self.interleave != REQUESTS
        )

    def to_dict(self) -> dict[str, Any]:
        baseline = self.baseline
        floor = self.noise_floor()
        # requests interleaved: every configuration got a random share of one offered load, so
        # its throughput is not its own and no throughput ratio is reported
        interleaved = self.interleave == REQUESTS
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
            "order_seed": self.order_seed,
            "interleave": self.interleave,
            "enforce_at": self.enforce_at,
            "startup_s": self.startup_s,
            "rate_limit": self.rate_limit,
            "read_only": self.read_only,
            "load_average": self.load_average,
            "interrupted": self.interrupted,
            "scenarios": self.scenarios,
            "left_out": self.left_out,
            "cost_method": {
                "baseline": OFF,
                "noise_floor": AA,
                "direct": DIRECT,
                "interval": f"{cost.CONFIDENCE:.0%}, bootstrap of the cells (one request name in "
                "one round) "
                + (
                    "drawing the requests within each cell"
                    if interleaved
                    else "drawing the rounds, then the requests within each cell"
                )
                + f", {cost.RESAMPLES} resamples, seed 0",
            },
            "noise_floor": {
                kind: {**c.to_dict(), **({"rps_ratio": None} if interleaved else {})}
                for kind, c in (floor or {}).items()
            },
            "configs": [c.to_dict(baseline, floor, self.direct, interleaved) for c in self.configs],
        }
