"""`off_hours`: activity outside business hours."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.anomaly import OffHoursConfig, OffHoursDetector
from tests.unit.gateway.anomaly.helpers import NEW_YORK, NOON, SATURDAY_NIGHT, rec


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK).timestamp()


@pytest.mark.parametrize(
    ("ts", "business"),
    [
        (at(2024, 6, 12, 6, 59), False),  # Wednesday, before 07:00
        (at(2024, 6, 12, 7, 0), True),
        (at(2024, 6, 12, 18, 59), True),
        (at(2024, 6, 12, 19, 0), False),
        (at(2024, 6, 15, 12, 0), False),  # Saturday noon
        (at(2024, 1, 10, 12, 0), True),  # winter time (EST) too
        (at(2024, 1, 10, 6, 30), False),
    ],
)
def test_default_business_hours(ts: float, business: bool) -> None:
    assert OffHoursDetector().is_business(ts) is business


def test_an_off_hours_burst_alerts_once() -> None:
    detector = OffHoursDetector(OffHoursConfig(max_requests=10, window_s=900))
    alerts = []
    for i in range(30):
        alerts += detector.observe(rec(0, ts=SATURDAY_NIGHT + i * 10, request_id=f"r{i}"))
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.id, alert.severity, alert.client_id) == ("off_hours-1", "medium", "scheduler")
    assert alert.evidence["count"] == 11 and alert.evidence["threshold"] == 10
    assert alert.evidence["local_time"] == "2024-06-15T03:01:40-04:00"
    assert alert.evidence["business_hours"] == "mon,tue,wed,thu,fri 07:00-19:00 America/New_York"
    assert alert.evidence["request_ids"][-1] == "r10"
    assert "outside business hours" in alert.message and "Sat 03:01" in alert.message


def test_business_hours_traffic_and_a_few_night_requests_do_not_alert() -> None:
    detector = OffHoursDetector()
    assert not any(detector.observe(rec(i)) for i in range(500))  # around noon on a Wednesday
    assert not any(detector.observe(rec(0, ts=SATURDAY_NIGHT + i * 60)) for i in range(10))


def test_custom_zone_days_and_an_overnight_span() -> None:
    config = OffHoursConfig(timezone="UTC", weekdays=(5, 6), start="22:00", end="06:00")
    detector = OffHoursDetector(config)
    saturday_23_utc = datetime.fromisoformat("2024-06-15T23:00:00+00:00").timestamp()
    assert detector.is_business(saturday_23_utc)
    assert not detector.is_business(NOON)  # Wednesday
    assert not detector.is_business(datetime.fromisoformat("2024-06-15T12:00:00+00:00").timestamp())
