"""What a configuration costs against a baseline, as intervals, with the run's noise floor.

A load run measures each configuration in slices, one per interleaved round
(`simulator/load/rounds.py`). The cost of a configuration is read against a baseline (`off`, or
direct HAPI) per kind of request (a read by id, a search, a write, a refusal: their costs
differ by far more than any control's): the added median latency, the added p99, and the
throughput ratio, each a point estimate with a 95% interval from a two-stage bootstrap:

1. draw the rounds with replacement (the same rounds for both configurations: a round's slices
   ran side by side, so the drift of the machine is shared), then
2. within each drawn slice, draw its requests with replacement.

So an interval holds both the sampling noise of the requests and the drift between rounds. The
noise floor of a run is the same comparison between two identical configurations (an A/A pair:
`off` against a second `off` gateway): the cost a run would report for no difference at all. A
cost whose interval covers 0 is "not measurable at this run's noise floor"; one that excludes 0
is measured, whatever its sign (a control that makes requests cheaper must show it in every
round, not in one lucky slice). Plain Python and numpy: no Locust import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.load.samples import REFUSED
from simulator.steps.kinds import KINDS

RESAMPLES = 1000
CONFIDENCE = 0.95
MIN_SAMPLES = 20  # fewer requests of a kind in a configuration: no estimate


@dataclass(frozen=True)
class Slice:
    """One measured slice of one configuration: response times (ms) by request kind, and how
    long it ran."""

    times: Mapping[str, Sequence[float]]
    seconds: float


@dataclass(frozen=True)
class Interval:
    """A point estimate and its 95% interval."""

    estimate: float
    low: float
    high: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def to_dict(self) -> dict[str, float]:
        return {
            "estimate": round(self.estimate, 3),
            "low": round(self.low, 3),
            "high": round(self.high, 3),
        }


@dataclass(frozen=True)
class Cost:
    """One configuration against a baseline, for one kind of request."""

    kind: str
    samples: int  # requests of this kind in the configuration (all its slices)
    baseline_samples: int
    added_p50_ms: Interval
    added_p99_ms: Interval
    rps_ratio: Interval

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "samples": self.samples,
            "baseline_samples": self.baseline_samples,
            "added_p50_ms": self.added_p50_ms.to_dict(),
            "added_p99_ms": self.added_p99_ms.to_dict(),
            "rps_ratio": self.rps_ratio.to_dict(),
        }


def _quantile(values: np.ndarray, q: float) -> float:
    # nearest rank, as simulator/load/stats.py reports percentiles
    return float(np.quantile(values, q, method="inverted_cdf"))


def _arrays(slices: Sequence[Slice], kind: str) -> list[np.ndarray]:
    return [np.asarray(s.times.get(kind, ()), dtype=float) for s in slices]


def _pooled(arrays: Sequence[np.ndarray]) -> np.ndarray:
    filled = [a for a in arrays if a.size]
    return np.concatenate(filled) if filled else np.empty(0)


def cost(
    config: Sequence[Slice],
    baseline: Sequence[Slice],
    kind: str,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Cost | None:
    """`config` against `baseline` for `kind`; their slices are paired by round (index), so
    both must have the same number. None when either has fewer than MIN_SAMPLES of the kind."""
    if len(config) != len(baseline) or not config:
        raise ValueError("config and baseline need the same rounds (one slice each per round)")
    mine, theirs = _arrays(config, kind), _arrays(baseline, kind)
    all_mine, all_theirs = _pooled(mine), _pooled(theirs)
    if all_mine.size < MIN_SAMPLES or all_theirs.size < MIN_SAMPLES:
        return None
    seconds_mine = np.array([s.seconds for s in config])
    seconds_theirs = np.array([s.seconds for s in baseline])
    rng = np.random.default_rng(seed)
    rounds = len(config)
    p50 = np.empty(resamples)
    p99 = np.empty(resamples)
    ratio = np.empty(resamples)
    for b in range(resamples):
        drawn = rng.integers(0, rounds, rounds)
        a = _pooled([_resample(rng, mine[r]) for r in drawn])
        z = _pooled([_resample(rng, theirs[r]) for r in drawn])
        if not a.size or not z.size:  # drew only rounds without this kind: draw again
            p50[b] = p99[b] = ratio[b] = np.nan
            continue
        p50[b] = _quantile(a, 0.5) - _quantile(z, 0.5)
        p99[b] = _quantile(a, 0.99) - _quantile(z, 0.99)
        rate_a = a.size / seconds_mine[drawn].sum()
        rate_z = z.size / seconds_theirs[drawn].sum()
        ratio[b] = rate_a / rate_z
    rate = (all_mine.size / seconds_mine.sum()) / (all_theirs.size / seconds_theirs.sum())
    return Cost(
        kind=kind,
        samples=int(all_mine.size),
        baseline_samples=int(all_theirs.size),
        added_p50_ms=_interval(
            _quantile(all_mine, 0.5) - _quantile(all_theirs, 0.5), p50, confidence
        ),
        added_p99_ms=_interval(
            _quantile(all_mine, 0.99) - _quantile(all_theirs, 0.99), p99, confidence
        ),
        rps_ratio=_interval(rate, ratio, confidence),
    )


def _resample(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    if not values.size:
        return values
    return values[rng.integers(0, values.size, values.size)]


def _interval(estimate: float, draws: np.ndarray, confidence: float) -> Interval:
    draws = draws[~np.isnan(draws)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail]) if draws.size else (np.nan, np.nan)
    return Interval(estimate, float(min(low, estimate)), float(max(high, estimate)))


def floor_extent(floor: Interval) -> float:
    """How far from 0 the A/A pair reached: the largest difference this run shows between two
    identical configurations (its interval's farther end)."""
    return max(abs(floor.low), abs(floor.high))


def reading(added: Interval, floor: Interval | None) -> str:
    """How a report states an added latency. Measured only when its interval excludes 0 and
    its estimate lies beyond the run's noise floor (how far the A/A pair reached, when the run
    has one: a short run's A/A pair can itself exclude 0, and then nothing smaller counts);
    otherwise not measurable at that floor."""
    noise = floor_extent(floor) if floor is not None else added.half_width
    if not added.covers(0.0) and (floor is None or abs(added.estimate) > noise):
        return f"{added.estimate:+.2f} ms (95% interval {added.low:+.2f} to {added.high:+.2f})"
    return f"no cost measurable at this run's noise floor (±{noise:.2f} ms)"


def kinds(slices: Sequence[Slice]) -> list[str]:
    """The request kinds any slice holds, in a stable order (the kinds of requests, then
    refusals, then any other name)."""
    found = {kind for s in slices for kind, values in s.times.items() if len(values)}
    order = (*KINDS, REFUSED)
    return [k for k in order if k in found] + sorted(found - set(order))


def costs_by_kind(
    config: Sequence[Slice], baseline: Sequence[Slice], confidence: float = CONFIDENCE
) -> dict[str, Cost]:
    """`cost` for every kind either holds, leaving out those without an estimate; {} when the
    two did not run the same rounds (an interrupted run)."""
    if not config or len(config) != len(baseline):
        return {}
    found = {}
    for kind in kinds([*config, *baseline]):
        measured = cost(config, baseline, kind, confidence=confidence)
        if measured is not None:
            found[kind] = measured
    return found
