"""Raw samples and the statistics computed from them (exact, 3 decimals)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.load.samples import TOKEN, Samples
from simulator.load.stats import compared, percentile, ratio, summarize

times = st.lists(st.floats(min_value=0.001, max_value=60_000, allow_nan=False), min_size=1)


def test_percentiles_are_nearest_rank_with_three_decimals() -> None:
    values = [0.41234, 0.5, 0.6, 0.7, 10.0]
    assert percentile(values, 50) == 0.6
    assert percentile(values, 0) == 0.412
    assert percentile(values, 100) == 10.0
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


@given(times, st.floats(min_value=0, max_value=100))
def test_a_percentile_is_one_of_the_values(values: list[float], p: float) -> None:
    result = percentile(values, p)
    assert result is not None
    assert any(math.isclose(result, round(v, 3)) for v in values)
    assert round(min(values), 3) <= result <= round(max(values), 3)


@given(times)
def test_percentiles_are_ordered(values: list[float]) -> None:
    p50, p95, p99 = (percentile(values, p) for p in (50, 95, 99))
    assert p50 is not None and p95 is not None and p99 is not None
    assert p50 <= p95 <= p99


def sample_run() -> Samples:
    samples = Samples()
    samples.add(TOKEN, "demo", "ok", 120.0, 999.0)  # before the FHIR window: not counted in it
    for i in range(8):
        samples.add("GET", "demo: read", "ok", 1.0 + i / 1000, 1000.0 + i * 0.25)
    samples.add("GET", "demo: other", "denied", 0.5, 1000.5, "C08")
    samples.add("GET", "demo: other", "denied", 0.6, 1001.0, None)
    samples.add("POST", "demo: book", "failed", 5.0, 1001.995)
    return samples


def test_totals_count_fhir_requests_only_over_their_window() -> None:
    totals = summarize(sample_run())
    assert (totals.requests, totals.denied, totals.failures) == (11, 2, 1)
    assert totals.window_s == 2.0  # 1000.0 .. 1001.995 + 5 ms
    assert totals.rps == 5.5
    assert totals.p50_ms == 1.003
    assert totals.p99_ms == 5.0
    rows = {(r.method, r.name): r for r in totals.by_request}
    assert rows[("GET", "demo: other")].denied_by == {"-": 1, "C08": 1}
    token = rows[(TOKEN, "demo")]
    assert (token.requests, token.rps, token.p50_ms) == (1, None, 120.0)
    assert totals.by_request[-1].method == TOKEN  # token rows come last


def test_samples_survive_json_and_merge_like_one_run() -> None:
    whole = sample_run()
    half = Samples()
    other = Samples()
    for (method, name), series in whole.series.items():
        target = half if name == "demo: read" else other
        target.series[(method, name)] = series
    half.first_start, half.last_end = 1000.0, 1001.751
    other.first_start, other.last_end = 1000.5, 1002.0
    merged = Samples.from_dict(json.loads(json.dumps(half.to_dict())))
    merged.merge(Samples.from_dict(json.loads(json.dumps(other.to_dict()))))
    assert summarize(merged) == summarize(whole)


def test_draining_hands_over_everything_once() -> None:
    samples = sample_run()
    taken = samples.drain()
    assert summarize(taken).requests == 11
    assert samples.series == {} and samples.window_s == 0.0
    assert summarize(samples).requests == 0 and summarize(samples).rps is None


def test_comparisons_with_the_baseline() -> None:
    assert ratio(90.0, 100.0) == 0.9
    assert ratio(90.0, 0.0) is None and ratio(None, 1.0) is None
    assert compared(1.5, 1.25) == 0.25
    assert compared(None, 1.0) is None
