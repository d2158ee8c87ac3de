"""Bounded state for streaming detectors: LRU maps, bucketed sliding counts, cool-downs.

Everything here is O(1) amortised per event and bounded in memory: maps evict their least
recently used key beyond `max_keys`; a sliding count is a ring of `buckets` integers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Cooldown", "LruMap", "SlidingCount"]

K = TypeVar("K")
V = TypeVar("V")


class LruMap(Generic[K, V]):
    """A map holding at most `max_keys` entries; the least recently touched goes first."""

    __slots__ = ("_data", "max_keys")

    def __init__(self, max_keys: int) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self.max_keys = max_keys
        self._data: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def touch(self, key: K, factory: Callable[[], V]) -> V:
        """The value for `key` (made by `factory` if absent), now the most recently used."""
        data = self._data
        value = data.get(key)
        if value is None:
            value = data[key] = factory()
            if len(data) > self.max_keys:
                data.popitem(last=False)
        else:
            data.move_to_end(key)
        return value

    def get(self, key: K) -> V | None:
        return self._data.get(key)

    def oldest(self) -> tuple[K, V] | None:
        for item in self._data.items():
            return item
        return None

    def pop_oldest(self) -> None:
        self._data.popitem(last=False)


class SlidingCount:
    """Events in the last `window_s`, counted in `buckets` ring slots.

    The count covers the current bucket and the `buckets - 1` before it, so it is exact to
    within one bucket width (`window_s / buckets`). Timestamps may arrive slightly out of order
    (request start times of concurrent requests); one older than the window is ignored.
    """

    __slots__ = ("_counts", "_head", "_width", "total")

    def __init__(self, window_s: float, buckets: int) -> None:
        self._width = window_s / buckets
        self._counts = [0] * buckets
        self._head: int | None = None
        self.total = 0

    def add(self, ts: float, n: int = 1) -> int:
        """Count `n` events at `ts`; returns the count over the window ending at the newest."""
        index = int(ts // self._width)
        counts = self._counts
        size = len(counts)
        head = self._head
        if head is None:
            self._head = head = index
        elif index > head:
            for step in range(head + 1, head + 1 + min(index - head, size)):
                slot = step % size
                self.total -= counts[slot]
                counts[slot] = 0
            self._head = head = index
        elif index <= head - size:
            return self.total
        counts[index % size] += n
        self.total += n
        return self.total


class Cooldown:
    """At most one alert per key per `cooldown_s` (bounded to `max_keys` keys)."""

    __slots__ = ("_until", "cooldown_s")

    def __init__(self, cooldown_s: float, max_keys: int) -> None:
        self.cooldown_s = cooldown_s
        self._until: LruMap[object, list[float]] = LruMap(max_keys)

    def ready(self, key: object, ts: float) -> bool:
        """True (and the cool-down starts) when `key` has not alerted in the last period."""
        until = self._until.touch(key, lambda: [float("-inf")])
        if ts < until[0]:
            return False
        until[0] = ts + self.cooldown_s
        return True
