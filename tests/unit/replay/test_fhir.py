"""Reading gateway responses: `[Cnn]` refusals, resources, patients, next links."""

from __future__ import annotations

import json

import httpx

from simulator.replay.fhir import (
    ndjson_resources,
    next_link,
    patients_reached,
    refusing_control,
    resource_keys,
    resources_of,
    xml_body,
)
from simulator.steps.answers import describe


def outcome(diagnostics: str) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{"diagnostics": diagnostics}]}


def bundle(*resources: dict, next_url: str | None = None) -> dict:
    links = [{"relation": "next", "url": next_url}] if next_url else []
    return {
        "resourceType": "Bundle",
        "link": [{"relation": "self", "url": "x"}, *links],
        "entry": [{"resource": r} for r in resources],
    }


PAT_A = {"resourceType": "Patient", "id": "pat-a-000000"}
OBS_B = {
    "resourceType": "Observation",
    "id": "o1",
    "subject": {"reference": "Patient/pat-a-000002"},
}
ORG = {"resourceType": "Organization", "id": "org-a"}


def test_control_from_diagnostics() -> None:
    assert refusing_control(outcome("[C08] token is bound to patient pat-a-000000")) == "C08"
    assert refusing_control(outcome("  [C12] _count capped")) == "C12"


def test_no_control_without_prefix_or_outcome() -> None:
    assert refusing_control(outcome("not found")) is None
    assert refusing_control(outcome("see [C08] later")) is None
    assert refusing_control(PAT_A) is None
    assert refusing_control(None) is None
    assert refusing_control({"resourceType": "OperationOutcome"}) is None


def test_control_from_a_later_issue() -> None:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"diagnostics": "x"}, {"diagnostics": "[C05] no"}],
    }
    assert refusing_control(body) == "C05"


def test_resources_of_bundle_and_single() -> None:
    assert resources_of(bundle(PAT_A, OBS_B)) == [PAT_A, OBS_B]
    assert resources_of(PAT_A) == [PAT_A]
    assert resources_of(outcome("[C08] no")) == []
    assert resources_of({"resourceType": "Bundle"}) == []
    assert resources_of([1, 2]) == []


def test_patients_in_a_bundle() -> None:
    found = patients_reached(resources_of(bundle(PAT_A, OBS_B, ORG)))
    assert found == {"pat-a-000000", "pat-a-000002"}


def test_absolute_references_with_bases() -> None:
    obs = {
        "resourceType": "Observation",
        "id": "o2",
        "subject": {"reference": "http://localhost:8080/fhir/Patient/pat-b-000001"},
    }
    assert patients_reached([obs], ["http://localhost:8080/fhir"]) == {"pat-b-000001"}


def test_ndjson_lines() -> None:
    text = "\n".join(json.dumps(r) for r in (PAT_A, OBS_B)) + "\n\nnot json\n"
    resources = ndjson_resources(text)
    assert len(resources) == 2
    assert patients_reached(resources) == {"pat-a-000000", "pat-a-000002"}


def test_resource_keys() -> None:
    assert resource_keys([PAT_A, OBS_B, {"resourceType": "Patient"}]) == [
        "Patient/pat-a-000000",
        "Observation/o1",
    ]


def test_next_link() -> None:
    assert next_link(bundle(PAT_A, next_url="http://gw/fhir?page=2")) == "http://gw/fhir?page=2"
    assert next_link(bundle(PAT_A)) is None
    assert next_link("nope") is None


def test_describe_a_refusal() -> None:
    resp = httpx.Response(403, json=outcome("[C08] token is bound to patient x"))
    result = describe("probe", ("C08",), "GET", "u", resp, 3.0)
    assert (result.status, result.control, result.results, result.refused) == (403, "C08", 0, True)


def test_describe_a_bundle() -> None:
    resp = httpx.Response(200, json=bundle(PAT_A, OBS_B))
    result = describe("read", (), "GET", "u", resp, 1.0)
    assert result.results == 2
    assert result.patients == ("pat-a-000000", "pat-a-000002")
    assert result.control is None and result.ok


def test_describe_ndjson() -> None:
    text = "\n".join(json.dumps(r) for r in (OBS_B, ORG))
    resp = httpx.Response(200, text=text, headers={"content-type": "application/fhir+ndjson"})
    result = describe("export", ("C04",), "GET", "u", resp, 1.0)
    assert result.results == 2 and result.patients == ("pat-a-000002",)


def test_an_xml_answer_is_read_like_its_json_form() -> None:
    xml = (
        b'<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/><entry><resource>'
        b'<Observation><id value="o1"/><status value="final"/><code><text value="x"/></code>'
        b'<subject><reference value="Patient/p9"/></subject></Observation></resource></entry>'
        b"</Bundle>"
    )
    body = xml_body(xml)
    assert patients_reached(resources_of(body)) == {"p9"}
    assert xml_body(b"<not-fhir/>") is None and xml_body(b"\x00") is None
