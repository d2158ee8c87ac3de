"""A simulated off-hours clock for scenario steps marked `off_hours: true`.

The lab cannot wait for night, so such a step stamps each request with a simulated instant: the
real time shifted back to the last moment outside the gateway's business hours (its `off_hours`
detector settings), advancing with the real clock. The lab's gateway honours the stamp for its
anomaly detectors only when its policy names the clock header (a lab-only setting: a production
gateway must never let clients set audit time).
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


def off_hours_offset(policy: Policy, now: float | None = None, span_s: float = 3600.0) -> float:
    """Seconds to subtract from `now` to land at the start of `span_s` seconds that are all
    outside business hours (the most recent such stretch)."""
    detector = _detector(policy)
    now = time.time() if now is None else now
    back = 0.0
    while back < SEARCH_S:
        start = now - back - span_s
        if not any(detector.is_business(start + t) for t in range(0, int(span_s) + 1, 60)):
            return back + span_s
        back += STEP_S
    raise ValueError("the gateway's business hours leave no off-hours hour in a week")


@dataclass
class OffHoursClock:
    offset_s: float

    @classmethod
    def for_policy(cls, policy: Policy) -> OffHoursClock:
        return cls(off_hours_offset(policy))

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() - self.offset_s, UTC)

    def headers(self) -> dict[str, str]:
        return {CLOCK_HEADER: self.now().isoformat(timespec="milliseconds")}
