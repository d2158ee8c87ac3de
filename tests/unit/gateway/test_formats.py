"""Which format an answer is served in (`gateway/formats.py`) and its XML form (`fhir_xml.py`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.fhir_xml import NotServable, to_xml
from gateway.formats import Kind, NotAcceptable, negotiate, text_summary, without_format

JSON, XML, NDJSON = Kind.JSON, Kind.XML, Kind.NDJSON


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [
        ("json", JSON),
        ("application/fhir+json", JSON),
        ("application/json", JSON),
        ("application/json+fhir", JSON),
        ("xml", XML),
        ("XML", XML),
        ("application/fhir+xml", XML),
        ("application/xml+fhir", XML),
        ("application/xml", XML),
        ("text/xml", XML),
        ("application/fhir+json; fhirVersion=4.0", JSON),
    ],
)
def test_format_param_picks_json_or_xml(fmt: str, kind: Kind) -> None:
    assert negotiate((("_format", fmt),), b"text/turtle").kind is kind  # _format wins


@pytest.mark.parametrize("fmt", ["ttl", "turtle", "text/turtle", "html", "text/html", "rdf", ""])
def test_other_formats_are_not_acceptable(fmt: str) -> None:
    with pytest.raises(NotAcceptable, match="ask for JSON"):
        negotiate((("_format", fmt),), None)


@pytest.mark.parametrize(
    ("accept", "kind"),
    [
        (None, JSON),
        (b"", JSON),
        (b"*/*", JSON),
        (b"application/*", JSON),
        (b"application/fhir+xml", XML),
        (b"application/xml+fhir", XML),
        (b"application/json+fhir", JSON),
        (b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", XML),
        (b"application/fhir+json;q=0.5, application/fhir+xml", XML),
        (b"application/fhir+xml;q=0, application/json", JSON),
        (b"text/turtle, */*;q=0.1", JSON),
    ],
)
def test_accept_picks_the_most_preferred_served_format(accept: bytes | None, kind: Kind) -> None:
    assert negotiate((), accept).kind is kind


@pytest.mark.parametrize(
    "accept", [b"text/turtle", b"text/html", b"application/fhir+xml;q=0", b"image/png"]
)
def test_accept_naming_nothing_served_is_406(accept: bytes) -> None:
    with pytest.raises(NotAcceptable, match="names no format served here"):
        negotiate((), accept)


def test_ndjson_only_for_a_binary_read() -> None:
    assert negotiate((), b"application/fhir+ndjson", export_file=True).kind is NDJSON
    assert negotiate((), b"application/fhir+ndjson", export_file=True).upstream_accept == (
        b"application/fhir+ndjson"
    )
    with pytest.raises(NotAcceptable):
        negotiate((), b"application/fhir+ndjson")
    assert negotiate((), b"application/fhir+xml", export_file=True).upstream_accept == (
        b"application/fhir+json"
    )


def test_the_format_parameter_never_reaches_hapi() -> None:
    params = (("_format", "xml"), ("patient", "p1"), ("_format", "ttl"))
    assert without_format(params) == (("patient", "p1"),)


@given(
    params=st.lists(st.tuples(st.sampled_from(["_format", "_count", "x"]), st.text(max_size=30))),
    accept=st.one_of(st.none(), st.binary(max_size=80)),
    export_file=st.booleans(),
)
def test_any_input_gives_a_served_format_or_406(
    params: list[tuple[str, str]], accept: bytes | None, export_file: bool
) -> None:
    try:
        answer = negotiate(tuple(params), accept, export_file)
    except NotAcceptable as exc:
        assert "ask for JSON" in str(exc)
        return
    assert answer.kind in (JSON, XML, NDJSON)
    assert answer.upstream_accept in (b"application/fhir+json", b"application/fhir+ndjson")
    if answer.kind is NDJSON:
        assert export_file


# -- the XML form ---------------------------------------------------------------------------------

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"tag": [{"system": "https://fhirlab.dev/tenant", "code": "tenant-a"}]},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">P</div>'},
    "name": [{"family": "Smith", "given": ["Ann"]}],
    "birthDate": "1980-01-01",
}


def test_a_bundle_is_written_as_fhir_xml() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"fullUrl": "http://x/fhir/Patient/p1", "resource": PATIENT}],
    }
    root = ET.fromstring(to_xml(bundle))
    ns = {"f": "http://hl7.org/fhir"}
    assert root.tag == "{http://hl7.org/fhir}Bundle"
    family = root.find("f:entry/f:resource/f:Patient/f:name/f:family", ns)
    assert family is not None and family.get("value") == "Smith"


@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": "NoSuchType", "id": "x"},
        {"id": "x"},
        {"resourceType": "Patient", "id": "p1", "notAnElement": True},
    ],
)
def test_what_the_serializer_cannot_write_is_not_served(resource: dict[str, object]) -> None:
    with pytest.raises(NotServable):
        to_xml(resource)


def test_a_text_summary_keeps_id_meta_and_narrative_only() -> None:
    summary = text_summary(PATIENT)
    assert set(summary) == {"resourceType", "id", "meta", "text"}
    assert summary["meta"]["tag"][-1]["code"] == "SUBSETTED"
    assert summary["meta"]["tag"][0] == PATIENT["meta"]["tag"][0]  # the tenant tag stays
