"""The lab's simulated clock (policy `anomaly.clock_header`; LAB ONLY).

A scenario that plays "a burst at 3 a.m." cannot wait for 3 a.m.: when the policy names a clock
header, a request may carry an ISO-8601 instant in it (`X-Fhirlab-Clock: 2026-11-29T03:00:00Z`)
and the anomaly detectors judge that request as if it were made then. The audit record keeps the
real time (`ts`) and notes the simulated one (`simulated_time`). A production gateway must never
enable this: it lets a client choose the time its requests are judged at.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Protocol

__all__ = ["ClockError", "SimulatedClock", "parse_instant", "simulated_clock"]

# RFC 9110 field-name token characters
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MAX_LEN: Final = 64
_SHOWN: Final = 40


class ClockError(ValueError):
    """A clock header whose value is not an ISO-8601 instant (with its offset)."""


def parse_instant(text: str) -> float:
    """Epoch seconds of an ISO-8601 date-time with a UTC offset (`Z` or `+hh:mm`)."""
    value = text.strip()
    if not value or len(value) > _MAX_LEN or "T" not in value.upper():
        raise ClockError(_problem(text))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ClockError(_problem(text)) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ClockError(_problem(text) + " (an instant needs its offset: Z or +hh:mm)")
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):
        raise ClockError(_problem(text)) from None


def _problem(text: str) -> str:
    shown = text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
    return f"simulated clock {shown!r} is not an ISO-8601 instant such as 2026-11-29T03:00:00Z"


class HeaderLookup(Protocol):
    """What the clock reads a header from: a mapping of lower-case names to values."""

    def get(self, key: str, /) -> str | None: ...


class SimulatedClock:
    """Reads the simulated instant of a request from the policy's clock header."""

    def __init__(self, header: str) -> None:
        if not _HEADER_NAME.fullmatch(header):
            raise ValueError(f"clock header {header!r} is not an HTTP header name")
        self.header = header.lower()

    def read(self, headers: HeaderLookup) -> float | None:
        """The simulated instant (epoch seconds), None without the header; `ClockError` when
        the header is there but is not an instant (refused: a scenario must not silently run
        on real time)."""
        value = headers.get(self.header)
        if value is None:
            return None
        try:
            return parse_instant(value)
        except ClockError as exc:
            raise ClockError(f"{self.header}: {exc}") from None


def simulated_clock(header: str | None) -> SimulatedClock | None:
    return SimulatedClock(header) if header else None
