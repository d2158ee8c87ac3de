"""Two results documents (results.json) side by side: what changed from A to B.

Pure: nothing here talks to a server. A *regression* is B worse than A on security:

- a control that held for a scenario in A is violated in B;
- an expectation met in A fails in B, unless it expected a violation (a misconfigured vendor
  fixed in B no longer breaks what its scenario says it breaks: that is the fix working);
- a scenario reaches more patients, or its exposure window grows, unless B improved one of its
  verdicts and worsened none (a fixed client's token is no longer refused, so the app reaches
  its own patient again: that is access restored, not leaked).

Cost changes are reported with both intervals and are a change only when the intervals do not
overlap; they never count as a regression (a gate on speed belongs to `fhirlab load` runs on a
quiet machine).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

HELD, VIOLATED = "held", "violated"


@dataclass(frozen=True)
class VerdictChange:
    scenario: str
    control: str
    a: str
    b: str

    @property
    def regression(self) -> bool:
        return self.a == HELD and self.b == VIOLATED

    @property
    def improvement(self) -> bool:
        return self.a == VIOLATED and self.b == HELD


@dataclass(frozen=True)
class ExpectationChange:
    scenario: str
    control: str
    expected: str
    a_ok: bool | None  # None: not expected on that side
    b_ok: bool | None

    @property
    def regression(self) -> bool:
        return bool(self.a_ok) and self.b_ok is False and self.expected != VIOLATED


@dataclass(frozen=True)
class ReachDelta:
    """What one scenario reached, and how long its credentials stayed usable, on each side."""

    scenario: str
    patients_a: int
    patients_b: int
    resources_a: int
    resources_b: int
    exposure_a_s: float | None  # None: until revoked (no expiry)
    exposure_b_s: float | None

    @property
    def patients_delta(self) -> int:
        return self.patients_b - self.patients_a

    @property
    def resources_delta(self) -> int:
        return self.resources_b - self.resources_a

    @property
    def exposure_grew(self) -> bool:
        a, b = self.exposure_a_s, self.exposure_b_s
        if a is None:
            return False
        return b is None or b > a + 1.0  # a second of slack: the replay's own timing

    @property
    def exposure_shrank(self) -> bool:
        a, b = self.exposure_a_s, self.exposure_b_s
        if b is None:
            return False
        return a is None or a > b + 1.0


@dataclass(frozen=True)
class CostDelta:
    """One configuration's added latency over `off` for one kind of request, on each side."""

    config: str
    kind: str
    a: Mapping[str, float] | None  # {estimate, low, high} in ms, None: not measured
    b: Mapping[str, float] | None

    @property
    def delta_ms(self) -> float | None:
        if self.a is None or self.b is None:
            return None
        return round(self.b["estimate"] - self.a["estimate"], 3)

    @property
    def measurable(self) -> bool:
        """The two intervals do not overlap: the change is larger than either run's noise."""
        if self.a is None or self.b is None:
            return False
        return self.b["low"] > self.a["high"] or self.b["high"] < self.a["low"]


@dataclass
class Comparison:
    label_a: str
    label_b: str
    verdicts: list[VerdictChange] = field(default_factory=list)
    expectations: list[ExpectationChange] = field(default_factory=list)
    reach: list[ReachDelta] = field(default_factory=list)
    costs: list[CostDelta] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    noise_floor: dict[str, Any] = field(default_factory=dict)  # per side: kind -> interval
    # B against A measured in one interleaved load run (two policies): per request kind, B's
    # added latency over A with its interval and reading, and that run's A/A noise floor
    measured: dict[str, Any] | None = None

    def fixed(self, scenario: str) -> bool:
        """B improved a verdict of `scenario` and worsened none."""
        mine = [v for v in self.verdicts if v.scenario == scenario]
        return any(v.improvement for v in mine) and not any(v.regression for v in mine)

    @property
    def regressions(self) -> list[str]:
        found = [
            f"{v.scenario}: {v.control} held in {self.label_a}, violated in {self.label_b}"
            for v in self.verdicts
            if v.regression
        ]
        found += [
            f"{e.scenario}: expectation {e.control} {e.expected} met in {self.label_a}, "
            f"failed in {self.label_b}"
            for e in self.expectations
            if e.regression
        ]
        for r in self.reach:
            if self.fixed(r.scenario):
                continue
            if r.patients_delta > 0:
                found.append(
                    f"{r.scenario}: reached {r.patients_b} patients in {self.label_b}, "
                    f"{r.patients_a} in {self.label_a}"
                )
            if r.exposure_grew:
                found.append(
                    f"{r.scenario}: exposure window {_window(r.exposure_b_s)} in "
                    f"{self.label_b}, {_window(r.exposure_a_s)} in {self.label_a}"
                )
        return found

    @property
    def changed(self) -> bool:
        return bool(
            self.verdicts
            or self.expectations
            or self.only_a
            or self.only_b
            or any(r.patients_delta or r.resources_delta for r in self.reach)
            or any(r.exposure_grew or r.exposure_shrank for r in self.reach)
            or any(c.measurable for c in self.costs)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.label_a,
            "b": self.label_b,
            "changed": self.changed,
            "regressions": self.regressions,
            "verdicts": [
                {**asdict(v), "regression": v.regression, "improvement": v.improvement}
                for v in self.verdicts
            ],
            "expectations": [{**asdict(e), "regression": e.regression} for e in self.expectations],
            "reach": [
                {
                    **asdict(r),
                    "patients_delta": r.patients_delta,
                    "resources_delta": r.resources_delta,
                    "exposure_grew": r.exposure_grew,
                }
                for r in self.reach
            ],
            "costs": [
                {**asdict(c), "delta_ms": c.delta_ms, "measurable": c.measurable}
                for c in self.costs
            ],
            "only_a": self.only_a,
            "only_b": self.only_b,
            "noise_floor": self.noise_floor,
            "measured": self.measured,
        }


def _window(seconds: float | None) -> str:
    return "until revoked" if seconds is None else f"{seconds:.0f} s"


def _runs(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {r["scenario"]: r for r in (document.get("replay") or {}).get("runs", [])}


def _expectations(run: Mapping[str, Any]) -> dict[tuple[str, str], bool]:
    return {(e["control"], e["expected"]): bool(e["ok"]) for e in run.get("expectations", [])}


def _reach(name: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> ReachDelta:
    blast_a, blast_b = a.get("blast_radius", {}), b.get("blast_radius", {})
    return ReachDelta(
        name,
        int(blast_a.get("patients", 0)),
        int(blast_b.get("patients", 0)),
        int(blast_a.get("resources", 0)),
        int(blast_b.get("resources", 0)),
        (a.get("exposure_window") or {}).get("seconds"),
        (b.get("exposure_window") or {}).get("seconds"),
    )


def _costs(load: Mapping[str, Any] | None) -> dict[tuple[str, str], Mapping[str, float]]:
    found: dict[tuple[str, str], Mapping[str, float]] = {}
    for config in (load or {}).get("configs", []):
        for c in config.get("cost_vs_off") or []:
            found[(config["name"], c["kind"])] = c["added_p50_ms"]
    return found


def compare_documents(
    a: Mapping[str, Any], b: Mapping[str, Any], label_a: str = "A", label_b: str = "B"
) -> Comparison:
    """What changed from results document `a` to results document `b`."""
    result = Comparison(label_a, label_b)
    runs_a, runs_b = _runs(a), _runs(b)
    result.only_a = sorted(set(runs_a) - set(runs_b))
    result.only_b = sorted(set(runs_b) - set(runs_a))
    for name in sorted(set(runs_a) & set(runs_b)):
        ra, rb = runs_a[name], runs_b[name]
        va, vb = ra.get("verdicts", {}), rb.get("verdicts", {})
        for control in sorted(set(va) | set(vb)):
            if va.get(control) != vb.get(control):
                result.verdicts.append(
                    VerdictChange(name, control, va.get(control, "-"), vb.get(control, "-"))
                )
        ea, eb = _expectations(ra), _expectations(rb)
        for key in sorted(set(ea) | set(eb)):
            if ea.get(key) != eb.get(key):
                result.expectations.append(ExpectationChange(name, *key, ea.get(key), eb.get(key)))
        result.reach.append(_reach(name, ra, rb))
    costs_a, costs_b = _costs(a.get("load")), _costs(b.get("load"))
    for key in sorted(set(costs_a) | set(costs_b)):
        result.costs.append(CostDelta(*key, costs_a.get(key), costs_b.get(key)))
    result.noise_floor = {
        side: {
            kind: c["added_p50_ms"]
            for kind, c in (doc.get("load") or {}).get("noise_floor", {}).items()
        }
        for side, doc in ((label_a, a), (label_b, b))
        if doc.get("load")
    }
    return result
