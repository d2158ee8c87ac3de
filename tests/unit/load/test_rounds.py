"""Interleaved rounds: every configuration in every round, rotated; slices; samples accumulated."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.load.rounds import (
    DEFAULT_ROUNDS,
    WARMUP,
    accumulate,
    balanced_schedule,
    default_rounds,
    schedule,
    slice_plan,
)
from simulator.load.samples import TOKEN, Samples
from simulator.load.spec import LoadSpec, Population, Slice
from simulator.load.stats import summarize

MATRIX = ["off", "C01", "C02", "C03", "C04", "C05", "C06", "C08", "C09", "C10", "C12", "all"]


def test_rounds_go_in_pairs_the_second_reversed_each_pair_further_on() -> None:
    assert schedule(["off", "C05", "all"], 4) == [
        ["off", "C05", "all"],
        ["all", "C05", "off"],
        ["C05", "all", "off"],
        ["off", "all", "C05"],
    ]
    assert schedule(["off", "all"], 1) == [["off", "all"]]
    assert schedule(["off", "all"], 2) == [["off", "all"], ["all", "off"]]
    assert schedule(["off", "all"], 3) == [["off", "all"], ["all", "off"], ["all", "off"]]


@given(
    st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=14, unique=True),
    st.integers(min_value=1, max_value=20),
)
def test_every_round_runs_every_configuration_once(names: list[str], rounds: int) -> None:
    orders = schedule(names, rounds)
    assert len(orders) == rounds
    assert all(sorted(order) == sorted(names) for order in orders)
    assert orders[0] == names


@given(st.integers(min_value=1, max_value=12), st.integers(min_value=1, max_value=6))
def test_with_an_even_number_of_rounds_every_mean_place_is_the_same(
    configs: int, pairs: int
) -> None:
    """A drift that grows steadily over the run then costs every configuration alike."""
    names = MATRIX[:configs]
    orders = schedule(names, 2 * pairs)
    places = {sum(order.index(name) for order in orders) for name in names}
    assert places == {pairs * (configs - 1)}


def test_the_pairs_spread_the_first_places() -> None:
    firsts = Counter(order[0] for order in schedule(MATRIX, 8)[::2])
    assert len(firsts) == 4


def test_the_default_is_four_rounds_for_a_matrix_with_slices_of_two_seconds_or_more() -> None:
    assert default_rounds(1, 60) == 1
    assert default_rounds(12, 10) == DEFAULT_ROUNDS == 4
    assert default_rounds(12, 7) == 2
    assert default_rounds(2, 5) == 2
    assert default_rounds(2, 3) == 1
    assert default_rounds(2, 0.5) == 1


def test_rounds_below_one_are_refused() -> None:
    with pytest.raises(ValueError):
        schedule(MATRIX, 0)


def test_the_slices_warm_up_on_the_first_configuration_then_run_the_rounds() -> None:
    slices = slice_plan(["off", "C05", "all"], 2, 10.0, warmup_s=2.0)
    assert [(s.config, s.round) for s in slices] == [
        ("off", WARMUP),
        ("off", 1), ("C05", 1), ("all", 1),
        ("all", 2), ("C05", 2), ("off", 2),
    ]  # fmt: skip
    assert not slices[0].measured and slices[0].seconds == 2.0
    assert all(s.measured and s.seconds == 5.0 for s in slices[1:])
    no_warmup = slice_plan(["off"], 1, 10.0)
    assert [(s.config, s.round, s.seconds) for s in no_warmup] == [("off", 1, 10.0)]


@given(
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=1, max_value=10),
    st.floats(min_value=1, max_value=3600),
)
def test_every_configuration_gets_its_seconds_in_measured_slices(
    configs: int, rounds: int, seconds: float
) -> None:
    names = MATRIX[:configs]
    slices = slice_plan(names, rounds, seconds, warmup_s=1.0)
    for name in names:
        mine = [s for s in slices if s.config == name and s.measured]
        assert [s.round for s in mine] == list(range(1, rounds + 1))
        assert sum(s.seconds for s in mine) == pytest.approx(seconds)


def slice_samples(start: float, ms: float, count: int) -> Samples:
    samples = Samples()
    for i in range(count):
        samples.add("GET", "demo: read", "ok", ms, start + i * 0.1)
    return samples


def test_accumulated_slices_count_only_their_own_time() -> None:
    """Two slices of 1 s, 100 s apart (other configurations ran between): 20 requests over 2 s
    of measured time, not over 101 s."""
    first = slice_samples(1000.0, 100.0, 10)  # 1000.0 .. 1001.0
    second = slice_samples(1100.0, 300.0, 10)  # 1100.0 .. 1101.2
    total = accumulate([first, second])
    assert total.window_s == pytest.approx(first.window_s + second.window_s)
    t = summarize(total)
    assert t.requests == 20
    assert t.rps == round(20 / (1.0 + 1.2), 3)
    assert t.p50_ms == 100.0 and t.p99_ms == 300.0


def test_the_measured_time_survives_json_and_tokens_do_not_change_it() -> None:
    total = accumulate([slice_samples(10.0, 50.0, 5), slice_samples(50.0, 50.0, 5)])
    logins = Samples()
    logins.add(TOKEN, "demo", "ok", 800.0, 5.0)
    total.merge(logins)
    again = Samples.from_dict(json.loads(json.dumps(total.to_dict())))
    assert again.window_s == total.window_s == pytest.approx(2 * 0.45)
    assert summarize(again).requests == 10
    assert Samples.from_dict(json.loads(json.dumps(Samples().to_dict()))).measured_s is None


def test_the_spec_carries_its_slices_through_json(tmp_path: Path) -> None:
    pieces = (
        Slice("off", WARMUP, 1.0, "http://127.0.0.1:1/fhir", str(tmp_path / "warmup")),
        Slice("off", 1, 2.5, "http://127.0.0.1:1/fhir", str(tmp_path / "off" / "round-1")),
        Slice("all", 1, 2.5, "http://127.0.0.1:2/fhir", str(tmp_path / "all" / "round-1")),
    )
    spec = LoadSpec(
        slices=pieces, scenarios=("demo",), library=None, read_only=False, users=2,
        spawn_rate=2.0, workers=0, population=Population(40, 2, 7, 10, "Smith"),
        login_samples_path=str(tmp_path / "logins.json"),
    )  # fmt: skip
    again = LoadSpec.read(spec.write(tmp_path / "spec.json"))
    assert again == spec
    assert again.host == "http://127.0.0.1:1/fhir" and again.seconds == 6.0
    assert again.slices[1].samples_path == tmp_path / "off" / "round-1" / "samples.json"
    assert again.slices[2].csv_prefix == str(tmp_path / "all" / "round-1" / "locust")


def test_a_seeded_schedule_puts_every_configuration_in_every_place_equally_often() -> None:
    names = ["off", "off-2", "C05", "all"]
    for seed in range(20):
        orders = balanced_schedule(names, 8, seed)
        assert len(orders) == 8 and all(sorted(o) == sorted(names) for o in orders)
        for place in range(len(names)):
            assert Counter(o[place] for o in orders) == dict.fromkeys(names, 2), seed


def test_a_seeded_schedule_is_reproducible_and_shuffled() -> None:
    names = list(MATRIX)
    assert balanced_schedule(names, 4, 7) == balanced_schedule(names, 4, 7)
    firsts = {tuple(balanced_schedule(names, 4, seed)[0]) for seed in range(10)}
    assert len(firsts) > 1  # the seed changes the order
    for seed in range(10):  # fewer rounds than configurations: mean places balanced
        orders = balanced_schedule(names, 4, seed)
        places = {n: sum(o.index(n) for o in orders) for n in names}
        assert len(set(places.values())) == 1


def test_slices_follow_the_seeded_schedule() -> None:
    plan = slice_plan(["off", "all"], 2, 4.0, seed=3)
    assert [p.config for p in plan] == [
        c for o in balanced_schedule(["off", "all"], 2, 3) for c in o
    ]
