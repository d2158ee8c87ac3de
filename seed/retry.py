"""Which failures of a FHIR write are worth retrying, and how long to wait before the next try.

The loader PUTs every resource at a stable id inside a transaction bundle, so posting a bundle
again is always safe: a retry can never duplicate data. What decides a retry is whether the
failure can go away by itself:

- the connection failed or timed out, the server is overloaded or restarting (5xx, 429, 408);
- two concurrent transactions collided on the same row (409 Conflict, 412 Precondition Failed:
  HAPI reports version and unique-constraint races this way);

and everything else (400, 401, 403, 404, 405, 422, …) is the request's fault: sending it again
gives the same answer, so the load stops and says why.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

#: 4xx statuses that are about timing, not about the request.
TRANSIENT_4XX = frozenset({408, 409, 412, 425, 429})


def is_transient_status(status: int) -> bool:
    """Whether a response with this status may succeed if the same request is sent again."""
    return status >= 500 or status in TRANSIENT_4XX


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` tries in all; between them exponential backoff with jitter, capped.

    The n-th retry (n = 1, 2, …) waits ``min(cap_s, base_s * 2**(n-1))`` scaled by a random
    factor in [0.5, 1] so that concurrent workers that failed together do not retry together.
    A ``Retry-After`` header (seconds) from the server raises the wait, never lowers it, and is
    itself capped at ``cap_s``.
    """

    attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 15.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1; got {self.attempts}")
        if self.base_s < 0 or self.cap_s < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if retry < 1:
            raise ValueError(f"retry numbers start at 1; got {retry}")
        backoff = min(self.cap_s, self.base_s * 2 ** (retry - 1)) * rng.uniform(0.5, 1.0)
        if retry_after is not None:
            backoff = max(backoff, min(retry_after, self.cap_s))
        return backoff


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header as seconds, if it is a plain number (dates are ignored)."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value >= 0 else None
