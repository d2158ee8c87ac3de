"""`patient_fanout`: distinct patients per token and per client."""

from __future__ import annotations

from gateway.anomaly import AnomalyEngine, FanoutConfig, PatientFanoutDetector
from tests.unit.gateway.anomaly.helpers import rec

CONFIG = FanoutConfig(window_s=3600, max_patients_per_token=10, max_patients_per_client=30)


def test_a_token_reaching_many_patients_alerts() -> None:
    detector = PatientFanoutDetector(CONFIG)
    alerts = []
    for i in range(40):
        alerts += detector.observe(rec(i, patients=(f"p{i}",), request_id=f"r{i}"))
    assert [(a.id, a.evidence["level"]) for a in alerts] == [
        ("patient_fanout-1", "token"),
        ("patient_fanout-2", "client"),
    ]
    token_alert = alerts[0]
    assert token_alert.severity == "high"
    assert token_alert.evidence["distinct_patients"] == 11
    assert token_alert.evidence["key"] == "jti-1"
    assert token_alert.evidence["patients"][-1] == "p10"
    assert token_alert.evidence["request_ids"][-1] == "r10"
    assert token_alert.ts == rec(10).ts
    assert "token jti-1 touched at least 11 distinct patients" in token_alert.message
    assert alerts[1].evidence["distinct_patients"] == 31


def test_a_search_returning_many_patients_counts_each() -> None:
    detector = PatientFanoutDetector(CONFIG)
    alerts = detector.observe(rec(0, patients=tuple(f"p{i}" for i in range(12))))
    assert len(alerts) == 1 and alerts[0].evidence["level"] == "token"


def test_one_patient_read_many_times_does_not_alert() -> None:
    detector = PatientFanoutDetector(CONFIG)
    assert not any(detector.observe(rec(i, patients=("p1", "p1"))) for i in range(1000))


def test_patients_spread_beyond_the_window_do_not_alert() -> None:
    detector = PatientFanoutDetector(CONFIG)
    # one new patient every 10 minutes: at most 6 in any hour
    assert not any(detector.observe(rec(i * 600, patients=(f"p{i}",))) for i in range(100))


def test_many_tokens_of_one_client_add_up_at_client_level() -> None:
    detector = PatientFanoutDetector(CONFIG)
    alerts = []
    for i in range(31):  # each token touches 1 patient; the client, 31
        alerts += detector.observe(rec(i, token_id=f"jti-{i}", patients=(f"p{i}",)))
    assert [(a.evidence["level"], a.evidence["key"]) for a in alerts] == [("client", "scheduler")]


def test_records_without_patients_are_ignored() -> None:
    detector = PatientFanoutDetector(FanoutConfig(max_patients_per_token=1))
    assert not any(detector.observe(rec(i)) for i in range(50))


def test_a_client_approved_to_read_a_population_is_not_counted() -> None:
    exempt = FanoutConfig(max_patients_per_token=2, population_clients=frozenset({"analytics"}))
    detector = PatientFanoutDetector(exempt)
    many = tuple(f"p{i}" for i in range(50))
    assert detector.observe(rec(0, client_id="analytics", patients=many)) == []
    assert detector.observe(rec(1, client_id="scheduler", patients=many))  # others still are


def test_the_engine_takes_the_population_clients() -> None:
    engine = AnomalyEngine.from_config(
        {"patient_fanout": {"threshold": 2}}, population_clients=("analytics",)
    )
    many = tuple(f"p{i}" for i in range(5))
    assert engine.observe(rec(0, client_id="analytics", patients=many)) == []
    assert [a.detector for a in engine.observe(rec(1, patients=many))] == ["patient_fanout"]
