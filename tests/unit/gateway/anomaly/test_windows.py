"""Bounded streaming state: sliding counts, LRU maps, cool-downs."""

from __future__ import annotations

from gateway.anomaly.windows import Cooldown, LruMap, SlidingCount


def test_sliding_count_counts_within_the_window_and_forgets_after() -> None:
    count = SlidingCount(window_s=60, buckets=60)  # 1 s buckets: exact to the second
    for second in range(60):
        assert count.add(1000.0 + second) == second + 1
    assert count.add(1060.0) == 60  # second 1000 has left the window
    assert count.add(1200.0) == 1  # a long gap empties it


def test_sliding_count_accepts_slightly_late_events_and_ignores_stale_ones() -> None:
    count = SlidingCount(window_s=10, buckets=10)
    count.add(100.0)
    assert count.add(95.0) == 2  # late but within the window
    assert count.add(80.0) == 2  # older than the window: ignored


def test_lru_map_evicts_the_least_recently_touched() -> None:
    lru: LruMap[str, list[int]] = LruMap(2)
    lru.touch("a", list).append(1)
    lru.touch("b", list)
    lru.touch("a", list)  # a is now the most recent
    lru.touch("c", list)
    assert list(lru) == ["a", "c"]
    assert lru.get("a") == [1]
    assert len(lru) == 2


def test_cooldown_allows_one_alert_per_key_per_period() -> None:
    cooldown = Cooldown(cooldown_s=60, max_keys=10)
    assert cooldown.ready("k", 0.0)
    assert not cooldown.ready("k", 59.0)
    assert cooldown.ready("other", 59.0)
    assert cooldown.ready("k", 60.0)
