"""Request kinds, the unit a control's cost is read in."""

from __future__ import annotations

import pytest

from simulator.steps.kinds import EXPORT, OPERATION, OTHER, READ, SEARCH, WRITE, request_kind
from simulator.steps.kinds import kind_of as kind
from simulator.steps.wire import Part, StepRequest

BASE = "http://localhost:8080/fhir"


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("GET", f"{BASE}/Patient/p1", READ),
        ("HEAD", f"{BASE}/Patient/p1", READ),
        ("GET", f"{BASE}/Patient/p1/_history/2", READ),
        ("GET", f"{BASE}/Observation?patient=p1", SEARCH),
        ("GET", f"{BASE}/Patient/p1/Observation", SEARCH),
        ("GET", f"{BASE}?_type=Patient", SEARCH),
        ("GET", f"{BASE}/Patient/p1/_history", SEARCH),
        ("POST", f"{BASE}/Observation/_search", SEARCH),
        ("POST", f"{BASE}/Observation", WRITE),
        ("PUT", f"{BASE}/Observation/o1", WRITE),
        ("PATCH", f"{BASE}/Observation/o1", WRITE),
        ("DELETE", f"{BASE}/Observation/o1", WRITE),
        ("POST", BASE, WRITE),
        ("GET", f"{BASE}/Patient/p1/$everything", OPERATION),
        ("GET", f"{BASE}/$export?_type=Patient", OPERATION),
        ("GET", f"{BASE}/metadata", OTHER),
        ("GET", "Patient/p1", READ),
    ],
)
def test_the_kind_of_a_request(method: str, url: str, expected: str) -> None:
    assert kind(method, url) == expected


def test_pages_polls_and_downloads_take_their_part() -> None:
    def req(part: Part) -> StepRequest:
        return StepRequest("s", (), "GET", f"{BASE}/Patient/p1", {}, None, part)

    assert request_kind(req(Part.NEXT_PAGE)) == SEARCH
    assert request_kind(req(Part.POLL)) == EXPORT
    assert request_kind(req(Part.DOWNLOAD)) == EXPORT
    assert request_kind(req(Part.REQUEST)) == READ
