"""Simulated clocks: off hours for scenario steps marked `off_hours: true`, business hours for
every other request of a replay.

The lab cannot wait for night, so such a step stamps each request with a simulated instant: the
real time shifted back to the last moment outside the gateway's business hours (its `off_hours`
detector settings), advancing with the real clock. Every other request of a replay is stamped
the other way, into a business hour before that stretch, so that a good scenario replayed at 2
a.m. is judged as the day-time work it scripts and the lab's verdicts do not depend on the hour
it runs. The lab's gateway honours the stamp for its anomaly detectors
only when its policy names the clock header (a lab-only setting: a production gateway must
never let clients set audit time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.anomaly import AnomalyEngine
from gateway.anomaly.hours import OffHoursDetector
from gateway.policy import Policy

CLOCK_HEADER = "X-Fhirlab-Clock"
STEP_S = 15 * 60
SEARCH_S = 8 * 24 * 3600  # business hours never cover a whole week


def _detector(policy: Policy) -> OffHoursDetector:
    sections = {k: v for k, v in policy.anomaly.items() if k == "off_hours"}
    for detector in AnomalyEngine.from_config(sections).detectors:
        if isinstance(detector, OffHoursDetector):
            return detector
    return OffHoursDetector()


def _stretch_back(
    policy: Policy, now: float, back: float, span_s: float, business: bool, what: str
) -> float:
    """From `back` seconds before `now` on, further back in STEP_S steps: how far back the most
    recent `span_s` seconds start that are all within business hours (`business`) or all
    outside them."""
    detector = _detector(policy)
    limit = back + SEARCH_S
    while back < limit:
        start = now - back
        if all(detector.is_business(start + t) == business for t in range(0, int(span_s) + 1, 60)):
            return back
        back += STEP_S
    raise ValueError(f"the gateway's business hours leave no {what} in a week")


def off_hours_offset(policy: Policy, now: float | None = None, span_s: float = 3600.0) -> float:
    """Seconds to subtract from `now` to land at the start of `span_s` seconds that are all
    outside business hours (the most recent such stretch)."""
    now = time.time() if now is None else now
    return _stretch_back(policy, now, span_s, span_s, False, "off-hours hour")


def business_hours_offset(
    policy: Policy, now: float | None = None, span_s: float = 3600.0
) -> float:
    """Seconds to subtract from `now` to land at the start of `span_s` seconds that are all
    within business hours and end before the off-hours stretch of `off_hours_offset` begins.
    The gateway judges a token's stamped requests on one timeline: business stamps earlier than
    off-hours ones keep it moving forward however a scenario mixes its steps."""
    now = time.time() if now is None else now
    back = off_hours_offset(policy, now, span_s) + span_s
    return _stretch_back(policy, now, back, span_s, True, "whole business hour")


@dataclass
class ShiftedClock:
    """The real time shifted back by `offset_s`, as the stamp a request carries in `header`."""

    offset_s: float
    header: str = CLOCK_HEADER

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() - self.offset_s, UTC)

    def headers(self) -> dict[str, str]:
        return {self.header: self.now().isoformat(timespec="milliseconds")}


class BusinessHoursClock(ShiftedClock):
    @classmethod
    def for_policy(cls, policy: Policy) -> BusinessHoursClock:
        return cls(business_hours_offset(policy), policy.clock_header or CLOCK_HEADER)


class OffHoursClock(ShiftedClock):
    @classmethod
    def for_policy(cls, policy: Policy) -> OffHoursClock:
        return cls(off_hours_offset(policy))
