"""Stage `rate_limit`: a token bucket per client (429 with Retry-After when empty)."""

from __future__ import annotations

import time

from gateway.context import RequestContext
from gateway.denial import Denial
from gateway.policy import RateLimitPolicy
from gateway.stages import Check, Stage

RATE = "rate_limit"  # pseudo control id: on/off from the policy


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
            raise Denial(429, f"client {client!r} exceeds {self.rate:g} requests/s (retry in "
                         f"{wait:.1f} s)")  # fmt: skip
        self._buckets[client] = (tokens - 1.0, now)
