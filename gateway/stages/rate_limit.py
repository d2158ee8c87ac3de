"""Stage `rate_limit`: a token bucket per client (429 with Retry-After when empty)."""

from __future__ import annotations

import time

from gateway.context import RequestContext
from gateway.denial import Denial
from gateway.policy import RateLimitPolicy
from gateway.stages import Check, Stage

RATE = "rate_limit"  # pseudo control id: on/off from the policy
MAX_CLIENTS = 10_000  # buckets kept before the full ones are dropped


class RateLimitStage(Stage):
    name = "rate_limit"
    reads = frozenset({"token"})
    writes = frozenset()

    def __init__(self, policy: RateLimitPolicy) -> None:
        self.rate = policy.requests_per_second
        self.burst = float(policy.burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last refill)

    def checks(self) -> list[tuple[str | None, Check]]:
        return [(RATE, self.take)]

    async def take(self, ctx: RequestContext) -> None:
        client = ctx.token.client_id if ctx.token else "(anonymous)"
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
            raise Denial(
                429,
                f"client {client!r} exceeds {self.rate:g} requests/s (retry in {wait:.1f} s)",
                retry_after_s=wait,
            )
        if len(self._buckets) >= MAX_CLIENTS and client not in self._buckets:
            self._forget_full(now)
        self._buckets[client] = (tokens - 1.0, now)

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (a client seen again starts full anyway), so the
        table stays bounded by the clients active within a refill time."""
        full = [
            c for c, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.burst
        ]  # fmt: skip
        for c in full:
            del self._buckets[c]
