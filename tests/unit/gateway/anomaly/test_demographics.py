"""`wildcard_demographics`: trawling Patient by demographics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.anomaly import (
    DemographicsConfig,
    WildcardDemographicsDetector,
    assess_patient_search,
)
from tests.unit.gateway.anomaly.helpers import search


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("name=Sm*", "wildcard in name"),
        ("family=%25mith", "wildcard in family"),
        ("family:contains=mit", "family:contains"),
        ("family=Sm&given=John", "short family value (2 characters)"),
        ("given=", "short given value (0 characters)"),
        ("gender=female", "fewer than two selective criteria (gender)"),
        ("birthdate=ge1950-01-01&gender=male", "fewer than two selective criteria"),
        ("name=Smith", "fewer than two selective criteria (name)"),
    ],
)
def test_broad_searches(query: str, reason: str) -> None:
    assessed = assess_patient_search(query)
    assert assessed is not None
    kind, reasons = assessed
    assert kind == "broad"
    assert any(r.startswith(reason) for r in reasons), reasons


@pytest.mark.parametrize(
    "query",
    ["family=Smith&given=John", "family=Smith&birthdate=1970-01-01", "identifier=12345678"],
)
def test_selective_demographic_searches_are_plain(query: str) -> None:
    assert assess_patient_search(query) == ("plain", [])


@pytest.mark.parametrize(
    "query",
    ["identifier=http://hospital.example/mrn|12345", "_id=p1", "_id=p1&name=*", "", "_count=10"],
)
def test_exact_keys_and_non_demographic_searches_are_not_demographic(query: str) -> None:
    assert assess_patient_search(query) is None


def test_a_broad_search_without_patient_context_alerts_high() -> None:
    detector = WildcardDemographicsDetector()
    alerts = detector.observe(search(0, "Patient", "name=Sm*", patient_context=None))
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.id, alert.severity, alert.client_id) == (
        "wildcard_demographics-1",
        "high",
        "scheduler",
    )
    assert alert.evidence["kind"] == "broad"
    assert alert.evidence["reasons"] == ["wildcard in name"]
    assert alert.evidence["query"] == "name=Sm*"
    assert "no patient in context" in alert.message
    # cooled down: the next broad searches in the window do not repeat it
    assert not detector.observe(search(1, "Patient", "family=a", patient_context=None))


def test_a_broad_search_with_patient_context_alerts_medium() -> None:
    alerts = WildcardDemographicsDetector().observe(search(0, "Patient", "name=Smith"))
    assert [a.severity for a in alerts] == ["medium"]


def test_repeated_plain_lookups_alert_low_past_the_threshold() -> None:
    detector = WildcardDemographicsDetector(DemographicsConfig(max_plain=10))
    alerts = [
        a
        for i in range(15)
        for a in detector.observe(search(i, "Patient", f"family=Smith{i}&given=Ann"))
    ]
    assert [(a.severity, a.evidence["count"]) for a in alerts] == [("low", 11)]


def test_a_few_selective_lookups_and_other_types_do_not_alert() -> None:
    detector = WildcardDemographicsDetector()
    assert not detector.observe(search(0, "Patient", "family=Smith&given=John"))
    assert not detector.observe(search(1, "Patient", "identifier=urn:mrn|42"))
    assert not detector.observe(search(2, "Practitioner", "name=Sm*"))
    assert not detector.observe(search(3, "Patient", "name=Sm*", interaction="read"))


@settings(max_examples=300, deadline=None)
@given(query=st.text(max_size=300))
def test_any_query_string_never_raises(query: str) -> None:
    assessed = assess_patient_search(query)
    assert assessed is None or assessed[0] in ("broad", "plain")
    WildcardDemographicsDetector().observe(search(0, "Patient", query))


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.sampled_from(["name", "family", "given:contains", "birthdate", "identifier", "x"]),
            st.text(max_size=20),
        ),
        max_size=6,
    )
)
def test_structured_demographic_queries_never_raise(pairs: list[tuple[str, str]]) -> None:
    from urllib.parse import urlencode

    assessed = assess_patient_search(urlencode(pairs))
    if all(name == "x" for name, _ in pairs):
        assert assessed is None  # no demographic parameter: not a demographic search
    if assessed is not None:
        kind, reasons = assessed
        assert kind == ("broad" if reasons else "plain")
        assert len(reasons) <= 10 and all(isinstance(r, str) and r for r in reasons)
