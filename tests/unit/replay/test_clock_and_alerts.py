"""The simulated off-hours clock and the alert expectations of a scenario."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.anomaly.hours import OffHoursDetector
from gateway.controls import Mode
from gateway.policy import load_policy
from labcore.config import load_config
from simulator.replay.alerts import AlertWatch, alert_expectation
from simulator.replay.clock import (
    CLOCK_HEADER,
    OffHoursClock,
    business_hours_offset,
    off_hours_offset,
)
from simulator.replay.target import lab_target
from simulator.steps import Session

NY = ZoneInfo("America/New_York")
POLICY = load_policy()
DETECTOR = OffHoursDetector()  # the defaults: Mon-Fri 07:00-19:00 New York, like the policy


def test_a_weekday_noon_is_shifted_to_the_night_before() -> None:
    noon = datetime(2026, 12, 2, 12, 0, tzinfo=NY).timestamp()  # a Wednesday
    assert DETECTOR.is_business(noon)
    shifted = noon - off_hours_offset(POLICY, now=noon)
    assert not DETECTOR.is_business(shifted)
    assert datetime.fromtimestamp(shifted, NY).hour < 7


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=1.7e9, max_value=2.0e9))
def test_the_business_hour_is_business_and_before_the_off_hours_one(now: float) -> None:
    # a replay at any hour is judged as day-time work, earlier than its off-hours steps, so
    # that one token's stamped timeline only moves forward
    start = now - business_hours_offset(POLICY, now=now)
    assert all(DETECTOR.is_business(start + t) for t in range(0, 3601, 60))
    assert start + 3600 <= now - off_hours_offset(POLICY, now=now)


def test_every_replayed_request_is_stamped_and_an_off_hours_stamp_wins() -> None:
    session = Session("http://gw/fhir", {}, policy=POLICY)  # type: ignore[arg-type]
    plain = session.request("read", (), "GET", "Patient/p1")
    stamped = datetime.fromisoformat(plain.headers[CLOCK_HEADER]).timestamp()
    assert DETECTOR.is_business(stamped)
    night = OffHoursClock.for_policy(POLICY).headers()
    burst = session.request("burst", (), "GET", "Patient/p1", headers=night)
    assert burst.headers[CLOCK_HEADER] == night[CLOCK_HEADER]
    unstamped = Session("http://gw/fhir", {}).request("read", (), "GET", "Patient/p1")  # type: ignore[arg-type]
    assert CLOCK_HEADER not in unstamped.headers  # no policy (the load's users): no stamp


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=1.7e9, max_value=2.0e9))
def test_the_simulated_hour_is_off_hours_from_any_real_instant(now: float) -> None:
    start = now - off_hours_offset(POLICY, now=now)
    assert start <= now
    assert not any(DETECTOR.is_business(start + t) for t in range(0, 3601, 60))


def test_the_clock_header_is_an_iso_instant() -> None:
    value = OffHoursClock(3600.0).headers()[CLOCK_HEADER]
    assert datetime.fromisoformat(value).tzinfo is not None


def _alert(client: str, detector: str) -> str:
    return json.dumps({"id": f"{detector}-1", "detector": detector, "client_id": client})


def test_alerts_are_read_from_where_the_scenario_started(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text(_alert("app", "volume") + "\n")
    watch = AlertWatch(tmp_path)
    watch.start()
    with alerts.open("a") as handle:
        handle.write(_alert("app", "off_hours") + "\n")
        handle.write(_alert("other", "paging_walk") + "\n")
        handle.write('{"half a line')
    assert watch.raised("app", ["off_hours"], settle_s=0) == ["off_hours"]


def test_a_missing_alerts_file_means_nothing_raised(tmp_path: Path) -> None:
    watch = AlertWatch(tmp_path)
    watch.start()
    assert watch.raised("app", [], settle_s=0) == []


@pytest.mark.parametrize(
    ("expected", "raised", "ok"),
    [
        (["volume", "off_hours"], ["off_hours", "volume", "volume"], True),
        (["volume", "off_hours"], ["volume"], False),
        (["out_of_profile"], ["out_of_profile", "volume"], True),
    ],
)
def test_every_expected_detector_must_fire(
    expected: list[str], raised: list[str], ok: bool
) -> None:
    result = alert_expectation(expected, raised)
    assert result is not None
    assert result.control == "alerts"
    assert result.ok is ok
    if not ok:
        assert "missing: off_hours" in result.evidence


def test_no_expected_alerts_is_no_expectation() -> None:
    assert alert_expectation([], ["volume"]) is None


def test_the_lab_target_follows_the_modes_the_gateway_reports(tmp_path: Path) -> None:
    cfg = load_config({"FHIRLAB_HOME": str(tmp_path)})
    target = lab_target(cfg, {"C09": "off", "C06": "enforce"})
    assert target.introspection_ttl_s == 0.0
    assert target.audited
    assert lab_target(cfg, {"C06": "off"}).audited is False
    assert lab_target(cfg).introspection_ttl_s == POLICY.token.introspection_ttl_s
    assert lab_target(cfg).policy.mode("C09") is Mode.ENFORCE


def _record(client: str | None) -> str:
    return json.dumps({"kind": "request", "client_id": client})


def test_the_trail_of_a_run_counts_its_records_and_served_alerts(tmp_path: Path) -> None:
    audit, alerts = tmp_path / "audit.jsonl", tmp_path / "alerts.jsonl"
    audit.write_text(_record("app") + "\n")  # before the run: not counted
    watch = AlertWatch(tmp_path)
    watch.start()
    with audit.open("a") as handle:
        handle.write("\n".join([_record("app"), _record("app"), _record("other")]) + "\n")
        handle.write(json.dumps({"kind": "alert", "client_id": "app"}) + "\n")
    refused = {"id": "o-1", "detector": "out_of_profile", "client_id": "app",
               "evidence": {"served": False}}  # fmt: skip
    alerts.write_text(_alert("app", "volume") + "\n" + json.dumps(refused) + "\n")
    evidence = watch.evidence("app", sent=2, anomalous=False, settle_s=0)
    assert (evidence.audited, evidence.sent, evidence.recorded) == (True, 2, 2)
    assert evidence.alerts == ("volume",)  # the refused probe's alert is the refusing control's
    assert watch.raised("app", [], settle_s=0) == ["volume", "out_of_profile"]


def test_a_trail_missing_records_says_so(tmp_path: Path) -> None:
    watch = AlertWatch(tmp_path)
    watch.start()
    evidence = watch.evidence("app", sent=3, anomalous=False, settle_s=0)
    assert evidence.recorded == 0 and evidence.alerts == ()
