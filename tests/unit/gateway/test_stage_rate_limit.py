"""Stage `rate_limit`: a token bucket per client; an empty bucket refuses with 429.

The stage reads `time.monotonic()`; each test runs it on a clock that moves only when told.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.context import RequestContext
from gateway.denial import Denial
from gateway.outcome import denial_response
from gateway.policy import RateLimitPolicy
from gateway.stages import rate_limit
from gateway.stages.rate_limit import RATE, RateLimitStage
from tests.unit.gateway.stage_kit import context, passes, refusal, run, verified


class Clock:
    def __init__(self) -> None:
        self.now = 5_000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(rate_limit, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


def stage(rate: float = 2, burst: int = 3) -> RateLimitStage:
    return RateLimitStage(RateLimitPolicy(requests_per_second=rate, burst=burst))


def request(client: str | None = "scheduler") -> RequestContext:
    return context(token=verified(client_id=client) if client is not None else None)


def test_the_check_is_the_rate_limit_switch() -> None:
    assert [control for control, _ in stage().checks()] == [RATE]


def test_a_burst_passes_then_the_bucket_refuses_with_429(clock: Clock) -> None:
    limiter = stage(rate=2, burst=3)
    for _ in range(3):
        passes(limiter.take, request())
    denial = refusal(limiter.take, request(), 429, None)
    assert denial.reason == "client 'scheduler' exceeds 2 requests/s (retry in 0.5 s)"
    assert denial.bearer_error is None


def test_the_bucket_refills_at_the_policy_rate(clock: Clock) -> None:
    limiter = stage(rate=2, burst=3)
    for _ in range(3):
        passes(limiter.take, request())
    clock.now += 0.25  # half a request
    refusal(limiter.take, request(), 429, None)
    clock.now += 0.25  # now a whole one
    passes(limiter.take, request())
    refusal(limiter.take, request(), 429, None)


def test_refused_requests_do_not_drain_the_refill(clock: Clock) -> None:
    limiter = stage(rate=1, burst=1)
    passes(limiter.take, request())
    for _ in range(4):  # a client hammering while empty
        clock.now += 0.125
        refusal(limiter.take, request(), 429, None)
    clock.now += 0.5  # one second since the last granted request
    passes(limiter.take, request())


def test_the_bucket_never_holds_more_than_the_burst(clock: Clock) -> None:
    limiter = stage(rate=10, burst=2)
    passes(limiter.take, request())
    clock.now += 3_600  # an hour idle
    passes(limiter.take, request())
    passes(limiter.take, request())
    refusal(limiter.take, request(), 429, None)


def test_each_client_has_its_own_bucket(clock: Clock) -> None:
    limiter = stage(rate=1, burst=1)
    passes(limiter.take, request("scheduler"))
    refusal(limiter.take, request("scheduler"), 429, None)
    passes(limiter.take, request("triage"))
    denial = refusal(limiter.take, request("triage"), 429, None)
    assert "client 'triage'" in denial.reason


def test_requests_without_a_token_share_one_bucket(clock: Clock) -> None:
    limiter = stage(rate=1, burst=2)
    passes(limiter.take, request(None))
    passes(limiter.take, request(None))
    denial = refusal(limiter.take, request(None), 429, None)
    assert "client '(anonymous)'" in denial.reason
    passes(limiter.take, request("scheduler"))  # not charged to a client with a token


@settings(max_examples=100, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=100),
    burst=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=60),
)
def test_no_more_pass_than_the_burst_and_the_refill_allow(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = Clock()
    limiter = stage(rate, burst)
    granted, start = 0, clock.now
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rate_limit, "time", SimpleNamespace(monotonic=clock.monotonic))
        for gap in gaps:
            clock.now += gap
            try:
                run(limiter.take, request())
            except Denial as denial:
                assert denial.status == 429
            else:
                granted += 1
    assert granted >= min(len(gaps), burst)  # the bucket starts full
    assert granted <= burst + (clock.now - start) * rate + 1e-9


def test_a_429_says_when_to_come_back(clock: Clock) -> None:
    limiter = stage(rate=0.5, burst=1)
    passes(limiter.take, request())
    denial = refusal(limiter.take, request(), 429, None)
    assert denial.retry_after_s == pytest.approx(2.0)
    assert denial_response(denial).headers["Retry-After"] == "2"


def test_the_buckets_of_idle_clients_are_forgotten(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rate_limit, "MAX_CLIENTS", 3)
    limiter = stage(rate=1, burst=2)
    for client in ("a", "b", "c"):
        passes(limiter.take, request(client))
    clock.now += 10  # every bucket has refilled
    passes(limiter.take, request("d"))
    assert set(limiter._buckets) == {"d"}
    passes(limiter.take, request("e"))  # below the bound again: nothing dropped
    assert set(limiter._buckets) == {"d", "e"}
