"""Costs as intervals: two identical configurations read as no cost; an injected delay is found
with about its size; the interval says which."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.load.cost import MIN_SAMPLES, Interval, Slice, cost, kinds, reading

ROUNDS = 6


def run(seed: int, delay_ms: float = 0.0, per_slice: int = 400, drift: float = 0.3) -> list[Slice]:
    """One configuration's slices: reads (~2 ms) and searches (~8 ms), log-normal with a tail,
    every round a little slower or faster (the machine's drift, the same for every config)."""
    rng = np.random.default_rng(seed)
    slices = []
    for r in range(ROUNDS):
        shift = drift * np.sin(r)  # shared by all configurations in round r
        reads = rng.lognormal(np.log(2.0), 0.35, per_slice) + shift + delay_ms
        searches = rng.lognormal(np.log(8.0), 0.25, per_slice // 2) + shift + delay_ms
        slices.append(Slice({"read": reads.tolist(), "search": searches.tolist()}, 10.0))
    return slices


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_an_a_a_pair_has_an_interval_containing_zero(seed: int) -> None:
    for kind in ("read", "search"):
        found = cost(run(seed), run(seed + 100), kind, resamples=400, seed=seed)
        assert found is not None
        assert found.added_p50_ms.covers(0.0), (kind, found.added_p50_ms)
        assert found.rps_ratio.covers(1.0), (kind, found.rps_ratio)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_injected_2_ms_delay_is_found_with_about_its_size(seed: int) -> None:
    found = cost(run(seed, delay_ms=2.0), run(seed + 100), "read", resamples=400, seed=seed)
    assert found is not None
    p50 = found.added_p50_ms
    assert not p50.covers(0.0)
    assert 1.6 < p50.estimate < 2.4 and p50.covers(2.0), p50
    assert found.added_p99_ms.low > 0


def test_the_throughput_ratio_follows_the_requests_served() -> None:
    fast, slow = run(1, per_slice=400), run(2, per_slice=200)
    found = cost(slow, fast, "read", resamples=300)
    assert found is not None and found.rps_ratio.estimate == pytest.approx(0.5)
    assert found.rps_ratio.high < 1.0


def test_too_few_samples_give_no_estimate() -> None:
    few = [Slice({"read": [1.0] * (MIN_SAMPLES // ROUNDS)}, 1.0) for _ in range(ROUNDS)]
    assert cost(few, run(1), "read") is None
    assert cost(run(1), run(2), "write") is None  # a kind neither has


def test_slices_must_pair_by_round() -> None:
    with pytest.raises(ValueError, match="same rounds"):
        cost(run(1)[:3], run(2), "read")


def test_the_bootstrap_is_reproducible_from_its_seed() -> None:
    a = cost(run(1), run(2), "read", resamples=200, seed=7)
    b = cost(run(1), run(2), "read", resamples=200, seed=7)
    assert a == b


def test_reading_states_a_measured_cost_or_the_noise_floor() -> None:
    floor = Interval(0.1, -0.3, 0.5)  # the A/A pair reached 0.5 ms
    assert reading(Interval(2.0, 1.5, 2.6), floor) == "+2.00 ms (95% interval +1.50 to +2.60)"
    assert reading(Interval(0.2, -0.1, 0.6), floor) == (
        "no cost measurable at this run's noise floor (±0.50 ms)"
    )
    assert "±0.35 ms" in reading(Interval(0.2, -0.1, 0.6), None)  # its own interval


def test_a_cost_within_what_the_a_a_pair_reached_is_not_measured() -> None:
    # a short run: the A/A pair's own interval excludes 0, reaching -3.6 ms
    floor = Interval(-2.4, -3.6, -0.1)
    assert reading(Interval(1.2, 0.4, 2.0), floor).startswith("no cost measurable")
    assert "±3.60 ms" in reading(Interval(1.2, 0.4, 2.0), floor)
    assert reading(Interval(5.0, 4.0, 6.0), floor).startswith("+5.00 ms")


def test_kinds_are_listed_in_a_stable_order() -> None:
    slices = [Slice({"search": [1.0], "write": [], "read": [2.0], "other": [1.0]}, 1.0)]
    assert kinds(slices) == ["read", "search", "other"]


def mixed(seed: int, slow_share: float, delay_ms: float = 0.0) -> list[Slice]:
    """Searches of two requests, a fast one (~5 ms) and a slow one (~40 ms), in a given mix."""
    rng = np.random.default_rng(seed)
    slices = []
    for _ in range(ROUNDS):
        slow = int(300 * slow_share)
        strata = {
            "search": {
                "GET fast": (rng.lognormal(np.log(5.0), 0.2, 300 - slow) + delay_ms).tolist(),
                "GET slow": (rng.lognormal(np.log(40.0), 0.2, slow) + delay_ms).tolist(),
            }
        }
        times = {"search": [t for ts in strata["search"].values() for t in ts]}
        slices.append(Slice(times, 10.0, strata))
    return slices


def test_a_different_mix_of_requests_is_no_cost() -> None:
    # by chance one configuration got more of the slow search: its pooled median jumps from the
    # fast request's to the slow one's, but request by request nothing differs
    found = cost(mixed(1, 0.6), mixed(2, 0.4), "search", resamples=300)
    assert found is not None and found.added_p50_ms.covers(0.0), found.added_p50_ms
    assert abs(found.added_p50_ms.estimate) < 2.0


@pytest.mark.parametrize("draw_rounds", [True, False])
def test_request_by_request_a_delay_is_found_and_twins_are_not(draw_rounds: bool) -> None:
    twin = cost(mixed(3, 0.5), mixed(4, 0.5), "search", resamples=300, draw_rounds=draw_rounds)
    delayed = cost(
        mixed(5, 0.5, delay_ms=2.0), mixed(6, 0.5), "search", resamples=300,
        draw_rounds=draw_rounds,
    )  # fmt: skip
    assert twin is not None and twin.added_p50_ms.covers(0.0)
    assert delayed is not None and delayed.added_p50_ms.low > 0
    assert 1.0 < delayed.added_p50_ms.estimate < 3.0
