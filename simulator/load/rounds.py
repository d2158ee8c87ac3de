"""Interleaved rounds: the order in which the configurations of a load run get their slices.

Run one after the other, configurations meet a different HAPI (warming up, caches filling) and a
different machine (other load), and that drift is larger than what a control costs. Interleaved,
every configuration gets a slice of its time in every round, so drift falls on all of them alike:

    schedule(["off", "C05", "all"], 4)  ->  [off C05 all] [all C05 off] [C05 all off] [off all C05]

Rounds go in pairs: a round, then the same order reversed, so that over the pair every
configuration's mean place is the same (a drift that grows steadily over the run costs every
configuration alike) and each follows a different neighbour; each pair starts further on in the
list, so that no configuration always runs at the start or the end of a round. With an even
number of rounds the places balance exactly. A load run shuffles the order from a seed it
records (`balanced_schedule`): when the rounds are a multiple of the configurations, every
configuration takes every place equally often (a Latin square). Plain Python: no Locust import.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from simulator.load.samples import Samples

DEFAULT_ROUNDS = 4  # when the matrix has more than one configuration (even: balanced places)
MIN_AUTO_SLICE_S = 2.0  # the default never makes slices shorter than this
MIN_SLICE_S = 0.5  # shorter slices are refused: a few requests per user, mostly ramp
MAX_ROUNDS = 100
WARMUP = 0  # the round number of the unmeasured warm-up slice
# how a round's configurations share it (`fhirlab load --interleave`)
SLICES = "slices"  # one after the other, each alone: what each serves at saturation
REQUESTS = "requests"  # all at once, each request to one drawn at random: latency, drift shared


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


def balanced_schedule(names: Sequence[str], rounds: int, seed: int) -> list[list[str]]:
    """Every round's order, shuffled from `seed`: when `rounds` is a multiple of the number of
    configurations, rows of a Latin square (each configuration in each place equally often),
    in shuffled order; otherwise `schedule`'s reversed pairs (each configuration's mean place
    the same, with an even number of rounds) from a shuffled order."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    rng = random.Random(seed)
    base = list(names)
    rng.shuffle(base)
    n = len(base)
    if n < 2 or rounds % n:
        return schedule(base, rounds)
    square = [base[i:] + base[:i] for i in range(n)]
    orders: list[list[str]] = []
    for _ in range(rounds // n):
        block = square[:]
        rng.shuffle(block)
        orders.extend(block)
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
    names: Sequence[str],
    rounds: int,
    seconds: float,
    warmup_s: float = 0.0,
    seed: int | None = None,
) -> list[SlicePlan]:
    """The slices in the order run: the warm-up (on the first configuration, when `warmup_s` >
    0), then every round's configurations, `seconds / rounds` each; the rounds' orders from
    `balanced_schedule(seed)`, or `schedule` without a seed."""
    slices: list[SlicePlan] = []
    if warmup_s > 0 and names:
        slices.append(SlicePlan(names[0], WARMUP, warmup_s))
    orders = schedule(names, rounds) if seed is None else balanced_schedule(names, rounds, seed)
    for number, order in enumerate(orders, start=1):
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
