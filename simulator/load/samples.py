"""Raw response times under load, kept exactly (Locust's own statistics round them).

Every request event adds one sample: its method, name, outcome, response time in milliseconds
(a float from `perf_counter`) and when it started; served requests are also kept by kind (read,
search, write, ...: `simulator/steps/kinds.py`) and refusals as `refused`, the units a control's
cost is read in (`simulator/load/cost.py`). A worker drains its samples into each report
to the master; the master merges them; the Locust process writes them as JSON for the command
that summarizes them (`simulator.load.stats`). Plain Python: no Locust import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TOKEN = "TOKEN"  # the request type of token acquisitions (one per virtual user)
REFUSED = "refused"  # the kind under which refusals are kept
SAMPLES_VERSION = 2  # 2: `strata` (kind -> request -> times) instead of `kinds`


@dataclass
class Series:
    """One request name's samples: response times (ms) per outcome, refusals per control."""

    ok: list[float] = field(default_factory=list)
    denied: list[float] = field(default_factory=list)
    failed: list[float] = field(default_factory=list)
    controls: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str, ms: float, control: str | None = None) -> None:
        getattr(self, outcome).append(float(ms))
        if outcome == "denied":
            key = control or "-"
            self.controls[key] = self.controls.get(key, 0) + 1

    def extend(self, other: Series) -> None:
        self.ok.extend(other.ok)
        self.denied.extend(other.denied)
        self.failed.extend(other.failed)
        for key, n in other.controls.items():
            self.controls[key] = self.controls.get(key, 0) + n

    @property
    def count(self) -> int:
        return len(self.ok) + len(self.denied) + len(self.failed)

    def times(self) -> list[float]:
        return [*self.ok, *self.denied, *self.failed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "denied": self.denied,
            "failed": self.failed,
            "controls": self.controls,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Series:
        return cls(
            [float(x) for x in data.get("ok", ())],
            [float(x) for x in data.get("denied", ())],
            [float(x) for x in data.get("failed", ())],
            {str(k): int(v) for k, v in (data.get("controls") or {}).items()},
        )


@dataclass
class Samples:
    """All samples of one run, keyed by (method, name); the FHIR requests' time window."""

    series: dict[tuple[str, str], Series] = field(default_factory=dict)
    first_start: float | None = None  # earliest FHIR request start (epoch seconds)
    last_end: float | None = None  # latest FHIR response end
    measured_s: float | None = None  # set: the measured time (slices of interleaved rounds)
    # response times (ms) of served requests by kind, and of refusals as REFUSED, each kind's
    # by request ("METHOD name"): one kind holds requests of different costs (an appointment
    # search, a 20-result observation search), compared request by request
    strata: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def kinds(self) -> dict[str, list[float]]:
        """Response times by kind, every request of the kind together."""
        return {
            kind: [t for times in names.values() for t in times]
            for kind, names in self.strata.items()
        }

    def add(
        self,
        method: str,
        name: str,
        outcome: str,
        ms: float,
        started: float | None = None,
        control: str | None = None,
        kind: str | None = None,
    ) -> None:
        self.series.setdefault((method, name), Series()).add(outcome, ms, control)
        if method == TOKEN:
            return
        if started is not None:
            self._window(started, started + ms / 1000.0)
        if outcome == "denied":
            kind = REFUSED
        elif outcome != "ok" or not kind:
            return
        self.strata.setdefault(kind, {}).setdefault(f"{method} {name}", []).append(float(ms))

    def _window(self, start: float, end: float) -> None:
        self.first_start = start if self.first_start is None else min(self.first_start, start)
        self.last_end = end if self.last_end is None else max(self.last_end, end)

    def merge(self, other: Samples) -> None:
        for key, series in other.series.items():
            self.series.setdefault(key, Series()).extend(series)
        for kind, names in other.strata.items():
            mine = self.strata.setdefault(kind, {})
            for name, times in names.items():
                mine.setdefault(name, []).extend(times)
        if other.first_start is not None and other.last_end is not None:
            self._window(other.first_start, other.last_end)

    def drain(self) -> Samples:
        """Everything gathered so far, leaving this one empty (a worker's report)."""
        taken = Samples(self.series, self.first_start, self.last_end, strata=self.strata)
        self.series, self.first_start, self.last_end, self.strata = {}, None, None, {}
        return taken

    @property
    def window_s(self) -> float:
        """The measured time: `measured_s` when set (the sum of the slices' windows), else
        from the first FHIR request's start to the last FHIR response's end."""
        if self.measured_s is not None:
            return self.measured_s
        if self.first_start is None or self.last_end is None:
            return 0.0
        return max(0.0, self.last_end - self.first_start)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SAMPLES_VERSION,
            "first_start": self.first_start,
            "last_end": self.last_end,
            **({"measured_s": self.measured_s} if self.measured_s is not None else {}),
            "series": [
                {"method": m, "name": n, **s.to_dict()} for (m, n), s in self.series.items()
            ],
            "strata": self.strata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Samples:
        series = {
            (str(item["method"]), str(item["name"])): Series.from_dict(item)
            for item in data.get("series") or ()
        }
        measured = data.get("measured_s")
        return cls(
            series,
            data.get("first_start"),
            data.get("last_end"),
            None if measured is None else float(measured),
            {
                str(kind): {str(name): [float(x) for x in times] for name, times in names.items()}
                for kind, names in (data.get("strata") or {}).items()
            }
            # version 1 kept each kind's times together: one request for all
            or {str(k): {"": [float(x) for x in v]} for k, v in (data.get("kinds") or {}).items()},
        )
