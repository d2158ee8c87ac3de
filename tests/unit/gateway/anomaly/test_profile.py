"""`out_of_profile`: resource types outside the client's declared profile."""

from __future__ import annotations

from gateway.anomaly import OutOfProfileDetector, ProfileConfig, profiles_from_scopes
from tests.unit.gateway.anomaly.helpers import rec, search

SCHEDULER = frozenset({"Patient", "Appointment", "Schedule", "Slot"})


def detector(**kw: object) -> OutOfProfileDetector:
    return OutOfProfileDetector(ProfileConfig(profiles={"scheduler": SCHEDULER}, **kw))  # type: ignore[arg-type]


def test_reading_a_type_outside_the_profile_alerts_high() -> None:
    d = detector()
    alerts = d.observe(search(0, "Condition", "patient=p1", request_id="r-cond"))
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.id, alert.severity, alert.client_id) == ("out_of_profile-1", "high", "scheduler")
    assert alert.evidence["resource_type"] == "Condition"
    assert alert.evidence["profile"] == ["Appointment", "Patient", "Schedule", "Slot"]
    assert alert.evidence["served"] is True
    assert alert.evidence["request_ids"] == ["r-cond"]
    assert "scheduler used Condition (search-type)" in alert.message
    # once per (client, type) per cool-down
    assert not d.observe(search(1, "Condition", "patient=p1"))
    assert [
        a.evidence["resource_type"] for a in d.observe(rec(2, resource_type="Observation"))
    ] == ["Observation"]


def test_a_denied_attempt_alerts_medium() -> None:
    alerts = detector().observe(rec(0, resource_type="Condition", decision="deny", status=403))
    assert [(a.severity, a.evidence["served"]) for a in alerts] == [("medium", False)]
    assert "tried Condition" in alerts[0].message


def test_types_in_the_profile_and_untyped_requests_do_not_alert() -> None:
    d = detector()
    assert not d.observe(rec(0, resource_type="Appointment"))
    assert not d.observe(search(1, "Slot", "schedule=s1"))
    assert not d.observe(rec(2, resource_type=None, interaction="capabilities"))


def test_a_wildcard_profile_allows_everything_including_compartment_star() -> None:
    d = OutOfProfileDetector(ProfileConfig(profiles={"analytics": frozenset({"*"})}))
    assert not d.observe(rec(0, client_id="analytics", resource_type="Condition"))
    assert not d.observe(rec(1, client_id="analytics", resource_type="*"))
    assert detector().observe(rec(2, resource_type="*"))  # Patient/p1/* is out of profile


def test_unknown_clients_are_ignored_unless_configured() -> None:
    assert not detector().observe(rec(0, client_id="stranger", resource_type="Condition"))
    alerts = detector(unknown_clients="alert").observe(
        rec(0, client_id="stranger", resource_type="Condition")
    )
    assert [a.evidence["profile"] for a in alerts] == [[]]


def test_profiles_from_registered_scopes() -> None:
    profiles = profiles_from_scopes(
        {
            "scheduler": "launch/patient openid patient/Appointment.rs patient/Slot.read",
            "broad": "patient/*.rs offline_access",
        }
    )
    assert profiles == {
        "scheduler": frozenset({"Appointment", "Slot"}),
        "broad": frozenset({"*"}),
    }


def test_reading_a_bulk_export_file_is_not_out_of_profile() -> None:
    d = detector()
    assert not d.observe(rec(0, resource_type="Binary", interaction="read"))
    # what the file holds was judged at kick-off and line by line; any other use of Binary is not
    assert [a.evidence["resource_type"] for a in d.observe(search(1, "Binary", "_id=x"))] == [
        "Binary"
    ]
