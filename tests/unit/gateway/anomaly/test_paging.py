"""`paging_walk`: many pages of one search."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.anomaly import PagingConfig, PagingWalkDetector
from gateway.audit import AuditRecord
from tests.unit.gateway.anomaly.helpers import rec, search

CONFIG = PagingConfig(max_pages=20, max_results=5000)


def hapi_page(n: int, offset: int, **overrides: Any) -> AuditRecord:
    query = f"_getpages=3f2a-91&_getpagesoffset={offset}&_count=20&_bundletype=searchset"
    return rec(
        n,
        path="/fhir",
        query=query,
        interaction="search-system",
        resource_type=None,
        request_id=f"page-{offset}",
        result_count=20,
        **overrides,
    )


def test_walking_hapi_paging_links_alerts_once() -> None:
    detector = PagingWalkDetector(CONFIG)
    alerts = [a for i in range(1, 40) for a in detector.observe(hapi_page(i, i * 20))]
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.id, alert.severity, alert.token_id) == ("paging_walk-1", "medium", "jti-1")
    assert alert.evidence["pages"] == 21 and alert.evidence["results"] == 420
    assert alert.evidence["search"] == "_getpages=3f2a-91"
    assert alert.evidence["request_ids"][-1] == "page-420"
    assert alert.ts == rec(21).ts
    assert "walked 21 pages" in alert.message


def test_twenty_pages_do_not_alert() -> None:
    detector = PagingWalkDetector(CONFIG)
    assert not any(detector.observe(hapi_page(i, i * 20)) for i in range(1, 21))


def test_refetching_the_same_page_is_not_a_walk() -> None:
    detector = PagingWalkDetector(CONFIG)
    assert not any(detector.observe(hapi_page(i, 20)) for i in range(200))


def test_large_count_offset_paging_alerts_on_results() -> None:
    detector = PagingWalkDetector(CONFIG)
    alerts = []
    for page in range(8):
        query = f"_count=1000&patient=p1&_offset={page * 1000}&category=laboratory"
        alerts += detector.observe(search(page, "Observation", query, result_count=None))
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.severity == "high"
    assert (alert.evidence["pages"], alert.evidence["results"]) == (6, 6000)
    assert alert.evidence["search"] == "/fhir/Observation?category=laboratory&patient=p1"


def test_offsets_of_different_searches_or_tokens_are_separate_walks() -> None:
    detector = PagingWalkDetector(CONFIG)
    for i in range(100):
        page = search(i, "Observation", f"code=c{i % 10}&_offset={i * 10}", token_id=f"t{i % 3}")
        assert not detector.observe(page)


def test_a_walk_idle_beyond_idle_s_starts_over() -> None:
    detector = PagingWalkDetector(PagingConfig(max_pages=5, idle_s=60))
    for i in range(5):
        assert not detector.observe(hapi_page(i, i * 20))
    assert not detector.observe(hapi_page(1000, 500))  # a new walk after the idle period


def test_plain_reads_and_searches_without_paging_are_ignored() -> None:
    detector = PagingWalkDetector(PagingConfig(max_pages=1))
    assert not any(detector.observe(rec(i)) for i in range(10))
    assert not any(detector.observe(search(i, "Patient", f"family=x{i}")) for i in range(10))


@settings(max_examples=300, deadline=None)
@given(query=st.text(max_size=300), interaction=st.sampled_from(["search-type", "read", ""]))
def test_any_query_string_never_raises(query: str, interaction: str) -> None:
    detector = PagingWalkDetector(PagingConfig(max_pages=1, max_results=1))
    alerts = [
        alert
        for i in range(3)
        for alert in detector.observe(rec(i, query=query, interaction=interaction, path="/fhir"))
    ]
    assert len(alerts) <= 1  # the same query three times is one walk: one alert at most
    alerts += detector.observe(rec(5, query=f"_getpages={query}&_getpagesoffset={query}"))
    for alert in alerts:  # an alert only past a threshold, and saying which
        assert alert.evidence["pages"] > 1 or alert.evidence["results"] > 1
