"""What a configuration costs against a baseline, as intervals, with the run's noise floor.

A load run measures each configuration in slices, one per round (`simulator/load/rounds.py`).
The cost of a configuration is read against a baseline (`off`, or direct HAPI) per kind of
request (a read by id, a search, a write, a refusal: their costs differ by far more than any
control's), and within a kind request by request (an appointment search and a 20-result
observation search are both searches): the added median latency and the added p99, averaged
over the cells (one request in one round) weighted by their requests, and the throughput ratio.
Each has a 95% interval from a bootstrap:

1. draw the rounds with replacement (the same rounds for both configurations: a round's slices
   ran side by side, so the drift of the machine is shared), then
2. within each cell, draw its requests with replacement.

With the requests interleaved (every round's configurations at once, each request to one drawn
at random) the two sides of a cell ran in the same instants: the rounds hold no drift of their
own and only the requests are drawn. The noise floor of a run is the same comparison between two
identical configurations (an A/A pair: `off` against a second `off` gateway): the cost a run
would report for no difference at all. A cost whose interval covers 0 is "not measurable at this
run's noise floor"; one that excludes 0 is measured, whatever its sign (a control that makes
requests cheaper must show it in every round, not in one lucky slice). Plain Python and numpy:
no Locust import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from simulator.load.samples import REFUSED
from simulator.steps.kinds import KINDS

RESAMPLES = 1000
CONFIDENCE = 0.95
MIN_SAMPLES = 20  # fewer requests of a kind in a configuration: no estimate


@dataclass(frozen=True)
class Slice:
    """One measured slice of one configuration: response times (ms) by request kind, and how
    long it ran. `strata`, when given, splits each kind by request (kind -> request -> times):
    the cost is then read request by request (see `cost`)."""

    times: Mapping[str, Sequence[float]]
    seconds: float
    strata: Mapping[str, Mapping[str, Sequence[float]]] = field(default_factory=dict)

    def cells(self, kind: str) -> dict[str, np.ndarray]:
        """The kind's response times by request (one cell for all when not split)."""
        split = self.strata.get(kind)
        if split:
            return {name: np.asarray(times, dtype=float) for name, times in split.items()}
        return {"": np.asarray(self.times.get(kind, ()), dtype=float)}


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


QUANTILES = (0.5, 0.99)  # the added median and the added p99


def _cell_draws(
    rng: np.random.Generator, mine: np.ndarray, theirs: np.ndarray, resamples: int
) -> tuple[np.ndarray, np.ndarray]:
    """One cell's differences of QUANTILES (shape (2,)), and `resamples` bootstrap draws of them
    (shape (2, resamples): the requests on each side drawn with replacement)."""

    def quantiles(values: np.ndarray, axis: int | None = None) -> np.ndarray:
        return np.quantile(values, QUANTILES, axis=axis, method="inverted_cdf")

    observed = quantiles(mine) - quantiles(theirs)
    a = mine[rng.integers(0, mine.size, (resamples, mine.size))]
    z = theirs[rng.integers(0, theirs.size, (resamples, theirs.size))]
    return observed, quantiles(a, axis=1) - quantiles(z, axis=1)


def cost(
    config: Sequence[Slice],
    baseline: Sequence[Slice],
    kind: str,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    draw_rounds: bool = True,
) -> Cost | None:
    """`config` against `baseline` for `kind`; their slices are paired by round (index), so
    both must have the same number. None when either has fewer than MIN_SAMPLES of the kind.

    The added median (and p99) is read cell by cell, a cell being one request of the kind in
    one round (the two configurations' requests of that cell ran side by side): the difference
    of the cell's medians, averaged over the cells, each weighted by its requests. So neither
    the drift between rounds nor a different mix of requests (more of a slow search in one
    configuration, by chance) reads as a cost. The interval: the rounds drawn with replacement
    (`draw_rounds`: slices that ran one after the other, so each round's drift is a sample of
    the machine's), then the requests within each cell. Without `draw_rounds` (the requests
    interleaved: every cell's two sides ran in the same instants, so a round holds no drift of
    its own) only the requests are drawn."""
    if len(config) != len(baseline) or not config:
        raise ValueError("config and baseline need the same rounds (one slice each per round)")
    rounds = len(config)
    mine = [s.cells(kind) for s in config]
    theirs = [s.cells(kind) for s in baseline]
    count_mine = np.array([sum(a.size for a in cells.values()) for cells in mine], dtype=float)
    count_theirs = np.array([sum(a.size for a in c.values()) for c in theirs], dtype=float)
    if count_mine.sum() < MIN_SAMPLES or count_theirs.sum() < MIN_SAMPLES:
        return None
    rng = np.random.default_rng(seed)
    # per round: the weighted sums of its cells' differences (observed and drawn) and weights
    weight = np.zeros(rounds)
    observed = np.zeros((len(QUANTILES), rounds))
    drawn = np.zeros((len(QUANTILES), rounds, resamples))
    for r in range(rounds):
        for name, a in mine[r].items():
            z = theirs[r].get(name)
            if z is None or a.size < 2 or z.size < 2:
                continue  # a request only one side sent in this round: nothing to pair
            w = float(a.size + z.size)
            weight[r] += w
            seen, draws = _cell_draws(rng, a, z, resamples)
            observed[:, r] += w * seen
            drawn[:, r, :] += w * draws
    if not weight.sum():
        return None
    if draw_rounds:
        picks = rng.integers(0, rounds, (resamples, rounds))  # each draw's rounds
    else:
        picks = np.tile(np.arange(rounds), (resamples, 1))
    picked_weight = weight[picks].sum(axis=1)
    columns = np.arange(resamples)[:, None]
    intervals = []
    for index in range(len(QUANTILES)):
        estimate = float(observed[index].sum() / weight.sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            draws = drawn[index][picks, columns].sum(axis=1) / picked_weight
        intervals.append(_interval(estimate, draws, confidence))
    seconds_mine = np.array([s.seconds for s in config])
    seconds_theirs = np.array([s.seconds for s in baseline])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = (count_mine[picks].sum(axis=1) / seconds_mine[picks].sum(axis=1)) / (
            count_theirs[picks].sum(axis=1) / seconds_theirs[picks].sum(axis=1)
        )
    rate = (count_mine.sum() / seconds_mine.sum()) / (count_theirs.sum() / seconds_theirs.sum())
    return Cost(
        kind=kind,
        samples=int(count_mine.sum()),
        baseline_samples=int(count_theirs.sum()),
        added_p50_ms=intervals[0],
        added_p99_ms=intervals[1],
        rps_ratio=_interval(rate, ratios, confidence),
    )


def _interval(estimate: float, draws: np.ndarray, confidence: float) -> Interval:
    draws = draws[np.isfinite(draws)]
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
    config: Sequence[Slice],
    baseline: Sequence[Slice],
    confidence: float = CONFIDENCE,
    draw_rounds: bool = True,
) -> dict[str, Cost]:
    """`cost` for every kind either holds, leaving out those without an estimate; {} when the
    two did not run the same rounds (an interrupted run)."""
    if not config or len(config) != len(baseline):
        return {}
    found = {}
    for kind in kinds([*config, *baseline]):
        measured = cost(config, baseline, kind, confidence=confidence, draw_rounds=draw_rounds)
        if measured is not None:
            found[kind] = measured
    return found
