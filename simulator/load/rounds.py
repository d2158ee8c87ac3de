"""Interleaved rounds: the order in which the configurations of a load run get their slices.

Run one after the other, configurations meet a different HAPI (warming up, caches filling) and a
different machine (other load), and that drift is larger than what a control costs. Interleaved,
every configuration gets a slice of its time in every round, so drift falls on all of them alike:

    schedule(["off", "C05", "all"], 4)  ->  [off C05 all] [all C05 off] [C05 all off] [off all C05]

Rounds go in pairs: a round, then the same order reversed, so that over the pair every
configuration's mean place is the same (a drift that grows steadily over the run costs every
configuration alike) and each follows a different neighbour; each pair starts further on in the
list, so that no configuration always runs at the start or the end of a round. With an even
number of rounds the places balance exactly. Plain Python: no Locust import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from simulator.load.samples import Samples

DEFAULT_ROUNDS = 4  # when the matrix has more than one configuration (even: balanced places)
MIN_AUTO_SLICE_S = 2.0  # the default never makes slices shorter than this
MIN_SLICE_S = 0.5  # shorter slices are refused: a few requests per user, mostly ramp
MAX_ROUNDS = 100
WARMUP = 0  # the round number of the unmeasured warm-up slice


def default_rounds(configs: int, seconds: float) -> int:
    """Rounds when none are asked for: 1 for a single configuration; else DEFAULT_ROUNDS, fewer
    (an even number, or 1) if the slices would be shorter than MIN_AUTO_SLICE_S."""
    if configs <= 1:
        return 1
    rounds = min(DEFAULT_ROUNDS, math.floor(seconds / MIN_AUTO_SLICE_S))
    return rounds - rounds % 2 if rounds >= 2 else 1


def schedule(names: Sequence[str], rounds: int) -> list[list[str]]:
    """Every round's order: pair k (rounds 2k+1, 2k+2) is `names` rotated by k × len(names) /
    pairs places, then the same reversed."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    n, pairs = len(names), math.ceil(rounds / 2)
    orders: list[list[str]] = []
    for index in range(rounds):
        shift = ((index // 2) * n) // pairs
        order = [*names[shift:], *names[:shift]]
        orders.append(order[::-1] if index % 2 else order)
    return orders


@dataclass(frozen=True)
class SlicePlan:
    """One slice of the run: a configuration for `seconds`, in round `round` (WARMUP: not
    measured)."""

    config: str
    round: int
    seconds: float

    @property
    def measured(self) -> bool:
        return self.round != WARMUP


def slice_plan(
    names: Sequence[str], rounds: int, seconds: float, warmup_s: float = 0.0
) -> list[SlicePlan]:
    """The slices in the order run: the warm-up (on the first configuration, when `warmup_s` >
    0), then every round's configurations, `seconds / rounds` each."""
    slices: list[SlicePlan] = []
    if warmup_s > 0 and names:
        slices.append(SlicePlan(names[0], WARMUP, warmup_s))
    for number, order in enumerate(schedule(names, rounds), start=1):
        slices.extend(SlicePlan(name, number, seconds / rounds) for name in order)
    return slices


def accumulate(parts: Sequence[Samples]) -> Samples:
    """One configuration's slices together: every sample, and as measured time the sum of the
    slices' FHIR windows (the time between its slices, when other configurations ran, is not
    its own)."""
    total = Samples()
    measured = 0.0
    for part in parts:
        measured += part.window_s
        total.merge(part)
    total.measured_s = measured
    return total
