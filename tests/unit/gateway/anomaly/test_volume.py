"""`volume`: requests per client per window."""

from __future__ import annotations

from gateway.anomaly import VolumeConfig, VolumeDetector
from tests.unit.gateway.anomaly.helpers import rec


def test_more_requests_than_the_threshold_in_the_window_alert_once() -> None:
    detector = VolumeDetector(VolumeConfig(window_s=60, max_requests=100))
    alerts = []
    for i in range(300):  # 300 requests in 30 s
        alerts += detector.observe(rec(0, ts=rec().ts + i * 0.1, request_id=f"r{i}"))
    assert len(alerts) == 1  # cooled down for the rest of the window
    alert = alerts[0]
    assert alert.id == "volume-1"
    assert (alert.detector, alert.severity, alert.client_id) == ("volume", "medium", "scheduler")
    assert (alert.token_id, alert.tenant) == ("jti-1", "north")
    assert alert.evidence["count"] == 101 and alert.evidence["threshold"] == 100
    assert alert.evidence["request_ids"][-1] == "r100"
    assert len(alert.evidence["request_ids"]) == 20
    assert "101 requests in 60 s" in alert.message


def test_the_same_rate_spread_out_does_not_alert() -> None:
    detector = VolumeDetector(VolumeConfig(window_s=60, max_requests=100))
    # 1000 requests at one per second: never more than ~60 in any minute
    assert not any(detector.observe(rec(i)) for i in range(1000))


def test_clients_are_counted_separately() -> None:
    detector = VolumeDetector(VolumeConfig(window_s=60, max_requests=100))
    for i in range(200):
        assert not detector.observe(rec(0, client_id=f"client-{i % 2}x{i % 3}"))


def test_it_alerts_again_after_the_cooldown() -> None:
    detector = VolumeDetector(VolumeConfig(window_s=10, max_requests=5, buckets=10))
    alerts = [a for i in range(200) for a in detector.observe(rec(0, ts=1000.0 + i * 0.1))]
    assert [a.id for a in alerts] == ["volume-1", "volume-2"]  # at ~0.5 s and ~10.5 s
